"""Splitting one batch of requests across the replicas of an engine pool.

A batch is cut into contiguous parts of about equal size, one per replica, never inside a
group of requests that share a prompt prefix (`Request.group`): the group's prefix is then
prefilled once, on one replica. Results come back in request order whatever the split.
"""

from __future__ import annotations

from synthq.tasks.llm.engine import Request


def runs(requests: list[Request]) -> list[range]:
    """Index ranges of consecutive requests with the same group ('' is a group of one)."""
    out, start = [], 0
    for i in range(1, len(requests) + 1):
        if i == len(requests) or not requests[i].group or requests[i].group != requests[start].group:
            out.append(range(start, i))
            start = i
    return out


def split(requests: list[Request], parts: int) -> list[list[int]]:
    """Request indices for each of `parts` replicas (some may be empty on small batches).

    A run goes to the part its middle falls in when the batch is cut into equal parts, so the
    parts differ by at most about one group in size and stay in request order."""
    out: list[list[int]] = [[] for _ in range(max(1, parts))]
    total = len(requests)
    for run in runs(requests):
        middle = (run.start + run.stop) / 2
        out[min(len(out) - 1, int(middle * len(out) / total))].extend(run)
    return out


def gather(size: int, parts: list[list[int]], answers: list[list]) -> list:
    """Answers of every part put back at their requests' positions."""
    out: list = [None] * size
    for indices, part_answers in zip(parts, answers):
        for i, answer in zip(indices, part_answers):
            out[i] = answer
    return out
