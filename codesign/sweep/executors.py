"""Where jobs run, behind one seam: :class:`concurrent.futures.Executor`.

* ``workers == 1``: :class:`SerialExecutor`, in this process, one job at a time (``submit``
  runs the job and returns a finished future), so tracebacks and profilers work as usual;
* ``workers > 1`` (the default on the CLI: every core): a local
  :class:`~concurrent.futures.ProcessPoolExecutor` with one torch thread per worker, started
  by a **fork server** where the platform has one (Linux, macOS), else by ``spawn``. The fork
  server is one process started once per driver process (the first pool, or
  :func:`prestart`), which imports :mod:`codesign.sweep.warm` (torch, the evaluation modules,
  the code version) and then forks each worker on request: a worker starts with all of that in
  memory instead of spending ~2 s of a core importing it, and later pools of the same driver
  (the benchmark's repeats, the distillation study's stages) reuse the server. Safe with
  torch: the server never runs a torch operation or starts a thread pool (forking a process
  that has, e.g. a driver after a serial sweep, can hang its OpenMP pool in the child; nothing
  is forked from the driver). ``CODESIGN_START_METHOD=spawn`` forces the old start;
* ``scheduler="tcp://HOST:PORT"`` or ``scheduler_file=F``: a Dask cluster (optional extra
  ``pip install codesign[dask]``), through ``distributed.Client(...).get_executor()``. Dask
  reruns the jobs of a worker that dies on another worker. An unreachable scheduler is a
  :class:`CodesignError` after ``connect_timeout_s`` seconds, never a hang.

:func:`open_executor` yields a :class:`Backend`: the executor, how many jobs can run at once
(``slots``) and whether it is a cluster (``remote``: the driver then submits every job at once and
lets the scheduler queue them; locally it keeps ``2 x slots`` in flight).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

from codesign.allocator import keep_freed_memory
from codesign.errors import CodesignError

DEFAULT_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Backend:
    """An open executor and what the driver needs to know about it."""

    executor: Executor
    slots: int
    """Jobs that can run at the same time."""
    description: str
    remote: bool = False


class SerialExecutor(Executor):
    """Runs each submitted call at once, in the calling process; returns a done future."""

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if self._shutdown:
            raise RuntimeError("SerialExecutor: submit after shutdown")
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


WARM_MODULE = "codesign.sweep.warm"
START_METHOD_ENV = "CODESIGN_START_METHOD"


def start_method() -> str:
    """``forkserver`` where available, else ``spawn``; ``$CODESIGN_START_METHOD`` (``spawn``
    or ``forkserver``) overrides. Never ``fork`` (see the module docstring)."""
    want = os.environ.get(START_METHOD_ENV, "").strip().lower()
    if want and want not in ("spawn", "forkserver"):
        raise CodesignError(f"${START_METHOD_ENV}={want!r}: expected spawn or forkserver")
    available = multiprocessing.get_all_start_methods()
    if want:
        if want not in available:
            raise CodesignError(f"${START_METHOD_ENV}={want}: not available on this platform")
        return want
    return "forkserver" if "forkserver" in available else "spawn"


def pool_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context of the local pool; for ``forkserver`` the server's preload is
    :data:`WARM_MODULE` (set before the server starts; a server already running keeps its
    own)."""
    method = start_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload([WARM_MODULE])
    return ctx


def prestart(workers: Optional[int] = None, *, scheduler: Optional[str] = None,
             scheduler_file: Optional[str] = None) -> None:
    """Start the fork server now (its imports then overlap the caller's own work, e.g. the
    CLI's checks of the model and spec) if :func:`open_executor` will open a local pool;
    otherwise do nothing. Never raises: a failure here shows up when the pool opens."""
    if scheduler is not None or scheduler_file is not None:
        return
    n = default_workers() if workers is None else workers
    if not isinstance(n, int) or n < 2:
        return
    try:
        if pool_context().get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()
    except Exception:  # noqa: BLE001 - best effort; open_executor reports real errors
        pass


def _worker_init() -> None:
    """Process-pool worker: one torch thread (the pool supplies the parallelism); freed
    tensor memory kept for reuse, as in the CLI's own process (:mod:`codesign.allocator`)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    keep_freed_memory()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def default_workers() -> int:
    """Every CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _dask_client(scheduler: Optional[str], scheduler_file: Optional[str], timeout_s: float):
    try:
        from distributed import Client
    except ImportError:
        raise CodesignError("--scheduler/--scheduler-file need Dask: pip install "
                            "'codesign[dask]' (dask[distributed])") from None
    if scheduler_file is not None:
        if not os.path.isfile(scheduler_file):
            raise CodesignError(f"--scheduler-file {scheduler_file}: file not found (start the "
                                "scheduler with `dask scheduler --scheduler-file FILE`)")
        target = f"--scheduler-file {scheduler_file}"
        kwargs: dict[str, Any] = {"scheduler_file": scheduler_file}
    else:
        assert scheduler is not None
        if "://" not in scheduler or not scheduler.split("://", 1)[1]:
            raise CodesignError(f"--scheduler {scheduler!r}: expected an address like "
                                "tcp://HOST:PORT")
        target = f"--scheduler {scheduler}"
        kwargs = {"address": scheduler}
    try:
        return Client(timeout=f"{timeout_s}s", set_as_default=False, **kwargs)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CodesignError(f"{target}: cannot reach the Dask scheduler within {timeout_s:g} s "
                            f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:120]})") \
            from None


@contextmanager
def open_executor(workers: Optional[int] = None, *, scheduler: Optional[str] = None,
                  scheduler_file: Optional[str] = None,
                  connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
                  ) -> Iterator[Backend]:
    """The :class:`Backend` chosen (see the module docstring); the executor (and the Dask
    client) is shut down on exit."""
    if scheduler is not None and scheduler_file is not None:
        raise CodesignError("give --scheduler or --scheduler-file, not both")
    remote = scheduler is not None or scheduler_file is not None
    if remote and workers is not None:
        raise CodesignError("--workers applies to the local process pool; with a Dask "
                            "scheduler the cluster's workers are used")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise CodesignError(f"--workers {workers!r}: expected a positive integer")
    if remote:
        client = _dask_client(scheduler, scheduler_file, connect_timeout_s)
        try:
            info = client.scheduler_info()
            slots = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
            ex = client.get_executor(pure=False)
            yield Backend(ex, max(1, slots),
                          f"Dask scheduler {client.scheduler.address} ({slots} threads)",
                          remote=True)
        finally:
            client.close(timeout=10)
        return
    n = default_workers() if workers is None else workers
    if n == 1:
        ex: Executor = SerialExecutor()
        try:
            yield Backend(ex, 1, "serial (1 worker)")
        finally:
            ex.shutdown()
        return
    ctx = pool_context()
    pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init)
    try:
        yield Backend(pool, n, f"local process pool ({n} workers, {ctx.get_start_method()})")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
