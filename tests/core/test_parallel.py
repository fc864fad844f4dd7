"""Running steps in Ray tasks and workers of their own, on a local Ray."""

import os


def pid() -> int:
    return os.getpid()


def halves(n: int) -> tuple[int, int]:
    return divmod(n, 2)


def test_run_alone_runs_in_a_worker_that_exits_after_it(ray_local):
    from synthq.tasks.core.parallel import run_alone

    first, second = run_alone(pid, (), remote=True), run_alone(pid, (), remote=True)
    assert os.getpid() not in (first, second) and first != second  # a new worker each time: the last one exited
    assert run_alone(halves, (7,), remote=False) == (3, 1)


def test_run_each_keeps_the_order_of_the_calls(ray_local):
    from synthq.tasks.core.parallel import run_each

    assert run_each(halves, [(7,), (9,), (4,)], remote=True) == [(3, 1), (4, 1), (2, 0)]


def fragmented_heap() -> int:
    """200 MiB in 64 KiB heap blocks, freed all but the last (which keeps the heap's top from
    shrinking by itself); returns this process's resident set afterwards, in MiB."""
    import ctypes
    import ctypes.util

    from synthq.tasks.core.memory import rss_status

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(3200)]
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    for b in blocks[:-1]:
        libc.free(b)
    return rss_status("VmRSS") // 2**20


def test_a_step_hands_back_the_heap_it_freed():
    import sys

    import pytest

    from synthq.tasks.core.memory import release_freed, rss_status
    from synthq.tasks.core.parallel import releasing

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's malloc_trim")
    kept = fragmented_heap()  # a plain call: the freed 200 MiB stay resident
    release_freed()
    assert kept - rss_status("VmRSS") // 2**20 > 150
    step = releasing(fragmented_heap)
    assert step.__name__ == "fragmented_heap"  # Ray names the task after the step
    base = rss_status("VmRSS") // 2**20
    assert step() - base > 150 and rss_status("VmRSS") // 2**20 - base < 50
