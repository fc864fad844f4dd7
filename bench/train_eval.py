"""Training and scoring a release through synthq vs the bare libraries, same data and settings.

- Training: synthq's (TRL's SFTTrainer inside Ray Train's TorchTrainer, as `synthq evaluate`
  runs it: the worker reads the release from the lake and writes the model back into it) vs a
  bare `SFTTrainer` script on the same rows, base model, settings and seed, saving the model
  too. Both report tokens trained on per second of the whole call, model load and save
  included: for synthq from the call to its return (Ray Train's controller and worker start,
  the lake read and written), for the bare script from its process's start (its imports) to
  its end, as a user runs one; target >= 0.9. The trainer's own loop is compared as well.
- Scoring: synthq's (lm-evaluation-harness in a Ray worker of its own, as the evaluate flow
  runs it) vs a bare `lm_eval.simple_evaluate` script with lm-eval's own IFEval task pointed
  at the same packaged prompts, on the same saved model, greedy: wall time ratio (target >=
  0.95; both from process or call start, as for training) and the scores, which must be
  identical.

The training rows are the bundled sample's seed instructions, answered with sentences of the
sample pages: what is measured is the machinery, not what the model learns.

    .venv/bin/python bench/train_eval.py [--steps 40] [--batch 4] [--max-length 512] [--limit 40] [--max-gen-toks 256]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import smoke

from synthq.tasks.core.evaluate_config import EvaluateConfig
from synthq.tasks.sample import PAGES, SEEDS

METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def release(root: Path) -> str:
    """A release folder with an `sft` subset: seed instructions, answered with page sentences."""
    import trafilatura

    texts = [trafilatura.extract(p.read_text()) or "" for p in sorted(PAGES.glob("*.html"))]
    seeds = [json.loads(line)["prompt"] for line in SEEDS.read_text().splitlines() if line.strip()]
    rows = [{"prompt": [{"role": "user", "content": q}],
             "completion": [{"role": "assistant", "content": " ".join(texts[i % len(texts)].split()[:160])}]} for i, q in enumerate(seeds)]
    path = root / "releases" / "bench" / "v1"
    (path / "sft").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path / "sft" / "train-00000-of-00001.parquet")
    return str(path)


def in_fresh_process(fn, *args):
    """fn(*args) in a new Python process, as a user runs a bare script: (its result, seconds
    from the process's start, imports included, to its end)."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        out = pool.submit(fn, *args).result()
    return out, time.perf_counter() - start


def warm(model_dir: str) -> None:
    """Import what both sides import and read the model once."""
    import lm_eval  # noqa: F401
    import trl  # noqa: F401
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(model_dir)


def bare_training(job, rows: pa.Table, out: str) -> dict:
    """SFTTrainer with the settings synthq's worker uses (model load, training, save)."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from synthq.tasks.evaluate.train import trainer_args, training_length, tokens_seen, dtype_name

    start = time.perf_counter()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tokenizer = AutoTokenizer.from_pretrained(job.base_model)
    model = AutoModelForCausalLM.from_pretrained(job.base_model, dtype=getattr(torch, dtype_name(False)))
    data = datasets.Dataset.from_list(rows.select(["prompt", "completion"]).to_pylist())
    loop = time.perf_counter()
    trainer = SFTTrainer(model=model, args=SFTConfig(**trainer_args(job, out + "-checkpoints", training_length(job.settings))),
                         train_dataset=data, processing_class=tokenizer)
    trainer.train()
    loop = time.perf_counter() - loop
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"seconds": time.perf_counter() - start, "loop": loop, "tokens": tokens_seen(trainer), "steps": trainer.state.global_step}


def bare_scores(model_dir: str, limit: int, max_gen_toks: int, batch: int, work: Path) -> tuple[dict, float]:
    """lm-eval's own IFEval task (included as it ships) on the packaged prompts."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from synthq.tasks.core.packaged import benchmark_file
    from synthq.tasks.core.packaged import nltk_data
    from synthq.tasks.evaluate.train import dtype_name

    nltk_data()
    (work / "tasks").mkdir(exist_ok=True)
    included = Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml"
    (work / "tasks" / "ifeval_local.yaml").write_text(
        f"include: {included}\ntask: ifeval_local\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {benchmark_file('ifeval')}\n")
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype={dtype_name(False)}", tasks=["ifeval_local"],
                                  task_manager=TaskManager(include_path=str(work / "tasks")), limit=limit, apply_chat_template=True,
                                  gen_kwargs=f"max_gen_toks={max_gen_toks}", batch_size=batch, device="cpu")
    return {m: out["results"]["ifeval_local"][f"{m},none"] for m in METRICS}, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="training steps")
    ap.add_argument("--batch", type=int, default=4, help="rows per step")
    ap.add_argument("--max-length", type=int, default=512, help="tokens per row at most")
    ap.add_argument("--limit", type=int, default=40, help="IFEval prompts scored")
    ap.add_argument("--max-gen-toks", type=int, default=256)
    args = smoke.parse(ap, steps=2, batch=1, max_length=64, limit=2, max_gen_toks=16)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import ray

    from synthq.tasks.core.lake import Lake
    from synthq.tasks.core.parallel import run_alone
    from synthq.tasks.evaluate import harness
    from synthq.tasks.evaluate.benchmarks import resolve
    from synthq.tasks.evaluate.data import training_rows
    from synthq.tasks.evaluate.train import TrainJob, train
    from synthq.tasks.llm.models import resolve_model

    ev = EvaluateConfig(train={"max_steps": args.steps, "batch_size": args.batch, "max_length": args.max_length}, limit=args.limit,
                        max_gen_toks=args.max_gen_toks, eval_batch_size=4)
    ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = release(root)
        job = TrainJob(str(root), path, "sft", 1.0, resolve_model("bundled"), str(root / "models" / "synthq"), str(root / "scratch"),
                       ev.train.model_dump())
        rows = training_rows(Lake(str(root)), path, "sft", 1.0, 0)
        if not args.smoke:  # the first of the two does not pay for cold file caches
            in_fresh_process(warm, job.base_model)
        start = time.perf_counter()
        mine = train(job, 1)
        mine_seconds = time.perf_counter() - start
        theirs, theirs_seconds = in_fresh_process(bare_training, job, rows, str(root / "models" / "bare"))
        print(f"\ntraining, {mine['steps']} steps of {args.batch} rows (at most {args.max_length} tokens each) on {mine['rows']} rows:")
        print(f"  synthq (Ray Train + TRL, lake in and out) {mine_seconds:7.1f}s  {mine['tokens']:7d} tokens  {mine['tokens'] / mine_seconds:8.1f} tok/s "
              f"(the trainer's loop: {mine['seconds']:.1f}s)")
        print(f"  bare SFTTrainer script                    {theirs_seconds:7.1f}s  {theirs['tokens']:7d} tokens  {theirs['tokens'] / theirs_seconds:8.1f} tok/s "
              f"(the trainer's loop: {theirs['loop']:.1f}s)")
        print(f"ratio synthq / bare: training tokens/s {(mine['tokens'] / mine_seconds) / (theirs['tokens'] / theirs_seconds):.3f}; "
              f"the trainer's loop alone {theirs['loop'] / mine['seconds']:.3f}")

        settings = {"limit": ev.limit, "max_gen_toks": ev.max_gen_toks, "eval_batch_size": ev.eval_batch_size, "backend": "hf"}
        start = time.perf_counter()
        scored = run_alone(harness.score, (job.out, [resolve("ifeval")], settings, False), remote=True)
        mine_seconds = time.perf_counter() - start
        (bare, bare_inside), bare_seconds = in_fresh_process(bare_scores, job.out, ev.limit, ev.max_gen_toks, ev.eval_batch_size, root)
        ours = {r["metric"]: r["value"] for r in scored["rows"]}
        print(f"\nscoring the trained model on {ev.limit} IFEval prompts, at most {ev.max_gen_toks} tokens each, greedy:")
        print(f"  synthq (lm-eval in a Ray worker of its own) {mine_seconds:7.1f}s  (simple_evaluate: {scored['seconds']:.1f}s)  {ours}")
        print(f"  bare lm_eval.simple_evaluate script         {bare_seconds:7.1f}s  (simple_evaluate: {bare_inside:.1f}s)  {bare}")
        print(f"ratio synthq / bare: scoring speed {bare_seconds / mine_seconds:.3f}; identical scores: {ours == bare}")


if __name__ == "__main__":
    main()
