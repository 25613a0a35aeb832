"""The report writer of ``codesign map``: ``layers.csv``, ``per_step.csv``, ``summary.json`` and
the energy / area figures of a :class:`~codesign.hw.network.MapResult`.

Sits above :mod:`codesign.hw` (it reads the cost model's tables, never computes costs).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any, Union

import numpy as np
import pandas as pd

from codesign.hw.cost import AREA_COMPONENTS, ENERGY_COMPONENTS
from codesign.hw.network import MapResult


def _atomic_write(path: str, write) -> None:
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _clean(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_clean(v) for v in o]
    return o


def _stacked_bar(df: pd.DataFrame, prefix: str, suffix: str, comps, ylabel: str, title: str,
                 path: str) -> None:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = [(k, f"{prefix}{k}{suffix}") for k in comps if df[f"{prefix}{k}{suffix}"].sum() > 0]
    fig = Figure(figsize=(max(6.0, 0.5 * len(df) + 3), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    x = np.arange(len(df))
    bottom = np.zeros(len(df))
    cmap = colormaps["tab20"]
    for i, (k, c) in enumerate(cols):
        v = df[c].to_numpy(dtype=float)
        ax.bar(x, v, bottom=bottom, label=k, color=cmap(i % 20))
        bottom += v
    ax.set_xticks(x)
    ax.set_xticklabels(df["layer"].astype(str), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    _atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))


def write_report(result: MapResult, out_dir: Union[str, os.PathLike]) -> dict[str, str]:
    """Write ``layers.csv``, ``per_step.csv``, ``summary.json``, ``energy_breakdown.png`` and
    ``area_breakdown.png`` into ``out_dir`` (each atomically: temporary file + ``os.replace``).
    Returns name -> path."""
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    paths = {k: os.path.join(out, k) for k in (
        "layers.csv", "per_step.csv", "summary.json", "energy_breakdown.png",
        "area_breakdown.png")}
    _atomic_write(paths["layers.csv"], lambda p: result.layers.to_csv(p, index=False))
    _atomic_write(paths["per_step.csv"], lambda p: result.per_step.to_csv(p, index=False))

    def dump(p: str) -> None:
        with open(p, "w", encoding="utf-8") as fh:
            json.dump(_clean(result.summary), fh, indent=2, default=_json_default)
            fh.write("\n")

    _atomic_write(paths["summary.json"], dump)
    name = result.summary.get("spec_name", "")
    _stacked_bar(result.layers, "energy_", "_pj", ENERGY_COMPONENTS, "energy per inference (pJ)",
                 f"Energy by component ({name}, {result.summary.get('mode')})",
                 paths["energy_breakdown.png"])
    _stacked_bar(result.layers, "area_", "_um2", AREA_COMPONENTS, "area (um$^2$)",
                 f"Area by component ({name})", paths["area_breakdown.png"])
    return paths
