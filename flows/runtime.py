"""What every flow shares: Ray, the engine, and running a stage's shards with progress.

Each shard is one Prefect task (visible, retried) whose work runs as a Ray task, so the same
flow spreads over a laptop's cores or a Ray cluster. The engine is a named Ray actor started
once and found again by every stage.
"""

from __future__ import annotations

import os
import time

import ray
from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE
from prefect.futures import as_completed

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.errors import SynthqError
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.parallel import releasing
from synthq.tasks.core.progress import StageProgress
from synthq.tasks.core.report import fault_totals, shard_memory
from synthq.tasks.shards.stage import ShardSpec, Stage, run_shard
from synthq.tasks.llm.cache import compact
from synthq.tasks.llm.engine import Engine


class StageFailed(SynthqError):
    """Every shard of a stage failed, or one did and the config says to stop."""


def ensure_ray(cfg: FactoryConfig) -> None:
    """Join the configured Ray cluster (ray_address, or RAY_ADDRESS in the environment, e.g.
    "auto" on a node that joined it), or start a local one; once per process."""
    if ray.is_initialized():
        return
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS")
    # "local" starts a fresh local Ray even when an earlier `ray start` left its address behind
    ray.init(
        address=address or "local",
        include_dashboard=False,
        log_to_driver=os.environ.get("SYNTHQ_RAY_LOGS", "0") == "1",
        configure_logging=False,
    )
    nodes = [n for n in ray.nodes() if n["Alive"]]
    res = ray.cluster_resources()
    where = f"joined the Ray cluster at {ray.get_runtime_context().gcs_address}" if address else "started a local Ray"
    _logger().info("%s: %d node(s), %g CPUs, %g GPUs", where, len(nodes), res.get("CPU", 0), res.get("GPU", 0))


def cluster_gpus() -> float:
    """GPUs of the Ray cluster joined (ensure_ray first)."""
    return ray.cluster_resources().get("GPU", 0)


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called outside a flow (tests, the CLI)
        return get_logger("synthq")


def engine_for(cfg: FactoryConfig) -> Engine:
    """The engine the config names; a vLLM engine starts loading now, in its actor."""
    if cfg.engine.kind == "openai":
        from synthq.tasks.llm.openai_engine import OpenAIEngine

        return OpenAIEngine(cfg.engine)
    from synthq.tasks.llm.ray_engine import engine_actor

    ensure_ray(cfg)
    return engine_actor(cfg.engine)


@task(cache_policy=NONE, retries=1, task_run_name="{stage.dataset}-{spec.shard}")
def shard_task(stage: Stage, spec: ShardSpec, cfg: FactoryConfig, engine: Engine | None) -> dict:
    start = time.perf_counter()
    get_run_logger().info("%s shard %s: started", stage.dataset, spec.shard)
    # releasing: the worker hands back the heap the shard freed, so later stages' shards do not start from its peak
    ref = ray.remote(releasing(run_shard)).options(num_cpus=stage.cpus).remote(stage, spec, cfg, engine)
    row = ray.get(ref)
    reasons = ", ".join(f"{k}: {v}" for k, v in row["reasons"].items())
    state = "already done" if row["skipped"] else f"{time.perf_counter() - start:.1f}s"
    get_run_logger().info(
        "%s shard %s: kept %d, rejected %d%s (%s)",
        stage.dataset, spec.shard, row["kept"], row["rejected"], f" [{reasons}]" if reasons else "", state,
    )
    return row


def run_stage(
    stage: Stage, specs: list[ShardSpec], cfg: FactoryConfig, extra_shards: tuple[str, ...] = (), report: bool = True
) -> dict | None:
    """Run every shard (skipping finished ones), drop stale shards, publish the counts."""
    ensure_ray(cfg)
    engine = engine_for(cfg) if stage.uses_engine else None
    lake = Lake(cfg.lake)
    compact_cache(lake, cfg, stage)  # what a killed run left pending becomes visible to every shard
    progress = create_progress_artifact(0.0, description=f"{stage.dataset}: shards finished")
    terminal = StageProgress(stage.dataset, len(specs))  # the CLI's bar; nothing elsewhere
    futures = [shard_task.submit(stage, spec, cfg, engine) for spec in specs]
    spec_of = {id(f): spec for f, spec in zip(futures, specs)}
    failed = []
    for done, future in enumerate(as_completed(futures), start=1):
        try:
            row = future.result()
            terminal.shard_done(row["kept"], row["rejected"], row["skipped"])
        except Exception as e:  # one bad shard does not stop the others; a rerun retries it
            cause = getattr(e, "cause", None) or e  # a Ray task's error: the exception raised in it
            failed.append(f"{type(cause).__name__}: {str(cause).splitlines()[0][:300] if str(cause) else ''}")
            lake.mark_failed(stage.dataset, spec_of[id(future)].shard, failed[-1])
            terminal.shard_done(failed=True)
        update_progress_artifact(progress, 100.0 * done / len(futures))
    compact_cache(lake, cfg, stage)
    lake.prune(stage.dataset, keep={s.shard for s in specs} | set(extra_shards))
    if failed:
        get_run_logger().error("%s: %d of %d shards failed (rerun to retry them): %s", stage.dataset, len(failed), len(specs), failed[0])
        if cfg.fail_on_shard_error or len(failed) == len(specs):
            raise StageFailed(f"{stage.dataset}: {len(failed)} of {len(specs)} shards failed; first error: {failed[0]}")
    return publish_report(lake, stage.dataset) if report else None


