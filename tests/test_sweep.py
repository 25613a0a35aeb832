"""Bit-width sweep: point keys, bit lists, store, results table and bad input.

Small and fast: the shipped FP teacher on mnist5k, a 2x2 grid, 60 accuracy samples and
16 activity samples per point. The long runs (kill and resume, Dask) are in test_sweep_runs.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.errors import CodesignError
from codesign.sweep import SweepPoint, make_points, parse_bits, sweep_bits
from codesign.sweep.evaluate import wilson_interval
from codesign.sweep.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "teacher_fp.pt"
HW = ROOT / "hw_configs" / "sram_neurosim_22nm.yaml"
CLI = [sys.executable, "-c", "from codesign.cli.main import main; main()"]
GRID = {"wbits": [2, 8], "ubits": [3, 16], "adc_bits": [5]}
OPTS = {"samples": 60, "activity_samples": 16, "seed": 3}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- point and key


def test_key_is_sha256_of_hand_built_canonical_json(tmp_path):
    (p,) = make_points(MODEL, HW, "mnist5k", wbits=[4], ubits=[4], adc_bits=[5], samples=10)
    expected = {"model_sha256": sha256_file(MODEL), "hw_sha256": sha256_file(HW),
                "data": "mnist5k", "wbits": 4, "ubits": 4, "adc_bits": 5, "first_bits": None,
                "last_bits": None, "split_seed": 0, "samples": 10, "activity_samples": 64,
                "seed": 0, "mapping": "im2col", "chips": 1, "nonideal": None,
                "retrain": False, "evaluator": 4,
                "code_version": p.code_version}
    # the code version itself is tested in tests/test_sweep_version.py
    assert len(p.code_version) == 16 and int(p.code_version, 16) >= 0
    text = json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert p.key == hashlib.sha256(text.encode()).hexdigest()
    # the same files by another path: same key; a changed byte: another key
    copy = tmp_path / "elsewhere.pt"
    shutil.copy(MODEL, copy)
    (q,) = make_points(copy, HW, "mnist5k", wbits=[4], ubits=[4], adc_bits=[5], samples=10)
    assert q.key == p.key and q.model != p.model
    copy.write_bytes(copy.read_bytes() + b"\0")
    (r,) = make_points(copy, HW, "mnist5k", wbits=[4], ubits=[4], adc_bits=[5], samples=10)
    assert r.key != p.key


def test_key_is_stable_across_processes():
    (p,) = make_points(MODEL, HW, "mnist5k", wbits=[3], ubits=[5], adc_bits=[None])
    code = ("import json,sys; from codesign.sweep import SweepPoint; "
            "print(SweepPoint.from_dict(json.loads(sys.argv[1])).key)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(p.to_dict())], check=True,
                         capture_output=True, text=True, env={"PYTHONHASHSEED": "123",
                                                              **_env()}).stdout.strip()
    assert out == p.key
    others = {q.key for q in make_points(MODEL, HW, "mnist5k", wbits=[3, 4], ubits=[5, 6],
                                         adc_bits=[None, 4])}
    assert len(others) == 8 and p.key in others


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.mark.parametrize("text,msg", [("", "empty bit list"), ("2,,4", "empty item"),
                                      ("2,x", "not an integer"), ("0,4", "out of range"),
                                      ("17", "out of range"), ("2.5", "not an integer")])
def test_parse_bits_refuses(text, msg):
    with pytest.raises(CodesignError, match=msg):
        parse_bits(text, "wbits")


def test_parse_bits_sorted_unique():
    assert parse_bits(" 8,2, 4,2 ", "wbits") == [2, 4, 8]
    with pytest.raises(CodesignError, match="out of range"):
        parse_bits("1", "ubits", minimum=2)


def test_wilson_interval_hand_solved():
    # p = 0.8, n = 10, z = 1.96: the textbook Wilson interval (0.4902, 0.9433)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.49016, abs=1e-4) and hi == pytest.approx(0.94331, abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and wilson_interval(0, 10)[0] == 0.0


# ---------------------------------------------------------------------------- a real sweep


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    run = sweep_bits(MODEL, HW, "mnist5k", out=out, workers=1, progress=False, **GRID, **OPTS)
    return run


def test_results_csv_columns_and_values(small_sweep):
    df = pd.read_csv(small_sweep.out / "results.csv")
    assert len(df) == 4
    assert sorted(zip(df.wbits, df.ubits, strict=True)) == [(2, 3), (2, 16), (8, 3), (8, 16)]
    for col in ("accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "energy_pj", "latency_ns",
                "area_um2", "edap_pj_ns_mm2", "tops_per_w", "tops_per_mm2", "firing_rate",
                "pareto_edap", "pareto_energy", "pareto_area"):
        assert col in df.columns
    assert (df.accuracy_kind == "ideal_quantized").all()
    assert (df.adc_bits == 5).all() and (df.accuracy_samples == 60).all()
    assert ((df.accuracy_ci_lo <= df.accuracy) & (df.accuracy <= df.accuracy_ci_hi)).all()
    # EDAP is energy x latency x area (pJ x ns x mm2), by hand
    np.testing.assert_allclose(df.edap_pj_ns_mm2, df.energy_pj * df.latency_ns * df.area_mm2,
                               rtol=1e-9)
    # the Pareto flags: brute force over the csv's own columns
    for flag, col in (("pareto_edap", "edap_pj_ns_mm2"), ("pareto_energy", "energy_pj"),
                      ("pareto_area", "area_um2")):
        a, c = df.accuracy.to_numpy(), df[col].to_numpy()
        want = [not any(a[j] >= a[i] and c[j] <= c[i] and (a[j] > a[i] or c[j] < c[i])
                        for j in range(len(df))) for i in range(len(df))]
        assert df[flag].tolist() == want
    for name in ("pareto_edap.png", "pareto_energy.png", "pareto_area.png"):
        assert (small_sweep.out / name).stat().st_size > 10_000


def test_accuracy_and_firing_rate_against_an_independent_run(small_sweep):
    """W8/U16 post-training quantization stays within 3 points of the FP teacher on the same
    60 samples (run here with plain torch), W2/U3 loses accuracy; the firing rate of W8/U16
    matches the spikes recorded by the network's own recording switch."""
    from codesign.data import load_dataset
    from codesign.sim.activity import select_samples
    from codesign.snn.checkpoint import load_checkpoint
    from codesign.train.recipe import prepare_model

    df = pd.read_csv(small_sweep.out / "results.csv").set_index("label")
    data = load_dataset("mnist5k", split_seed=0, T=4)
    idx = select_samples(len(data.y_test), 60, 3)
    teacher, _ = load_checkpoint(MODEL)
    with torch.no_grad():
        fp_acc = float((teacher(data.x_test[idx]).mean(0).argmax(-1) == data.y_test[idx])
                       .float().mean())
    assert abs(df.loc["W8U16A5", "accuracy"] - fp_acc) <= 0.034
    assert df.loc["W2U3A5", "accuracy"] < df.loc["W8U16A5", "accuracy"]

    net = prepare_model(None, data, init=MODEL, quant={"wbits": 8, "ubits": 16}).eval()
    net.set_record(True)
    act_idx = select_samples(len(data.y_test), 16, 3)
    with torch.no_grad():
        net(data.x_test[act_idx])
    spikes = net.spikes()
    total = sum(float(s.sum()) for s in spikes.values())
    sites = sum(s.numel() for s in spikes.values())
    assert df.loc["W8U16A5", "firing_rate"] == pytest.approx(total / sites, rel=1e-9)


