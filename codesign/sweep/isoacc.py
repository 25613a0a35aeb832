"""Iso-accuracy: the floating-point network against the cheapest quantized point near its accuracy.

MD-SNN states its case as "at iso-accuracy the quantized network has N x lower EDAP, M x higher
TOPS/W and K x higher TOPS/mm2 than the FP one". This module makes that comparison.

**The FP reference of a sweep** (:func:`reference_key`, :func:`evaluate_reference`): the sweep's
model itself with every quantizer removed (weights and batch-norm statistics copied; ``wbits``,
``ubits``, ``first_bits``, ``last_bits`` all ``None``), scored on the *same* test samples as the
points (same ``samples``, ``seed``, ``split_seed``; 95 % Wilson interval) and costed by
:func:`codesign.mapflow.map_model` on its own measured activity (``activity_samples``, ``seed``)
at the spec's ADC bits; a layer without a quantizer is mapped as FP (``precision.float_wbits``
fixed point sliced over the cells). Its key is the SHA-256 of the canonical JSON of the point
identity without the bit-widths plus ``{"reference": "fp"}``; it is stored as one record in
``reference/<key>.json`` of the sweep folder (its own computations log
``reference/computations.jsonl``), so the grid's ``points/`` and log are untouched and a rerun
of a finished sweep computes only the reference.

**Selection** (:func:`select_iso`): among the points whose accuracy *mean* is at least the FP
mean minus ``tolerance_pts`` percentage points (``acc_q >= acc_fp - tol / 100``, accuracies as
fractions, with :data:`SLACK` for rounding; default :data:`DEFAULT_TOLERANCE_PTS` = 1.0
point), the cheapest by EDAP; equal
EDAP is broken by lower energy, then lower area, then the label (alphabetical), so the choice
is unique and independent of row order. No qualifying point: ``None``, and no ratios.

**Ratios** (:func:`iso_ratios`): "FP / Q" for the costs (EDAP, energy, latency, area: > 1 means
the quantized network is cheaper) and "Q / FP" for the efficiencies (TOPS/W, TOPS/mm2: > 1
means the quantized network is more efficient).

The selection, ratios and files are pure pandas/numpy (no torch); only
:func:`evaluate_reference` loads torch (in the worker).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from codesign.errors import CodesignError
from codesign.io import atomic_write_text, atomic_write_via
from codesign.sweep.point import SweepPoint, sha256_key

DEFAULT_TOLERANCE_PTS = 1.0
"""Default ``--iso-tolerance`` in accuracy percentage points."""
SLACK = 1e-12
"""Slack on the accuracy bar (fraction): absorbs the float rounding of ``fp - tol / 100`` (a point
exactly on the bar, 0.97 against 0.98 - 1 point, qualifies); far below ``1 / N`` for any test
set."""
REFERENCE_DIR = "reference"
BIT_FIELDS = ("wbits", "ubits", "adc_bits", "first_bits", "last_bits")

METRICS: list[tuple[str, str, str, str]] = [
    # (column, label, unit, ratio sense: "fp/q" for costs, "q/fp" for efficiencies)
    ("edap_pj_ns_mm2", "EDAP", "pJ ns mm2", "fp/q"),
    ("energy_pj", "energy per inference", "pJ", "fp/q"),
    ("latency_ns", "latency per inference", "ns", "fp/q"),
    ("area_mm2", "area", "mm2", "fp/q"),
    ("tops_per_w", "TOPS/W", "TOPS/W", "q/fp"),
    ("tops_per_mm2", "TOPS/mm2", "TOPS/mm2", "q/fp"),
]
CSV_COLUMNS = ["metric", "label", "unit", "fp", "quantized", "ratio", "ratio_sense"]


# ----------------------------------------------------------------------------- the FP point


def reference_identity(point: SweepPoint) -> dict[str, Any]:
    """What defines the FP reference: the point identity without bit-widths, marked ``fp``;
    the retraining options do not change the FP network, so a ``--retrain`` sweep's reference
    is the same record as that of the same sweep without it."""
    from dataclasses import replace

    from codesign.sweep.point import RETRAIN_FIELDS

    d = replace(point, retrain=False,
                **{k: SweepPoint.__dataclass_fields__[k].default for k in RETRAIN_FIELDS}
                ).identity()
    for k in BIT_FIELDS:
        d.pop(k, None)
    d["reference"] = "fp"
    return d


def reference_key(point: SweepPoint) -> str:
    """SHA-256 (hex) of the canonical JSON of :func:`reference_identity`."""
    return sha256_key(reference_identity(point))


def evaluate_reference(point: SweepPoint) -> dict[str, Any]:
    """The FP reference's result (see the module docstring), as a dict of JSON values."""
    from codesign.sweep.evaluate import _check_files, single_threaded

    _check_files(point)
    return single_threaded(_evaluate_reference, point)


