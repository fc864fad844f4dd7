"""Seed and benchmark files in the shapes people publish them, written here in those shapes:
self-instruct seed tasks, Alpaca, MT-Bench, ShareGPT, OpenAI chat, question/answer CSV, on
local paths, folders, globs, gzip, hf: datasets and a memory:// fsspec URL."""

import gzip
import json

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthq.tasks.attribute.seeds import read_seeds
from synthq.tasks.core.errors import InputError, SeedFileError
from synthq.tasks.curate.decontaminate import Benchmarks, load_benchmark

SELF_INSTRUCT = [  # the self-instruct seed_tasks.jsonl shape
    {"id": "seed_task_0", "name": "breakfast_suggestion", "instruction": "Is there anything I can eat for a breakfast that doesn't include eggs?",
     "instances": [{"input": "", "output": "Yes: oatmeal, yoghurt with fruit, or toast with peanut butter."}], "is_classification": False},
    {"id": "seed_task_1", "name": "sentiment", "instruction": "Classify the sentiment of the sentence as positive or negative.",
     "instances": [{"input": "The hotel staff ignored us for an hour.", "output": "negative"}], "is_classification": True},
    {"id": "seed_task_2", "name": "broken", "instruction": "", "instances": [], "is_classification": False},
]
MT_BENCH = [  # the MT-Bench question.jsonl shape
    {"question_id": 81, "category": "writing", "turns": [
        "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences and must-see attractions.",
        "Rewrite your previous response. Start every sentence with the letter A."]},
    {"question_id": 101, "category": "reasoning", "turns": [
        "Imagine you are participating in a race with a group of people. If you have just overtaken the second person, what's your current position?",
        "If the \"second person\" is changed to \"last person\" in the above question, what would the answer be?"]},
    {"question_id": 102, "category": "reasoning", "turns": []},
]
ALPACA = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, move daily, sleep enough."},
    {"instruction": "Translate the sentence into French.", "input": "Where is the train station?", "output": "Où est la gare ?"},
]
SHAREGPT = [
    {"id": "sg1", "conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "How do I undo the last git commit?"},
                                    {"from": "gpt", "value": "git reset --soft HEAD~1"}, {"from": "human", "value": "And if I pushed it?"}]},
    {"id": "sg2", "conversations": [{"from": "gpt", "value": "Hello, how can I help?"}]},
]
CHAT = [
    {"messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Explain what a mutex is."},
                  {"role": "assistant", "content": "A lock..."}]},
    {"messages": [{"role": "user", "content": "Write a haiku about rain."}]},
]


