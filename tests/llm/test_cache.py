"""The LLM cache: hits and misses by content, resume after a kill, many writers at once."""

import json

import pytest

from synthq.tasks.core.lake import Lake
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


def test_a_torn_entry_is_generated_again(lake_dir):
    lake = Lake(lake_dir)
    cached = CachedEngine(Echo(), lake, "m")
    cached.generate([_req("a", "one")])
    path = cached._path(cached.key(_req("a", "one")))
    lake.fs.pipe(path, b'{"text": "trunc')
    again = CachedEngine(Echo(), lake, "m")
    assert again.generate([_req("a", "one")])[0].text == '{"q": "one"}' and again.stats.misses == 1


def test_many_ray_workers_write_the_same_keys_at_once(ray_local, lake_dir):
    import ray

    @ray.remote
    def worker(seed: int) -> list[str]:
        reqs = [_req(f"r{i}", f"shared prompt {i}") for i in range((seed * 5) % 40, 40)] + [_req(f"r{i}", f"shared prompt {i}") for i in range((seed * 5) % 40)]
        return [r.text for r in CachedEngine(Echo(), Lake(lake_dir), "m", chunk=7).generate(reqs)]

    outs = ray.get([worker.remote(s) for s in range(6)])  # each starts at another offset
    assert all(sorted(o) == sorted(outs[0]) for o in outs)
    lake = Lake(lake_dir)
    files = [p for p in lake.fs.find(lake.path("cache")) if p.endswith(".json")]
    assert len(files) == 40 and all(json.loads(lake.fs.cat_file(p))["text"] for p in files)
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
