"""A step's own memory, and memory handed back after it.

`measured()` reads the process's resident set at a step's start and its high-water mark at
the end, the mark started again from the step's start (Linux: VmHWM, reset through
/proc/self/clear_refs), so a shard's manifest says how much memory that shard took, not the
largest the worker ever was. `release_freed()` hands the heap a step freed back to the system
(glibc's malloc_trim), so a long-lived Ray worker does not keep its largest step's size
through every later stage. Where the kernel or the C library offers neither, both do nothing
and no figure is given. Both act on the whole process: two steps run at once in one process
(threads) share one figure, which Ray's workers, one task at a time, never do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

MIB = 2**20


def rss_status(field: str) -> int | None:
    """VmRSS, or VmHWM (the peak since the last reset), of this process in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":")), None)
    except OSError:
        return None


def reset_peak() -> bool:
    """Start VmHWM again from the current resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@contextmanager
def measured() -> Iterator[dict]:
    """Yields a dict that holds, once the block ends, `rss_start_mib` and `peak_mib` (the block's
    peak resident set, its start included); it stays empty where that cannot be told."""
    out: dict = {}
    start, own = rss_status("VmRSS"), reset_peak()
    try:
        yield out
    finally:
        peak = rss_status("VmHWM")
        if own and start is not None and peak is not None:
            out.update(rss_start_mib=round(start / MIB), peak_mib=round(max(peak, start) / MIB))


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def release_freed() -> None:
    """Give the heap's free pages back to the system (glibc only; elsewhere nothing happens)."""
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)
