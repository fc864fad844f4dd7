"""Running steps in Ray tasks and workers of their own, on a local Ray."""

import os


def pid() -> int:
    return os.getpid()


def halves(n: int) -> tuple[int, int]:
    return divmod(n, 2)


def test_run_alone_runs_in_a_worker_that_exits_after_it(ray_local):
    from synthq.tasks.core.parallel import run_alone

    first, second = run_alone(pid, (), remote=True), run_alone(pid, (), remote=True)
    assert os.getpid() not in (first, second) and first != second  # a new worker each time: the last one exited
    assert run_alone(halves, (7,), remote=False) == (3, 1)


def test_run_each_keeps_the_order_of_the_calls(ray_local):
    from synthq.tasks.core.parallel import run_each

    assert run_each(halves, [(7,), (9,), (4,)], remote=True) == [(3, 1), (4, 1), (2, 0)]
