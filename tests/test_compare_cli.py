"""``codesign compare`` on the shipped FP teacher and W4/U4 student: the table's ratios against
numbers recomputed here from the two summary.json files (EDAP, TOPS/W, TOPS/mm2 from energy,
latency, area and op counts), accuracies against a plain forward pass; bad input: status 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from codesign.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
FP = ROOT / "models" / "teacher_fp.pt"
Q = ROOT / "models" / "student_w4u4.pt"
HW = ROOT / "hw_configs" / "rram_physical_32nm.yaml"
ARGS = ["--hw", str(HW), "--data", "mnist5k", "--samples", "40", "--activity-samples", "8"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "out"
    res = CliRunner().invoke(cli, ["compare", str(FP), str(Q), *ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_ratios_from_the_two_summaries(compared: Path) -> None:
    fp = json.loads((compared / "fp" / "summary.json").read_text())
    q = json.loads((compared / "quantized" / "summary.json").read_text())
    # the FP net is mapped as FP: its layers carry the float weight width, the student's do not
    assert fp["area_mm2"] > q["area_mm2"]

    def edap(s):  # pJ * ns * mm2
        return s["energy_pj"] * s["latency_ns"] * s["area_um2"] / 1e6

    def tops_w(s):  # ops / (energy_pj 1e-12 J) / 1e12
        return s["ops"] / s["energy_pj"]

    def tops_mm2(s):  # ops / (latency_ns 1e-9 s) / 1e12 / mm2
        return s["ops"] / s["latency_ns"] / 1e3 / (s["area_um2"] / 1e6)

    df = pd.read_csv(compared / "iso_accuracy.csv").set_index("metric")
    want = {"edap_pj_ns_mm2": edap(fp) / edap(q), "energy_pj": fp["energy_pj"] / q["energy_pj"],
            "latency_ns": fp["latency_ns"] / q["latency_ns"],
            "area_mm2": fp["area_um2"] / q["area_um2"], "tops_per_w": tops_w(q) / tops_w(fp),
            "tops_per_mm2": tops_mm2(q) / tops_mm2(fp)}
    for metric, value in want.items():
        assert df.loc[metric, "ratio"] == pytest.approx(value, rel=1e-9), metric
    assert df.loc["edap_pj_ns_mm2", "ratio"] > 1 and df.loc["tops_per_w", "ratio"] > 1
    md = (compared / "iso_accuracy.md").read_text()
    assert f"{want['edap_pj_ns_mm2']:.2f} x lower EDAP" in md
    assert (compared / "iso_accuracy.png").stat().st_size > 1000


def test_accuracies_against_a_forward_pass(compared: Path) -> None:
    from codesign.data import load_dataset
    from codesign.snn.checkpoint import load_checkpoint

    data = load_dataset("mnist5k", split_seed=0, T=4)
    idx = np.sort(np.random.default_rng(0).choice(len(data.y_test), size=40, replace=False))
    df = pd.read_csv(compared / "iso_accuracy.csv").set_index("metric")
    for col, path in (("fp", FP), ("quantized", Q)):
        net, _ = load_checkpoint(path)
        with torch.no_grad():
            pred = net(data.x_test[idx]).mean(0).argmax(-1)
        acc = 100 * float((pred == data.y_test[idx]).double().mean())
        assert df.loc["accuracy", col] == pytest.approx(acc), col


def _bad(args: list[str], tmp_path: Path) -> str:
    res = CliRunner().invoke(cli, ["compare", *args, *ARGS, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_bad_input(tmp_path: Path) -> None:
    assert "missing.pt" in _bad([str(tmp_path / "missing.pt"), str(Q)], tmp_path)
    assert "FP_MODEL" in _bad([str(Q), str(FP)], tmp_path)          # swapped: FP is quantized
    assert "Q_MODEL" in _bad([str(FP), str(FP)], tmp_path)          # no quantizer in Q
    assert "checkpoint" in _bad([str(HW), str(Q)], tmp_path)        # a YAML as a model
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert "junk.pt" in _bad([str(FP), str(junk)], tmp_path)
    # a student claiming other training data / other inputs
    blob = torch.load(Q, map_location="cpu", weights_only=True)
    blob["meta"]["dataset"] = "digits"
    other = tmp_path / "other_data.pt"
    torch.save(blob, other)
    assert "digits" in _bad([str(FP), str(other)], tmp_path)
    blob["meta"]["dataset"] = "mnist5k"
    blob["spec"]["T"] = 8
    moved = tmp_path / "other_T.pt"
    torch.save(blob, moved)
    assert "'T'" in _bad([str(FP), str(moved)], tmp_path)
    res = CliRunner().invoke(cli, ["compare", str(FP), str(Q), "--hw", str(HW), "--data",
                                   "mnist5k", "--iso-tolerance", "-1", "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2 and "--iso-tolerance" in res.output
