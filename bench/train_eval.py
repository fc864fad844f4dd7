"""Training and scoring a release through synthq vs the bare libraries, same data and settings.

- Training: synthq's (TRL's SFTTrainer inside Ray Train's TorchTrainer, as `synthq evaluate`
  runs it: the worker reads the release from the lake and writes the model back into it) vs a
  bare `SFTTrainer` in this process on the same rows, base model, settings and seed, saving the
  model too. Both report tokens trained on per second of the whole call (model load and save
  included, and for synthq the Ray Train workers' start); target >= 0.9.
- Scoring: synthq's (lm-evaluation-harness in a Ray worker of its own, as the evaluate flow
  runs it) vs a bare `lm_eval.simple_evaluate` in this process with lm-eval's own IFEval task
  pointed at the same packaged prompts, on the same saved model, greedy: wall time ratio
  (target >= 0.95) and the scores, which must be identical.

The training rows are the bundled sample's seed instructions, answered with sentences of the
sample pages: what is measured is the machinery, not what the model learns.

    .venv/bin/python bench/train_eval.py [--steps 40] [--limit 40] [--max-gen-toks 256]
"""

from __future__ import annotations

import argparse
import json
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


def bare_training(job, rows: pa.Table, out: str) -> dict:
    """SFTTrainer in this process with the settings synthq's worker uses."""
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
    trainer = SFTTrainer(model=model, args=SFTConfig(**trainer_args(job, out + "-checkpoints", training_length(job.settings))),
                         train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"seconds": time.perf_counter() - start, "tokens": tokens_seen(trainer), "steps": trainer.state.global_step}


def bare_scores(model_dir: str, limit: int, max_gen_toks: int, batch: int, work: Path) -> tuple[dict, float]:
    """lm-eval's own IFEval task (included as it ships) on the packaged prompts, in this process."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from synthq.tasks.core.packaged import benchmark_file
    from synthq.tasks.evaluate.benchmarks import nltk_data
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
    ap.add_argument("--steps", type=int, default=40, help="training steps (batch 4, 512 tokens)")
    ap.add_argument("--limit", type=int, default=40, help="IFEval prompts scored")
    ap.add_argument("--max-gen-toks", type=int, default=256)
    args = smoke.parse(ap, steps=2, limit=2, max_gen_toks=16)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import ray

    from synthq.tasks.core.lake import Lake
    from synthq.tasks.core.parallel import run_alone
    from synthq.tasks.evaluate import harness
    from synthq.tasks.evaluate.benchmarks import resolve
    from synthq.tasks.evaluate.data import training_rows
    from synthq.tasks.evaluate.train import TrainJob, train
    from synthq.tasks.llm.models import resolve_model

    ev = EvaluateConfig(train={"max_steps": args.steps, "batch_size": 4, "max_length": 512}, limit=args.limit,
                        max_gen_toks=args.max_gen_toks, eval_batch_size=4)
    ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = release(root)
        job = TrainJob(str(root), path, "sft", 1.0, resolve_model("bundled"), str(root / "models" / "synthq"), str(root / "scratch"),
                       ev.train.model_dump())
        start = time.perf_counter()
        mine = train(job, 1)
        mine_seconds = time.perf_counter() - start
        theirs = bare_training(job, training_rows(Lake(str(root)), path, "sft", 1.0, 0), str(root / "models" / "bare"))
        print(f"\ntraining, {mine['steps']} steps of 4 rows on {mine['rows']} rows:")
        print(f"  synthq (Ray Train + TRL, lake in and out) {mine_seconds:7.1f}s  {mine['tokens']:7d} tokens  {mine['tokens'] / mine_seconds:8.1f} tok/s "
              f"(inside the worker: {mine['seconds']:.1f}s)")
        print(f"  bare SFTTrainer                           {theirs['seconds']:7.1f}s  {theirs['tokens']:7d} tokens  {theirs['tokens'] / theirs['seconds']:8.1f} tok/s")
        print(f"ratio synthq / bare: training tokens/s {(mine['tokens'] / mine_seconds) / (theirs['tokens'] / theirs['seconds']):.3f}")

        settings = {"limit": ev.limit, "max_gen_toks": ev.max_gen_toks, "eval_batch_size": ev.eval_batch_size, "backend": "hf"}
        start = time.perf_counter()
        scored = run_alone(harness.score, (job.out, [resolve("ifeval")], settings, False), remote=True)
        mine_seconds = time.perf_counter() - start
        bare, bare_seconds = bare_scores(job.out, ev.limit, ev.max_gen_toks, ev.eval_batch_size, root)
        ours = {r["metric"]: r["value"] for r in scored["rows"]}
        print(f"\nscoring the trained model on {ev.limit} IFEval prompts, at most {ev.max_gen_toks} tokens each, greedy:")
        print(f"  synthq (lm-eval in a Ray worker of its own) {mine_seconds:7.1f}s  {ours}")
        print(f"  bare lm_eval.simple_evaluate                {bare_seconds:7.1f}s  {bare}")
        print(f"ratio synthq / bare: scoring speed {bare_seconds / mine_seconds:.3f}; identical scores: {ours == bare}")


if __name__ == "__main__":
    main()
