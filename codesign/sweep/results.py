"""``results.csv`` and the Pareto figures of a bit-width sweep, assembled from its store.

One row per point, sorted by ``(wbits, ubits, adc_bits)``; ``accuracy`` is the kind named in
``accuracy_kind`` (``ideal_quantized`` or ``hardware`` on ``chips`` simulated chips with the
``nonideal`` set), ``accuracy_ideal`` the ideal quantized accuracy on the same samples. No
timing or host columns, so
that the same sweep gives the same file however it was run (serial, pool, Dask, resumed).
Pareto flags (:func:`codesign.pareto.pareto_mask`, ties and duplicates kept on the front):

* ``pareto_edap``: maximise accuracy, minimise EDAP (pJ x ns x mm2);
* ``pareto_energy``: maximise accuracy, minimise energy per inference (pJ);
* ``pareto_area``: maximise accuracy, minimise area (um2).

Figures ``pareto_edap.png``, ``pareto_energy.png``, ``pareto_area.png``: every point (log cost
axis, accuracy in %, its 95 % interval as an error bar), the front highlighted and joined, each
point labelled by its bit-widths (``W4U4A5``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from codesign.io import atomic_write_via
from codesign.pareto import pareto_mask

COLUMNS = [
    "label", "wbits", "ubits", "adc_bits", "first_bits", "last_bits", "accuracy_kind",
    "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "accuracy_ideal", "accuracy_samples",
    "chips", "nonideal", "energy_pj",
    "latency_ns", "area_um2", "area_mm2", "edap_pj_ns_mm2", "tops_per_w", "tops_per_mm2",
    "firing_rate", "pareto_edap", "pareto_energy", "pareto_area", "data", "samples",
    "activity_samples", "seed", "split_seed", "key",
]
RETRAIN_COLUMNS = [
    "retrained", "accuracy_before", "accuracy_ideal_before", "retrain_best_round",
    "retrain_rounds", "retrain_recovered", "retrain_heldout_before", "retrain_heldout_after",
    "retrain_regressed", "retrain_dir",
]
"""Added (before ``key``) when any point was retrained (``--retrain``): ``accuracy_before`` is
the point's accuracy (same kind, samples and chips as ``accuracy``) before the closed loop,
``retrain_heldout_*`` the loop's own held-out hardware accuracy of the original and the kept
network (fractions), ``retrain_dir`` the loop's folder relative to the sweep folder. A sweep
without ``--retrain`` keeps the columns above only, as before."""
SIM_COST_COLUMNS = ["cost_activity", "firing_rate_ideal", "energy_ideal_activity_pj"]
"""Added (before ``key``) when any point was costed from simulated chips' spikes
(``--nonideal``): ``energy_pj`` and ``firing_rate`` are then the chips', these the ideal
quantized network's on the same rows."""
FRONTS = {"edap": ("edap_pj_ns_mm2", "EDAP (pJ ns mm$^2$)"),
          "energy": ("energy_pj", "energy per inference (pJ)"),
          "area": ("area_um2", "area (um$^2$)")}


def results_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The results table of the given store records (see the module docstring)."""
    records = list(records)
    rows = []
    for rec in records:
        p, r = rec["point"], rec["result"]
        adc = p["adc_bits"] if p["adc_bits"] is not None else r.get("adc_bits_used")
        label = f"W{p['wbits']}U{p['ubits']}" + (f"A{adc}" if adc is not None else "")
        rows.append({**{k: r.get(k) for k in COLUMNS if k in r}, "label": label,
                     "wbits": p["wbits"], "ubits": p["ubits"], "adc_bits": adc,
                     "data": p["data"], "samples": p["samples"], "chips": p.get("chips", 1),
                     "nonideal": p.get("nonideal"),
                     "activity_samples": p["activity_samples"], "seed": p["seed"],
                     "split_seed": p["split_seed"], "key": rec["key"]})
    retrained = any(bool(rec["result"].get("retrained")) for rec in records)
    simcost = any(rec["result"].get("cost_activity") == "simulated" for rec in records)
    added = (RETRAIN_COLUMNS if retrained else []) + (SIM_COST_COLUMNS if simcost else [])
    columns = COLUMNS[:-1] + added + COLUMNS[-1:]
    for row, rec in zip(rows, records, strict=True):
        row.update({k: rec["result"].get(k) for k in added})
    df = pd.DataFrame(rows, columns=[c for c in columns if not c.startswith("pareto_")])
    if df.empty:
        for name in FRONTS:
            df[f"pareto_{name}"] = pd.Series(dtype=bool)
        return df[columns]
    df = df.sort_values(["wbits", "ubits", "adc_bits"], kind="stable").reset_index(drop=True)
    acc = df["accuracy"].to_numpy(dtype=float)
    for name, (col, _) in FRONTS.items():
        df[f"pareto_{name}"] = pareto_mask(
            np.column_stack([acc, df[col].to_numpy(dtype=float)]), ("max", "min"))
    return df[columns]


def write_results_csv(df: pd.DataFrame, path: Union[str, Path]) -> Path:
    """Write ``df`` atomically (temporary file + rename) with full float precision."""
    return atomic_write_via(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.17g"))


def pareto_figures(df: pd.DataFrame, folder: Union[str, Path], title: str = "") -> list[Path]:
    """Accuracy against EDAP, energy and area, front highlighted; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    out = []
    for name, (col, xlabel) in FRONTS.items():
        fig, ax = plt.subplots(figsize=(7, 4.6))
        x = df[col].to_numpy(dtype=float)
        y = 100 * df["accuracy"].to_numpy(dtype=float)
        lo = 100 * df["accuracy_ci_lo"].to_numpy(dtype=float)
        hi = 100 * df["accuracy_ci_hi"].to_numpy(dtype=float)
        front = df[f"pareto_{name}"].to_numpy(dtype=bool)
        ax.errorbar(x[~front], y[~front], yerr=[y[~front] - lo[~front], hi[~front] - y[~front]],
                    fmt="o", color="0.6", ms=4, lw=0.8, capsize=2, label="dominated")
        order = np.argsort(x[front])
        ax.errorbar(x[front][order], y[front][order],
                    yerr=[(y - lo)[front][order], (hi - y)[front][order]], fmt="o-",
                    color="tab:red", ms=6, lw=1.5, capsize=2, label="Pareto front")
        labels = df["label"].to_numpy()
        for xi, yi, lab in zip(x[~front], y[~front], labels[~front], strict=True):
            ax.annotate(lab, (xi, yi), textcoords="offset points", xytext=(3, 2),
                        fontsize=5.5, rotation=35, color="0.45")
        for i, j in enumerate(np.flatnonzero(front)[order]):  # front: staggered, left to right
            ax.annotate(labels[j], (x[j], y[j]), textcoords="offset points",
                        xytext=(6, 8 if i % 2 == 0 else -14), fontsize=8, color="tab:red",
                        fontweight="bold")
        if np.all(x > 0):
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        kind = str(df["accuracy_kind"].iloc[0]) if len(df) else ""
        ax.set_ylabel(f"accuracy (%, {kind.replace('_', ' ')}, 95 % CI)")
        ax.set_title(title or f"accuracy vs {name}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = folder / f"pareto_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out
