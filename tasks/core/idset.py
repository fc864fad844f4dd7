"""A large set of ids held compactly: one sorted array of their UTF-8 bytes (about an id's
length per member, where a Python set of strings takes well over 100 bytes per member),
queried with binary search. What a flow's process holds to match millions of ids."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

Ids = pa.Array | pa.ChunkedArray | list[str]
EMPTY = np.zeros(0, dtype="S1")


def _bytes(ids: Ids) -> np.ndarray:
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(ids, pa.Array) and len(ids) and ids.null_count == 0 and pa.types.is_string(ids.type):
        offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + len(ids) + 1]
        width = int(offsets[1] - offsets[0])
        if width and (np.diff(offsets) == width).all():  # ids of one length (hashes): their bytes as they lie
            return np.frombuffer(ids.buffers()[2], dtype=f"S{width}", count=len(ids), offset=int(offsets[0])).copy()
    items = ids.to_pylist() if isinstance(ids, pa.Array) else ids
    return np.array([i.encode() for i in items], dtype="S") if len(items) else EMPTY


class IdSet:
    def __init__(self, parts: Iterable[Ids] = ()):
        """The distinct ids of the parts (converted one part at a time, then merged)."""
        arrays = [_bytes(p) for p in parts]
        width = max([a.dtype.itemsize for a in arrays] + [1])
        self.values = np.unique(np.concatenate([a.astype(f"S{width}") for a in arrays])) if arrays else EMPTY

    def __len__(self) -> int:
        return len(self.values)

    def contains(self, ids: Ids) -> np.ndarray:
        """Whether each of `ids` is a member (a bool per id, in order)."""
        return self._contains(_bytes(ids))

    def minus(self, other: IdSet) -> list[str]:
        """The members not in `other`, sorted."""
        return [v.decode() for v in self.values[~other._contains(self.values)]]

    def _contains(self, wanted: np.ndarray) -> np.ndarray:
        out = np.zeros(len(wanted), dtype=bool)
        if not len(self.values) or not len(wanted):
            return out
        width = self.values.dtype.itemsize
        fits = np.char.str_len(wanted) <= width  # a longer id is no member (and would be cut by the cast)
        probe = wanted[fits].astype(self.values.dtype)
        at = np.minimum(np.searchsorted(self.values, probe), len(self.values) - 1)
        out[fits] = self.values[at] == probe
        return out
