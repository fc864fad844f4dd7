"""The LLM cache: hits and misses by content, resume after a kill, many writers at once."""

import json

import pytest

from synthq.tasks.core.lake import Lake
from synthq.tasks.llm import cache
from synthq.tasks.llm.cache import CachedEngine
from synthq.tasks.llm.engine import Request, Result


class Echo:
    """Answers each request with its prompt; counts what it was asked; can die mid-run."""

    model_name = "echo"

    def __init__(self, die_after: int | None = None):
        self.asked: list[str] = []
        self.die_after = die_after

    def generate(self, requests):
        if self.die_after is not None and len(self.asked) + len(requests) > self.die_after:
            raise KeyboardInterrupt("killed")
        self.asked += [r.id for r in requests]
        return [
            Result(r.id, json.dumps({"q": r.messages[-1]["content"]}), "stop", 10, 5)
            if "fail" not in r.messages[-1]["content"] else Result(r.id, "", None, error="HTTP 503")
            for r in requests
        ]


def _req(rid: str, text: str, temperature: float = 0.0) -> Request:
    return Request(rid, [{"role": "user", "content": text}], {"type": "object"}, 64, temperature)


def test_hit_on_the_same_request_and_miss_on_any_change(lake_dir):
    lake = Lake(lake_dir)
    first = CachedEngine(Echo(), lake, "m")
    out = first.generate([_req("a", "one"), _req("b", "two")])
    assert [r.text for r in out] == ['{"q": "one"}', '{"q": "two"}'] and first.stats.misses == 2

    inner = Echo()
    again = CachedEngine(inner, lake, "m")
    out = again.generate([_req("b", "two"), _req("a", "one"), _req("c", "three")])
    assert [r.id for r in out] == ["b", "a", "c"] and out[1].text == '{"q": "one"}'
    assert (again.stats.hits, again.stats.misses) == (2, 1) and inner.asked == ["c"]
    assert out[0].prompt_tokens == 10 and out[0].output_tokens == 5  # usage comes back too

    changed = CachedEngine(Echo(), lake, "m")
    changed.generate([_req("a", "one", temperature=0.5), _req("a", "one!")])
    assert changed.stats.misses == 2
    other = CachedEngine(Echo(), lake, "other-model")
    other.generate([_req("a", "one")])
    assert other.stats.misses == 1  # another model: nothing shared


def test_errors_are_not_stored_and_a_kill_loses_at_most_one_chunk(lake_dir):
    lake = Lake(lake_dir)
    errors = CachedEngine(Echo(), lake, "m")
    assert errors.generate([_req("x", "fail please")])[0].error == "HTTP 503"
    assert errors.stats.stored == 0

    reqs = [_req(str(i), f"prompt {i}") for i in range(10)]
    with pytest.raises(KeyboardInterrupt):
        CachedEngine(Echo(die_after=8), lake, "m", chunk=4).generate(reqs)  # dies in the 3rd chunk
    inner = Echo()
    resumed = CachedEngine(inner, lake, "m", chunk=4)
    out = resumed.generate(reqs)
    assert resumed.stats.hits == 8 and inner.asked == ["8", "9"]
    assert [json.loads(r.text)["q"] for r in out] == [f"prompt {i}" for i in range(10)]


def test_a_torn_chunk_is_generated_again(lake_dir):
    lake = Lake(lake_dir)
    CachedEngine(Echo(), lake, "m").generate([_req("a", "one")])
    [chunk] = lake.fs.find(lake.path(cache.PENDING))
    lake.fs.pipe(chunk, lake.fs.cat_file(chunk)[:40])
    again = CachedEngine(Echo(), lake, "m")
    assert again.generate([_req("a", "one")])[0].text == '{"q": "one"}' and again.stats.misses == 1


def test_compaction_keeps_every_answer_in_few_files(lake_dir, monkeypatch):
    """Chunks move into key-range partitions (one sorted run per partition touched); a
    partition's runs are merged past MAX_RUNS; every answer is still found, from any scope."""
    monkeypatch.setattr(cache, "MAX_RUNS", 2)
    lake = Lake(lake_dir)
    reqs = [_req(str(i), f"prompt {i}") for i in range(600)]
    merged = 0
    for n, start in enumerate(range(0, 600, 200)):  # three shards, each its own scope
        CachedEngine(Echo(), lake, "m", chunk=50, scope=f"instructions-{n}").generate(reqs[start : start + 200])
        done = cache.compact(lake)
        assert done["files_compacted"] == 4 and done["entries"] == 200
        merged += done["runs_merged"]
    assert not lake.fs.find(lake.path(cache.PENDING))
    runs = cache._runs(lake)
    assert len(runs) > 200 and all(len(listed) <= 2 for listed in runs.values())  # 600 keys in 256 partitions; merged to MAX_RUNS
    assert merged > 0 and sum(n for listed in runs.values() for _, n in listed) == 600
    on_disk = {p.rsplit("/", 1)[-1] for p in lake.fs.find(lake.path(cache.PARTS)) if "/run-" in p}
    assert on_disk == {name for listed in runs.values() for name, _ in listed}  # replaced runs deleted
    inner = Echo()
    again = CachedEngine(inner, lake, "m", scope="instructions-9")
    out = again.generate(list(reversed(reqs)))
    assert again.stats.hits == 600 and inner.asked == []
    assert [json.loads(r.text)["q"] for r in out] == [f"prompt {i}" for i in reversed(range(600))]


