"""The README's examples run as written: every fenced ``bash`` command is parsed by the real
click command (the command and every flag exist, values convert, required ones are given),
none calls a bare ``codesign`` (not on PATH after the install), none writes over a file
shipped in the repository, and the cheap ones (seconds: info, presets, NIR export, and the
maps, activity on 64 images included) are run for real, with their outputs under
``/tmp/codesign/`` moved into a temporary folder. Training examples (minutes) are only parsed."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from codesign.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OUT_PREFIX = "/tmp/codesign/"


def bash_commands(text: str) -> list[str]:
    """Commands of the ```bash blocks: continuation lines joined, comments dropped, ``&&``
    chains split."""
    cmds: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
            cmds.extend(part.strip() for part in line.split("&&") if part.strip())
    return cmds


COMMANDS = bash_commands(README.read_text(encoding="utf-8"))
CODESIGN = [shlex.split(c) for c in COMMANDS if shlex.split(c)[0].endswith("codesign")]


def _tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout (an sdist): the files on disk are the shipped
        return {str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                and ".venv" not in p.parts}
    return set(out.stdout.split())


def _outputs(name: str, args: list[str]) -> list[str]:
    """The paths a command writes: ``--out`` and export-nir's second argument."""
    outs = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out"]
    outs += [a.split("=", 1)[1] for a in args if a.startswith("--out=")]
    if name == "export-nir":
        outs.append([a for a in args if not a.startswith("-")][1])
    return outs


def test_readme_has_examples() -> None:
    names = {a[1] for a in CODESIGN}
    assert {"train", "info", "map", "export-nir", "presets"} <= names, names
    assert len(CODESIGN) >= 12


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_exists_and_parses(cmd: str) -> None:
    argv = shlex.split(cmd)
    prog = argv[0]
    assert prog != "codesign", f"bare `codesign` is not on PATH after the install: {cmd}"
    if prog.endswith("codesign"):
        assert prog == ".venv/bin/codesign", cmd
        name, args = argv[1], argv[2:]
        command = cli.commands.get(name)
        assert command is not None, f"no command {name!r}: {cmd}"
        try:
            command.make_context(name, list(args))  # parses and converts, does not run
        except click.exceptions.UsageError as exc:  # unknown flag, missing value or argument
            pytest.fail(f"{cmd}: {exc.format_message()}")
        for path in args:  # every input the example names is in the repository
            if re.match(r"^(models|hw_configs|tests|reports)/", path):
                assert (ROOT / path).exists(), f"{cmd}: {path} does not exist"
    elif prog == "bash":
        assert (ROOT / argv[1]).is_file(), cmd
    elif prog == ".venv/bin/python":
        target = argv[1:] if argv[1] != "-m" else []
        if argv[1] == "-m":
            assert argv[2] == "pytest", cmd
        else:
            assert (ROOT / target[0]).is_file(), cmd
    else:
        pytest.fail(f"unexpected program in a README example: {cmd}")


def test_no_example_writes_over_a_shipped_file() -> None:
    tracked = _tracked()
    for argv in CODESIGN:
        for out in _outputs(argv[1], argv[2:]):
            rel = Path(out)
            assert not rel.is_absolute() or out.startswith(OUT_PREFIX), (argv, out)
            if not rel.is_absolute():
                hit = [t for t in tracked if t == out.rstrip("/") or t.startswith(
                    out.rstrip("/") + "/")]
                assert not hit, f"{shlex.join(argv)} would write over shipped {hit[:3]}"
            assert not (out.startswith("models/") and out.endswith(".pt")), argv


def test_student_command_matches_its_checkpoint() -> None:
    """The README's student command is the one recorded in models/student_w4u4.pt (same
    flags and values; only --out differs, so the example does not overwrite it)."""
    import torch

    meta = torch.load(ROOT / "models" / "student_w4u4.pt", map_location="cpu",
                      weights_only=True)["meta"]
    recorded = shlex.split(meta["command"])[1:]
    ex = next(a for a in CODESIGN if a[1] == "train" and "--init" in a)[1:]

    def flags(args: list[str]) -> dict[str, str]:
        return {args[i]: args[i + 1] for i in range(len(args) - 1)
                if args[i].startswith("--") and args[i] != "--out"}

    assert flags(ex) == flags(recorded)
    assert meta["train_config"]["epochs"] == int(flags(ex)["--epochs"])


CHEAP = ("info", "presets", "export-nir")


EXPENSIVE_FLAGS = ("--chips", "--retrain", "--ablate")


def _cheap(argv: list[str]) -> bool:
    """info, presets, export-nir, and map (dense, or activity on 64 images: seconds); a map
    that simulates chips or retrains (minutes on 2 cores) is only parsed, and its path is
    tested in tests/test_sim_*.py and tests/test_loop.py on smaller inputs."""
    if any(a in EXPENSIVE_FLAGS for a in argv):
        return False
    return argv[1] in CHEAP or argv[1] == "map"


@pytest.mark.parametrize("argv", [a for a in CODESIGN if _cheap(a)],
                         ids=lambda a: " ".join(a[1:3]))
def test_cheap_examples_run(argv: list[str], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    args = [a.replace(OUT_PREFIX, f"{tmp_path}/") for a in argv[1:]]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, f"{shlex.join(argv)}\n{r.output}"
    for out in _outputs(args[0], args[1:]):
        assert Path(out).exists(), out
