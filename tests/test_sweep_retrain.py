"""``sweep-bits --retrain`` (each point fine-tuned through the closed loop) and key hygiene
(npz data and teacher contents in the key), on a tiny case.

A float vgg-tiny (T=2) is trained here on scikit-learn's digits (about 2 s); points are two
bit-widths on the RRAM preset with IR drop and stuck-at cells, scored on 60 test samples on one
chip, retrained for one epoch on 128 samples. Oracles: the same sweep without ``--retrain``
(its accuracy is the retrained sweep's ``accuracy_before``), and the simulator run here on the
kept checkpoint (its accuracy is the retrained sweep's ``accuracy``).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from sklearn.datasets import load_digits

from codesign.cli.main import cli
from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.sim.accuracy import simulate
from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
from codesign.sweep import ResultStore, make_points, sweep_bits
from codesign.sweep.isoacc import reference_key
from codesign.sweep.point import NPZ_PREFIX, file_sha256
from codesign.train.loop import TrainConfig
from codesign.train.recipe import run_recipe

RRAM = preset_path("rram_physical_32nm")
NONIDEAL = "ir_drop,stuck_at"
GRID = {"wbits": [2, 4], "ubits": [4], "adc_bits": [None]}
OPTS = {"samples": 60, "activity_samples": 8, "nonideal": NONIDEAL, "chips": 1, "workers": 1,
        "progress": False, "figures": False}
RETRAIN = {"retrain": True, "retrain_budget_epochs": 1, "retrain_train_samples": 128,
           "retrain_val_samples": 60}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("retrain_models")
    torch.set_num_threads(1)
    data = load_dataset("digits", split_seed=0)
    t = run_recipe("vgg-tiny", data, TrainConfig(epochs=2, seed=0, lr=3e-3),
                   overrides={"T": 2}, progress=False)
    path = folder / "teacher.pt"
    save_checkpoint(path, t.net, t.meta)
    return path


@pytest.fixture(scope="module")
def sweeps(teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain_sweeps")
    plain = sweep_bits(teacher, RRAM, "digits", out=root / "plain", **GRID, **OPTS)
    re = sweep_bits(teacher, RRAM, "digits", out=root / "re", **GRID, **OPTS, **RETRAIN)
    return plain, re


def test_retrained_points_have_other_keys_and_say_so(sweeps):
    plain, re = sweeps
    assert set(plain.results.key).isdisjoint(set(re.results.key))
    assert "retrained" not in plain.results.columns  # a sweep without --retrain: as before
    df = re.results.set_index("label")
    p = plain.results.set_index("label")
    assert df.retrained.all() and len(df) == 2
    # before = the same point without retraining (an independent sweep), exactly
    for lab in df.index:
        assert df.loc[lab, "accuracy_before"] == p.loc[lab, "accuracy"]
        assert df.loc[lab, "accuracy_ideal_before"] == p.loc[lab, "accuracy_ideal"]
    csv = pd.read_csv(re.out / "results.csv")
    for col in ("retrained", "accuracy_before", "retrain_heldout_before",
                "retrain_heldout_after", "retrain_best_round"):
        assert col in csv.columns


def test_retrained_accuracy_is_the_kept_checkpoint_on_the_simulator(sweeps):
    """Re-score each kept ``retrained.pt`` with the simulator directly: the sweep's accuracy."""
    _, re = sweeps
    data = load_dataset("digits", split_seed=0)
    spec = load_spec(RRAM)
    rounds_run = 0
    for _, row in re.results.iterrows():
        folder = re.out / row["retrain_dir"]
        loop = json.loads((folder / "loop.json").read_text())
        assert loop["config"]["budget_epochs"] == 1 and loop["config"]["train_samples"] == 128
        assert loop["config"]["nonideal"] == NONIDEAL and loop["config"]["hardware"] is True
        rounds_run += len(loop["rounds"]) - 1
        net, meta = load_checkpoint(folder / "retrained.pt")
        assert meta["ptq"]["wbits"] == row["wbits"] and meta["ptq"]["sweep_key"] == row["key"]
        sim = simulate(net, spec, data.x_test, data.y_test, chips=1, nonideal=NONIDEAL,
                       seed=0, samples=60)
        assert row["accuracy"] == pytest.approx(sim["hardware"]["mean"] / 100, abs=1e-12)
        assert row["retrain_heldout_after"] == pytest.approx(loop["after"]["hardware"] / 100)
        if row["retrain_best_round"] == 0:  # nothing better: the PTQ network is kept
            assert row["accuracy"] == row["accuracy_before"]
    assert rounds_run >= 1, "no point was trained at all"


def test_rerun_skips_retrained_points(sweeps, teacher):
    _, re = sweeps
    before = (re.out / "results.csv").read_bytes()
    again = sweep_bits(teacher, RRAM, "digits", out=re.out, **GRID, **OPTS, **RETRAIN)
    assert again.report.skipped == 2 and again.report.computed == []
    assert (re.out / "results.csv").read_bytes() == before