def test_a_retried_shard_reads_its_own_chunks_before_compaction(lake_dir):
    lake = Lake(lake_dir)
    reqs = [_req(str(i), f"prompt {i}") for i in range(10)]
    CachedEngine(Echo(), lake, "m", scope="instructions-00001").generate(reqs)
    other = CachedEngine(Echo(), lake, "m", scope="instructions-00002")
    other.generate(reqs[:1])
    assert other.stats.misses == 1  # another shard's pending chunks are not read (compaction makes them visible)
    retried = CachedEngine(Echo(), lake, "m", scope="instructions-00001")
    retried.generate(reqs)
    assert retried.stats.hits == 10


def test_answers_kept_one_file_each_are_found_then_compacted(lake_dir):
    """A lake written by the one-JSON-file-per-answer layout: its answers are hits, and
    compaction moves them into the partitions."""
    lake = Lake(lake_dir)
    probe = CachedEngine(Echo(), lake, "m")
    key = probe.key(_req("a", "one"))
    entry = {"text": "old answer", "finish_reason": "stop", "prompt_tokens": 3, "output_tokens": 2, "cached_tokens": 0}
    lake.write_bytes(lake.path(cache.FOLDER, key[:2], f"{key}.json"), json.dumps(entry).encode())
    assert probe.generate([_req("a", "one")])[0].text == "old answer" and probe.stats.hits == 1
    assert cache.compact(lake) == {"entries": 1, "files_compacted": 1, "runs_merged": 0}
    assert not lake.exists(cache.FOLDER, key[:2])
    again = CachedEngine(Echo(), lake, "m")
    assert again.generate([_req("a", "one")])[0].text == "old answer" and again.stats.hits == 1


def test_many_ray_workers_write_the_same_keys_at_once(ray_local, lake_dir):
    import ray

    @ray.remote
    def worker(seed: int) -> list[str]:
        reqs = [_req(f"r{i}", f"shared prompt {i}") for i in range((seed * 5) % 40, 40)] + [_req(f"r{i}", f"shared prompt {i}") for i in range((seed * 5) % 40)]
        return [r.text for r in CachedEngine(Echo(), Lake(lake_dir), "m", chunk=7).generate(reqs)]

    outs = ray.get([worker.remote(s) for s in range(6)])  # each starts at another offset
    assert all(sorted(o) == sorted(outs[0]) for o in outs)
    lake = Lake(lake_dir)
    stored = cache.lookup(lake, {CachedEngine(Echo(), lake, "m").key(_req(f"r{i}", f"shared prompt {i}")) for i in range(40)}, "_")
    assert len(stored) == 40 and all(e["text"] for e in stored.values())
    assert not [p for p in lake.fs.find(lake.root) if ".tmp-" in p]
    final = CachedEngine(Echo(), lake, "m")
    final.generate([_req(f"r{i}", f"shared prompt {i}") for i in range(40)])
    assert final.stats.hits == 40


class Sampler:
    """Answers a request with n > 1 with n different samples."""

    model_name = "sampler"

    def __init__(self):
        self.calls = 0

    def generate(self, requests):
        self.calls += 1
        return [
            Result(r.id, "s0", "stop", 10, 3, more=[Result(f"{r.id}#{k}", f"s{k}", "stop", output_tokens=3) for k in range(1, r.n)])
            for r in requests
        ]


def test_every_sample_of_a_request_is_cached_and_n_enters_the_key(lake_dir):
    lake = Lake(lake_dir)
    inner = Sampler()
    req = Request("a", [{"role": "user", "content": "x"}], None, 64, 0.8, n=3)
    first = CachedEngine(inner, lake, "m").generate([req])[0]
    again = CachedEngine(inner, lake, "m")
    hit = again.generate([req])[0]
    assert inner.calls == 1 and again.stats.hits == 1
    assert [s.text for s in hit.samples()] == [s.text for s in first.samples()] == ["s0", "s1", "s2"]
    assert [s.id for s in hit.samples()] == ["a", "a#1", "a#2"]
    single = Request("a", req.messages, None, 64, 0.8)  # the same prompt with one sample is another entry
    assert CachedEngine(inner, lake, "m").key(single) != again.key(req)