def _evaluate_reference(point: SweepPoint) -> dict[str, Any]:
    import torch

    from codesign.mapflow import map_model
    from codesign.sim.activity import measure_activity, select_samples
    from codesign.sweep.evaluate import point_data, wilson_interval
    from codesign.train.loop import predict_logits
    from codesign.train.recipe import prepare_model

    spec, data = point_data(point)
    q = dict(spec.get("quant") or {})
    if any(q.get(k) is not None for k in ("wbits", "ubits", "first_bits", "last_bits")):
        raise CodesignError(f"{point.model}: the FP reference needs a float checkpoint (its quant "
                            f"section is {q}); sweep the FP model to compare against FP")
    torch.manual_seed(point.seed)
    net = prepare_model(None, data, init=point.model).eval()
    idx = select_samples(len(data.y_test), point.samples, point.seed)
    x, y = data.x_test[idx], data.y_test[idx]
    logits = predict_logits(net, x, batch_size=250)
    correct = int((logits.mean(0).argmax(-1) == y).sum())
    n = int(len(y))
    lo, hi = wilson_interval(correct, n)
    activity = measure_activity(net, data.x_test, max_samples=point.activity_samples,
                                seed=point.seed)
    s = map_model(net, point.hw, activity=activity, mapping=point.mapping).summary
    return {"accuracy_kind": "float", "accuracy": correct / n, "accuracy_ci_lo": lo,
            "accuracy_ci_hi": hi, "accuracy_interval": "wilson95_over_test_samples",
            "accuracy_samples": n, "correct": correct,
            **{k: float(s[k]) for k in ("energy_pj", "latency_ns", "area_um2", "area_mm2",
                                        "edap_pj_ns_mm2", "tops_per_w", "tops_per_mm2")},
            "crossbars": int(s["crossbars"]), "spec_name": s.get("spec_name"),
            "activity_samples": int(activity.meta.get("samples", point.activity_samples)),
            "notes": list(s.get("notes", []))}


def _reference_job(point: SweepPoint) -> dict[str, Any]:
    return evaluate_reference(point)


def _reference_record(point: SweepPoint, value: dict[str, Any], seconds: float,
                      base: Optional[Union[str, Path]] = None) -> dict[str, Any]:
    d = point.to_dict() if base is None else point.to_record(base)
    ident = {k: v for k, v in d.items() if k not in BIT_FIELDS}
    return {"key": reference_key(point), "point": {**ident, "reference": "fp"}, "result": value,
            "run": {"seconds": round(seconds, 3)}}


def reference_group(point: SweepPoint, out: Union[str, Path]) -> Any:
    """The FP reference of the sweep ``point`` belongs to as a one-job
    :class:`codesign.sweep.runner.JobGroup` storing into ``out/reference/`` (its record's
    paths relative to ``out``)."""
    from codesign.sweep.runner import JobGroup, JobSpec
    from codesign.sweep.store import ResultStore

    store = ResultStore(out, subdir=REFERENCE_DIR)
    store.log_path = Path(out) / REFERENCE_DIR / "computations.jsonl"
    job = JobSpec(evaluate=_reference_job, key=reference_key,
                  record=lambda p, v, s: _reference_record(p, v, s, out),
                  describe=lambda p, rec: (f"FP reference: accuracy "
                                           f"{100 * rec['result']['accuracy']:.1f} %"))
    return JobGroup([point], job, store, label="fp-reference")