def test_interrupted_points_resume_or_restart_to_the_same_results(sweeps, teacher, tmp_path):
    """Two kinds of interruption, made by hand in a copy of the finished sweep: (a) killed after
    the loop finished but before the point was stored (record missing, loop.json there): the
    loop is reused, not rerun; (b) killed mid-loop (record and loop.json missing): the loop runs
    again from the quantized student. Both give the uninterrupted results.csv, byte for byte."""
    _, re = sweeps
    out = tmp_path / "copy"
    shutil.copytree(re.out, out)
    ref = (re.out / "results.csv").read_bytes()
    (out / "results.csv").unlink()
    a, b = re.results.key
    for k in (a, b):
        (out / "points" / f"{k}.json").unlink()
    (out / "retrain" / b / "loop.json").unlink()
    ckpt_a = (out / "retrain" / a / "retrained.pt").stat().st_mtime_ns
    run = sweep_bits(teacher, RRAM, "digits", out=out, **GRID, **OPTS, **RETRAIN)
    assert sorted(run.report.computed) == sorted([a, b])
    store = ResultStore(out)
    assert store.get(a)["result"]["retrain_resumed"] is True
    assert store.get(b)["result"]["retrain_resumed"] is False
    assert (out / "retrain" / a / "retrained.pt").stat().st_mtime_ns == ckpt_a
    assert (out / "retrain" / b / "loop.json").is_file()
    assert (out / "results.csv").read_bytes() == ref


def test_retrain_options_and_teacher_contents_are_in_the_key(teacher, tmp_path):
    base = {"wbits": [4], "ubits": [4], "adc_bits": [None], "nonideal": NONIDEAL,
            "retrain": True, "teacher": str(teacher), "workdir": str(tmp_path)}
    (p,) = make_points(teacher, RRAM, "digits", **base)
    assert p.identity()["teacher_sha256"] == file_sha256(teacher)
    for change in ({"retrain_tolerance": 2.0}, {"retrain_budget_epochs": 3},
                   {"retrain_methods": "ce"}, {"seed": 1}, {"retrain_train_samples": 10},
                   {"retrain_hardware": False}, {"retrain_ir_refresh": 8}):
        (q,) = make_points(teacher, RRAM, "digits", **{**base, **change})
        assert q.key != p.key, change
    (w,) = make_points(teacher, RRAM, "digits", **{**base, "workdir": str(tmp_path / "x")})
    assert w.key == p.key  # the folder is where, not what
    other = tmp_path / "teacher2.pt"
    other.write_bytes(teacher.read_bytes() + b"\0")
    (q,) = make_points(teacher, RRAM, "digits", **{**base, "teacher": str(other)})
    assert q.key != p.key
    # the FP reference does not depend on the retraining options: shared with the plain sweep
    (plain,) = make_points(teacher, RRAM, "digits", wbits=[4], ubits=[4], adc_bits=[None],
                           nonideal=NONIDEAL)
    assert reference_key(p) == reference_key(plain)
    assert "teacher_sha256" not in plain.identity() and "data_sha256" not in plain.identity()


def _digits_npz(path, n: int) -> None:
    d = load_digits()
    np.savez(path, x=(d.images[:n] / 16.0).astype(np.float32), y=d.target[:n])


def test_npz_contents_are_hashed_into_the_key(teacher, tmp_path):
    """Same bytes by another path: same key; other bytes under the same path: another key (the
    hash cache is keyed by path, size and mtime, so the rewrite is hashed again)."""
    from codesign.data.npz import PREFIX

    assert NPZ_PREFIX == PREFIX
    f = tmp_path / "d.npz"
    _digits_npz(f, 600)
    kw = {"wbits": [4], "ubits": [4], "adc_bits": [None]}
    (p,) = make_points(teacher, RRAM, f"npz:{f}", **kw)
    assert p.identity()["data_sha256"] == file_sha256(f) and p.identity()["data"] == "npz"
    g = tmp_path / "sub" / "copy.npz"
    g.parent.mkdir()
    shutil.copy(f, g)
    (q,) = make_points(teacher, RRAM, f"npz:{g}", **kw)
    assert q.key == p.key and q.data != p.data
    st = f.stat()
    _digits_npz(f, 500)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    (r,) = make_points(teacher, RRAM, f"npz:{f}", **kw)
    assert r.key != p.key and r.data == p.data


