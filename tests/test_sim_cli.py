"""``codesign map --chips``: accuracy in summary.json, ablation and ADC-bits files, ADC widths."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.hw.spec import preset_path

RRAM = preset_path("rram_physical_32nm")


def _map(tmp_path, *args):
    out = tmp_path / "r"
    res = CliRunner().invoke(cli, ["map", "models/student_w4u4.pt", "--hw", RRAM, "--data",
                                   "mnist5k", "--out", str(out), "--quiet", *args])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_chips_summary_ablation_and_adc_sweep(tmp_path):
    # adc alone is deterministic: the chips agree and each configuration runs once (fast)
    out, text = _map(tmp_path, "--chips", "2", "--samples", "5", "--nonideal", "adc",
                     "--ablate", "--seed", "3")
    acc = json.loads((out / "summary.json").read_text())["accuracy"]
    hw = acc["hardware"]
    assert hw["chips"] == 2 and len(hw["per_chip"]) == 2
    assert hw["mean"] == pytest.approx(sum(hw["per_chip"]) / 2)
    assert 0.0 <= hw["ci95"][0] <= hw["mean"] <= hw["ci95"][1] <= 100.0
    assert hw["per_chip"][0] == hw["per_chip"][1]
    assert acc["samples"] == 5 and acc["seed"] == 3 and len(acc["chip_seeds"]) == 2
    assert acc["nonideal"] == ["adc"]
    assert 0.0 <= acc["ideal_quantized"] <= 100.0
    assert "hardware" in text and "ideal quantized" in text  # the printed table shows it
    ab = pd.read_csv(out / "ablation.csv")
    assert list(ab["nonideal"]) == ["none", "adc"]
    assert ab["accuracy_drop"].tolist() == pytest.approx(
        (acc["ideal_quantized"] - ab["accuracy"]).tolist())
    sweep = pd.read_csv(out / "adc_bits.csv")
    assert sweep["adc_bits"].min() <= 3 and sweep["adc_bits"].max() == 10  # lossless 9, +1
    for f in ("ablation.png", "accuracy_vs_adc_bits.png", "firing_rate_drift.csv"):
        assert (out / f).stat().st_size > 0
    rates = pd.read_csv(out / "firing_rate_drift.csv")
    assert set(rates["layer"]) == {"lif1", "lif2", "lif3", "lif_fc1"}
    assert rates["drift"].tolist() == pytest.approx(
        (rates["hardware_rate"] - rates["ideal_rate"]).tolist())


@pytest.mark.parametrize("bits", [1, 16])
def test_any_adc_width_simulates_and_costs(tmp_path, bits):
    out, _ = _map(tmp_path, "--chips", "1", "--samples", "4", "--nonideal", "none",
                  "--adc-bits", str(bits))
    s = json.loads((out / "summary.json").read_text())
    assert s["accuracy"]["adc_bits"] == bits
    assert math.isfinite(s["energy_pj"]) and s["energy_pj"] > 0
    if bits == 16:  # lossless: the exact chip
        assert s["accuracy"]["hardware"]["mean"] == pytest.approx(100.0 * round(
            s["accuracy"]["hardware"]["mean"] / 100.0 * 4) / 4)
