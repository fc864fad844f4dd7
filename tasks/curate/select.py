"""Selection over the whole scored set: minimum score, decontamination, semantic dedup, and
a target size by topic or by k-center greedy.

Queries are ranked: those already in an earlier release of the dataset first (a release
never loses a row to a newer near-twin), then by score. Dedup drops any query whose cosine
similarity to a better-ranked kept one reaches the threshold, so the kept member of a
duplicate group is the released or best-scored one; then any new query within the threshold
of a row of an earlier release (the release index, see core/release_index.py) is dropped. With a target size, either the kept queries are clustered into
that many topics (FAISS k-means, see target.py) and the best-scored query of each topic is kept, or k-center
greedy picks the most spread-out subset, starting from the best-scored query.

It runs in three steps, so no process holds the scored rows, only one vector per query:
- `screen`, per scored shard (Ray tasks): the checks of one row alone (score, moderation,
  benchmarks) and the survivors' query embeddings, kept in the lake (`indexes/curate`);
- `decide`, once (one Ray task): ranking, dedup and the target size over the survivors' ids,
  scores and vectors (float16: 0.75 KB per query, in a scratch file mapped from the node's
  cache folder, so they take its disk and page cache rather than the task's own memory;
  compared in float32 block by block; only k-center selection holds its candidates in
  float32); the verdicts are written per scored shard;
- the `curated` stage, per scored shard: its rows with their verdicts, kept or rejected.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthq.tasks.core.config import CurateConfig, FactoryConfig
from synthq.tasks.core.embeddings import embed
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.neardup import index_spec, scratch_array, within
from synthq.tasks.core.release_index import ReleaseIndex, release_index
from synthq.tasks.core.parallel import run_alone, run_each
from synthq.tasks.core.records import CURATED, REJECTED, rejection, table
from synthq.tasks.curate.decontaminate import Benchmarks, benchmark_fields
from synthq.tasks.curate.target import k_center, topics
from synthq.tasks.shards.context import StageContext
from synthq.tasks.shards.stage import ShardSpec, Stage

STAGE = "curate"
FOLDER = "indexes/curate"
SCREEN_COLUMNS = ["id", "query", "score_total", "moderation", "moderation_categories"]
# what `screen` depends on: a change of target size or dedup threshold reuses its embeddings
SCREEN_FIELDS = ("curate.min_score", "curate.benchmarks", "curate.benchmark_column", "curate.benchmark_fields",
                 "curate.contamination_ngram", "curate.contamination_similarity", "embedder")

Verdicts = dict[str, tuple[str, str]]  # query id -> (reason, detail) of a rejected query


@dataclass
class Screened:
    """One batch of scored queries after the checks of one row alone."""

    ids: np.ndarray  # survivors' ids (str)
    scores: np.ndarray  # their total scores
    vectors: np.ndarray  # their query embeddings, unit length, float16
    verdicts: Verdicts = field(default_factory=dict)  # the rows rejected here
    hits: Counter = field(default_factory=Counter)  # benchmark -> contaminated queries
    unusable: dict = field(default_factory=dict)  # benchmark -> rows that mapped to no prompt
    load: Callable[[], np.ndarray] | None = None  # reads `vectors` when they are wanted (see `read`)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        rejected = list(self.verdicts.items())
        np.savez(buf, ids=self.ids, scores=self.scores, vectors=self.vectors,
                 rejected=np.array([[i, r, d] for i, (r, d) in rejected], dtype=str).reshape(-1, 3),
                 meta=np.array(json.dumps({"hits": self.hits, "unusable": self.unusable})))
        return buf.getvalue()

    @classmethod
    def read(cls, lake: Lake, path: str) -> "Screened":
        """A screened file's ids, scores and verdicts; its vectors are read again from the lake
        when `take_vectors` wants them, so the decision never holds them twice."""

        def load() -> np.ndarray:
            with lake.fs.open(path, "rb") as f:
                return np.load(f)["vectors"]

        with lake.fs.open(path, "rb") as f:
            z = np.load(f)
            meta = json.loads(str(z["meta"]))
            return cls(z["ids"], z["scores"], np.zeros((0, 0), dtype=np.float16), {i: (r, d) for i, r, d in z["rejected"]},
                       Counter(meta["hits"]), meta["unusable"], load)

    def take_vectors(self) -> np.ndarray:
        """The vectors as float16 (an earlier version wrote float32), handed over: the part keeps none."""
        vecs = self.vectors if self.load is None else self.load()
        self.vectors, self.load = np.zeros((0, vecs.shape[1]), dtype=np.float16), None  # not vecs[:0]: a view keeps them
        return vecs.astype(np.float16, copy=False)


@lru_cache(maxsize=2)
def _benchmarks(paths: tuple[str, ...], stamps: tuple[str, ...], fields: str, n: int, embedder: str) -> Benchmarks:
    """Benchmarks loaded and embedded once per worker process (`stamps`: a changed file reloads)."""
    return Benchmarks.load(list(paths), json.loads(fields), n, embedder)


def _stamps(cfg: CurateConfig) -> tuple[str, ...]:
    return tuple(f"{b}:{os.path.getsize(b)}:{os.path.getmtime(b)}" for b in cfg.benchmarks if os.path.isfile(b))


def screen(scored: pa.Table, cfg: CurateConfig, embedder: str, device: str = "cpu") -> Screened:
    """Minimum score, moderation and decontamination, which judge each query alone, and the
    embeddings of the queries that pass them."""
    ids, queries, totals = (scored.column(c).to_pylist() for c in ("id", "query", "score_total"))
    verdicts: Verdicts = {}
    for qid, total, verdict, categories in zip(ids, totals, scored.column("moderation").to_pylist(),
                                               scored.column("moderation_categories").to_pylist()):
        if total < cfg.min_score:
            verdicts[qid] = ("low_score", f"score {total} < curate.min_score={cfg.min_score}")
        elif verdict == "unsafe":
            verdicts[qid] = ("unsafe", f"moderation: {', '.join(categories or []) or 'unsafe'}")
    keep = [i for i, qid in enumerate(ids) if qid not in verdicts]
    vecs = embed([queries[i] for i in keep], embedder, device=device)
    out = Screened(np.array([ids[i] for i in keep], dtype=str), np.array([totals[i] for i in keep], dtype=np.int16), vecs, verdicts)
    if cfg.benchmarks and keep:
        bench = _benchmarks(tuple(cfg.benchmarks), _stamps(cfg), json.dumps(benchmark_fields(cfg), sort_keys=True),
                            cfg.contamination_ngram, embedder)
        out.unusable = dict(bench.unusable)
        clean = []
        for pos, verdict in enumerate(bench.hits([queries[i] for i in keep], vecs, cfg.contamination_similarity)):
            if verdict:
                reason, name, detail = verdict
                out.hits[name] += 1
                out.verdicts[str(out.ids[pos])] = (reason, detail)
            else:
                clean.append(pos)
        out.ids, out.scores, out.vectors = out.ids[clean], out.scores[clean], out.vectors[clean]
    out.vectors = out.vectors.astype(np.float16)
    return out


REASONS = ("", "near_duplicate", "duplicate_of_release", "not_selected", "topic_not_best")  # by code; 0: kept


@dataclass
class Decision:
    """The decision on every survivor of `screen`, by rank position: a few bytes per query (codes
    and positions), the verdicts' texts made only for the rows asked for (`for_rows`)."""

    ids: np.ndarray  # survivors' ids in rank order (str)
    rank: np.ndarray  # rank position of each survivor, in the order of the parts given to `decide`
    reason: np.ndarray  # index in REASONS per position (0: kept)
    other: np.ndarray  # the kept twin (near_duplicate) or the topic's best (topic_not_best); -1
    similarity: np.ndarray  # with that twin or release row
    topic: np.ndarray  # topic of each position when topics were drawn, else -1
    threshold: float
    stats: dict
    matches: dict = field(default_factory=dict)  # position -> ReleaseMatch of a duplicate_of_release
    release: str = ""  # the dataset whose release index was searched
    selected: str = ""  # the detail of not_selected

    def detail(self, pos: int) -> str:
        reason = REASONS[self.reason[pos]]
        if reason == "near_duplicate":
            return f"cosine {self.similarity[pos]:.3f} >= {self.threshold} with kept query {self.ids[self.other[pos]]}"
        if reason == "duplicate_of_release":
            m = self.matches[pos]
            return f"cosine {m.similarity:.3f} >= {self.threshold} with {self.release}/v{m.version} row {m.release_id}"
        if reason == "topic_not_best":
            return f"topic {self.topic[pos]}: {self.ids[self.other[pos]]} scored higher"
        return self.selected

    def for_rows(self, start: int, stop: int) -> tuple[Verdicts, dict[str, int]]:
        """Verdicts of the rejected and topics of the kept among survivors start..stop (in the
        order of the parts given to `decide`)."""
        verdicts, labels = {}, {}
        for pos in self.rank[start:stop].tolist():
            if self.reason[pos]:
                verdicts[str(self.ids[pos])] = (REASONS[self.reason[pos]], self.detail(pos))
            elif self.topic[pos] >= 0:
                labels[str(self.ids[pos])] = int(self.topic[pos])
        return verdicts, labels

    def everything(self) -> tuple[Verdicts, dict[str, int], dict]:
        verdicts, labels = self.for_rows(0, len(self.rank))
        return verdicts, labels, self.stats


