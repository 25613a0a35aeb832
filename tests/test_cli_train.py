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
