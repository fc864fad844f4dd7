"""Calls to one engine that arrive while it is busy go in together, as one batch.

The engine actor serves every shard task of a run. Shard tasks send their batches at the same
time, and an engine that ran them one after the other would decode a few sequences per step
where it could decode all of them: on CPU, where a step costs about the reading of the
weights, a batch of 6 takes barely longer than a batch of 3 (the bundled model, AVX2: 62 and
59 ms a step). So a call that finds the engine busy waits; when the engine is free, the first
waiting call takes every waiting call's requests into one batch, runs it and hands each call
its own results, in its own order (prompt groups stay whole and consecutive).

A batch that fails as a whole (an engine error) is run again call by call, so that one call's
bad request fails only that call.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from synthq.tasks.llm.engine import Request, Result


class _Call:
    def __init__(self, requests: list[Request]):
        self.requests = requests
        self.results: list[Result] | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.results is not None or self.error is not None


class Coalescer:
    """Thread-safe `generate` over a single-threaded one; counts calls and engine batches."""

    def __init__(self, generate: Callable[[list[Request]], list[Result]]):
        self._generate = generate
        self._cv = threading.Condition()
        self._waiting: list[_Call] = []
        self._busy = False
        self.served = {"batches": 0, "requests": 0, "engine_batches": 0}

    def generate(self, requests: list[Request]) -> list[Result]:
        call = _Call(requests)
        with self._cv:
            self.served["batches"] += 1
            self.served["requests"] += len(requests)
            self._waiting.append(call)
            while self._busy and not call.done:
                self._cv.wait()
            if not call.done:  # the engine is free: this call leads every waiting call's batch
                self._busy = True
                batch, self._waiting = self._waiting, []
                self.served["engine_batches"] += 1
        if not call.done:
            try:
                self._run(batch)
            finally:
                with self._cv:
                    for c in batch:  # interrupted before it could answer them
                        if not c.done:
                            c.error = RuntimeError("the engine's batch was interrupted")
                    self._busy = False
                    self._cv.notify_all()
        if call.error is not None:
            raise call.error
        return call.results

    def _run(self, batch: list[_Call]) -> None:
        try:
            results = self._generate([r for c in batch for r in c.requests])
        except Exception as e:
            if len(batch) == 1:
                batch[0].error = e
                return
            for c in batch:  # one call's bad request must not fail the others
                try:
                    c.results = self._generate(c.requests)
                except Exception as own:
                    c.error = own
            return
        start = 0
        for c in batch:
            c.results = results[start : start + len(c.requests)]
            start += len(c.requests)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The engine to oneself, between batches (for work on the bare engine)."""
        with self._cv:
            while self._busy:
                self._cv.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._cv:
                self._busy = False
                self._cv.notify_all()
