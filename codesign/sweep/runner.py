"""The resumable job runner: skip what the store holds, run the rest on an executor, store each
result as it arrives.

Used by ``codesign sweep-bits`` (:mod:`codesign.sweep.driver`) and by the distillation study
(``reports/distillation/run_study.py``). A *job* is any picklable value; the caller supplies its
key, its record file name, the function that evaluates it (run on the executor: a module-level
function so that process pools and Dask can ship it) and the function that turns the returned
value into the stored record (run here, in the driver). Only the driver writes the store, so
workers need no shared file system.

Several kinds of jobs, each with its own spec and store (a sweep's grid and its FP reference),
share one executor through :func:`run_groups`: every job of every group is submitted through
the same window, in group order, so no worker idles while another computes a job that was left
for the end. :func:`run_jobs` is the one-group case.

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


def timed(fn: Callable[[Any], Any], job: Any) -> tuple[Any, float, float, int, float]:
    """``(fn(job), seconds, cpu_s, pid, started_s)``, run on the executor: the job's own wall
    time in seconds without queueing, the CPU seconds its process spent meanwhile
    (:func:`time.process_time`, every thread of the process), the worker's process id and the
    Unix time (s) the job started. ``cpu_s / seconds`` is the share of a core the job got:
    about 1 for a one-thread job that had its core, about 0.5 when it shared the core with one
    other busy process."""
    started = time.time()
    start, cpu = time.perf_counter(), time.process_time()
    value = fn(job)
    return value, time.perf_counter() - start, time.process_time() - cpu, os.getpid(), started


@dataclass
class JobGroup(Generic[J]):
    """Jobs of one kind for :func:`run_groups`: the jobs, how to run them, where to store them,
    and the label of their progress lines."""

    jobs: Sequence[J]
    spec: JobSpec[J]
    store: ResultStore
    label: str = "sweep"


def run_jobs(jobs: Sequence[J], spec: JobSpec[J], store: ResultStore, backend: Backend, *,
             label: str = "sweep", progress: bool = True, deadline_s: Optional[float] = None,
             stop_on_error: bool = True) -> RunReport:
    """Run every job of ``jobs`` that ``store`` lacks; see the module docstring."""
    (report,) = run_groups([JobGroup(jobs, spec, store, label)], backend, label=label,
                           progress=progress, deadline_s=deadline_s,
                           stop_on_error=stop_on_error)
    return report


def run_groups(groups: Sequence[JobGroup[Any]], backend: Backend, *, label: str = "sweep",
               progress: bool = True, deadline_s: Optional[float] = None,
               stop_on_error: bool = True) -> list[RunReport]:
    """:func:`run_jobs` for several groups on one executor (one report per group, in order);
    see the module docstring."""
    from codesign.train.progress import Reporter  # the house's stderr progress (imports torch)

    t0 = time.perf_counter()
    names = [g.spec.name or (lambda job: None) for g in groups]
    reports: list[RunReport] = []
    todo: list[tuple[int, Any]] = []
    for gi, g in enumerate(groups):
        left = [j for j in g.jobs if not g.store.has(g.spec.key(j), names[gi](j))]
        reports.append(RunReport(total=len(g.jobs), skipped=len(g.jobs) - len(left)))
        todo += [(gi, j) for j in left]
    n_jobs = sum(r.total for r in reports)
    n_skipped = sum(r.skipped for r in reports)
    # serial: one at a time (submit computes); pools: two per slot keep every worker fed
    window = len(todo) if backend.remote else (2 * backend.slots if backend.slots > 1 else 1)
    running: dict[Future, tuple[int, Any]] = {}
    first_error: Optional[BaseException] = None
    n_done = n_skipped
    with Reporter(f"{label} ({backend.description})", total=len(todo),
                  enabled=progress) as rep:
        for g, r in zip(groups, reports, strict=True):
            rep.log(f"{g.label}: {r.total} job(s), {r.skipped} already done, "
                    f"{r.total - r.skipped} to run on {backend.description}")
        while todo or running:
            stop = first_error is not None or (
                deadline_s is not None and time.perf_counter() - t0 > deadline_s)
            if stop and todo:
                why = "an earlier job failed" if first_error is not None else "deadline reached"
                rep.log(f"{label}: {why}: {len(todo)} job(s) not started")
                for gi, _ in todo:
                    reports[gi].not_started += 1
                todo = []
            for item in list(todo):
                if len(running) >= window:
                    break
                gi, job = item
                if groups[gi].spec.ready(job):
                    todo.remove(item)
                    running[backend.executor.submit(timed, groups[gi].spec.evaluate, job)] = item
            if not running:
                if todo:
                    rep.log(f"{label}: {len(todo)} job(s) wait on dependencies that did not "
                            "finish")
                    for gi, _ in todo:
                        reports[gi].not_started += 1
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                gi, job = running.pop(fut)
                g, report = groups[gi], reports[gi]
                key = g.spec.key(job)
                try:
                    value, seconds, cpu_s, pid, started = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported; a rerun retries the job
                    report.failed.append((key, f"{exc.__class__.__name__}: {exc}"))
                    rep.log(f"{g.label}: FAILED {key[:12]}: {exc.__class__.__name__}: {exc}")
                    if stop_on_error and first_error is None:
                        first_error = exc
                    rep.advance()
                    continue
                record = g.spec.record(job, value, seconds)
                if isinstance(record.get("run"), dict):  # timing: never in results tables
                    record["run"].update(cpu_s=round(cpu_s, 3), pid_worker=pid,
                                         started_unix_s=round(started, 3))
                g.store.put(key, record, names[gi](job))
                report.computed.append(key)
                rep.advance()
                n_done += 1
                rep.log(f"[{time.perf_counter() - t0:7.1f} s] {n_done}/{n_jobs} "
                        f"{g.spec.describe(job, record)}")
    seconds = time.perf_counter() - t0
    for report in reports:
        report.seconds = seconds
    if first_error is not None:
        raise first_error
    return reports