def test_changed_npz_under_the_same_path_is_not_reused(teacher, tmp_path):
    f = tmp_path / "d.npz"
    _digits_npz(f, 600)
    args = ["sweep-bits", str(teacher), "--hw", str(RRAM), "--data", f"npz:{f}", "--wbits", "4",
            "--ubits", "4", "--samples", "20", "--activity-samples", "4", "--workers", "1",
            "--iso-tolerance", "-1", "--quiet", "--out", str(tmp_path / "s")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    _digits_npz(f, 500)
    res = CliRunner().invoke(cli, args)
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(err) == 1 and "holds a different sweep" in err[0], err


def test_cli_ir_refresh_reaches_the_loop(teacher, tmp_path):
    """``sweep-bits --retrain --ir-refresh 2``: the point's loop trains with that refresh period
    (its ``loop.json`` config, written by the loop itself) and the key says so."""
    out = tmp_path / "o"
    args = ["sweep-bits", str(teacher), "--hw", str(RRAM), "--data", "digits", "--wbits", "4",
            "--ubits", "4", "--samples", "60", "--activity-samples", "8", "--nonideal",
            NONIDEAL, "--workers", "1", "--retrain", "--budget-epochs", "1",
            "--retrain-samples", "128", "--retrain-val-samples", "60", "--quiet"]
    res = CliRunner().invoke(cli, [*args, "--ir-refresh", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    (loop,) = (out / "retrain").glob("*/loop.json")
    assert json.loads(loop.read_text())["config"]["ir_refresh"] == 2
    (p,) = make_points(teacher, RRAM, "digits", wbits=[4], ubits=[4], adc_bits=[None],
                       samples=60, activity_samples=8, nonideal=NONIDEAL, **RETRAIN,
                       retrain_ir_refresh=2, teacher=str(teacher), workdir=str(out))
    assert loop.parent.name == p.key


@pytest.mark.parametrize("flags,msg", [
    (["--teacher", "x.pt"], "--teacher: only used with --retrain"),
    (["--budget-epochs", "3"], "--budget-epochs: only used with --retrain"),
    (["--retrain", "--budget-epochs", "0"], "--budget-epochs 0"),
    (["--retrain", "--retrain-distill", "nonsense"], "nonsense"),
    (["--retrain", "--teacher", "missing.pt"], "--teacher missing.pt: file not found"),
    (["--ir-refresh", "4"], "--ir-refresh: only used with --retrain"),
    (["--retrain", "--ir-refresh", "0"], "--ir-refresh 0: expected an integer >= 1"),
])
def test_cli_bad_retrain_flags(teacher, tmp_path, flags, msg):
    res = CliRunner().invoke(cli, ["sweep-bits", str(teacher), "--hw", str(RRAM), "--data",
                                   "digits", "--wbits", "4", "--ubits", "4", *flags,
                                   "--out", str(tmp_path / "o")])
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(err) == 1 and msg in err[0], err


# ---------------------------------------------------------------- cost agrees with codesign map


@pytest.mark.parametrize("chips", [None, 2])
def test_point_cost_equals_codesign_map_of_the_same_network(teacher, tmp_path, chips):
    """A one-point sweep (W4U4) against ``codesign map`` of that network written as a checkpoint
    (PTQ rebuilt here with the recipe), same samples, seed and spec: one costing mechanism, the
    same energy, latency and area. With chips the sweep costs the simulated chips' spikes, as
    ``codesign map --chips`` does (there ``--samples`` is both the accuracy samples and the
    activity rows, so the sweep uses 16 of each)."""
    from codesign.train.recipe import prepare_model

    hw = {} if chips is None else {"nonideal": NONIDEAL, "chips": chips}
    run = sweep_bits(teacher, RRAM, "digits", wbits=[4], ubits=[4], adc_bits=[None],
                     samples=16, activity_samples=16, workers=1, progress=False, figures=False,
                     out=tmp_path / "s", **hw)
    row = run.results.iloc[0]
    assert row["cost_activity" if chips else "accuracy_kind"] == \
        ("simulated" if chips else "ideal_quantized")
    data = load_dataset("digits", split_seed=0)
    net = prepare_model(None, data, init=teacher, quant={"wbits": 4, "ubits": 4})
    ck = tmp_path / "w4u4.pt"
    save_checkpoint(ck, net, {"dataset": "digits", "split_seed": 0})
    args = ["map", str(ck), "--hw", str(RRAM), "--data", "digits", "--samples", "16",
            "--seed", "0", "--out", str(tmp_path / "map"), "--quiet"]
    if chips:
        args += ["--chips", str(chips), "--nonideal", NONIDEAL]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "map" / "summary.json").read_text())
    for k in ("energy_pj", "latency_ns", "area_um2"):
        assert row[k] == pytest.approx(float(s[k]), rel=1e-12), k
    if chips:
        assert s["inputs"]["activity"] == "simulated"
        assert row["accuracy"] == pytest.approx(s["accuracy"]["hardware"]["mean"] / 100,
                                                abs=1e-12)
        assert row["energy_ideal_activity_pj"] == pytest.approx(
            float(s["energy_ideal_activity_pj"]), rel=1e-12)
        # and the chips' activity is not the ideal one here (else this test could not tell)
        assert abs(row["energy_pj"] / row["energy_ideal_activity_pj"] - 1) > 1e-6