def _jsonl(path, rows, opener=open):
    with opener(path, "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_self_instruct_seed_tasks_map_instruction_and_first_instance_input(tmp_path):
    found = read_seeds(_jsonl(tmp_path / "seed_tasks.jsonl", SELF_INSTRUCT))
    assert [s["id"] for s in found.seeds] == ["seed_task_0", "seed_task_1"]
    assert found.seeds[0]["prompt"] == SELF_INSTRUCT[0]["instruction"]  # empty input: the instruction alone
    assert found.seeds[1]["prompt"] == SELF_INSTRUCT[1]["instruction"] + "\n\nThe hotel staff ignored us for an hour."
    assert [r["detail"] for r in found.rejected] == [f"{tmp_path}/seed_tasks.jsonl:3: missing or empty 'instruction' (a non-empty string)"]
    assert list(found.detected.values()) == ["prompt from 'instruction' + 'instances', id from 'id' (detected)"]


def test_mt_bench_first_turn_for_seeds_every_turn_for_benchmarks(tmp_path):
    path = _jsonl(tmp_path / "mt_bench.jsonl", MT_BENCH)
    found = read_seeds(path)
    assert [(s["id"], s["prompt"]) for s in found.seeds] == [("81", MT_BENCH[0]["turns"][0]), ("101", MT_BENCH[1]["turns"][0])]
    assert found.rejected[0]["reason"] == "bad_seed" and "mt_bench.jsonl:3: missing or empty 'turns' (a list with a non-empty user turn)" in found.rejected[0]["detail"]
    assert load_benchmark(path) == MT_BENCH[0]["turns"] + MT_BENCH[1]["turns"]
    bench = Benchmarks.load([path], {}, 13, "bundled")
    assert bench.names == ["mt_bench"] * 4 and bench.unusable == {"mt_bench": 1}


def _vecs(texts):
    from synthq.tasks.core.embeddings import embed

    return embed(texts, "bundled")


def test_second_turn_contamination_is_an_ngram_hit(tmp_path):
    bench = Benchmarks.load([_jsonl(tmp_path / "mt_bench.jsonl", MT_BENCH)], {}, 8, "bundled")
    query = 'Consider this: if the "second person" is changed to "last person" in the above question, what would the answer be?'
    verdict = bench.hits([query], _vecs(["an unrelated text about gardening"]), 0.99)[0]
    assert verdict and verdict[:2] == ("contaminated_ngram", "mt_bench")


def test_alpaca_json_array_sharegpt_chat_parquet_and_question_csv(tmp_path):
    (tmp_path / "alpaca.json").write_text(json.dumps(ALPACA, ensure_ascii=False))
    (tmp_path / "sharegpt.json").write_text(json.dumps(SHAREGPT))
    pq.write_table(pa.Table.from_pylist(CHAT), tmp_path / "chat.parquet")
    (tmp_path / "gsm.csv").write_text("question,answer\nWhat is 12 times 7?,84\n\"A train leaves at 3pm, arrives at 5pm; how long?\",2h\n")
    (tmp_path / "README.md").write_text("not seeds")
    found = read_seeds(str(tmp_path))
    prompts = {s["prompt"] for s in found.seeds}
    assert prompts == {
        "Give three tips for staying healthy.", "Translate the sentence into French.\n\nWhere is the train station?",
        "How do I undo the last git commit?", "Explain what a mutex is.", "Write a haiku about rain.",
        "What is 12 times 7?", "A train leaves at 3pm, arrives at 5pm; how long?",
    }
    assert len({s["id"] for s in found.seeds}) == 7  # ids derived from content where the file has none
    assert sorted((r["reason"], r["detail"]) for r in found.rejected) == [
        ("bad_seed", f"{tmp_path}/sharegpt.json[1]: missing or empty 'conversations' (a list with a non-empty user turn)"),
        ("unknown_file_type", f"{tmp_path}/README.md: not one of JSON lines (.jsonl/.ndjson[.gz]), JSON arrays (.json[.gz]), "
                              "Parquet or CSV files, or hf:DATASET; skipped"),
    ]
    shapes = {k.rsplit("/", 1)[1]: v.split(",")[0] for k, v in found.detected.items()}
    assert shapes == {"alpaca.json": "prompt from 'instruction' + 'input'", "sharegpt.json": "prompt from 'conversations'",
                      "chat.parquet": "prompt from 'messages'", "gsm.csv": "prompt from 'question'"}
    # benchmarks register every user turn of a chat, not only the first
    assert "And if I pushed it?" in load_benchmark(str(tmp_path / "sharegpt.json"))


def test_gzip_glob_memory_url_and_hf_dataset(tmp_path):
    gz = _jsonl(tmp_path / "a.jsonl.gz", [{"id": "g1", "prompt": "Summarise the causes of inflation."}], gzip.open)
    assert read_seeds(gz).seeds == [{"id": "g1", "prompt": "Summarise the causes of inflation."}]
    _jsonl(tmp_path / "b.jsonl", [{"id": "b1", "prompt": "Plan a week of vegetarian dinners."}])
    assert {s["id"] for s in read_seeds(str(tmp_path / "*.jsonl*")).seeds} == {"g1", "b1"}

    fs = fsspec.filesystem("memory")
    with fs.open("/bucket/seeds/mt.jsonl", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in MT_BENCH))
    found = read_seeds("memory://bucket/seeds/")
    assert [s["id"] for s in found.seeds] == ["81", "101"] and list(found.detected) == ["memory:///bucket/seeds/mt.jsonl"]
    assert len(load_benchmark("memory://bucket/seeds/mt.jsonl")) == 4

    import datasets

    datasets.Dataset.from_list([{"idx": 5, "question": "Why is the sky blue?"}]).save_to_disk(str(tmp_path / "ds"))
    assert read_seeds(f"hf:{tmp_path / 'ds'}").seeds == [{"id": "5", "prompt": "Why is the sky blue?"}]


def test_explicit_fields_and_files_where_nothing_maps(tmp_path):
    path = _jsonl(tmp_path / "odd.jsonl", [{"ref": "r1", "text": "Describe a sunset.", "note": "extra context"}])
    with pytest.raises(SeedFileError, match=r"no prompt column found \(its columns: ref, text, note\).*set attribute.seed_fields.prompt"):
        read_seeds(path)
    found = read_seeds(path, {"prompt": "text", "input": "note", "id": "ref"})
    assert found.seeds == [{"id": "r1", "prompt": "Describe a sunset.\n\nextra context"}]
    assert found.detected[path] == "prompt from 'text' + 'note', id from 'ref' (as set)"
    with pytest.raises(SeedFileError, match="has no 'body' column"):
        read_seeds(path, {"prompt": "body"})
    (tmp_path / "broken.json").write_text('[{"prompt": "a"},')
    with pytest.raises(SeedFileError, match="not a valid JSON array"):
        read_seeds(str(tmp_path / "broken.json"))
    with pytest.raises(SeedFileError, match="does not exist"):
        read_seeds("memory://nowhere/seeds.jsonl")


def test_same_prompt_twice_without_ids_is_one_seed(tmp_path):
    path = _jsonl(tmp_path / "q.jsonl", [{"question": "Why?"}, {"question": "Why?"}, {"question": 3}])
    found = read_seeds(path)
    assert len(found.seeds) == 1
    assert [r["detail"] for r in found.rejected] == [f"{path}:3: missing or empty 'question' (a non-empty string)",
                                                     f"{path}:2: the same prompt as an earlier row"]
