"""``sweep_bits``: the bit-width sweep end to end (grid -> store -> executor -> results).

>>> run = sweep_bits("models/teacher_fp.pt", "hw_configs/rram_physical_32nm.yaml", "mnist5k",
...                  wbits=[2, 4, 8], ubits=[4, 8], adc_bits=[4], out="reports/s",
...                  samples=200, workers=2)                           # doctest: +SKIP
>>> run.results                       # the results.csv DataFrame     # doctest: +SKIP

The folder ``out`` holds the store (:mod:`codesign.sweep.store`), ``results.csv``
(:mod:`codesign.sweep.results`) and the three Pareto figures; calling again with the same
arguments computes only what is missing, and a folder holding another sweep is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd

from codesign.sweep.executors import open_executor, prestart
from codesign.sweep.isoacc import read_reference, reference_group, sweep_iso
from codesign.sweep.point import SweepPoint, explain_code_change, make_points, manifest_for
from codesign.sweep.results import pareto_figures, results_frame, write_results_csv
from codesign.sweep.runner import JobGroup, JobSpec, RunReport, run_groups
from codesign.sweep.store import ResultStore


@dataclass
class SweepRun:
    """A finished :func:`sweep_bits` call."""

    report: RunReport
    results: pd.DataFrame
    out: Path
    files: list[Path]
    backend: str


def evaluate_job(point: SweepPoint) -> dict[str, Any]:
    """The executor's job: :func:`codesign.sweep.evaluate.evaluate_point` (imported in the
    worker, so that the driver never loads torch)."""
    from codesign.sweep.evaluate import evaluate_point

    return evaluate_point(point)


def _record(point: SweepPoint, value: dict[str, Any], seconds: float,
            base: Union[str, os.PathLike]) -> dict[str, Any]:
    return {"key": point.key, "point": point.to_record(base), "result": value,
            "run": {"seconds": round(seconds, 3), "pid_driver": os.getpid()}}


def _describe(point: SweepPoint, rec: dict[str, Any]) -> str:
    r = rec["result"]
    return (f"{point.label}: accuracy {100 * r['accuracy']:.1f} % "
            f"[{100 * r['accuracy_ci_lo']:.1f}, {100 * r['accuracy_ci_hi']:.1f}], "
            f"EDAP {r['edap_pj_ns_mm2']:.4g} pJ ns mm2, {rec['run']['seconds']:.1f} s")


def point_job(out: Union[str, os.PathLike]) -> JobSpec[SweepPoint]:
    """The runner's spec of a grid point; its records hold paths relative to the sweep
    folder ``out`` (:meth:`SweepPoint.to_record`)."""
    return JobSpec(evaluate=evaluate_job, key=lambda p: p.key,
                   record=lambda p, v, s: _record(p, v, s, out), describe=_describe)


def collect(points: list[SweepPoint], store: ResultStore) -> pd.DataFrame:
    """The results table of the points of ``points`` that ``store`` holds."""
    return results_frame(store.get(p.key) for p in points if store.has(p.key))


def sweep_bits(model: Union[str, os.PathLike], hw: Union[str, os.PathLike], data: str, *,
               wbits: list[int], ubits: list[int], adc_bits: list[Optional[int]],
               out: Union[str, os.PathLike], samples: Optional[int] = None,
               activity_samples: int = 64, seed: int = 0, split_seed: int = 0,
               first_bits: Optional[int] = None, last_bits: Optional[int] = None,
               mapping: str = "im2col", chips: int = 1, nonideal: Optional[str] = None,
               workers: Optional[int] = None,
               scheduler: Optional[str] = None, scheduler_file: Optional[str] = None,
               progress: bool = True, figures: bool = True,
               iso_tolerance: Optional[float] = None, retrain: bool = False,
               teacher: Optional[Union[str, os.PathLike]] = None,
               retrain_tolerance: float = 1.0, retrain_budget_epochs: int = 2,
               retrain_methods: str = "logit,md",
               retrain_train_samples: Optional[int] = None,
               retrain_val_samples: Optional[int] = None,
               retrain_hardware: Optional[bool] = None,
               retrain_ir_refresh: int = 1) -> SweepRun:
    """Run (or resume) the sweep ``wbits x ubits x adc_bits`` of ``model`` on ``hw``.

    ``iso_tolerance`` (accuracy points): also evaluate the FP reference (stored under
    ``reference/``) and write ``iso_accuracy.{md,csv,png}`` (:mod:`codesign.sweep.isoacc`).

    ``nonideal`` (``all`` or names) scores accuracy on ``chips`` simulated chips instead of the
    ideal quantized network (see :mod:`codesign.sweep.evaluate`).

    ``retrain``: fine-tune every point through the closed loop (:func:`codesign.loop.close_loop`)
    with distillation from ``teacher`` (default: ``model`` itself, the network being quantized)
    before scoring and costing it; ``retrain_hardware`` (default: whether ``nonideal`` is given)
    trains through the simulated chips, with ``retrain_ir_refresh`` training chips per exact
    IR-drop transfer (``--ir-refresh``, :mod:`codesign.sim.wire_refresh`). The loops' files
    are kept in ``out/retrain/<key>/``, written by the worker that runs the point: with a Dask
    cluster, ``out`` must be on a file system the workers share (the plain sweep needs none:
    only the driver writes the store)."""
    out = Path(out)
    # a local pool's fork server imports the library and computes its code version now, about
    # when make_points computes the driver's (below): both see the same files
    prestart(workers, scheduler=scheduler, scheduler_file=scheduler_file)
    options: dict[str, Any] = {}
    if retrain:
        options = {"retrain": True, "teacher": str(teacher if teacher is not None else model),
                   "retrain_tolerance": float(retrain_tolerance),
                   "retrain_budget_epochs": retrain_budget_epochs,
                   "retrain_methods": retrain_methods,
                   "retrain_train_samples": retrain_train_samples,
                   "retrain_val_samples": retrain_val_samples,
                   "retrain_hardware": (nonideal is not None if retrain_hardware is None
                                        else bool(retrain_hardware)),
                   "retrain_ir_refresh": retrain_ir_refresh,
                   "workdir": str(out)}
    points = make_points(model, hw, data, wbits=wbits, ubits=ubits, adc_bits=adc_bits,
                         samples=samples, activity_samples=activity_samples, seed=seed,
                         split_seed=split_seed, first_bits=first_bits, last_bits=last_bits,
                         mapping=mapping, chips=chips, nonideal=nonideal, **options)
    store = ResultStore(out)
    manifest = manifest_for(points)
    # the FP reference first (the longest job: every layer at full precision), then the grid,
    # through one window: no worker idles at the end on a reference left for last
    groups = [JobGroup(points, point_job(out), store, "sweep-bits")]
    if iso_tolerance is not None:
        groups.insert(0, reference_group(points[0], out))
    with open_executor(workers, scheduler=scheduler, scheduler_file=scheduler_file) as backend:
        # after the executor opened: a bad scheduler leaves no folder
        store.bind(manifest, explain=explain_code_change)
        reports = run_groups(groups, backend, label="sweep-bits", progress=progress)
        description = backend.description
    report = reports[-1]
    reference = None if iso_tolerance is None else read_reference(points[0], out)
    df = collect(points, store)
    files = [write_results_csv(df, out / "results.csv")]
    if reference is not None:
        files += sweep_iso(out, df, reference, tolerance_pts=float(iso_tolerance),
                           context=f"`{Path(model).name}` on `{Path(hw).stem}`, {data}.",
                           fp_label=f"{Path(model).name}, float, mapped as FP")
    if figures and len(df):
        files += pareto_figures(df, out, title=f"{Path(model).name} on {Path(hw).stem}, "
                                               f"{data}")
    return SweepRun(report, df, out, files, description)
