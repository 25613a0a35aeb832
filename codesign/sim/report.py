"""Files of the hardware-accuracy simulation in a ``codesign map`` report folder.

``firing_rate_drift.csv`` (per neuron layer: ideal and hardware firing rate on the same
recorded (sample, chip) rows, ``drift`` = hardware - ideal, ``ratio`` = hardware / ideal, and
the hardware rate over every chip and sample; see :func:`codesign.mapflow._drift_rows`), and with
``--ablate`` ``ablation.csv`` (one row per non-ideality alone, ``accuracy_drop`` in points
against the ideal quantized network) with ``ablation.png``, and ``adc_bits.csv`` with
``accuracy_vs_adc_bits.png``. Written with the rest of the report, which is published as a
whole (:func:`codesign.io.publish_dir`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

SIM_FILES = ("firing_rate_drift.csv", "ablation.csv", "ablation.png", "adc_bits.csv",
             "accuracy_vs_adc_bits.png")


def _figure_ablation(df: pd.DataFrame, ideal: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    err = [df["accuracy"] - df["ci95_lo"], df["ci95_hi"] - df["accuracy"]]
    ax.bar(df["nonideal"], df["accuracy"], yerr=err, color="#4C72B0", capsize=3)
    ax.axhline(ideal, color="#C44E52", linestyle="--", label=f"ideal quantized {ideal:.1f} %")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("each non-ideality alone (mean and 95 % interval over chips)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _figure_adc(df: pd.DataFrame, ideal: float, charged: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.fill_between(df["adc_bits"], df["ci95_lo"], df["ci95_hi"], color="#4C72B0", alpha=0.25)
    ax.plot(df["adc_bits"], df["accuracy"], "o-", color="#4C72B0",
            label=f"hardware ({df['nonideal'].iloc[0]})")
    ax.axhline(ideal, color="#C44E52", linestyle="--", label="ideal quantized")
    ax.axvline(charged, color="grey", linestyle=":", label=f"spec: {charged} bits")
    ax.set_xlabel("ADC bits")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _csv(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda path: df.to_csv(path, index=False)


def sim_file_writers(acc: dict[str, Any]) -> dict[str, Callable[[Path], None]]:
    """The simulation's CSVs and figures (module docstring) as ``name -> writer(path)``, for
    :func:`codesign.report.write_report`'s ``extra`` (written into the report's private folder
    before it is published, so the report appears as a whole). ``acc``: the summary's
    ``accuracy`` section."""
    ideal = float(acc["ideal_quantized"])
    writers = {"firing_rate_drift.csv": _csv(pd.DataFrame(acc.get("firing_rate") or []))}
    if acc.get("ablation"):
        abl = pd.DataFrame(acc["ablation"])
        writers["ablation.csv"] = _csv(abl)
        writers["ablation.png"] = lambda path: _figure_ablation(abl, ideal, path)
    if acc.get("adc_sweep"):
        adc = pd.DataFrame(acc["adc_sweep"])
        writers["adc_bits.csv"] = _csv(adc)
        writers["accuracy_vs_adc_bits.png"] = lambda path: _figure_adc(
            adc, ideal, int(acc["adc_bits"]), path)
    return writers
