"""Iso-accuracy selection and ratios (codesign.sweep.isoacc), checked against brute force and
hand-solved numbers; the FP reference of a real (tiny) sweep, stored once and resumed."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from codesign.errors import CodesignError
from codesign.sweep.isoacc import iso_ratios, select_iso, write_iso

ROOT = Path(__file__).resolve().parents[1]


def table(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["label", "accuracy", "edap_pj_ns_mm2", "energy_pj",
                                       "area_mm2"])


def brute(rows, fp: float, tol_pts: float):
    """Plain loop: qualify in percent units, then the smallest (edap, energy, area, label)."""
    best = None
    for i, (label, acc, edap, energy, area) in enumerate(rows):
        if acc != acc or 100 * acc < 100 * fp - tol_pts:
            continue
        cand = (edap, energy, area, label, i)
        if best is None or cand < best:
            best = cand
    return None if best is None else best[4]


def test_hand_solved_ties() -> None:
    # fp = 0.75, tol = 25 points: the bar is exactly 0.5 (binary fractions, no rounding)
    rows = [("W8U8", 0.75, 10.0, 5.0, 2.0),
            ("W2U2", 0.25, 1.0, 1.0, 1.0),     # cheapest but too inaccurate
            ("W4U4", 0.5, 4.0, 3.0, 2.0),      # exactly on the bar: qualifies
            ("W3U4", 0.625, 4.0, 2.0, 9.0),    # same EDAP, lower energy: wins
            ("W3U3", 0.625, 4.0, 2.0, 9.0)]    # full duplicate but for the label
    df = table(rows)
    assert select_iso(df, 0.75, 25.0) == 4            # W3U3 < W3U4 alphabetically
    assert select_iso(df.drop(index=4), 0.75, 25.0) == 3
    assert select_iso(df.drop(index=[3, 4]), 0.75, 25.0) == 2
    assert select_iso(df, 0.75, 24.9) == 4            # bar 0.501: W4U4 drops out
    assert select_iso(df.drop(index=[3, 4]), 0.75, 24.9) == 0
    # area breaks an EDAP and energy tie
    df2 = table([("A", 0.9, 1.0, 1.0, 3.0), ("B", 0.9, 1.0, 1.0, 2.0)])
    assert select_iso(df2, 0.9, 0.0) == 1
    # the row order does not matter
    assert select_iso(df.iloc[::-1], 0.75, 25.0) == 4


def test_point_exactly_on_a_decimal_bar() -> None:
    # q = fp - 1 point exactly in decimal arithmetic: on the bar, qualifies
    # (6/100 vs 7/100 and 9/500 vs 14/500 fail a bare float ">=": 0.07 - 0.01 > 0.06)
    for q, fp in ((485 / 500, 490 / 500), (6 / 100, 7 / 100), (9 / 500, 14 / 500)):
        assert select_iso(table([("Q", q, 1.0, 1.0, 1.0)]), fp, 1.0) == 0, (q, fp)
        assert select_iso(table([("Q", q - 1e-6, 1.0, 1.0, 1.0)]), fp, 1.0) is None


def test_no_qualifying_point_and_nan() -> None:
    df = table([("W2U2", 0.5, 1.0, 1.0, 1.0), ("W4U4", float("nan"), 0.5, 0.5, 0.5)])
    assert select_iso(df, 0.75, 1.0) is None
    assert select_iso(df.iloc[:0], 0.75, 1.0) is None
    assert select_iso(df, 0.75, 25.0) == 0            # NaN never qualifies, even if cheaper
    with pytest.raises(CodesignError):
        select_iso(df, 0.75, -1.0)


def test_against_brute_force_on_tie_heavy_tables() -> None:
    rng = np.random.default_rng(12)
    levels = [0.5, 0.625, 0.75, 0.875, 1.0]
    for trial in range(300):
        n = int(rng.integers(1, 9))
        rows = [(f"P{int(rng.integers(0, 4))}", float(rng.choice(levels)),
                 float(rng.integers(1, 4)), float(rng.integers(1, 3)),
                 float(rng.integers(1, 3))) for _ in range(n)]
        fp = float(rng.choice(levels))
        tol = float(rng.choice([0.0, 12.5, 25.0, 50.0]))
        got = select_iso(table(rows), fp, tol)
        want = brute(rows, fp, tol)
        if want is None:
            assert got is None, (trial, rows, fp, tol)
        else:  # duplicates of the winner's whole key are interchangeable: compare the key
            assert got is not None, (trial, rows, fp, tol)
            assert rows[got][2:] + (rows[got][0],) == rows[want][2:] + (rows[want][0],)


def test_ratios_hand_solved_and_files(tmp_path: Path) -> None:
    fp = {"accuracy": 0.98, "accuracy_ci_lo": 0.97, "accuracy_ci_hi": 0.99,
          "edap_pj_ns_mm2": 1000.0, "energy_pj": 80.0, "latency_ns": 10.0, "area_mm2": 1.25,
          "tops_per_w": 0.5, "tops_per_mm2": 0.2}
    q = {"accuracy": 0.975, "accuracy_ci_lo": 0.96, "accuracy_ci_hi": 0.985,
         "edap_pj_ns_mm2": 40.0, "energy_pj": 10.0, "latency_ns": 8.0, "area_mm2": 0.5,
         "tops_per_w": 4.0, "tops_per_mm2": 0.5}
    r = iso_ratios(fp, q)
    assert r == {"edap_pj_ns_mm2": 25.0, "energy_pj": 8.0, "latency_ns": 1.25,
                 "area_mm2": 2.5, "tops_per_w": 8.0, "tops_per_mm2": 2.5}
    files = write_iso(tmp_path, fp, q, tolerance_pts=1.0, q_label="W4U4")
    assert {p.name for p in files} == {"iso_accuracy.csv", "iso_accuracy.md", "iso_accuracy.png"}
    df = pd.read_csv(tmp_path / "iso_accuracy.csv").set_index("metric")
    assert df.loc["edap_pj_ns_mm2", "ratio"] == 25.0 and df.loc["tops_per_w", "ratio"] == 8.0
    assert df.loc["accuracy", "fp"] == pytest.approx(98.0)
    md = (tmp_path / "iso_accuracy.md").read_text()
    assert "25.00 x lower EDAP, 8.00 x higher TOPS/W, 2.50 x higher TOPS/mm2 at iso-accuracy" in md

    none = tmp_path / "none"
    files = write_iso(none, fp, None, tolerance_pts=1.0, q_label="")
    assert {p.name for p in files} == {"iso_accuracy.csv", "iso_accuracy.md"}
    assert "No point qualifies" in (none / "iso_accuracy.md").read_text()
    assert "lower EDAP" not in (none / "iso_accuracy.md").read_text()
    assert pd.read_csv(none / "iso_accuracy.csv")["ratio"].isna().all()


def test_sweep_fp_reference_stored_once_and_iso_table(tmp_path: Path) -> None:
    import torch

    from codesign.data import load_dataset
    from codesign.mapflow import map_model
    from codesign.snn.checkpoint import load_checkpoint
    from codesign.sweep import ResultStore, sweep_bits

    model, hw = ROOT / "models" / "teacher_fp.pt", ROOT / "hw_configs" / "rram_physical_32nm.yaml"
    out = tmp_path / "s"
    kw = dict(wbits=[4], ubits=[8], adc_bits=[6], samples=40, activity_samples=8, workers=1,
              progress=False, figures=False, iso_tolerance=100.0)
    run = sweep_bits(model, hw, "mnist5k", out=out, **kw)
    refs = list((out / "reference").glob("*.json"))
    assert len(refs) == 1
    ref = json.loads(refs[0].read_text())
    assert ref["point"]["reference"] == "fp" and "wbits" not in ref["point"]
    assert len(ResultStore(out).computations()) == 1    # the grid's log: only the grid point

    # FP accuracy on the same 40 samples, recomputed here with a plain forward pass
    net, _ = load_checkpoint(model)
    data = load_dataset("mnist5k", split_seed=0, T=4)
    idx = np.sort(np.random.default_rng(0).choice(len(data.y_test), size=40, replace=False))
    with torch.no_grad():
        pred = net(data.x_test[idx]).mean(0).argmax(-1)
    assert ref["result"]["accuracy"] == pytest.approx(
        float((pred == data.y_test[idx]).float().mean()))
    # FP cost: the float checkpoint costed through map_model from its path (mapped as FP)
    s = map_model(model, hw, data="mnist5k", samples=8, seed=0).summary
    assert ref["result"]["energy_pj"] == pytest.approx(s["energy_pj"], rel=1e-9)

    iso = pd.read_csv(out / "iso_accuracy.csv").set_index("metric")
    row = run.results.iloc[0]
    e = ref["result"]
    edap = lambda d: d["energy_pj"] * d["latency_ns"] * d["area_mm2"]  # noqa: E731
    assert iso.loc["edap_pj_ns_mm2", "ratio"] == pytest.approx(edap(e) / edap(row), rel=1e-9)
    assert iso.loc["tops_per_w", "ratio"] == pytest.approx(
        (row["tops_per_w"]) / e["tops_per_w"], rel=1e-12)
    assert iso.loc["area_mm2", "ratio"] == pytest.approx(e["area_um2"] / row["area_um2"])

    # the same sweep again: nothing computed, the reference read back
    again = sweep_bits(model, hw, "mnist5k", out=out, **kw)
    assert again.report.skipped == 1 and not again.report.computed
    assert len((out / "reference" / "computations.jsonl").read_text().splitlines()) == 1
    assert math.isfinite(iso.loc["energy_pj", "ratio"])


def test_brute_force_helper_is_itself_sane() -> None:
    rows = [("a", 0.5, 2.0, 1.0, 1.0), ("b", 0.5, 1.0, 1.0, 1.0)]
    assert brute(rows, 0.5, 0.0) == 1
    assert all(brute(list(p), 0.5, 0.0) is not None for p in itertools.permutations(rows))
