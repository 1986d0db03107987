"""The experiments' runner: independent runs of a sweep, spread over the
host's cores, results in job order.

Every run is a function of its arguments (same image + flags + seed = same
run), so where it runs cannot change what it returns; only the wall time
changes. Today a process pool on one machine; the experiments issue moves
this onto joblib (one machine) and Dask (a cluster) behind the same call.

Layer: tools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def _call(job: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    fn, args = job
    return fn(*args)


def run_all(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]], workers: int = 0) -> list[T]:
    """Return [fn(*job) for job in jobs], run in parallel processes when
    `workers` != 1 (0: one per core). `fn` must be a module-level function
    (it is pickled to the workers)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) <= 1:
        return [fn(*j) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_call, [(fn, tuple(j)) for j in jobs]))
