"""Selection over the whole scored set: minimum score, decontamination, semantic dedup, and
a target size by topic or by k-center greedy.

Queries are ranked: those already in an earlier release of the dataset first (a release
never loses a row to a newer near-twin), then by score. Dedup drops any query whose cosine
similarity to a better-ranked kept one reaches the threshold, so the kept member of a
duplicate group is the released or best-scored one; then any new query within the threshold
of a row of an earlier release (the release index, see dedup.py) is dropped. With a target size, either the kept queries are clustered into
that many topics (FAISS k-means, see target.py) and the best-scored query of each topic is kept, or k-center
greedy picks the most spread-out subset, starting from the best-scored query.

It runs in three steps, so no process holds the scored rows, only one vector per query:
- `screen`, per scored shard (Ray tasks): the checks of one row alone (score, moderation,
  benchmarks) and the survivors' query embeddings, kept in the lake (`indexes/curate`);
- `decide`, once (one Ray task): ranking, dedup and the target size over the survivors' ids,
  scores and vectors (float16: 0.75 KB per query; compared in float32 block by block; only
  k-center selection holds its candidates in float32); the verdicts are written per scored shard;
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
from synthq.tasks.core.neardup import ReleaseIndex, index_spec, release_index, within
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


def decide(parts: list[Screened], cfg: CurateConfig, seed: int, release: ReleaseIndex | None = None) -> tuple[Verdicts, dict[str, int], dict]:
    """Verdicts on every survivor of `screen` (a kept query has none), the topic of each kept
    query when topics were drawn, and the selection's counts. The parts' vectors are moved
    into the ranked matrix, read one part at a time (the parts keep their ids and scores)."""
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
    verdicts: Verdicts = {}
    if not len(ids):
        stats.update(near_duplicates=0, kept=0)
        return verdicts, {}, stats
    fresh = ~release.released(ids.tolist()) if release else np.ones(len(ids), dtype=bool)
    order = np.lexsort((ids, -scores.astype(np.int32), fresh))  # released first, then best score, then id
    ids, fresh, rank = ids[order].tolist(), fresh[order], np.argsort(order)
    vecs, offset = None, 0
    for p in parts:  # each part's vectors move into the ranked matrix: one copy of them is held, not two
        part = p.take_vectors()
        vecs = np.empty((len(ids), part.shape[1]), dtype=np.float16) if vecs is None else vecs
        vecs[rank[offset : offset + len(p.ids)]] = part
        offset += len(p.ids)

    alive, dupes = within(vecs, cfg.dedup_threshold, index_spec(cfg), seed)
    for i, twin, sim in dupes:
        verdicts[ids[i]] = ("near_duplicate", f"cosine {sim:.3f} >= {cfg.dedup_threshold} with kept query {ids[twin]}")
    stats["near_duplicates"] = len(dupes)
    if release:
        new, dropped = alive[fresh[alive]], set()
        for m in release.nearest(vecs, cfg.dedup_threshold, rows=new):
            i = int(new[m.position])
            dropped.add(i)
            verdicts[ids[i]] = ("duplicate_of_release", f"cosine {m.similarity:.3f} >= {cfg.dedup_threshold} with {release.name}/v{m.version} row {m.release_id}")
        alive = np.array([i for i in alive.tolist() if i not in dropped], dtype=np.int64)
        stats["duplicates_of_release"] = len(dropped)
    labels: dict[str, int] = {}
    if cfg.target_size and len(alive) > cfg.target_size:
        if cfg.selection == "k_center":
            keep = set(k_center(vecs, cfg.target_size, alive))
            detail = f"k-center selection kept {len(keep)} of {len(alive)} (target_size={cfg.target_size})"
            verdicts.update({ids[i]: ("not_selected", detail) for pos, i in enumerate(alive) if pos not in keep})
            alive = alive[sorted(keep)]
        else:
            topic = topics(vecs, cfg.target_size, seed, alive)
            sizes = Counter(np.bincount(topic).tolist())  # topic size -> topics of that size: a row per size, not per topic
            stats["topic_size_histogram"] = {str(k): v for k, v in sorted(sizes.items()) if k}
            best: dict[int, int] = {}
            for pos, label in enumerate(topic.tolist()):  # ranked: the first seen is the best
                best.setdefault(label, pos)
            for pos, label in enumerate(topic.tolist()):
                labels[ids[alive[pos]]] = label
                if best[label] != pos:
                    verdicts[ids[alive[pos]]] = ("topic_not_best", f"topic {label}: {ids[alive[best[label]]]} scored higher")
            alive = alive[sorted(best.values())]
    stats["kept"] = len(alive)
    return verdicts, {k: v for k, v in labels.items() if k not in verdicts}, stats


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
    verdicts, labels, stats = decide([screened], cfg, seed, release)
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
    verdicts, labels, stats = decide(parts, cfg.curate, cfg.seed, release_index(lake, cfg))
    for m, part in zip(manifests, parts):
        mine = {**part.verdicts, **{i: verdicts[i] for i in part.ids.tolist() if i in verdicts}}
        topic = {i: labels[i] for i in part.ids.tolist() if i in labels}
        rows = {"id": list(mine) + list(topic), "reason": [v[0] for v in mine.values()] + [None] * len(topic),
                "detail": [v[1] for v in mine.values()] + [None] * len(topic), "topic": [-1] * len(mine) + list(topic.values())}
        schema = pa.schema([("id", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("topic", pa.int64())])
        lake.write_table(lake.path(FOLDER, "selection", fp, f"{m['shard']}.parquet"), pa.table(rows, schema=schema))
    lake.write_bytes(lake.path(FOLDER, "selection", "current.json"), json.dumps({"fingerprint": fp, "stats": stats}).encode())
    return stats


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
