"""`codesign train` / `codesign info` through the CLI: a short real run and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from codesign.cli.main import cli


def _run(args: list[str]):
    return CliRunner().invoke(cli, args)


def test_train_digits_then_info(tmp_path: Path) -> None:
    out = tmp_path / "d.pt"
    r = _run(["train", "--model", "vgg-tiny", "--data", "digits", "--T", "2", "--epochs", "2",
              "--lr", "5e-3", "--batch-size", "32", "--wbits", "4", "--ubits", "4", "--quiet",
              "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file()
    r = _run(["info", str(out)])
    assert r.exit_code == 0, r.output
    assert "weights 4, membrane 4" in r.output
    assert "test accuracy" in r.output
    acc = float(r.output.split("test accuracy")[1].split("%")[0])
    assert acc > 30.0  # ten classes: well above chance after two short epochs


def test_quantization_aware_finetune_from_float(tmp_path: Path) -> None:
    fp = tmp_path / "fp.pt"
    r = _run(["train", "--model", "vgg-tiny", "--data", "digits", "--T", "2", "--epochs", "1",
              "--quiet", "--out", str(fp)])
    assert r.exit_code == 0, r.output
    q = tmp_path / "q.pt"
    r = _run(["train", "--init", str(fp), "--data", "digits", "--epochs", "1", "--wbits", "4",
              "--ubits", "4", "--quiet", "--out", str(q)])
    assert r.exit_code == 0, r.output
    r = _run(["info", "--json", str(q)])
    assert '"wbits": 4' in r.output and '"T": 2' in r.output


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--model", "nope"], "model 'nope' is not known"),
        (["--model", "vgg-tiny", "--data", "cifar"], "cifar"),
        (["--model", "vgg-tiny", "--wbits", "0"], "--wbits 0"),
        (["--model", "vgg-tiny", "--wbits", "17"], "--wbits 17"),
        (["--model", "vgg-tiny", "--ubits", "-3"], "--ubits -3"),
        (["--model", "vgg-tiny", "--T", "0"], "--T 0"),
        (["--model", "vgg-tiny", "--epochs", "0"], "--epochs 0"),
        (["--init", "/nonexistent/x.pt"], "/nonexistent/x.pt"),
    ],
)
def test_train_bad_input_exits_2_with_one_message(tmp_path: Path, args, needle) -> None:
    r = _run(["train", *args, "--out", str(tmp_path / "o.pt")])
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "o.pt").exists()


def test_info_bad_files_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00\x01garbage")
    for path, needle in [(bad, "corrupt.pt"), (tmp_path / "missing.pt", "not found")]:
        r = _run(["info", str(path)])
        assert r.exit_code == 2 and needle in r.output, r.output
        assert "Traceback" not in r.output


TINY = ["--model", "vgg-tiny", "--data", "digits", "--T", "2", "--epochs", "1",
        "--batch-size", "64", "--quiet"]


def _state(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _bit_identical(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def test_same_seed_from_scratch_gives_bit_identical_checkpoints(tmp_path: Path) -> None:
    """Two runs of one command must give the same tensors bit for bit; another seed must not
    (otherwise the comparison could not fail)."""
    import torch

    paths = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        paths[name] = tmp_path / f"{name}.pt"
        torch.manual_seed(1000 + len(paths))  # global state left over must not matter
        r = _run(["train", *TINY, "--seed", seed, "--out", str(paths[name])])
        assert r.exit_code == 0, r.output
    a, b, c = (_state(paths[k]) for k in "abc")
    assert _bit_identical(a, b)
    assert not _bit_identical(a, c)


def test_distillation_with_connectors_is_reproducible(tmp_path: Path) -> None:
    """md builds 1x1 connectors (random init) when channel counts differ: seeded too."""
    teacher = tmp_path / "t.pt"
    r = _run(["train", "--model", "vgg-small", "--data", "digits", "--T", "2", "--epochs", "1",
              "--quiet", "--out", str(teacher)])
    assert r.exit_code == 0, r.output
    outs = []
    for name in ("s1", "s2"):
        out = tmp_path / f"{name}.pt"
        r = _run(["train", *TINY, "--seed", "5", "--teacher", str(teacher), "--distill",
                  "logit,md", "--out", str(out)])
        assert r.exit_code == 0, r.output
        outs.append(_state(out))
    assert _bit_identical(*outs)


def test_recipe_is_what_the_cli_runs(tmp_path: Path) -> None:
    """The library recipe, called directly, gives the CLI's checkpoint bit for bit."""
    from codesign.data import load_dataset
    from codesign.train.loop import TrainConfig
    from codesign.train.recipe import run_recipe

    out = tmp_path / "cli.pt"
    r = _run(["train", *TINY, "--seed", "7", "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = load_dataset("digits", split_seed=0, T=2)
    outcome = run_recipe("vgg-tiny", data, TrainConfig(epochs=1, batch_size=64, seed=7),
                         overrides={"T": 2}, progress=False)
    lib = {k: v.detach().cpu() for k, v in outcome.net.state_dict().items()}
    assert _bit_identical(lib, _state(out))
    assert outcome.meta["test_accuracy"] == outcome.result.test_accuracy


def test_train_json_prints_the_result_record(tmp_path: Path) -> None:
    import json

    out = tmp_path / "j.pt"
    r = CliRunner().invoke(cli, ["train", *TINY, "--json", "--out", str(out)])  # click >= 8.2
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["checkpoint"] == str(out)
    assert rec["dataset"] == "digits" and rec["train_config"]["seed"] == 0
    assert len(rec["history"]) == 1 and 0.0 <= rec["test_accuracy"] <= 1.0
    # the record is what the checkpoint holds
    import torch

    meta = torch.load(out, map_location="cpu", weights_only=True)["meta"]
    assert meta["test_accuracy"] == rec["test_accuracy"]
    assert meta["best_epoch"] == rec["best_epoch"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--seed", "-1"], "--seed -1"),
        (["--seed", str(2**40)], f"--seed {2**40}"),
        (["--split-seed", "-2"], "--split-seed -2"),
        (["--weight-decay", "-1"], "--weight-decay -1"),
        (["--weight-decay", "nan"], "--weight-decay nan"),
        (["--lr", "inf"], "--lr inf"),
        (["--lr", "nan"], "--lr nan"),
        (["--lr", "0"], "--lr 0"),
        (["--lr", "-1e-3"], "--lr -0.001"),
        (["--epochs", "0"], "--epochs 0"),
        (["--epochs", "-3"], "--epochs -3"),
        (["--batch-size", "0"], "--batch-size 0"),
    ],
)
def test_train_bad_numbers_refused_before_work(tmp_path: Path, args, needle) -> None:
    out = tmp_path / "o.pt"
    r = _run(["train", *TINY, *args, "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], r.output
    assert not out.exists()


def test_out_checked_before_training(tmp_path: Path) -> None:
    existing = tmp_path / "have.pt"
    existing.write_bytes(b"keep me")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (existing, "exists; pass --force"),
        (tmp_path, "is a folder"),
        (a_file / "sub" / "m.pt", "which is a file"),
    ]
    for out, needle in cases:
        # the --out check comes first: the message is about --out and nothing is trained
        r = _run(["train", *TINY, "--out", str(out)])
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0] and str(out) in lines[0], r.output
    assert existing.read_bytes() == b"keep me"


def test_force_overwrites_and_parent_is_created(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "m.pt"
    r = _run(["train", *TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    first = out.stat().st_mtime_ns
    r = _run(["train", *TINY, "--out", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    assert out.stat().st_mtime_ns == first
    r = _run(["train", *TINY, "--force", "--out", str(out)])
    assert r.exit_code == 0, r.output
