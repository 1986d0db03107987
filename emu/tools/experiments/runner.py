"""The experiments' runner: independent runs of a sweep, spread over the
host's cores by joblib (loky worker processes), results in job order.

Every run is a function of its arguments (same image + flags + seed = same
run), so where it runs cannot change what it returns; only the wall time
changes (tests/test_experiment_kmem.py compares one worker with two).

Layer: tools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def run_all(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]], workers: int = 0,
            on_done: Callable[[T], object] | None = None) -> list[T]:
    """Return [fn(*job) for job in jobs]: in this process when `workers` is 1
    or there is one job, else in `workers` loky processes (0: one per
    core). `on_done(result)` is called as each result arrives, in job order
    (a progress bar). `fn` must be a module-level function (it is pickled
    to the workers)."""
    workers = workers or os.cpu_count() or 1
    out: list[T] = []
    if workers == 1 or len(jobs) <= 1:
        results: Any = (fn(*j) for j in jobs)
    else:
        from joblib import Parallel, delayed
        results = Parallel(n_jobs=min(workers, len(jobs)), backend="loky",
                           return_as="generator")(delayed(fn)(*j) for j in jobs)
    for r in results:
        out.append(r)
        if on_done is not None:
            on_done(r)
    return out
