"""The dataset card: README.md with a Hugging Face YAML header (huggingface_hub's
DatasetCardData: subsets as `configs:`, features and byte sizes as `dataset_info:`), then
what a reader needs."""

from __future__ import annotations

import json

import pyarrow as pa
import yaml
from huggingface_hub import DatasetCard, DatasetCardData

from synthq.tasks.core.records import describe


def _feature(dtype: pa.DataType):
    if pa.types.is_struct(dtype):
        return {"struct": [{"name": f.name, **_feature(f.type)} for f in dtype]}
    if pa.types.is_list(dtype) and pa.types.is_struct(dtype.value_type):
        return {"list": [{"name": f.name, **_feature(f.type)} for f in dtype.value_type]}
    if pa.types.is_list(dtype):
        return {"sequence": _feature(dtype.value_type).get("dtype", "string")}
    name = {pa.string(): "string", pa.large_string(): "string"}.get(dtype, str(dtype))
    return {"dtype": name}


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


Shape = tuple[pa.Schema, int, int]  # schema, rows, bytes of one subset


def _config(name: str, folder: str, shape: Shape, default: bool = False) -> tuple[dict, dict]:
    """One subset's `configs:` entry and its `dataset_info:` entry."""
    schema, rows, num_bytes = shape
    config = {"config_name": name, **({"default": True} if default else {}),
              "data_files": [{"split": "train", "path": f"{folder}/*.parquet"}]}
    info = {"config_name": name, "features": [{"name": f.name, **_feature(f.type)} for f in schema],
            "splits": [{"name": "train", "num_examples": rows, "num_bytes": num_bytes}]}
    return config, info


def header(schema: pa.Schema, rows: int, num_bytes: int, pretty_name: str, subsets: dict[str, Shape] | None = None) -> dict:
    """The card's YAML: `queries` (data/, the default subset) and one config per training subset."""
    subsets = subsets or {}
    entries = [_config("queries", "data", (schema, rows, num_bytes), default=True)]
    entries += [_config(name, name, shape) for name, shape in subsets.items()]
    return {
        "pretty_name": pretty_name,
        "task_categories": ["text-generation"],
        "size_categories": [_size_category(max([rows, *(n for _, n, _ in subsets.values())]))],
        "tags": ["synthetic", "instruction-tuning", "synthq"],
        "configs": [c for c, _ in entries],
        "dataset_info": [i for _, i in entries],
    }


def _partial(stats: dict) -> str:
    missing = stats.get("missing_shards") or []
    if not missing:
        return ""
    lines = "\n".join(f"  - `{m['shard']}`: {m['error']}" for m in missing)
    return f"""
**Partial release**: {len(missing)} upstream shard(s) had failed when it was published
(publish.allow_partial), so their records are missing:
{lines}
"""


def _training(stats: dict) -> str:
    respond = stats.get("respond") or {}
    if not respond:
        return "This release holds queries only (the respond stage was off)."
    lines = ["| subset | rows | judge | pair rule | scores (rounded to halves) |", "|---|---|---|---|---|"]
    for name, info in respond.items():
        if name == "verifiable":
            scores = f"constraints by kind: {info['constraint_kinds']}"
        elif name.startswith("sft"):
            scores = f"best answer: {info['score_histogram']}"
        else:
            margin = f", mean margin {info['mean_margin']:.2f}" if info["mean_margin"] is not None else ""
            scores = f"chosen: {info['chosen_histogram']}; rejected: {info['rejected_histogram']}{margin}"
        rule = ", ".join(info.get("rules", [])) or "-"
        lines.append(f"| `{name}` | {stats['subsets'][name]} | {', '.join(info['judges']) or '-'} | {rule} | {scores} |")
    return f"""Load a subset by name: `datasets.load_dataset("<release folder>", "sft")`. `sft` has chat
`messages` (system: the expert identity when used, user: the query, assistant: the best-scored
answer), and the same split into `prompt` and `completion` messages (TRL's prompt-completion
format: SFTTrainer then trains on the answer only); `preferences` is TRL's conversational preference format (`prompt`, `chosen`,
`rejected`, `score_chosen`, `score_rejected`); `queries` holds the instructions alone.
`verifiable` (when the queries carry constraints) has each such query as a `prompt` and its
`constraints` (IFEval instruction ids, arguments as JSON), for reinforcement learning with
verifiable rewards: `from synthq.tasks.core.constraints import constraint_reward` is a reward
function in the shape TRL's `GRPOTrainer(reward_funcs=[constraint_reward])` calls, scoring the
share of a row's constraints a completion follows by IFEval's own checkers.

{chr(10).join(lines)}"""


def _lineage(stats: dict) -> str:
    if not stats.get("parent"):
        return "First release of this dataset"
    diff = stats["since_parent"]
    return f"Parent release: {stats['parent']} ({diff['added']} rows added, {diff['removed']} removed since it)"


def _sources(stats: dict) -> str:
    src = stats.get("sources") or {"sites": 0, "top": {}}
    rows = "\n".join(f"| {site} | {n} |" for site, n in src["top"].items()) or "| - | 0 |"
    shown = f" (the {len(src['top'])} largest below)" if src["sites"] > len(src["top"]) else ""
    return f"""Rows come from {stats['documents']} documents on {src['sites']} sites{shown}. Web text was
extracted from public pages; check each site's terms before redistributing excerpts.

| site | rows |
|---|---|
{rows}"""


def render_card(
    name: str, version: str, schema: pa.Schema, stats: dict, config: dict, samples: list[dict],
    subsets: dict[str, Shape] | None = None,
) -> str:
    data = DatasetCardData(**header(schema, stats["rows"], stats["bytes"], f"{name} {version}", subsets))
    columns = "\n".join(f"| `{k}` | {v} |" for k, v in describe(schema).items())
    stages = "\n".join(
        f"| {s} | {r['kept']} | {r['rejected']} | {', '.join(f'{k}: {v}' for k, v in r['reasons'].items()) or '-'} |"
        for s, r in stats["stages"].items()
    )
    example = json.dumps(samples[0], indent=2, ensure_ascii=False, default=str) if samples else "{}"
    body = f"""# {name} {version}

Instructions synthesized from web documents with **attributed grounding**: real seed
instructions were grounded in documents with a user, a scene and a motivation (the
demonstrations), and new scenes and self-contained queries were written for each document
from those demonstrations, then scored on seven criteria and deduplicated.

- Rows: {stats['rows']} from {stats['documents']} source documents{f", {stats['tokens']:,} query tokens" if stats.get('tokens') else ""}
- Model: {', '.join(stats['models'])}; prompt versions: {', '.join(stats['prompt_versions'])}
- Mean score: {stats['score_mean']:.2f} / 7; histogram: {stats['score_histogram']}
- {_lineage(stats)}
- Made by synthq {stats['code_version']}
{_partial(stats)}
## Training subsets

{_training(stats)}

## Sources

{_sources(stats)}

## Lineage

Every row names its document (`document_id`, `document_url`) and the demonstrations shown to
the model (`demonstration_ids`), with the model and prompt version that wrote it.

| dataset | kept | rejected | rejected by reason |
|---|---|---|---|
{stages}

## Columns

| column | description |
|---|---|
{columns}

## Example

```json
{example}
```

## Configuration

```yaml
{yaml.safe_dump(config, sort_keys=False)}```
"""
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))
