"""Running one shard of a stage: read its input, call the stage's `process`, write atomically.

A `ShardSpec` names a shard and where its input comes from: rows carried along (file paths,
seeds) or a shard of the upstream dataset. `run_shard` is plain Python, so the flow can run
it in a Ray task, a thread or a test alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.memory import measured
from synthq.tasks.core.prompts import load_prompt
from synthq.tasks.llm.cache import CachedEngine
from synthq.tasks.llm.engine import Engine


@dataclass
class ShardSpec:
    shard: str
    input_id: str
    rows: pa.Table | None = None  # input carried with the spec
    upstream: str | None = None  # or: read shards of the upstream dataset:
    parts: tuple[str, ...] = ()  # these (unset: the one of this shard's name), one after another
    # Identities of the other datasets the shard reads (see `dataset_identity`) whose change
    # reruns it only with `refresh`: e.g. synthesis keeps its instructions when new
    # demonstrations arrive, unless asked to redo them.
    reads: dict[str, str] = field(default_factory=dict)


@dataclass
class Stage:
    dataset: str  # the dataset this stage writes
    config_fields: tuple[str, ...]  # FactoryConfig fields whose change invalidates shards
    process: Callable[[pa.Table, StageContext], StageResult]
    prepare: Callable[[StageContext], None] | None = None  # fills ctx.extras once per shard
    uses_engine: bool = False
    cpus: float = 1.0
    prompts: tuple[Path, ...] = ()  # prompt files whose versions are part of every shard's key
    # What another stage lends this one, wired by the flow (a stage imports no other stage):
    # name -> a module-level function, put in ctx.extras before `prepare`.
    services: dict[str, Callable] = field(default_factory=dict)

    def digest(self, cfg: FactoryConfig) -> str:
        """The shard key's config part: the named config fields and the version of every prompt
        the stage renders, so an edited prompt reruns the stage."""
        versions = ",".join(load_prompt(p).version for p in self.prompts)
        return hashlib.sha256(f"{cfg.digest(*self.config_fields)}|{versions}".encode()).hexdigest()[:12]


def dataset_identity(lake: Lake, dataset: str) -> str:
    """A short hash of a dataset's finished shards and their checksums: it changes when any row does."""
    rows = sorted(f"{m['shard']}:{m['checksum']}" for m in lake.manifests(dataset))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def run_shard(stage: Stage, spec: ShardSpec, cfg: FactoryConfig, engine: Engine | None) -> dict:
    """Process one shard unless it is already finished; returns its manifest row."""
    lake = Lake(cfg.lake)
    digest = stage.digest(cfg)
    reads = spec.reads if cfg.refresh else None
    if lake.is_finished(stage.dataset, spec.shard, input_id=spec.input_id, config=digest, reads=reads):
        return {**lake.manifest(stage.dataset, spec.shard), "skipped": True}
    if engine is not None and cfg.llm_cache:
        engine = CachedEngine(engine, lake, cfg.engine.model, scope=f"{stage.dataset}-{spec.shard}")
    ctx = StageContext(cfg=cfg, lake=lake, engine=engine, shard=spec.shard)
    ctx.extras.update(stage.services)
    with measured() as memory:  # the shard's own peak, not the largest the worker ever was
        if stage.prepare:
            stage.prepare(ctx)
        if spec.rows is not None:
            rows = spec.rows
        else:
            rows = pa.concat_tables([lake.read_shard(spec.upstream, s) for s in spec.parts or (spec.shard,)], promote_options="default")
        result = stage.process(rows, ctx)
    if memory:
        result.stats["memory"] = memory
    if isinstance(engine, CachedEngine):
        result.stats["llm_cache"] = engine.report()
    faults = getattr(engine.inner if isinstance(engine, CachedEngine) else engine, "faults", None)
    if faults:
        result.stats["faults"] = dict(faults)
    if ctx.llm["calls"]:
        result.stats["llm"] = ctx.llm
    row = lake.write_shard(stage.dataset, spec.shard, result, input_id=spec.input_id, config=digest, reads=spec.reads)
    return {**row, "skipped": False}


def upstream_specs(lake: Lake, upstream: str) -> list[ShardSpec]:
    """One spec per finished upstream shard; its checksum is the input id."""
    return [ShardSpec(m["shard"], m["checksum"], upstream=upstream) for m in lake.manifests(upstream)]
