"""Exact and near-duplicate documents across the whole corpus (this run and earlier ingests),
found with Ray tasks, then moved to `rejected`.

Every document has an order key: its ingest batch's start time (manifest `stats["ingested_at"]`,
0 when missing), the shard name, its row. The earliest copy of a group is kept, so earlier
ingests win and re-ingesting the same pages adds nothing.

    map      per group of shards: read the ids and MinHash sidecars; emit (bucket key, doc)
             for the id (exact) and for every LSH band (near), split by key into partitions
    reduce   per partition: sort by bucket; documents sharing a bucket become candidate edges
    driver   fetch the signatures of the documents on candidate edges only, keep the edges
             whose estimated Jaccard reaches the threshold, join them into groups (connected
             components, i.e. union-find) and drop all but the earliest member of each group

Nothing holds the corpus in one process: a map task holds its shards, a reduce task its
partition, the driver the documents that have candidates (about the duplicates).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import ray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthq.tasks.core.config import DedupConfig
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import REJECTED, rejection, table
from synthq.tasks.ingest.minhash import SIDECAR, lsh_params, sidecar_fits, sidecar_signatures, signatures

DATASET = "documents"
STAGE = "ingest"
MAP_DOCS = (20_000, 200_000)  # documents per map task, at least and at most (see docs_per_map)
INLINE_BYTES = 100 * 1024  # Ray keeps task results smaller than this in the caller's own memory
ROW_BITS = 32  # doc key = shard rank << 32 | row: sorting doc keys sorts documents by age
ROW_MASK = (1 << ROW_BITS) - 1
_MIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


# -- order and keys --------------------------------------------------------------------
def ordered_shards(lake: Lake) -> list[dict]:
    """Manifests of the documents dataset, earliest ingest first (then by shard name)."""
    rows = lake.manifests(DATASET)
    return sorted(rows, key=lambda m: (float((m.get("stats") or {}).get("ingested_at") or 0), m["shard"]))


def docs_per_map(cfg: DedupConfig) -> int:
    """Documents per map task: enough that each partition of its output outgrows Ray's inline
    limit, so map outputs wait in the shared object store rather than in the driver."""
    per_doc = 16 * (1 + (lsh_params(cfg.threshold, cfg.num_perm)[0] if cfg.near else 0))
    return min(MAP_DOCS[1], max(MAP_DOCS[0], 2 * INLINE_BYTES * cfg.partitions // per_doc))


def map_groups(manifests: list[dict], target: int) -> list[list[tuple[int, dict]]]:
    """Consecutive shards, as (rank, manifest), grouped into map tasks of about `target` docs."""
    groups, size = [[]], 0
    for rank, m in enumerate(manifests):
        if size >= target:
            groups, size = groups + [[]], 0
        groups[-1].append((rank, m))
        size += m["kept"]
    return [g for g in groups if g]


def fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX[0]
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX[1]
    return h ^ (h >> np.uint64(33))


def id_keys(ids: list[str]) -> np.ndarray:
    """A 64-bit bucket key per document id: the exact-duplicate buckets."""
    digests = (hashlib.blake2b(i.encode(), digest_size=8).digest() for i in ids)
    return np.array([int.from_bytes(d, "little") for d in digests], dtype=np.uint64)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(N, bands) 64-bit bucket keys: band b of two signatures equal <=> same key (up to
    hash collisions, which the verification removes)."""
    keys = np.tile(fmix64(np.arange(1, bands + 1, dtype=np.uint64)), (len(sigs), 1))
    cells = sigs[:, : bands * rows].reshape(len(sigs), bands, rows)
    for j in range(rows):
        keys = fmix64(keys ^ cells[:, :, j].astype(np.uint64))
    return keys


# -- map -------------------------------------------------------------------------------
def shard_signatures(lake: Lake, manifest: dict, cfg: DedupConfig, with_sigs: bool) -> tuple[list[str], np.ndarray]:
    """Ids and signatures of a shard's documents, from its sidecar; recomputed from the text
    when the sidecar is missing or stale (an older ingest, another num_perm or shingle size)."""
    shard = manifest["shard"]
    if lake.exists(DATASET, f"_{SIDECAR}", f"part-{shard}.parquet"):
        side = lake.read_sidecar(DATASET, SIDECAR, shard)
        if side.num_rows == manifest["kept"] and sidecar_fits(side, cfg):
            return side.column("id").to_pylist(), sidecar_signatures(side)
    docs = lake.read_shard(DATASET, shard)
    texts = docs.column("text").to_pylist() if with_sigs else []
    return docs.column("id").to_pylist(), signatures(texts, cfg)


