"""The resumable job runner: skip what the store holds, run the rest on an executor, store each
result as it arrives.

Used by ``codesign sweep-bits`` (:mod:`codesign.sweep.driver`) and by the distillation study
(``reports/distillation/run_study.py``). A *job* is any picklable value; the caller supplies its
key, its record file name, the function that evaluates it (run on the executor: a module-level
function so that process pools and Dask can ship it) and the function that turns the returned
value into the stored record (run here, in the driver). Only the driver writes the store, so
workers need no shared file system.

Order and dependencies: jobs are submitted in the given order as soon as ``ready(job)`` holds
(e.g. the study's teachers before their students) and a slot is free; ``deadline_s`` stops
*new* submissions after that many seconds (running jobs finish and are stored). A job that
raises is reported and left undone (a rerun retries it); with ``stop_on_error`` (the default)
nothing new is submitted after the first failure and the exception is re-raised once the
running jobs are stored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Generic, Optional, TypeVar

from codesign.sweep.executors import Backend
from codesign.sweep.store import ResultStore

J = TypeVar("J")


@dataclass
class RunReport:
    """What one call of :func:`run_jobs` did."""

    total: int
    skipped: int
    """Jobs already in the store (finished by an earlier run)."""
    computed: list[str] = field(default_factory=list)
    """Keys computed and stored by this run."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(key, error)`` of jobs that raised."""
    not_started: int = 0
    """Jobs left because of the deadline, a failure or unmet dependencies."""
    seconds: float = 0.0


@dataclass
class JobSpec(Generic[J]):
    """How the runner treats one kind of job."""

    evaluate: Callable[[J], Any]
    key: Callable[[J], str]
    record: Callable[[J, Any, float], dict[str, Any]]
    """``(job, value, seconds)`` -> the JSON record to store."""
    name: Optional[Callable[[J], str]] = None
    """Record file name (default ``<key>.json``)."""
    describe: Callable[[J, dict[str, Any]], str] = lambda job, rec: ""
    """One progress line for a finished job."""
    ready: Callable[[J], bool] = lambda job: True


def timed(fn: Callable[[Any], Any], job: Any) -> tuple[Any, float, float, int]:
    """``(fn(job), seconds, cpu_s, pid)``, run on the executor: the job's own wall time in
    seconds without queueing, the CPU seconds its process spent meanwhile
    (:func:`time.process_time`, every thread of the process) and the worker's process id.
    ``cpu_s / seconds`` is the share of a core the job got: about 1 for a one-thread job that
    had its core, about 0.5 when it shared the core with one other busy process."""
    start, cpu = time.perf_counter(), time.process_time()
    value = fn(job)
    return value, time.perf_counter() - start, time.process_time() - cpu, os.getpid()


def run_jobs(jobs: Sequence[J], spec: JobSpec[J], store: ResultStore, backend: Backend, *,
             label: str = "sweep", progress: bool = True, deadline_s: Optional[float] = None,
             stop_on_error: bool = True) -> RunReport:
    """Run every job of ``jobs`` that ``store`` lacks; see the module docstring."""
    from codesign.train.progress import Reporter  # the house's stderr progress (imports torch)

    t0 = time.perf_counter()
    name = spec.name or (lambda job: None)  # type: ignore[assignment, return-value]
    todo = [j for j in jobs if not store.has(spec.key(j), name(j))]
    report = RunReport(total=len(jobs), skipped=len(jobs) - len(todo))
    # serial: one at a time (submit computes); pools: two per slot keep every worker fed
    window = len(todo) if backend.remote else (2 * backend.slots if backend.slots > 1 else 1)
    running: dict[Future, Any] = {}
    first_error: Optional[BaseException] = None
    with Reporter(f"{label} ({backend.description})", total=len(todo),
                  enabled=progress) as rep:
        rep.log(f"{label}: {len(jobs)} job(s), {report.skipped} already done, {len(todo)} to "
                f"run on {backend.description}")
        while todo or running:
            stop = first_error is not None or (
                deadline_s is not None and time.perf_counter() - t0 > deadline_s)
            if stop and todo:
                why = "an earlier job failed" if first_error is not None else "deadline reached"
                rep.log(f"{label}: {why}: {len(todo)} job(s) not started")
                report.not_started += len(todo)
                todo = []
            for job in list(todo):
                if len(running) >= window:
                    break
                if spec.ready(job):
                    todo.remove(job)
                    running[backend.executor.submit(timed, spec.evaluate, job)] = job
            if not running:
                if todo:
                    rep.log(f"{label}: {len(todo)} job(s) wait on dependencies that did not "
                            "finish")
                    report.not_started += len(todo)
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                key = spec.key(job)
                try:
                    value, seconds, cpu_s, pid = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported; a rerun retries the job
                    report.failed.append((key, f"{exc.__class__.__name__}: {exc}"))
                    rep.log(f"{label}: FAILED {key[:12]}: {exc.__class__.__name__}: {exc}")
                    if stop_on_error and first_error is None:
                        first_error = exc
                    rep.advance()
                    continue
                record = spec.record(job, value, seconds)
                if isinstance(record.get("run"), dict):  # timing: never in results tables
                    record["run"].update(cpu_s=round(cpu_s, 3), pid_worker=pid)
                store.put(key, record, name(job))
                report.computed.append(key)
                rep.advance()
                n = report.skipped + len(report.computed)
                rep.log(f"[{time.perf_counter() - t0:7.1f} s] {n}/{len(jobs)} "
                        f"{spec.describe(job, record)}")
    report.seconds = time.perf_counter() - t0
    if first_error is not None:
        raise first_error
    return report
