"""A large set of ids held compactly: one sorted array of their UTF-8 bytes (about an id's
length per member, where a Python set of strings takes well over 100 bytes per member),
queried with binary search. What a flow's process holds to match millions of ids."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

Ids = pa.Array | pa.ChunkedArray | np.ndarray | list[str]
EMPTY = np.zeros(0, dtype="S1")


def _bytes(ids: Ids) -> np.ndarray:
    if isinstance(ids, np.ndarray):  # of str (as numpy keeps them in .npz files)
        return np.char.encode(ids, "utf-8") if len(ids) else EMPTY
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(ids, pa.Array) and len(ids) and ids.null_count == 0 and pa.types.is_string(ids.type):
        offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + len(ids) + 1]
        width = int(offsets[1] - offsets[0])
        if width and (np.diff(offsets) == width).all():  # ids of one length (hashes): their bytes as they lie
            return np.frombuffer(ids.buffers()[2], dtype=f"S{width}", count=len(ids), offset=int(offsets[0])).copy()
    items = ids.to_pylist() if isinstance(ids, pa.Array) else ids
    return np.array([i.encode() for i in items], dtype="S") if len(items) else EMPTY


def _search(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where each wanted id would sit in the sorted `keys`, whether it is there)."""
    hit, at = np.zeros(len(wanted), dtype=bool), np.zeros(len(wanted), dtype=np.int64)
    if not len(keys) or not len(wanted):
        return at, hit
    fits = np.char.str_len(wanted) <= keys.dtype.itemsize  # a longer id is no key (and would be cut by the cast)
    probe = wanted[fits].astype(keys.dtype)
    found = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
    at[fits], hit[fits] = found, keys[found] == probe
    return at, hit


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
        return _search(self.values, _bytes(ids))[1]

    def minus(self, other: IdSet) -> list[str]:
        """The members not in `other`, sorted."""
        return [v.decode() for v in self.values[~_search(other.values, self.values)[1]]]


class IdPositions:
    """Where each id sits in one array of distinct ids: their bytes sorted, with their order.
    Probing it part by part costs each part, where `pyarrow.compute.index_in` would build a
    hash table of every id again for each part."""

    def __init__(self, ids: Ids):
        raw = _bytes(ids)
        self.order = np.argsort(raw, kind="stable")
        self.keys = raw[self.order]

    def find(self, ids: Ids) -> np.ndarray:
        """The position of each of `ids` in the array, -1 for one not in it."""
        at, hit = _search(self.keys, _bytes(ids))
        return np.where(hit, self.order[at] if len(self.order) else -1, -1)
