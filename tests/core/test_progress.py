"""Stage progress in the terminal: counts, rate and time left; bars with the log above them
on a terminal, plain lines elsewhere, nothing when no command asked for it."""

import io
import re
import logging
import sys

from rich.console import Console

from synthq.tasks.core.progress import StageCounts, StageProgress, show_progress


def test_counts_rate_and_time_left():
    counts = StageCounts("documents", total=4)
    counts.started -= 10  # ten seconds ago
    counts.add(30, 10, skipped=False, failed=False)
    counts.add(50, 0, skipped=True, failed=False)  # finished by an earlier run: no work now
    assert (counts.done, counts.kept, counts.rejected, counts.records) == (2, 80, 10, 40)
    assert 3.9 < counts.rate() < 4.1
    assert 9 < counts.eta() < 11  # two shards in ten seconds, two to go
    line = counts.line()
    assert line.startswith("documents: 2/4 shards, 4.0 records/s, about 0:1")
    assert line.endswith("kept 80, rejected 10")
    counts.add(0, 0, skipped=False, failed=True)
    assert counts.line().endswith("rejected 10, 1 shard(s) failed")


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with show_progress(Console(file=out, force_terminal=False, width=200)):
        stage = StageProgress("instructions", 2)
        stage.shard_done(5, 1)
        stage.shard_done(4, 0)
    lines = out.getvalue().splitlines()
    assert lines[0] == "instructions: 2 shards to run"
    assert lines[1].startswith("instructions: 1/2 shards") and lines[1].endswith("kept 5, rejected 1")
    assert lines[2].startswith("instructions: 2/2 shards") and "left" not in lines[2]
    assert lines[2].endswith("kept 9, rejected 1")


def test_bars_on_a_terminal_with_the_log_above_them():
    out = io.StringIO()
    log = logging.getLogger("synthq.test.progress")
    handler = logging.StreamHandler(sys.__stderr__)  # a handler writing to the terminal, as Prefect's does
    handler.setFormatter(logging.Formatter("LOG %(message)s"))
    log.addHandler(handler)
    try:
        with show_progress(Console(file=out, force_terminal=True, width=160)):
            stage = StageProgress("curated", 3)
            stage.shard_done(7, 2)
            log.warning("shard 00001 finished")
        assert not handler.filters  # the terminal handler writes on its own again
    finally:
        log.removeHandler(handler)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # without the terminal's control codes
    assert "LOG shard 00001 finished" in text  # printed through the bars' console
    assert re.search(r"curated .*1/3 shards .*rec/s .*kept 7 rejected 2", text)


def test_nothing_shows_unless_a_command_asks():
    stage = StageProgress("documents", 1)
    stage.shard_done(1, 0)  # no display: only counted
    assert stage.display is None and stage.counts.done == 1
