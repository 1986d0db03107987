"""The experiments' runner: independent runs of a sweep, spread over the
host's cores by joblib (loky worker processes), or sent to a Dask
distributed scheduler (joblib's dask backend) when a sweep outgrows one
machine; results in job order either way.

Every run is a function of its arguments (same image + flags + seed = same
run), so where it runs cannot change what it returns; only the wall time
changes (tests/test_experiment_kmem.py compares one worker with two,
tests/test_runner_dask.py the host with a Dask cluster).

Where the runs go is a `Spread`: `workers` local processes, or the
scheduler at `cluster` (`emu experiment ... --cluster ADDRESS`). A command
that calls run_all more than once (reserve-search: one call per probe)
holds its Spread open (`with spread:`) so that it connects once. The
`distributed` package is imported only when a cluster is asked for: `emu`
starts without it.

Layer: tools.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from emu.core.units import ConfigError

T = TypeVar("T")

# loky replaces a worker that stopped on its own (its idle timeout, or its
# memory check: each run maps its guest's RAM) and warns on stderr; the
# queued jobs go on in the new worker (loky's process_executor), so the
# results are complete, and the line - printed at a moment that depends on
# the host - only made a sweep's output differ from run to run.
warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given",
                        category=UserWarning)

# How long a scheduler may take to answer, and a cluster to show its first
# worker, before the command gives up with one line (seconds).
CONNECT_TIMEOUT_S = 10.0


@dataclass
class Spread:
    """Where a sweep's runs go: `workers` loky processes on this host (0:
    one per core; 1: this process), or, when `cluster` is a scheduler's
    address ("tcp://HOST:8786"), that cluster's workers (which then set
    how many run at once; `workers` is not used). A context manager: while
    entered, a cluster's client stays connected; nesting is fine. Raises
    ConfigError for a negative `workers`."""

    workers: int = 0
    cluster: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S
    _client: Any = field(default=None, init=False, repr=False, compare=False)
    _depth: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError("--jobs must be 0 (one per core) or more")

    @classmethod
    def of(cls, where: int | Spread) -> Spread:
        """`where` itself if it is a Spread, else Spread(workers=where)."""
        return where if isinstance(where, Spread) else cls(where)

    @property
    def client(self) -> Any:
        """The connected distributed.Client while entered with a cluster,
        else None."""
        return self._client

    def __enter__(self) -> Spread:
        if self.cluster is not None and self._client is None:
            self._client = connect(self.cluster, self.connect_timeout)
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._client is not None:
            client, self._client = self._client, None
            client.close()


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A distributed.Client connected to the scheduler at `address`. Raises
    ConfigError, one line naming the address, when the address is
    malformed, refuses, is not a scheduler, or nothing answers within
    `timeout` seconds (never a hang). The scheduler is asked who it is
    before a Client is made: a Client that fails half-built hangs the
    interpreter's exit for seconds and prints a traceback."""
    import asyncio
    import socket

    try:
        import distributed
        from distributed.comm import parse_address
        from distributed.comm.addressing import parse_host_port
    except ImportError:
        raise ConfigError(f"--cluster {address}: the 'distributed' package is not installed "
                          "(pip install distributed)") from None
    where = f"--cluster {address}"
    try:
        scheme, loc = parse_address(address)
        if scheme == "tcp":         # refused or unknown host: say so now, not after `timeout`
            host, port = parse_host_port(loc)
            socket.create_connection((host, port), timeout=timeout).close()
        who = _identity(address, timeout)
    except ValueError as exc:
        raise ConfigError(f"{where}: not a scheduler address ({_first_line(exc)}; "
                          "expected tcp://HOST:PORT)") from None
    except socket.gaierror as exc:
        raise ConfigError(f"{where}: unknown host ({exc.strerror or exc})") from None
    except (TimeoutError, asyncio.TimeoutError):  # one class from Python 3.11 on
        raise ConfigError(f"{where}: no Dask scheduler answered within {timeout:g} s") from None
    except OSError as exc:
        raise ConfigError(f"{where}: no Dask scheduler there "
                          f"({_first_line(exc, exc.strerror).lower()})") from None
    except Exception as exc:  # noqa: BLE001 - whatever the comm layer met (TLS): one line
        raise ConfigError(f"{where}: cannot reach a scheduler there ({_first_line(exc)})"
                          ) from None
    if who.get("type") != "Scheduler":
        raise ConfigError(f"{where}: that is a Dask {who.get('type', 'server')}, "
                          "not the scheduler")
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - whatever the client met: one line
        raise ConfigError(f"{where}: the scheduler did not take a client ({_first_line(exc)})"
                          ) from None


def _identity(address: str, timeout: float) -> dict[str, Any]:
    """What the Dask server at `address` says it is ({"type": "Scheduler",
    ...}), asked with distributed's own comm and security settings. Raises
    TimeoutError after `timeout` seconds, or what the comm layer raises."""
    import asyncio

    from distributed.core import rpc
    from distributed.security import Security

    async def ask() -> dict[str, Any]:
        r = rpc(address, timeout=timeout,
                connection_args=Security().get_connection_args("client"))
        try:
            return await asyncio.wait_for(r.identity(), timeout)
        finally:
            await r.close_rpc()

    return asyncio.run(ask())


def _first_line(exc: BaseException, text: str | None = None) -> str:
    text = (text or str(exc)).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextmanager
def _results(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]],
             spread: Spread) -> Iterator[Any]:
    """The results of fn(*job), in job order, from wherever `spread` says."""
    if spread.cluster is not None:
        from joblib import Parallel, delayed, parallel_config
        with spread, parallel_config(backend="dask", client=spread.client,
                                     wait_for_workers_timeout=spread.connect_timeout):
            try:
                results = Parallel(n_jobs=-1, batch_size=1, return_as="generator")(
                    delayed(fn)(*j) for j in jobs)
            except TimeoutError:
                raise ConfigError(f"--cluster {spread.cluster}: the scheduler has no workers "
                                  f"(start some: dask worker {spread.cluster})") from None
            yield results
        return
    workers = spread.workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) <= 1:
        yield (fn(*j) for j in jobs)
    else:
        from joblib import Parallel, delayed
        yield Parallel(n_jobs=min(workers, len(jobs)), backend="loky",
                       return_as="generator")(delayed(fn)(*j) for j in jobs)


def run_all(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]],
            workers: int | Spread = 0, on_done: Callable[[T], object] | None = None,
            cluster: str | None = None) -> list[T]:
    """Return [fn(*job) for job in jobs]. Where they run: `workers` is a
    Spread, or a number of loky processes (0: one per core; 1, or a single
    job: this process) unless `cluster` names a Dask scheduler, which then
    runs every job on its workers (`cluster` goes with a number; a Spread
    says it itself). `on_done(result)` is called as each result arrives,
    in job order (a progress bar). `fn` must be a module-level function
    and `jobs` picklable: both go to the workers. Raises ConfigError (one
    line) for a cluster that cannot be reached or has no workers; an
    exception inside a run is raised here as it would be in this
    process."""
    spread = workers if isinstance(workers, Spread) else Spread(workers, cluster)
    out: list[T] = []
    with _results(fn, jobs, spread) as results:
        for r in results:
            out.append(r)
            if on_done is not None:
                on_done(r)
    return out