def decide(parts: list[Screened], cfg: CurateConfig, seed: int, release: ReleaseIndex | None = None) -> Decision:
    """The decision on every survivor of `screen` (ranking, dedup, the target size) and the
    selection's counts. The parts' vectors are moved into the ranked matrix (a scratch file,
    see `scratch_array`), read one part at a time (the parts keep their ids and scores)."""
    ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, dtype=str)
    scores = np.concatenate([p.scores for p in parts]) if parts else np.zeros(0, dtype=np.int16)
    stats: dict = {}
    hits: Counter = Counter()
    for p in parts:
        hits.update(p.hits)
        if p.unusable:  # rows of a benchmark file that hold no prompt: counted, not silently skipped
            stats["benchmark_rows_unusable"] = p.unusable
    if cfg.benchmarks:
        stats["contamination_hits"] = dict(hits)
    n = len(ids)
    fresh = ~release.released(pa.array(ids, pa.string())) if release and n else np.ones(n, dtype=bool)
    order = np.lexsort((ids, -scores.astype(np.int32), fresh))  # released first, then best score, then id
    ids, fresh = ids[order], fresh[order]
    rank = np.empty(n, dtype=np.int32)
    rank[order] = np.arange(n, dtype=np.int32)
    del order, scores
    out = Decision(ids, rank, np.zeros(n, dtype=np.int8), np.full(n, -1, dtype=np.int32), np.zeros(n, dtype=np.float32),
                   np.full(n, -1, dtype=np.int32), cfg.dedup_threshold, stats)
    if not n:
        stats.update(near_duplicates=0, kept=0)
        return out
    vecs, offset = None, 0
    for p in parts:  # each part's vectors move into the ranked matrix: one copy of them is held, not two
        part = p.take_vectors()
        vecs = scratch_array((n, part.shape[1])) if vecs is None else vecs
        vecs[rank[offset : offset + len(p.ids)]] = part
        offset += len(p.ids)

    alive, dupes = within(vecs, cfg.dedup_threshold, index_spec(cfg), seed)
    for i, twin, sim in dupes:
        out.reason[i], out.other[i], out.similarity[i] = REASONS.index("near_duplicate"), twin, sim
    stats["near_duplicates"] = len(dupes)
    if release:
        new, out.release = alive[fresh[alive]], release.name
        for m in release.nearest(vecs, cfg.dedup_threshold, rows=new):
            i = int(new[m.position])
            out.reason[i], out.matches[i] = REASONS.index("duplicate_of_release"), m
        alive = alive[out.reason[alive] == 0]
        stats["duplicates_of_release"] = len(out.matches)
    if cfg.target_size and len(alive) > cfg.target_size:
        if cfg.selection == "k_center":
            keep = np.zeros(len(alive), dtype=bool)
            keep[k_center(vecs, cfg.target_size, alive)] = True
            out.selected = f"k-center selection kept {int(keep.sum())} of {len(alive)} (target_size={cfg.target_size})"
            out.reason[alive[~keep]] = REASONS.index("not_selected")
            alive = alive[keep]
        else:
            topic = topics(vecs, cfg.target_size, seed, alive)
            sizes = Counter(np.bincount(topic).tolist())  # topic size -> topics of that size: a row per size, not per topic
            stats["topic_size_histogram"] = {str(k): v for k, v in sorted(sizes.items()) if k}
            first = np.unique(topic, return_index=True)[1]  # alive is ranked: a topic's first row is its best
            best = np.full(int(topic.max()) + 1, -1, dtype=np.int64)
            best[topic[first]] = alive[first]
            out.topic[alive] = topic
            beaten = best[topic] != alive
            out.reason[alive[beaten]], out.other[alive[beaten]] = REASONS.index("topic_not_best"), best[topic[beaten]]
            alive = alive[~beaten]
    stats["kept"] = len(alive)
    return out


