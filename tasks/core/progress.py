"""Progress in the terminal while a stage's shards run: one bar per stage, or plain lines.

Off unless a command turns it on (`show_progress`): the CLI does for its long runs, so a
Prefect worker, a deployment run or a test prints nothing more than its logs. On a terminal
each stage gets a rich bar (shards done of total, records per second, time left, kept and
rejected so far) and the terminal's log lines print above the bars; elsewhere (CI, a log
file) each finished shard is one plain line.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text


@dataclass
class StageCounts:
    """What one stage has done so far; the numbers every display shows."""

    dataset: str
    total: int
    done: int = 0
    kept: int = 0
    rejected: int = 0
    failed: int = 0  # shards whose run raised (a rerun retries them)
    records: int = 0  # records processed by this run (shards finished earlier not counted)
    started: float = field(default_factory=time.monotonic)

    def add(self, kept: int, rejected: int, skipped: bool, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        self.kept += kept
        self.rejected += rejected
        if not skipped:
            self.records += kept + rejected

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        return (time.monotonic() - self.started) / self.done * (self.total - self.done)

    def line(self) -> str:
        eta = self.eta()
        left = f", about {_duration(eta)} left" if eta is not None else ""
        return (f"{self.dataset}: {self.done}/{self.total} shards, {self.rate():.1f} records/s{left}, "
                f"kept {self.kept}, rejected {self.rejected}" + (f", {self.failed} shard(s) failed" if self.failed else ""))


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _ThroughConsole(logging.Filter):
    """Attached to a terminal log handler while the bars show: prints its line through the
    bars' console (above them) instead of letting the handler write under them."""

    def __init__(self, handler: logging.Handler, console: Console):
        super().__init__()
        self.handler, self.console = handler, console

    def filter(self, record: logging.LogRecord) -> bool:
        self.console.print(Text(self.handler.format(record)), soft_wrap=True)
        return False


def _terminal_handlers() -> list[logging.Handler]:
    """Log handlers (Prefect's console handlers among them) writing to this terminal."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    terminals = {sys.__stdout__, sys.__stderr__}
    found = {}
    for lg in loggers:
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) and h.stream in terminals:
                found[id(h)] = h
    return list(found.values())


class Bars:
    """The rich display: one bar per stage, kept on screen when the stage is done."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
            TextColumn("{task.fields[rate]:>8.1f} rec/s"), TimeRemainingColumn(),
            TextColumn("kept [green]{task.fields[kept]}[/] rejected [red]{task.fields[rejected]}[/]{task.fields[failed]}"),
            console=console, transient=False,
        )
        self.filters: list[tuple[logging.Handler, logging.Filter]] = []

    def start(self) -> None:
        self.progress.start()
        for h in _terminal_handlers():
            f = _ThroughConsole(h, self.progress.console)
            h.addFilter(f)
            self.filters.append((h, f))

    def stop(self) -> None:
        for h, f in self.filters:
            h.removeFilter(f)
        self.filters.clear()
        self.progress.stop()

    def open(self, counts: StageCounts) -> TaskID:
        return self.progress.add_task(counts.dataset, total=counts.total, rate=0.0, kept=0, rejected=0, failed="")

    def update(self, task: TaskID, counts: StageCounts) -> None:
        failed = f" [bold red]{counts.failed} shard(s) failed[/]" if counts.failed else ""
        self.progress.update(task, completed=counts.done, rate=counts.rate(), kept=counts.kept, rejected=counts.rejected, failed=failed)


class Lines:
    """The plain display: a line per finished shard."""

    def __init__(self, console: Console):
        self.console = console

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def open(self, counts: StageCounts) -> None:
        self.console.print(f"{counts.dataset}: {counts.total} shards to run", highlight=False, soft_wrap=True)

    def update(self, task: None, counts: StageCounts) -> None:
        self.console.print(counts.line(), highlight=False, soft_wrap=True)


_display: Bars | Lines | None = None


@contextmanager
def show_progress(console: Console | None = None) -> Iterator[None]:
    """Show stage progress on `console` (bars on a terminal, lines otherwise) while inside."""
    global _display
    console = console or Console()
    _display = Bars(console) if console.is_terminal else Lines(console)
    _display.start()
    try:
        yield
    finally:
        _display.stop()
        _display = None


class StageProgress:
    """What a stage's runner reports to: a shard finished, with its counts."""

    def __init__(self, dataset: str, total: int):
        self.counts = StageCounts(dataset, total)
        self.display = _display
        self.task = self.display.open(self.counts) if self.display else None

    def shard_done(self, kept: int = 0, rejected: int = 0, skipped: bool = False, failed: bool = False) -> None:
        self.counts.add(kept, rejected, skipped, failed)
        if self.display:
            self.display.update(self.task, self.counts)
