"""Files of the hardware-accuracy simulation in a ``codesign map`` report folder.

``firing_rate_drift.csv`` (per neuron layer: ideal and hardware firing rate on the same
recorded (sample, chip) rows, ``drift`` = hardware - ideal, ``ratio`` = hardware / ideal, and
the hardware rate over every chip and sample; see :func:`codesign.mapflow._drift_rows`), and with
``--ablate`` ``ablation.csv`` (one row per non-ideality alone, ``accuracy_drop`` in points
against the ideal quantized network) with ``ablation.png``, and ``adc_bits.csv`` with
``accuracy_vs_adc_bits.png``. Written atomically through :mod:`codesign.io` when it offers it.
"""

from __future__ import annotations

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


def write_sim_files(acc: dict[str, Any], out: Path) -> dict[str, str]:
    """Write the simulation's CSVs and figures into ``out``; returns name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    rates = pd.DataFrame(acc.get("firing_rate") or [])
    p = out / "firing_rate_drift.csv"
    rates.to_csv(p, index=False)
    paths[p.name] = str(p)
    ideal = float(acc["ideal_quantized"])
    if acc.get("ablation"):
        df = pd.DataFrame(acc["ablation"])
        p = out / "ablation.csv"
        df.to_csv(p, index=False)
        paths[p.name] = str(p)
        p = out / "ablation.png"
        _figure_ablation(df, ideal, p)
        paths[p.name] = str(p)
    if acc.get("adc_sweep"):
        df = pd.DataFrame(acc["adc_sweep"])
        p = out / "adc_bits.csv"
        df.to_csv(p, index=False)
        paths[p.name] = str(p)
        p = out / "accuracy_vs_adc_bits.png"
        _figure_adc(df, ideal, int(acc["adc_bits"]), p)
        paths[p.name] = str(p)
    return paths
