import pytest

from synthq.tasks.attribute.seeds import load_seeds
from synthq.tasks.core.errors import InputError, SeedFileError
from synthq.tasks.sample import SEEDS


def test_bundled_seeds_are_all_valid():
    seeds, bad = load_seeds(str(SEEDS))
    assert len(seeds) == 40 and bad == []


def test_bad_lines_are_rejected_by_file_and_line(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text(
        '{"id": "a", "prompt": "Explain recursion with an example."}\n'
        "{oops\n"
        '{"id": "b"}\n'
        '["not", "an", "object"]\n'
        '{"id": "a", "prompt": "dup id"}\n'
        "\n"
        '{"id": 7, "prompt": "  Integer ids are fine.  "}\n'
    )
    seeds, bad = load_seeds(str(f))
    assert [s["id"] for s in seeds] == ["a", "7"]
    assert seeds[1]["prompt"] == "Integer ids are fine."
    details = [r["detail"] for r in bad]
    assert details[0].startswith(f"{f}:2: not valid JSON")
    assert details[1] == f"{f}:3: missing or empty 'prompt' (a non-empty string)"
    assert "expected a JSON object" in details[2]
    assert details[3] == f"{f}:5: duplicate id 'a'"
    assert {r["reason"] for r in bad} == {"bad_seed"}


def test_file_without_any_good_seed_is_an_error(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text("nope\n")
    with pytest.raises(SeedFileError, match=r"s.jsonl:1: not valid JSON"):
        load_seeds(str(f))
    with pytest.raises(InputError, match="does not exist"):
        load_seeds(str(tmp_path / "missing.jsonl"))