def read_reference(point: SweepPoint, out: Union[str, Path]) -> dict[str, Any]:
    """The stored FP reference record of the sweep ``point`` belongs to."""
    from codesign.sweep.store import ResultStore

    return ResultStore(out, subdir=REFERENCE_DIR).get(reference_key(point))


def run_reference(point: SweepPoint, out: Union[str, Path], backend: Any,
                  progress: bool = True) -> dict[str, Any]:
    """Evaluate (or read back) the FP reference of the sweep ``point`` belongs to, on
    ``backend``; returns its stored record. (:func:`codesign.sweep.sweep_bits` runs it in the
    same :func:`~codesign.sweep.runner.run_groups` call as the grid instead.)"""
    from codesign.sweep.runner import run_groups

    run_groups([reference_group(point, out)], backend, label="fp-reference", progress=progress)
    return read_reference(point, out)


# ----------------------------------------------------------------------------- selection


def select_iso(df: pd.DataFrame, fp_accuracy: float,
               tolerance_pts: float = DEFAULT_TOLERANCE_PTS) -> Optional[int]:
    """Index label of the cheapest row of ``df`` at iso-accuracy, or ``None``.

    A row qualifies when ``accuracy >= fp_accuracy - tolerance_pts / 100`` (fractions; a NaN
    accuracy never qualifies); the qualifying row with the lowest
    ``(edap_pj_ns_mm2, energy_pj, area_mm2, label)`` wins."""
    if not (isinstance(tolerance_pts, (int, float)) and math.isfinite(tolerance_pts)
            and tolerance_pts >= 0):
        raise CodesignError(f"--iso-tolerance {tolerance_pts!r}: expected a non-negative "
                            "number of accuracy points")
    if df.empty:
        return None
    acc = df["accuracy"].to_numpy(dtype=float)
    ok = np.zeros(len(df), dtype=bool)
    finite = np.isfinite(acc)
    ok[finite] = acc[finite] >= fp_accuracy - tolerance_pts / 100.0 - SLACK
    if not ok.any():
        return None
    cand = df[ok]
    order = cand.sort_values(["edap_pj_ns_mm2", "energy_pj", "area_mm2", "label"],
                             kind="stable")
    return order.index[0]


def iso_ratios(fp: dict[str, Any], q: dict[str, Any]) -> dict[str, float]:
    """``{column: ratio}`` for :data:`METRICS`: FP/Q for costs, Q/FP for efficiencies."""
    out = {}
    for col, _, _, sense in METRICS:
        a, b = float(fp[col]), float(q[col])
        out[col] = a / b if sense == "fp/q" else b / a
    return out


def headline(ratios: dict[str, float], iso: bool = True) -> str:
    """MD-SNN's sentence: ``N x lower EDAP, M x higher TOPS/W, K x higher TOPS/mm2``."""
    where = "at iso-accuracy" if iso else "(NOT at iso-accuracy)"
    return (f"{ratios['edap_pj_ns_mm2']:.2f} x lower EDAP, {ratios['tops_per_w']:.2f} x "
            f"higher TOPS/W, {ratios['tops_per_mm2']:.2f} x higher TOPS/mm2 {where}")


# ----------------------------------------------------------------------------- files


def iso_table(fp: dict[str, Any], q: Optional[dict[str, Any]]) -> pd.DataFrame:
    """The CSV table: one row per metric (accuracy in %, then :data:`METRICS`)."""
    rows = [{"metric": "accuracy", "label": "accuracy", "unit": "%",
             "fp": 100 * float(fp["accuracy"]),
             "quantized": 100 * float(q["accuracy"]) if q else float("nan"),
             "ratio": float("nan"), "ratio_sense": ""}]
    ratios = iso_ratios(fp, q) if q else {}
    for col, label, unit, sense in METRICS:
        rows.append({"metric": col, "label": label, "unit": unit, "fp": float(fp[col]),
                     "quantized": float(q[col]) if q else float("nan"),
                     "ratio": ratios.get(col, float("nan")), "ratio_sense": sense})
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def _pct(r: dict[str, Any]) -> str:
    return (f"{100 * r['accuracy']:.2f} % [{100 * r['accuracy_ci_lo']:.2f}, "
            f"{100 * r['accuracy_ci_hi']:.2f}]")