def split_by_partition(keys: np.ndarray, docs: np.ndarray, partitions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    part = keys % np.uint64(partitions)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    return [(keys[order[a:b]], docs[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def bucket_entries(lake_url: str, group: list[tuple[int, dict]], cfg: DedupConfig) -> list[tuple]:
    """Map task: per partition, (exact keys, docs, band keys, docs) of a group of shards."""
    lake = Lake(lake_url)
    exact, near = [], []
    for rank, manifest in group:
        ids, sigs = shard_signatures(lake, manifest, cfg, with_sigs=cfg.near)
        docs = (np.int64(rank) << ROW_BITS) | np.arange(len(ids), dtype=np.int64)
        exact.append((id_keys(ids), docs))
        if cfg.near and len(ids):
            keys = band_keys(sigs, *lsh_params(cfg.threshold, cfg.num_perm))
            near.append((keys.reshape(-1), np.repeat(docs, keys.shape[1])))
    parts = [split_by_partition(*_concat(pairs), cfg.partitions) for pairs in (exact, near)]
    out = [(*e, *n) for e, n in zip(*parts)]
    return out if cfg.partitions > 1 else out[0]


def _concat(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not pairs:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.concatenate([k for k, _ in pairs]), np.concatenate([d for _, d in pairs])


# -- reduce ----------------------------------------------------------------------------
def bucket_edges(keys: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """(M, 2) edges (earlier, later) between documents sharing a bucket: each member to the
    bucket's first and to its predecessor, so a bucket of n costs at most 2(n-1) edges."""
    if len(keys) < 2:
        return np.empty((0, 2), np.int64)
    order = np.lexsort((docs, keys))
    keys, docs = keys[order], docs[order]
    same = keys[1:] == keys[:-1]
    group = np.cumsum(np.r_[True, ~same]) - 1
    first = docs[np.flatnonzero(np.r_[True, ~same])][group]
    later = docs[1:][same]
    edges = np.concatenate([np.stack([docs[:-1][same], later], 1), np.stack([first[1:][same], later], 1)])
    return np.unique(edges, axis=0)


def candidate_edges(*parts: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Reduce task: the exact and the near candidate edges of one partition."""
    exact = bucket_edges(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    near = bucket_edges(np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))
    return exact, near


# -- driver ----------------------------------------------------------------------------
def gather_documents(lake_url: str, manifest: dict, rows: np.ndarray, cfg: DedupConfig) -> tuple:
    """Ids, URLs and signatures of some rows of a shard (the documents on candidate edges)."""
    lake = Lake(lake_url)
    _, sigs = shard_signatures(lake, manifest, cfg, with_sigs=cfg.near)
    docs = lake.read_shard(DATASET, manifest["shard"]).select(["id", "url"]).take(pa.array(rows))
    return docs.column("id").to_pylist(), docs.column("url").to_pylist(), sigs[rows] if cfg.near else sigs


_map_task = ray.remote(bucket_entries)
_reduce_task = ray.remote(candidate_edges)
_gather_task = ray.remote(gather_documents)


def find_candidates(lake: Lake, manifests: list[dict], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """Run the map and reduce tasks; return every exact and near candidate edge."""
    map_task = _map_task.options(num_returns=cfg.partitions)
    maps = [map_task.remote(lake.url, g, cfg) for g in map_groups(manifests, docs_per_map(cfg))]
    maps = [m if cfg.partitions > 1 else [m] for m in maps]
    reduces = [_reduce_task.remote(*[m[p] for m in maps]) for p in range(cfg.partitions)]
    del maps  # the reduce tasks hold the map outputs now: they are freed as they finish
    results = ray.get(reduces)
    # a pair sharing several bands meets in several partitions: one edge is enough
    return tuple(np.unique(np.concatenate([r[k] for r in results]).reshape(-1, 2), axis=0) for k in (0, 1))


def gather(lake: Lake, manifests: list[dict], nodes: np.ndarray, cfg: DedupConfig) -> tuple[list, list, np.ndarray]:
    """Ids, URLs and signatures of the documents `nodes` (sorted doc keys), in that order."""
    ranks = nodes >> ROW_BITS
    cuts = np.flatnonzero(np.r_[True, ranks[1:] != ranks[:-1], True])
    refs = [
        _gather_task.remote(lake.url, manifests[ranks[a]], nodes[a:b] & ROW_MASK, cfg)
        for a, b in zip(cuts[:-1], cuts[1:])
    ]
    parts = ray.get(refs)
    ids = [i for p in parts for i in p[0]]
    urls = [u for p in parts for u in p[1]]
    sigs = np.concatenate([p[2] for p in parts]) if cfg.near else np.empty((len(nodes), 0), np.uint32)
    return ids, urls, sigs


def estimates(sigs: np.ndarray, pairs: np.ndarray, step: int = 4096) -> np.ndarray:
    """Estimated Jaccard of each pair of rows: the share of equal signature values."""
    out = np.empty(len(pairs))
    for s in range(0, len(pairs), step):
        p = pairs[s : s + step]
        out[s : s + step] = (sigs[p[:, 0]] == sigs[p[:, 1]]).mean(axis=1)
    return out


def groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """Component label per node (union-find over the edges, as sparse connected components)."""
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def best_neighbours(pairs: np.ndarray, est: np.ndarray) -> dict[int, tuple[int, float]]:
    """Per node, its most similar verified neighbour, an earlier one when there is any."""
    both = np.concatenate([pairs, pairs[:, ::-1]])
    sims = np.concatenate([est, est])
    order = np.lexsort((both[:, 1], -sims, both[:, 1] > both[:, 0], both[:, 0]))
    both, sims = both[order], sims[order]
    firsts = np.flatnonzero(np.r_[True, both[1:, 0] != both[:-1, 0]]) if len(both) else []
    return {int(both[i, 0]): (int(both[i, 1]), float(sims[i])) for i in firsts}


def explain(x: int, twin: int, near: tuple[int, float] | None, keeper: int, ids: list, urls: list) -> tuple[str, str]:
    """(reason, detail) for dropping node x."""
    kept = f"; its group keeps {ids[keeper]} ({urls[keeper]})"
    if twin >= 0:
        same = f"same text as an earlier document ({ids[twin]}, {urls[twin]})"
        return "duplicate", same + (kept if twin != keeper else "")
    if near is None:
        return "near_duplicate", "in a group of near-duplicates" + kept
    nb, sim = near
    similar = f"estimated Jaccard {sim:.2f} with {'an earlier' if nb < x else 'a later'} document {ids[nb]} ({urls[nb]})"
    return "near_duplicate", similar + (kept if nb != keeper else "")


def drops_of(nodes: np.ndarray, manifests: list[dict], exact: np.ndarray, near: np.ndarray, sims: np.ndarray,
             ids: list, urls: list) -> dict[str, dict[int, tuple[str, str, str]]]:
    """Group the nodes over the exact and verified near edges (indices into `nodes`); every
    member but the earliest of a group is dropped, with its reason."""
    label = groups(len(nodes), np.concatenate([exact, near]))
    _, first = np.unique(label, return_index=True)  # nodes are sorted: first = earliest
    keeper = first[label]
    twin = np.full(len(nodes), len(nodes))  # the earliest document with the same id
    np.minimum.at(twin, exact[:, 1], exact[:, 0])
    best = best_neighbours(near, sims)
    drops: dict[str, dict[int, tuple[str, str, str]]] = {}
    for x in map(int, np.flatnonzero(keeper != np.arange(len(nodes)))):
        t = int(twin[x]) if twin[x] < len(nodes) else -1
        reason, detail = explain(x, t, best.get(x), int(keeper[x]), ids, urls)
        shard = manifests[int(nodes[x] >> ROW_BITS)]["shard"]
        drops.setdefault(shard, {})[int(nodes[x] & ROW_MASK)] = (reason, detail, ids[keeper[x]])
    return drops


def find_duplicates(lake: Lake, cfg: DedupConfig) -> dict[str, dict[int, tuple[str, str, str]]]:
    """shard -> {row: (reason, detail, kept id)} for every document to drop: the same id as
    an earlier document (`duplicate`), or, when `cfg.near`, an estimated Jaccard of at least
    `cfg.threshold` with a document of its group (`near_duplicate`). Ray must be initialised."""
    manifests = ordered_shards(lake)
    if not any(m["kept"] for m in manifests):
        return {}
    exact, near = find_candidates(lake, manifests, cfg)
    nodes = np.unique(np.concatenate([exact.reshape(-1), near.reshape(-1)]))
    if not len(nodes):
        return {}
    ids, urls, sigs = gather(lake, manifests, nodes, cfg)
    exact, near = np.searchsorted(nodes, exact), np.searchsorted(nodes, near)
    sims = estimates(sigs, near)
    verified = sims >= cfg.threshold - 1e-9
    return drops_of(nodes, manifests, exact, near[verified], sims[verified], ids, urls)


def apply_drops(lake: Lake, drops: dict[str, dict[int, tuple[str, str, str]]]) -> int:
    """Move the dropped rows of each shard to its `rejected` (stage ingest, with reason and
    detail), keeping the shard's input, config and stats; the sidecar loses the same rows.
    Returns how many documents moved."""
    manifests = {m["shard"]: m for m in lake.manifests(DATASET)}
    for shard, rows in drops.items():
        m = manifests[shard]
        kept = lake.read_shard(DATASET, shard)
        keep = np.ones(kept.num_rows, dtype=bool)
        keep[list(rows)] = False
        moved = [
            rejection(STAGE, rows[pos][0], rows[pos][1], rec["id"], rec)
            for pos, rec in zip(sorted(rows), kept.take(sorted(rows)).to_pylist())
        ]
        rejected = pa.concat_tables([lake.read_shard(DATASET, shard, rejected=True), table(moved, REJECTED)])
        result = StageResult(kept.filter(keep), rejected, m["stats"], sidecars=aligned_sidecar(lake, m, keep))
        lake.write_shard(DATASET, shard, result, input_id=m["input"], config=m["config"])
    return sum(map(len, drops.values()))


def aligned_sidecar(lake: Lake, manifest: dict, keep: np.ndarray) -> dict[str, pa.Table]:
    """The shard's signature sidecar without the dropped rows (none when it was missing or
    stale: the next dedup recomputes those signatures from the text)."""
    if not lake.exists(DATASET, f"_{SIDECAR}", f"part-{manifest['shard']}.parquet"):
        return {}
    side = lake.read_sidecar(DATASET, SIDECAR, manifest["shard"])
    return {SIDECAR: side.filter(keep)} if side.num_rows == len(keep) else {}
