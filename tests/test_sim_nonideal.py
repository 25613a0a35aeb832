"""Each non-ideality alone, growing in strength, on the shipped W4/U4 student; bad input refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.errors import CodesignError
from codesign.hw.spec import load_spec, preset_path, spec_from_dict
from codesign.sim import network as hn
from codesign.sim.accuracy import chip_run
from codesign.sim.adc import ADC
from codesign.sim.nonideal import Drift, ProgrammingVariation, StuckAt

N = 12  # samples: few, to stay fast; "within noise" below is 2 samples
TOL = 100.0 * 2 / N
RRAM = preset_path("rram_physical_32nm")


@pytest.fixture(scope="module")
def setup(student, mnist_test):
    x, y = mnist_test
    return student, x[:N], y[:N], load_spec(RRAM)


def _acc(setup, names, values=None):
    model, x, y, spec = setup
    spec = spec.with_overrides(values or {})
    net = hn.build(model, spec, (1, 28, 28), nonideal=names, adc_bits=9)
    return chip_run(net, x, y, hn.chip_seeds(7, 1)[0], batch=N)[0]


@pytest.fixture(scope="module")
def baseline(setup):
    """Every non-ideality off, lossless ADC: strength zero of each (the exact chip)."""
    return _acc(setup, ())


# two growing strengths per non-ideality (strength zero is the baseline)
STRENGTHS = {
    "programming": [{"nonideal.programming.sigma": s} for s in (0.15, 0.6)],
    "stuck_at": [{"nonideal.stuck_at.on_rate": r, "nonideal.stuck_at.off_rate": r}
                 for r in (0.002, 0.02)],
    "drift": [{"nonideal.drift.nu": v} for v in (0.1, 0.3)],
    "read_noise": [{"nonideal.read_noise.sigma": s} for s in (0.02, 0.2)],
    "ir_drop": [{"nonideal.ir_drop.r_row": r, "nonideal.ir_drop.r_col": r}
                for r in ("5 ohm", "40 ohm")],
    "adc": [{"nonideal.adc.gain_error": g} for g in (-0.3, -0.7)],
}


@pytest.mark.parametrize("name", list(STRENGTHS))
def test_accuracy_falls_as_the_non_ideality_grows(setup, baseline, name):
    accs = [baseline] + [_acc(setup, (name,), v) for v in STRENGTHS[name]]
    assert accs[0] >= 90.0  # at zero strength the lossless chip is the quantized network
    assert accs[1] <= accs[0] + TOL and accs[2] <= accs[1] + TOL, accs  # monotone within noise
    assert accs[2] < accs[0] - 25.0, accs  # and the strongest setting really hurts


def test_models_by_hand():
    g = torch.full((2000, 50), 2.0)
    gen = torch.Generator().manual_seed(0)
    from codesign.hw.nonideal import Drift as DriftP
    from codesign.hw.nonideal import Programming
    from codesign.hw.nonideal import StuckAt as StuckP

    out = ProgrammingVariation(Programming(sigma=0.1, distribution="normal")).apply(g, gen)
    assert float(out.mean()) == pytest.approx(2.0, rel=0.01)
    assert float(out.std()) == pytest.approx(0.2, rel=0.02)
    out = ProgrammingVariation(Programming(sigma=0.1, distribution="lognormal")).apply(g, gen)
    assert float(torch.log(out / 2.0).std()) == pytest.approx(0.1, rel=0.02)
    out = StuckAt(StuckP(on_rate=0.1, off_rate=0.05)).apply(g, gen, g_on=3.0, g_off=0.25)
    assert float((out == 3.0).float().mean()) == pytest.approx(0.1, abs=0.005)
    assert float((out == 0.25).float().mean()) == pytest.approx(0.05, abs=0.004)
    d = Drift(DriftP(time_ns=100e9, t0_ns=1e9, nu=0.5))  # (100 s / 1 s)^-0.5 = 0.1
    assert float(d.apply(g)[0, 0]) == pytest.approx(0.2, rel=1e-6)


def test_adc_transfer_function_by_hand():
    adc = ADC(bits=3, full_scale=7.0)  # LSB 1: codes 0..7
    i = torch.tensor([-1.0, 0.4, 0.6, 2.5, 3.5, 6.9, 9.0])
    assert adc.convert(i.clone()).tolist() == [0.0, 0.0, 1.0, 2.0, 4.0, 7.0, 7.0]
    adc = ADC(bits=2, full_scale=6.0, offset_lsb=0.5, gain_error=0.5)  # LSB 2
    # code = clip(round((1.5 I + 1) / 2), 0, 3): I = 1 -> round(1.25) = 1 -> 2.0
    assert adc.convert(torch.tensor([1.0, 3.0])).tolist() == [2.0, 6.0]
    for bad in (0, 17, True):
        with pytest.raises(CodesignError, match="ADC bits"):
            ADC(bits=bad, full_scale=1.0)


def _spec_with(tmp_path: Path, path: str, value) -> Path:
    raw = yaml.safe_load(Path(RRAM).read_text(encoding="utf-8"))
    node = raw
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    out = tmp_path / "spec.yaml"
    out.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return out


@pytest.mark.parametrize("path,value,needle", [
    ("nonideal.programming.sigma", {"value": -0.1, "source": "t"}, "nonideal.programming.sigma"),
    ("nonideal.stuck_at.on_rate", {"value": 1.5, "source": "t"}, "nonideal.stuck_at.on_rate"),
    ("nonideal.stuck_at.off_rate", {"value": -0.01, "source": "t"}, "nonideal.stuck_at.off_rate"),
    ("nonideal.ir_drop.r_row", {"value": 0, "unit": "ohm", "source": "t"},
     "nonideal.ir_drop.r_row"),
    ("nonideal.ir_drop.r_col", {"value": 5, "unit": "pJ", "source": "t"},
     "nonideal.ir_drop.r_col"),
    ("nonideal.read_noise.sigmaa", {"value": 0.1, "source": "t"}, "sigmaa"),
])
def test_bad_nonideal_section_refused_with_file_and_key(tmp_path, path, value, needle):
    spec = _spec_with(tmp_path, path, value)
    with pytest.raises(CodesignError, match=needle.replace(".", r"\.")):
        load_spec(spec)
    res = CliRunner().invoke(cli, ["map", "models/student_w4u4.pt", "--hw", str(spec), "--data",
                                   "mnist5k", "--chips", "1", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(spec) in lines[0] and needle in lines[0]


def test_stuck_rates_summing_above_one_refused(student):
    raw = yaml.safe_load(Path(RRAM).read_text(encoding="utf-8"))
    raw["nonideal"]["stuck_at"] = {"on_rate": {"value": 0.6, "source": "t"},
                                   "off_rate": {"value": 0.6, "source": "t"}}
    spec = spec_from_dict(raw, file="x.yaml")
    with pytest.raises(CodesignError, match=r"x\.yaml: nonideal\.stuck_at"):
        hn.build(student, spec, (1, 28, 28), nonideal="all")


@pytest.mark.parametrize("args,needle", [
    (["--chips", "0"], "--chips"),
    (["--chips", "-3"], "--chips"),
    (["--chips", "1", "--adc-bits", "17"], "adc-bits"),
    (["--chips", "1", "--adc-bits", "0"], "adc-bits"),
    (["--chips", "1", "--nonideal", "programing"], "programing"),
    (["--chips", "1", "--nonideal", "ir_drop,bogus"], "bogus"),
    (["--ablate"], "--chips"),
])
def test_bad_cli_input_exit_2_one_line(tmp_path, args, needle):
    res = CliRunner().invoke(cli, ["map", "models/student_w4u4.pt", "--hw", RRAM, "--data",
                                   "mnist5k", "--out", str(tmp_path / "r"), *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], res.output
    assert not (tmp_path / "r").exists()


def test_missing_section_for_a_named_nonideality(student):
    spec = load_spec(preset_path("sram_neurosim_22nm"))
    with pytest.raises(CodesignError, match="nonideal.drift: missing section"):
        hn.build(student, spec, (1, 28, 28), nonideal="drift")


def test_calibrated_adc_range_is_the_largest_current_seen_and_helps(setup):
    """Full scale calibrated on data = the largest ideal column current of each row block
    (checked against an unfold + matmul of the cell conductances), and it recovers accuracy
    that the array full scale loses at a coarse ADC."""
    model, x, y, spec = setup
    cal = spec.with_overrides({"nonideal.adc.range": "calibrated"})
    net = hn.build(model, cal, (1, 28, 28), nonideal=("adc",), adc_bits=4)
    hn.calibrate_adc(net, x[:4], batch=4)
    xb = net.synapses["fc1"].xbar
    # independent: fc1's input spikes from the exact chip, then max over blocks of x @ G
    ideal = hn.build(model, spec, (1, 28, 28), nonideal=(), adc_bits=12)
    hn.program_chip(ideal, None)
    seen: dict = {}
    h = ideal.synapses["fc1"].xbar
    orig = h.forward_chips

    def spy(xx, **kw):
        seen.setdefault("inputs", []).append(xx.reshape(xx.shape[0], -1))
        return orig(xx, **kw)

    h.forward_chips = spy
    hn.predict(ideal, x[:4], None, batch=4)
    inp = torch.cat(seen["inputs"])  # (T*B, 576) spikes
    geom = hn.geometry(spec)
    cond = geom.g_off + h.codes.to(torch.float32)  # (K, ncols) in units of dG
    peaks = [float((inp[:, b * 128:(b + 1) * 128] @ cond[b * 128:(b + 1) * 128]).max())
             for b in range(h.nb)]
    assert xb.full_scale.flatten().tolist() == pytest.approx(peaks, rel=1e-5)
    acc_array = chip_run(hn.build(model, spec, (1, 28, 28), nonideal=("adc",), adc_bits=4),
                         x, y, 1, N)[0]
    acc_cal = chip_run(net, x, y, 1, N)[0]
    assert acc_cal > acc_array + 20.0