def write_iso(folder: Union[str, Path], fp: dict[str, Any], q: Optional[dict[str, Any]], *,
              tolerance_pts: float, q_label: str, fp_label: str = "FP", iso: bool = True,
              context: str = "") -> list[Path]:
    """Write ``iso_accuracy.md``, ``iso_accuracy.csv`` and (with a ``q``) ``iso_accuracy.png``.

    ``fp`` / ``q``: dicts with ``accuracy``, ``accuracy_ci_lo``/``hi`` (fractions) and the
    :data:`METRICS` columns; ``q`` ``None`` means no point qualified (the table says so)."""
    folder = Path(folder)
    table = iso_table(fp, q)
    files = [atomic_write_via(folder / "iso_accuracy.csv",
                              lambda tmp: table.to_csv(tmp, index=False, float_format="%.17g"))]
    lines = ["# Iso-accuracy: FP against quantized", ""]
    if context:
        lines += [context, ""]
    lines += [f"FP ({fp_label}): accuracy {_pct(fp)} (95 % interval).",
              f"Tolerance: a quantized network qualifies when its accuracy mean is at least the "
              f"FP mean minus {tolerance_pts:g} point(s); the cheapest by EDAP wins (ties: "
              f"energy, then area, then label).", ""]
    if q is None:
        lines += [f"**No point qualifies**: no quantized point reaches "
                  f"{100 * fp['accuracy'] - tolerance_pts:.2f} %; no ratios are given.", ""]
    else:
        r = iso_ratios(fp, q)
        lines += [f"Quantized ({q_label}): accuracy {_pct(q)}"
                  + ("" if iso else f", outside the {tolerance_pts:g}-point tolerance") + ".",
                  "", f"**{headline(r, iso)}.**", "",
                  "| metric | unit | FP | quantized | ratio |", "|---|---|---:|---:|---:|",
                  f"| accuracy | % | {100 * fp['accuracy']:.2f} | {100 * q['accuracy']:.2f} | |"]
        for col, label, unit, sense in METRICS:
            lines.append(f"| {label} | {unit} | {float(fp[col]):.4g} | {float(q[col]):.4g} | "
                         f"{r[col]:.3f} x ({'FP/Q' if sense == 'fp/q' else 'Q/FP'}) |")
        lines.append("")
        files.append(_figure(folder / "iso_accuracy.png", r, q_label, iso))
    files.insert(1, atomic_write_text(folder / "iso_accuracy.md", "\n".join(lines)))
    return files


def _figure(path: Path, ratios: dict[str, float], q_label: str, iso: bool) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{lab}\n({'FP/Q' if s == 'fp/q' else 'Q/FP'})" for _, lab, _, s in METRICS]
    vals = [ratios[c] for c, *_ in METRICS]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bars = ax.bar(names, vals, color=["tab:red" if v >= 1 else "tab:gray" for v in vals])
    ax.axhline(1.0, color="k", lw=0.8)
    for b, v in zip(bars, vals, strict=True):
        ax.annotate(f"{v:.2f} x", (b.get_x() + b.get_width() / 2, v), ha="center",
                    va="bottom", fontsize=8)
    if all(v > 0 for v in vals):
        ax.set_yscale("log")
    ax.set_ylabel("advantage of quantized (x)")
    ax.set_title(f"{q_label} vs FP {'at iso-accuracy' if iso else '(not iso-accuracy)'}",
                 fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_iso(folder: Union[str, Path], results: pd.DataFrame, reference: dict[str, Any], *,
              tolerance_pts: float, context: str = "", fp_label: str = "FP") -> list[Path]:
    """The iso-accuracy files of a sweep from its results table and FP reference record."""
    fp = reference["result"]
    idx = select_iso(results, float(fp["accuracy"]), tolerance_pts)
    q = None if idx is None else results.loc[idx].to_dict()
    return write_iso(folder, fp, q, tolerance_pts=tolerance_pts,
                     q_label=str(q["label"]) if q else "", fp_label=fp_label, context=context)