def apply(scored: pa.Table, verdicts: Verdicts, labels: dict[str, int]) -> StageResult:
    """A batch of scored rows split by their verdicts: the kept ones with their topic."""
    kept, rejected = [], []
    for row in scored.to_pylist():
        if row["id"] in verdicts:
            reason, detail = verdicts[row["id"]]
            rejected.append(rejection(STAGE, reason, detail, row["id"], row))
        else:
            kept.append({**row, "topic": labels.get(row["id"], row.get("topic", -1))})
    return StageResult(table(kept, CURATED), table(rejected, REJECTED), {"kept": len(kept)})


def select(scored: pa.Table, cfg: CurateConfig, embedder: str, seed: int, release: ReleaseIndex | None = None) -> StageResult:
    """The three steps on one table in memory: what the flow does shard by shard."""
    screened = screen(scored, cfg, embedder)
    verdicts, labels, stats = decide([screened], cfg, seed, release).everything()
    result = apply(scored, {**screened.verdicts, **verdicts}, labels)
    result.stats = stats
    return result


# --- shard by shard, in the lake -------------------------------------------------------------


def screened_path(lake: Lake, manifest: dict, cfg: FactoryConfig) -> str:
    key = hashlib.sha256(f"{manifest['checksum']}|{cfg.digest(*SCREEN_FIELDS)}|{_stamps(cfg.curate)}".encode()).hexdigest()[:16]
    return lake.path(FOLDER, "screened", f"{manifest['shard']}-{key}.npz")


