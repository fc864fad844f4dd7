"""IdSet: membership of millions of ids without a Python string per id."""

import pyarrow as pa

from synthq.tasks.core.idset import IdSet


def test_members_across_parts_of_any_width_and_encoding():
    ids = IdSet([pa.array(["q2", "q10", "q1"]), ["q1", "é-1", "q3"]])
    assert len(ids) == 5  # distinct
    assert ids.contains(pa.chunked_array([["q1", "q4", "q10", "q100", "é-1"]])).tolist() == [True, False, True, False, True]
    assert ids.minus(IdSet([["q1", "q3"]])) == ["q10", "q2", "é-1"]
    assert IdSet().contains(["q1"]).tolist() == [False] and IdSet([[]]).minus(ids) == []


def test_a_million_ids_take_their_bytes_not_a_python_set():
    ids = IdSet(pa.array([f"{k:016x}" for k in range(start, start + 100_000)]) for start in range(0, 1_000_000, 100_000))
    assert ids.values.nbytes == 16 * 1_000_000
    assert ids.contains(["00000000000f423f", "00000000000f4240"]).tolist() == [True, False]


def test_positions_of_ids_in_their_array_from_any_part():
    import numpy as np

    from synthq.tasks.core.idset import IdPositions

    where = IdPositions(pa.array(["c", "a", "bb", "é"]))
    assert where.find(np.array(["a", "é", "zz", "bb"])).tolist() == [1, 3, -1, 2]
    assert where.find(pa.chunked_array([["c"], ["x", "a"]])).tolist() == [0, -1, 1]
    assert IdPositions([]).find(["a"]).tolist() == [-1]