def test_rerun_skips_everything_and_log_has_each_point_once(small_sweep):
    before = (small_sweep.out / "results.csv").read_bytes()
    run = sweep_bits(MODEL, HW, "mnist5k", out=small_sweep.out, workers=1, progress=False,
                     **GRID, **OPTS)
    assert run.report.skipped == 4 and run.report.computed == []
    assert (small_sweep.out / "results.csv").read_bytes() == before
    log = ResultStore(small_sweep.out).computations()
    assert sorted(e["key"] for e in log) == sorted(small_sweep.results["key"])


def test_point_json_round_trips(small_sweep):
    store = ResultStore(small_sweep.out)
    rec = next(iter(store.all()))
    assert SweepPoint.from_dict(rec["point"]).key == rec["key"]
    assert rec["result"]["accuracy_kind"] == "ideal_quantized"


# ---------------------------------------------------------------------------- bad input


def _cli(args: list[str]):
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.stderr.strip().splitlines()


BASE = ["sweep-bits", str(MODEL), "--hw", str(HW), "--data", "mnist5k"]


@pytest.mark.parametrize("flags,msg", [
    (["--wbits", "", "--ubits", "4"], "--wbits: empty bit list"),
    (["--wbits", "2,4,", "--ubits", "4"], "--wbits '2,4,': empty item"),
    (["--wbits", "2;4", "--ubits", "4"], "not an integer"),
    (["--wbits", "4", "--ubits", "1"], "--ubits '1': 1 is out of range"),
    (["--wbits", "4,20", "--ubits", "4"], "--wbits '4,20': 20 is out of range"),
    (["--wbits", "4", "--ubits", "4", "--adc-bits", "0"], "--adc-bits '0'"),
    (["--wbits", "4", "--ubits", "4", "--workers", "0"], "--workers 0"),
    (["--wbits", "4", "--ubits", "4", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"],
     "--workers applies to the local process pool"),
    (["--wbits", "4", "--ubits", "4", "--samples", "0"], "--samples 0"),
])
def test_cli_bad_bits_exit_2_one_line(tmp_path, flags, msg):
    code, err = _cli([*BASE, *flags, "--out", str(tmp_path / "o")])
    assert code == 2 and len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_folder_of_another_sweep(small_sweep):
    code, err = _cli([*BASE, "--wbits", "2,4", "--ubits", "3,16", "--adc-bits", "5",
                      "--samples", "60", "--activity-samples", "16", "--seed", "3",
                      "--workers", "1", "--out", str(small_sweep.out)])
    assert code == 2 and len(err) == 1 and "holds a different sweep" in err[0], err


def test_cli_unreachable_scheduler_fails_fast(tmp_path):
    pytest.importorskip("distributed")
    t0 = time.perf_counter()
    proc = subprocess.run([*CLI, *BASE[:], "--wbits", "4", "--ubits", "4",
                           "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1, proc.stderr
    assert "cannot reach the Dask scheduler" in err[0] and elapsed < 30
    assert not (tmp_path / "o").exists()
    code, err = _cli([*BASE, "--wbits", "4", "--ubits", "4", "--scheduler-file",
                      str(tmp_path / "none.json"), "--out", str(tmp_path / "o")])
    assert code == 2 and len(err) == 1 and "file not found" in err[0]
    code, err = _cli([*BASE, "--wbits", "4", "--ubits", "4", "--scheduler", "127.0.0.1:8786",
                      "--out", str(tmp_path / "o")])
    assert code == 2 and len(err) == 1 and "expected an address like tcp://HOST:PORT" in err[0]


def test_nan_objective_never_on_front():
    from codesign.sweep.results import results_frame

    recs = []
    for i, (acc, edap) in enumerate([(0.9, 1.0), (math.nan, 0.5), (0.95, 2.0)]):
        point = {"wbits": 2 + i, "ubits": 4, "adc_bits": 4, "data": "d", "samples": 1,
                 "activity_samples": 1, "seed": 0, "split_seed": 0}
        result = {"accuracy": acc, "edap_pj_ns_mm2": edap, "energy_pj": edap,
                  "area_um2": edap, "accuracy_kind": "ideal_quantized"}
        recs.append({"key": str(i), "point": point, "result": result})
    df = results_frame(recs)
    assert df.pareto_edap.tolist() == [True, False, True]


# ---------------------------------------------------------------------------- the runner


def _square(job: dict) -> int:
    if job["x"] < 0:
        raise ValueError("negative")
    return job["x"] ** 2


def _job_spec(order: list[int]):
    from codesign.sweep import JobSpec

    def record(job, value, seconds):
        order.append(job["x"])
        return {"x": job["x"], "y": value}

    return JobSpec(evaluate=_square, key=lambda j: f"k{j['x']}", record=record,
                   ready=lambda j: j["after"] is None or j["after"] in order)


def test_runner_dependencies_failures_and_resume(tmp_path):
    from codesign.sweep import Backend, ResultStore, SerialExecutor, run_jobs

    jobs = [{"x": 3, "after": 2}, {"x": 2, "after": None}, {"x": -1, "after": None},
            {"x": 5, "after": 3}]
    order: list[int] = []
    store = ResultStore(tmp_path)
    backend = Backend(SerialExecutor(), 1, "serial")
    rep = run_jobs(jobs, _job_spec(order), store, backend, progress=False, stop_on_error=False)
    assert order == [2, 3, 5]  # 3 waits for 2, 5 for 3; -1 fails and is not stored
    assert rep.computed == ["k2", "k3", "k5"] and [k for k, _ in rep.failed] == ["k-1"]
    assert store.get("k5") == {"x": 5, "y": 25}
    order.clear()
    rep2 = run_jobs(jobs, _job_spec(order), store, backend, progress=False,
                    stop_on_error=False)
    assert rep2.skipped == 3 and rep2.computed == [] and order == []
    with pytest.raises(ValueError, match="negative"):
        run_jobs(jobs, _job_spec(order), store, backend, progress=False)
    rep3 = run_jobs([{"x": 7, "after": None}], _job_spec(order), store, backend,
                    progress=False, deadline_s=-1.0)
    assert rep3.not_started == 1 and not store.has("k7")


# ---------------------------------------------------------------------------- hardware accuracy


def test_hardware_accuracy_point(tmp_path):
    """With --nonideal the accuracy is the simulator's mean over chips; the simulator's own ideal
    run picks the same samples as the sweep's ideal scoring (two code paths, one answer), and
    with no non-ideality and a 16-bit ADC the chip stays within 10 points of it."""
    hw = ROOT / "hw_configs" / "rram_physical_32nm.yaml"
    run = sweep_bits(MODEL, hw, "mnist5k", wbits=[4], ubits=[8], adc_bits=[16], samples=40,
                     activity_samples=8, nonideal="none", chips=1, workers=1,
                     out=tmp_path / "hw", progress=False, figures=False)
    (rec,) = ResultStore(tmp_path / "hw").all()
    r = rec["result"]
    assert r["accuracy_kind"] == "hardware" and r["nonideal_simulated"] == []
    assert r["accuracy_ideal_sim"] == pytest.approx(r["accuracy_ideal"], abs=1e-9)
    assert abs(r["accuracy"] - r["accuracy_ideal"]) <= 0.10
    row = run.results.iloc[0]
    assert row["chips"] == 1 and row["nonideal"] == "none" and row["accuracy_kind"] == "hardware"


@pytest.mark.parametrize("flags,msg", [
    (["--chips", "3"], "--chips 3: several chips differ only by their non-ideality draws"),
    (["--nonideal", "gremlins"], "--nonideal: unknown non-ideality 'gremlins'"),
    (["--chips", "0", "--nonideal", "all"], "--chips 0"),
])
def test_cli_bad_hardware_flags(tmp_path, flags, msg):
    code, err = _cli(["sweep-bits", str(MODEL), "--hw",
                      str(ROOT / "hw_configs" / "rram_physical_32nm.yaml"), "--data", "mnist5k",
                      "--wbits", "4", "--ubits", "4", *flags, "--out", str(tmp_path / "o")])
    assert code == 2 and len(err) == 1 and msg in err[0], err