def screen_shard(lake_url: str, manifest: dict, cfg: FactoryConfig, device: str = "cpu") -> str:
    lake = Lake(lake_url)
    path = screened_path(lake, manifest, cfg)
    rows = lake.read_shard("scored", manifest["shard"]).select(SCREEN_COLUMNS)
    lake.write_bytes(path, screen(rows, cfg.curate, cfg.embedder, device).to_bytes())
    return path


def fingerprint(lake: Lake, cfg: FactoryConfig) -> str:
    """Changes with any scored shard, the selection's config, a benchmark file or a newly
    indexed release."""
    parts = [m["checksum"] for m in lake.manifests("scored")] + list(_stamps(cfg.curate))
    release = release_index(lake, cfg)
    parts += [release.fingerprint()] if release else []
    parts.append(STAGE_SPEC.digest(cfg))
    return hashlib.sha256(",".join(parts).encode()).hexdigest()[:16]


def decide_shards(lake_url: str, cfg: FactoryConfig, manifests: list[dict], paths: list[str], fp: str) -> dict:
    """Every scored shard's verdicts (`indexes/curate/selection/<fp>/<shard>.parquet`: id, reason
    and detail of each rejected query, topic of each kept one that has a topic), then the pointer
    to them with the counts (`current.json`, last): a killed run leaves the old pointer."""
    lake = Lake(lake_url)
    parts = [Screened.read(lake, p) for p in paths]
    decision, offset = decide(parts, cfg.curate, cfg.seed, release_index(lake, cfg)), 0
    for m, part in zip(manifests, parts):
        verdicts, topic = decision.for_rows(offset, offset + len(part.ids))
        offset += len(part.ids)
        mine = {**part.verdicts, **verdicts}
        rows = {"id": list(mine) + list(topic), "reason": [v[0] for v in mine.values()] + [None] * len(topic),
                "detail": [v[1] for v in mine.values()] + [None] * len(topic), "topic": [-1] * len(mine) + list(topic.values())}
        schema = pa.schema([("id", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("topic", pa.int64())])
        lake.write_table(lake.path(FOLDER, "selection", fp, f"{m['shard']}.parquet"), pa.table(rows, schema=schema))
    lake.write_bytes(lake.path(FOLDER, "selection", "current.json"), json.dumps({"fingerprint": fp, "stats": decision.stats}).encode())
    return decision.stats


def run_selection(lake: Lake, cfg: FactoryConfig, remote: bool) -> tuple[str, dict]:
    """Screen the scored shards not screened yet, then decide, unless the verdicts for this
    input are there already; returns their fingerprint and the counts."""
    fp = fingerprint(lake, cfg)
    current = selection_info(lake)
    if current.get("fingerprint") == fp:
        return fp, current["stats"]
    manifests = lake.manifests("scored")
    paths = [screened_path(lake, m, cfg) for m in manifests]
    todo = [(lake.url, m, cfg) for m, p in zip(manifests, paths) if not lake.fs.exists(p)]
    run_each(screen_shard, todo, remote, gpu=True)
    stats = run_alone(decide_shards, (lake.url, cfg, manifests, paths, fp), remote)  # holds every survivor's vector
    lake.prune_folder(f"{FOLDER}/screened", {p.rsplit("/", 1)[-1] for p in paths})
    lake.prune_folder(f"{FOLDER}/selection", {fp, "current.json"})
    return fp, stats


@dataclass
class ScreenedVectors:
    """The surviving ids and query vectors of each screened file, read one file at a time,
    again at each pass over them; what publish indexes instead of embedding the queries again."""

    lake: Lake
    paths: list[str]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for path in self.paths:
            with self.lake.fs.open(path, "rb") as f:
                z = np.load(f)
                yield z["ids"], z["vectors"]


def screened_vectors(lake: Lake, cfg: FactoryConfig) -> ScreenedVectors:
    """The screened files of the current scored shards that are in the lake."""
    return ScreenedVectors(lake, [p for p in (screened_path(lake, m, cfg) for m in lake.manifests("scored")) if lake.fs.exists(p)])


def selection_info(lake: Lake) -> dict:
    """The current selection's fingerprint and counts (topics per size, contamination hits), or {}."""
    path = lake.path(FOLDER, "selection", "current.json")
    return json.loads(lake.fs.cat_file(path)) if lake.fs.exists(path) else {}


def selection_specs(lake: Lake, fp: str) -> list[ShardSpec]:
    """One curated shard per scored shard; its input is the scored shard and the selection."""
    return [ShardSpec(m["shard"], hashlib.sha256(f"{m['checksum']}|{fp}".encode()).hexdigest()[:16], upstream="scored")
            for m in lake.manifests("scored")]


def process(rows: pa.Table, ctx: StageContext) -> StageResult:
    """A scored shard's rows with the verdicts `decide` wrote for them."""
    lake = ctx.lake
    path = lake.path(FOLDER, "selection", selection_info(lake)["fingerprint"], f"{ctx.shard}.parquet")
    with lake.fs.open(path, "rb") as f:
        found = pq.read_table(f).to_pydict()
    verdicts = {i: (r, d) for i, r, d in zip(found["id"], found["reason"], found["detail"]) if r is not None}
    labels = {i: t for i, r, t in zip(found["id"], found["reason"], found["topic"]) if r is None}
    return apply(rows, verdicts, labels)


STAGE_SPEC = Stage("curated", ("curate", "embedder", "seed", "publish.name"), process)
