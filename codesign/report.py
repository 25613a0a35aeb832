"""The report writer of ``codesign map``: ``layers.csv``, ``per_step.csv``, ``summary.json`` and
the energy / area figures of a :class:`~codesign.hw.network.MapResult`.

The whole report is written into a temporary sibling folder and published under ``out_dir`` in
one rename (:func:`codesign.io.publish_dir`): a reader sees the previous report or the new one,
never a mix, and a failure leaves ``out_dir`` as it was.

Figures (matplotlib, Agg, no display needed): one stacked bar per layer, one colour per
component fixed for every figure and every run (:data:`COMPONENT_COLOURS`), in the units of the
printed table (energy per inference in uJ, area in mm2), each bar labelled with its total and the
title with the network total. When the layers' totals span more than
:data:`LOG_SCALE_SPAN` (a factor of 100), the y axis is logarithmic so small layers stay visible.

Sits above :mod:`codesign.hw` (it reads the cost model's tables, never computes costs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd

from codesign.errors import CodesignError
from codesign.hw.cost import AREA_COMPONENTS, ENERGY_COMPONENTS
from codesign.hw.network import MapResult
from codesign.io import publish_dir, to_json_safe

REPORT_FILES = ("layers.csv", "per_step.csv", "summary.json", "energy_breakdown.png",
                "area_breakdown.png")
"""The files :func:`write_report` writes (a folder holding only these is a previous report)."""

COMPONENT_COLOURS: dict[str, str] = {
    "array": "#1f77b4",         # crossbar arrays: blue
    "adc": "#d62728",           # ADCs: red
    "mux": "#ff9896",
    "dac": "#9467bd",
    "shift_add": "#ff7f0e",
    "accumulator": "#ffbb78",
    "pe_buffer": "#2ca02c",
    "tile_buffer": "#98df8a",
    "interconnect": "#8c564b",
    "neuron": "#e377c2",
    "membrane": "#f7b6d2",
    "mem_fetch": "#bcbd22",
    "fmap_memory": "#dbdb8d",
    "leakage": "#7f7f7f",       # static power x latency: grey
}
"""One colour per component, the same in the energy and the area figure of every report."""
FALLBACK_COLOUR = "#17becf"
LOG_SCALE_SPAN = 100.0
"""Largest / smallest positive layer total above which a figure uses a log y axis."""
PJ_PER_UJ = 1e6
UM2_PER_MM2 = 1e6


def component_colour(name: str) -> str:
    """The fixed colour of component ``name`` (a cyan fallback for one not in the table)."""
    return COMPONENT_COLOURS.get(name, FALLBACK_COLOUR)


def _breakdown_figure(df: pd.DataFrame, columns: list[tuple[str, str]], scale: float,
                      unit: str, title: str):
    """Stacked bars of ``columns`` (component, column) per layer, divided by ``scale``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = [(k, c) for k, c in columns if c in df and float(df[c].fillna(0).sum()) > 0]
    values = {k: df[c].fillna(0).to_numpy(dtype=float) / scale for k, c in cols}
    totals = sum(values.values()) if values else np.zeros(len(df))
    fig = Figure(figsize=(max(7.0, 0.5 * len(df) + 4.5), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    x = np.arange(len(df))
    positive = totals[totals > 0]
    log = bool(len(positive) > 1 and positive.max() / positive.min() > LOG_SCALE_SPAN)
    bottom = np.zeros(len(df))
    for k, v in values.items():
        ax.bar(x, v, bottom=bottom, label=k, color=component_colour(k), gid=k)
        bottom = bottom + v
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=positive.min() / 3, top=positive.max() * 3)
    for xi, t in zip(x, totals, strict=True):
        if t > 0:
            ax.annotate(f"{t:.3g}", (xi, t), ha="center", va="bottom", fontsize=6,
                        xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x)
    ax.set_xticklabels(df["layer"].astype(str), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"{unit}{' (log scale)' if log else ''}")
    ax.set_title(f"{title}: total {float(totals.sum()):.4g} {unit.split('(')[-1].rstrip(')')}",
                 fontsize=10)
    if values:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def energy_figure(result: MapResult):
    """Energy per inference by component and layer (uJ), see the module docstring."""
    s = result.summary
    cols = [(k, f"energy_{k}_pj") for k in ENERGY_COMPONENTS]
    return _breakdown_figure(result.layers, cols, PJ_PER_UJ, "energy per inference (uJ)",
                             f"Energy by component, {s.get('graph')} on {s.get('spec_name')} "
                             f"({s.get('mode')})")


def area_figure(result: MapResult):
    """Area by component and layer (mm2), see the module docstring."""
    s = result.summary
    cols = [(k, f"area_{k}_um2") for k in AREA_COMPONENTS]
    return _breakdown_figure(result.layers, cols, UM2_PER_MM2, "area (mm2)",
                             f"Area by component, {s.get('graph')} on {s.get('spec_name')}")


def write_report(result: MapResult, out_dir: Union[str, os.PathLike],
                 extra: Optional[Mapping[str, Callable[[Path], None]]] = None,
                 names: Optional[Iterable[str]] = None) -> dict[str, str]:
    """Write :data:`REPORT_FILES` (``layers.csv``, ``per_step.csv``, ``summary.json`` with
    non-finite numbers as ``null``, ``energy_breakdown.png``, ``area_breakdown.png``) and publish
    them as the folder ``out_dir`` (replacing a previous report there; refusing a folder that
    holds other files). ``extra``: more files of the same report, name -> ``writer(path)``,
    written into the same folder before it is published (so the report appears as a whole);
    ``names``: every file name a previous report here may hold (default: these). Returns file
    name -> final path."""
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(REPORT_FILES))
    if clash:
        raise CodesignError(f"write_report: extra files {clash} would replace the report's own")
    allowed = list(REPORT_FILES) + list(extra) + list(names or [])
    out = Path(os.path.abspath(os.fspath(out_dir)))
    figures = {"energy_breakdown.png": energy_figure(result),
               "area_breakdown.png": area_figure(result)}
    text = json.dumps(to_json_safe(result.summary), indent=2, allow_nan=False,
                      ensure_ascii=False) + "\n"
    # the folder is private until published (publish_dir fsyncs every file, then renames it)
    with publish_dir(out, allowed) as tmp:
        result.layers.to_csv(tmp / "layers.csv", index=False)
        result.per_step.to_csv(tmp / "per_step.csv", index=False)
        (tmp / "summary.json").write_text(text, encoding="utf-8")
        for name, fig in figures.items():
            fig.savefig(tmp / name, dpi=120, format="png")
        for name, writer in extra.items():
            writer(tmp / name)
    return {name: str(out / name) for name in (*REPORT_FILES, *extra)}

