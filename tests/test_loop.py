"""The closed loop (codesign.loop, codesign map --retrain) on a tiny digits model.

A float vgg-tiny teacher (T=2) and its W4/U4 fine-tune are trained here on scikit-learn's
digits (a few seconds); the loop runs on a handful of samples with IR drop and stuck-at cells
on (the spec's parameters), which cost this small student most of its accuracy, and a budget of
one to three epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.loop import LoopConfig, close_loop, held_out_verdict
from codesign.sim.accuracy import simulate
from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
from codesign.snn.zoo import build_model
from codesign.train.loop import TrainConfig, stratified_holdout
from codesign.train.recipe import run_recipe

RRAM = preset_path("rram_physical_32nm")
SMALL = {"nonideal": "ir_drop,stuck_at", "chips": 1, "eval_chips": 1, "train_samples": 128,
         "val_samples": 60, "test_samples": 60, "energy_samples": 8, "batch_size": 64, "lr": 5e-3}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread for the whole module: the tiny runs' float reductions, and so the
    trained weights these tests judge, must not depend on which test module ran before (another
    sets two threads, another one)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, one_thread):
    """``(teacher.pt, student.pt, data)``: float teacher and W4/U4 student on digits."""
    folder = tmp_path_factory.mktemp("loop_models")
    data = load_dataset("digits", split_seed=0)
    t = run_recipe("vgg-tiny", data, TrainConfig(epochs=4, seed=0, lr=1e-2),
                   overrides={"T": 2}, progress=False)
    tp = folder / "teacher.pt"
    save_checkpoint(tp, t.net, t.meta)
    s = run_recipe(None, data, TrainConfig(epochs=1, seed=0, lr=1e-3), init=tp,
                   overrides={"quant": {"wbits": 4, "ubits": 4}}, progress=False)
    sp = folder / "student.pt"
    save_checkpoint(sp, s.net, s.meta)
    return tp, sp, data


@pytest.fixture(scope="module")
def spec():
    # the IR-drop model these loop-mechanics tests were written with (the preset's default is
    # now the exact transfer matrix, which hurts the tiny digits model differently)
    return load_spec(RRAM).with_overrides({"nonideal.ir_drop.model": "first_order"})


@pytest.fixture(scope="module")
def budget_run(tiny, spec, tmp_path_factory):
    """Two epochs of budget towards an unreachable target: every round runs."""
    _, sp, data = tiny
    out = tmp_path_factory.mktemp("loop_budget")
    cfg = LoopConfig(target=100.0, budget_epochs=2, **SMALL)
    return close_loop(sp, spec, data, out, cfg), out, cfg


def _selection(data, cfg):
    _, val = stratified_holdout(data.y_train, cfg.val_fraction, cfg.seed)
    return data.x_train[val], data.y_train[val]


def test_verdict_by_hand():
    assert held_out_verdict(50.0, 49.5, 2)[0] is True
    assert "REGRESSED" in held_out_verdict(50.0, 49.5, 2)[1]
    assert "0.50 points WORSE" in held_out_verdict(50.0, 49.5, 2)[1]
    assert held_out_verdict(50.0, 50.0, 0) == (False, held_out_verdict(50.0, 50.0, 0)[1])
    assert "original student is kept" in held_out_verdict(50.0, 50.0, 0)[1]
    ok, msg = held_out_verdict(40.0, 47.25, 1)
    assert not ok and "+7.25 points" in msg and "REGRESSED" not in msg


def test_loop_logs_every_round_and_keeps_the_best(budget_run, tiny, spec):
    res, out, cfg = budget_run
    _, sp, data = tiny
    rows = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2]  # round 0 + one per epoch of budget
    assert res.stop_reason == "budget (epochs) spent"
    assert [r["trained"] for r in rows] == [False, True, True]
    assert all(r["train_chips"] == 2 for r in rows[1:])  # 128 samples / 64: a fresh chip a batch
    assert all(not r["recovered"] for r in rows)  # 100 % is out of reach
    # best round: the first maximum of the logged selection accuracies (round 0 included)
    accs = [r["selection_hardware"] for r in rows]
    assert res.best_round == int(np.argmax(accs))
    # the kept checkpoint really scores that on the recorded selection chips (recomputed here)
    kept, meta = load_checkpoint(out / "retrained.pt")
    assert meta["closed_loop"]["round"] == res.best_round
    x, y = _selection(data, cfg)
    again = simulate(kept, spec, x, y, chips=1, nonideal=SMALL["nonideal"],
                     seed=res.seeds["selection_root"], samples=60)
    assert again["hardware"]["mean"] == pytest.approx(accs[res.best_round], abs=1e-9)
    # the held-out numbers are those of the original and the kept student on held-out chips
    orig, _ = load_checkpoint(sp)
    before = simulate(orig, spec, data.x_test, data.y_test, chips=1,
                      nonideal=SMALL["nonideal"], seed=res.seeds["heldout_root"], samples=60)
    assert before["hardware"]["mean"] == pytest.approx(res.before["hardware"], abs=1e-9)
    assert not set(res.seeds["heldout_chips"]) & set(res.seeds["selection_chips"])
    assert res.seeds["heldout_overlap"] == 0 and res.seeds["training_chips"] == 4
    # never a worse held-out number without saying so
    assert res.regressed == (res.after["hardware"] < res.before["hardware"])
    assert ("REGRESSED" in res.message) == res.regressed
    # report files: table, figure, summary
    table = (out / "before_after.csv").read_text().splitlines()
    assert table[0].startswith("model,hardware_accuracy") and len(table) == 3
    assert (out / "retrain_rounds.png").stat().st_size > 1000
    assert json.loads((out / "loop.json").read_text())["regressed"] == res.regressed


def test_retraining_through_the_hardware_changes_the_student(budget_run, tiny):
    res, out, _ = budget_run
    _, sp, _ = tiny
    if res.best_round == 0:
        pytest.fail("no round beat the original: the loop did not learn through the hardware")
    a, _ = load_checkpoint(sp)
    b, _ = load_checkpoint(out / "retrained.pt")
    assert any(not torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_stops_on_recovery(budget_run, tiny, spec, tmp_path):
    first, _, _ = budget_run
    _, sp, data = tiny
    rows = first.rounds
    # target = what round 1 reached (same seeds: the same run): stops at the first round there
    target = rows[1]["selection_hardware"]
    stop_at = next(r["round"] for r in rows if r["selection_hardware"] >= target)
    cfg = LoopConfig(target=target, tolerance=0.0, budget_epochs=3, **SMALL)
    res = close_loop(sp, spec, data, tmp_path / "rec", cfg)
    assert res.stop_reason == "recovered" and res.recovered
    assert [r["round"] for r in res.rounds] == list(range(stop_at + 1))
    assert res.rounds[-1]["selection_hardware"] >= target
    assert all(r["selection_hardware"] < target for r in res.rounds[:-1])


def test_already_recovered_trains_nothing(tiny, spec, tmp_path):
    _, sp, data = tiny
    res = close_loop(sp, spec, data, tmp_path / "ok", LoopConfig(target=1.0, **SMALL))
    assert len(res.rounds) == 1 and res.stop_reason == "recovered" and res.best_round == 0
    assert res.after["hardware"] == res.before["hardware"] and not res.regressed
    a, _ = load_checkpoint(sp)
    b, _ = load_checkpoint(tmp_path / "ok" / "retrained.pt")
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_interrupted_loop_keeps_its_best_checkpoint(tiny, spec, tmp_path):
    _, sp, data = tiny

    def stop(msg: str) -> None:
        if msg.startswith("closed loop: round 1"):
            raise KeyboardInterrupt

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        close_loop(sp, spec, data, out, LoopConfig(target=100.0, budget_epochs=3, **SMALL),
                   log=stop)
    rows = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1]
    _, meta = load_checkpoint(out / "retrained.pt")
    best = int(np.argmax([r["selection_hardware"] for r in rows]))
    assert meta["closed_loop"]["round"] == best
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary left


def test_minute_budget(tiny, spec, tmp_path):
    _, sp, data = tiny
    res = close_loop(sp, spec, data, tmp_path / "m",
                     LoopConfig(target=100.0, budget_min=1e-4, **SMALL))
    assert res.stop_reason == "budget (minutes) spent" and len(res.rounds) == 1


def _bad(args, tmp_path):
    res = CliRunner().invoke(cli, ["map", *args, "--hw", RRAM, "--out", str(tmp_path / "o"),
                                   "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert not (tmp_path / "o").exists()
    return lines[0]


def test_bad_input_status_2(tiny, tmp_path):
    tp, sp, _ = tiny
    base = [str(sp), "--data", "digits", "--retrain"]
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert "junk.pt" in _bad(base + ["--teacher", str(junk)], tmp_path)
    assert "no such checkpoint" in _bad(base + ["--teacher", str(tmp_path / "nope.pt")],
                                        tmp_path)
    # the shipped teacher was trained on mnist5k, not on digits
    assert "mnist5k" in _bad(base + ["--teacher", "models/teacher_fp.pt"], tmp_path)
    # a digits checkpoint for 16 px inputs does not match the 8 px data
    wrong = build_model("vgg-tiny", in_channels=1, image_size=16, num_classes=10, T=2)
    wp = tmp_path / "wrong.pt"
    save_checkpoint(wp, wrong, {"dataset": "digits", "split_seed": 0})
    assert "image_size" in _bad(base + ["--teacher", str(wp)], tmp_path)
    assert "--tolerance" in _bad(base + ["--tolerance", "-0.5"], tmp_path)
    assert "--budget-epochs" in _bad(base + ["--budget-epochs", "0"], tmp_path)
    assert "--budget-min" in _bad(base + ["--budget-min", "0"], tmp_path)
    assert "one budget" in _bad(base + ["--budget-epochs", "1", "--budget-min", "2"], tmp_path)
    assert "--retrain" in _bad([str(sp), "--data", "digits", "--teacher", str(tp)], tmp_path)
    # a float model has no integer codes to program
    assert "floating-point" in _bad([str(tp), "--data", "digits", "--retrain", "--teacher",
                                     str(tp)], tmp_path)


def test_worse_held_out_accuracy_is_always_said(tiny, spec, tmp_path, monkeypatch):
    """Force the kept student to score lower on the held-out chips than the original (the
    held-out simulation of the retrained student is shifted down by 7.5 points): the result,
    its message, the printed table, loop.json and the figure title all say REGRESSED."""
    import codesign.loop as loop_mod
    from codesign.loop import table_text
    from codesign.sim import network as hn

    _, sp, data = tiny
    cfg = LoopConfig(target=100.0, budget_epochs=1, **SMALL)
    held_root = hn.chip_seeds(cfg.seed, 3)[2]
    real = loop_mod.simulate
    calls: list[float] = []

    def shifted(model, *a, **kw):
        r = real(model, *a, **kw)
        if kw.get("seed") == held_root:
            calls.append(r["hardware"]["mean"])
            if len(calls) == 2:  # before (original), then after (the kept student)
                r["hardware"]["mean"] = calls[0] - 7.5
        return r

    monkeypatch.setattr(loop_mod, "simulate", shifted)
    res = close_loop(sp, spec, data, tmp_path / "r", cfg)
    assert len(calls) == 2
    assert res.after["hardware"] == pytest.approx(res.before["hardware"] - 7.5)
    assert res.regressed is True
    assert "REGRESSED" in res.message and "7.50 points WORSE" in res.message
    assert "REGRESSED" in table_text(res)
    saved = json.loads((tmp_path / "r" / "loop.json").read_text())
    assert saved["regressed"] is True and "REGRESSED" in saved["message"]
    assert "REGRESSED" in loop_mod.rounds_figure(res)._suptitle.get_text()


def test_loop_files_record_paths_relative_to_the_report_folder(budget_run, tiny, tmp_path,
                                                               monkeypatch):
    """loop.json and the retrained checkpoint's meta name the teacher, the student, the kept
    checkpoint and the student's ``init`` relative to the report folder (as the sweep's
    records do), so a copied folder still resolves; the default teacher of the retrained
    checkpoint is found beside it from any working folder."""
    from codesign.loop import default_teacher

    res, out, _ = budget_run
    tp, sp, _ = tiny
    saved = json.loads((out / "loop.json").read_text())
    _, meta = load_checkpoint(out / "retrained.pt")
    named = {"config.teacher": (saved["config"]["teacher"], tp),
             "config.student": (saved["config"]["student"], sp),
             "checkpoint": (saved["checkpoint"], out / "retrained.pt"),
             "meta.closed_loop.teacher": (meta["closed_loop"]["teacher"], tp),
             "meta.closed_loop.from": (meta["closed_loop"]["from"], sp),
             "meta.init": (meta["init"], tp)}
    for key, (got, want) in named.items():
        assert not Path(got).is_absolute() and "\\" not in got, (key, got)
        assert (out / got).resolve() == Path(want).resolve(), (key, got)
    assert saved["checkpoint"] == "retrained.pt"
    # no absolute path of the test's folders left anywhere in loop.json
    assert str(Path(out).resolve()) not in (out / "loop.json").read_text()
    assert str(Path(tp).resolve().parent) not in (out / "loop.json").read_text()
    monkeypatch.chdir(tmp_path)
    assert Path(default_teacher(meta, str(out / "retrained.pt"))).resolve() == tp.resolve()