def compact_cache(lake: Lake, cfg: FactoryConfig, stage: Stage) -> None:
    """Move the LLM cache's pending chunks into its partitions (see synthq.tasks.llm.cache)."""
    if stage.uses_engine and cfg.llm_cache:
        done = compact(lake)
        if done["files_compacted"]:
            _logger().info("%s: LLM cache: %d answers from %d chunk files compacted (%d runs merged)",
                           stage.dataset, done["entries"], done["files_compacted"], done["runs_merged"])


# What a user looks at first in each dataset: shown as sample rows in the stage's artifact.
SAMPLE_COLUMNS = {
    "documents": ("title", "url", "n_words"),
    "demonstrations": ("seed_prompt", "scene"),
    "instructions": ("query", "scene"),
    "scored": ("query", "score_total"),
    "curated": ("query", "score_total", "topic"),
    "responses": ("query", "answer", "score"),
    "pairs": ("query", "score_chosen", "score_rejected"),
}


def _cell(value) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 160 else text[:157] + "..."


def sample_markdown(lake: Lake, dataset: str, n: int = 3, shards: list[str] | None = None) -> str:
    columns = SAMPLE_COLUMNS.get(dataset)
    shards = lake.shards(dataset) if shards is None else shards
    if not columns or not shards:
        return ""
    rows = lake.read_shard(dataset, shards[0]).select(list(columns)).slice(0, n).to_pylist()
    if not rows:
        return ""
    lines = [f"| {' | '.join(columns)} |", f"|{'---|' * len(columns)}"]
    lines += [f"| {' | '.join(_cell(r[c]) for c in columns)} |" for r in rows]
    return "\n\n### Sample rows\n\n" + "\n".join(lines) + "\n"


def publish_report(lake: Lake, dataset: str) -> dict:
    manifests = lake.manifests(dataset)
    report = lake.report(dataset, manifests)
    reasons = "\n".join(f"| {k} | {v} |" for k, v in sorted(report["reasons"].items())) or "| - | 0 |"
    llm = [m["stats"]["llm"] for m in manifests if "llm" in m.get("stats", {})]
    if llm:
        repaired, failed = sum(x["repaired"] for x in llm), sum(x["repair_failed"] for x in llm)
        reasons += f"\n\nLLM outputs: {sum(x['calls'] for x in llm)}, repaired on a second try: {repaired}, still invalid: {failed}"
        tokens = {k: sum(x.get(k, 0) for x in llm) for k in ("prompt_tokens", "cached_tokens", "output_tokens")}
        reasons += (f"\n\nTokens: prompt {tokens['prompt_tokens']:,} ({tokens['cached_tokens']:,} from the prefix cache), "
                    f"output {tokens['output_tokens']:,}")
    faults = fault_totals(manifests)
    if faults:
        reasons += "\n\nService faults met / retried / still failing, by kind: " + ", ".join(
            f"{kind} {n['met']}/{n['retried']}/{n['failed']}" for kind, n in sorted(faults.items()))
    memory = shard_memory(manifests)
    if memory:
        reasons += (f"\n\nMemory per shard ({memory['shards']} measured): the worker peaked at {memory['peak_mib_max']:,} MiB "
                    f"at most (median {memory['peak_mib_median']:,}); a shard added at most {memory['added_mib_max']:,} MiB "
                    "to the size its worker had when it began")
    failed = lake.failures(dataset)
    if failed:
        reasons += f"\n\n**{len(failed)} shard(s) failed** (rerun to retry them): " + "; ".join(f"{f['shard']}: {f['error'][:160]}" for f in failed[:3])
    create_markdown_artifact(
        key=f"{dataset}-report",
        markdown=f"## {dataset}\n\nshards: {report['shards']}, in: {report['kept'] + report['rejected']}, "
        f"kept: {report['kept']}, rejected: {report['rejected']}\n\n| rejected because | count |\n|---|---|\n{reasons}\n"
        + sample_markdown(lake, dataset, shards=[m["shard"] for m in manifests]),
        description=f"{dataset}: counts in, kept, rejected by reason, and sample rows",
    )
    get_run_logger().info("%s: kept %d, rejected %d %s", dataset, report["kept"], report["rejected"], report["reasons"] or "")
    return report
