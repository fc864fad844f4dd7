"""Evaluate flow: a release -> a model trained on it (and on nested shares of it), scored on
benchmarks beside the base model; every score goes into the ledger (the catalog's
`evaluations`) and onto the release's scaling plot.

Training runs on Ray Train (tasks/evaluate/train.py); scoring runs in a Ray worker of its own,
on a GPU when the cluster has one. A run already in the ledger is skipped; a model already
trained under the run's key is scored without training again.
"""

from __future__ import annotations

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from synthq.flows.publish import scaling_artifacts
from synthq.flows.runtime import cluster_gpus, ensure_ray
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.files import cache_dir
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.parallel import run_alone
from synthq.tasks.evaluate import harness, runs
from synthq.tasks.evaluate.benchmarks import resolve
from synthq.tasks.evaluate.data import fingerprint, subset_files
from synthq.tasks.evaluate.train import TrainJob, check_base_model, train, trained_summary
from synthq.tasks.llm.models import resolve_model
from synthq.tasks.publish import catalog


@task(cache_policy=NONE, task_run_name="train-{job.fraction}")
def train_task(job: TrainJob, workers: int) -> dict:
    return trained_summary(job.lake, job.out) or train(job, workers)


@task(cache_policy=NONE, task_run_name="score-{label}")
def score_task(label: str, lake_url: str | None, model: str, scratch: str, benchmarks: list, settings: dict, gpu: bool) -> dict:
    """Scores in a Ray worker of its own (on a GPU when the cluster has one), which exits after it."""
    return run_alone(harness.score_stored, (lake_url, model, scratch, benchmarks, settings, gpu), remote=True, gpu=gpu)


@flow(name="evaluate")
def evaluate_flow(config: FactoryConfig = FactoryConfig(), release: str = "") -> dict:
    """Train on `release` ('<name>/v<N>', or '<name>' for its latest; default publish.name)
    and score; returns the ledger rows of every run."""
    ev, lake, logger = config.evaluate, Lake(config.lake), get_run_logger()
    with catalog.local_catalog(lake) as path:
        name, version = catalog.resolve_release(path, release or config.publish.name)
        entry = next(r for r in catalog.releases(path, name) if r["version"] == version)
    benchmarks = [resolve(b) for b in ev.benchmarks]
    base = resolve_model(ev.base_model)
    check_base_model(base)
    release_fp = fingerprint(lake, subset_files(lake, entry["path"], ev.subset))
    release_config = yaml.safe_load(lake.fs.cat_file(f"{entry['path']}/config.yaml"))
    ensure_ray(config)
    gpus = cluster_gpus()
    gpu = gpus >= 1
    workers = ev.train.workers or (int(gpus) if gpu else 1)  # data parallel over the cluster's GPUs
    settings = runs.scoring_settings(ev)
    rows, report = [], []
    for run in runs.plan(ev, name, release_fp, runs.base_model_id(base), benchmarks):
        label = "base model" if run.baseline else f"{name}/v{version} x {run.fraction:g}"
        with catalog.local_catalog(lake) as path:
            known = catalog.evaluations(path, run=run.key)
        if known:
            logger.info("%s: already in the ledger (run %s), nothing to do", label, run.key)
            rows += known
            continue
        scratch = str(cache_dir() / "scratch" / "evaluate" / run.key)
        if run.baseline:
            model, trained = base, {"steps": 0, "rows": 0, "tokens": 0, "seconds": 0.0, "history": []}
        else:
            model = lake.path("models", name, f"v{version}", run.key)
            job = TrainJob(lake.url, entry["path"], ev.subset, run.fraction, base, model, scratch, ev.train.model_dump(), ev.dpo, gpu)
            trained = train_task(job, workers)
            logger.info("%s: trained %d steps on %d rows (%d tokens) in %.0fs", label, trained["steps"], trained["rows"], trained["tokens"], trained["seconds"])
        scored = score_task(label, None if run.baseline else lake.url, model, scratch, benchmarks, settings, gpu)
        made = runs.ledger_rows(run, (name, version, release_fp), ev, trained, scored, benchmarks, release_config, model, "cuda" if gpu else "cpu")
        with catalog.local_catalog(lake, write=True) as path:
            catalog.record_evaluation(path, made)
        rows += made
        report.append((label, made, trained["history"]))
    unchecked = sorted({r["benchmark"] for r in rows if not r["decontaminated"]})
    if unchecked:
        logger.warning("%s/v%d was not decontaminated against %s: add them to curate.benchmarks, or these scores may "
                       "count prompts the model trained on", name, version, ", ".join(unchecked))
    create_markdown_artifact(key="evaluation", markdown=runs.report_markdown(f"{name}/v{version}", report, unchecked),
                             description="Models trained on the release, their loss curves and scores")
    scaling_artifacts(lake, name)
    return {"release": f"{name}/v{version}", "rows": rows, "not_decontaminated": unchecked}
