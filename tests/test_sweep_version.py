"""The sweep's code version and path-free records (issue 12).

* the code version ignores docstrings, comments, blank lines and where the tree lives, and
  changes with any code edit, naming the file (oracle: hand-made edits of a copy of the tree);
* it covers every library module a point's evaluation imports (oracle: ``sys.modules`` of a
  process that evaluated a point on simulated chips);
* a folder swept by other code is refused with one line naming the changed file; a worker
  running other code refuses the point;
* the same sweep from two copies of its inputs gives the same keys and byte-identical
  manifest, point records and results (no machine path in any of them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.errors import CodesignError
from codesign.sweep import make_points, sweep_bits
from codesign.sweep import version as V

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "teacher_fp.pt"
HW = ROOT / "hw_configs" / "sram_neurosim_22nm.yaml"
RRAM = ROOT / "hw_configs" / "rram_physical_32nm.yaml"
TINY = {"samples": 20, "activity_samples": 4, "seed": 1}


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the codesign package (sources only)."""
    dst = tmp_path / "a" / "codesign"
    shutil.copytree(ROOT / "codesign", dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _version(root: Path) -> tuple[str, dict[str, str]]:
    fp = V.code_fingerprint(root)
    return V.version_of(fp), fp


def test_code_version_ignores_docs_and_location_detects_code(tree, tmp_path):
    v0, fp0 = _version(tree)
    assert all(k.startswith("codesign/") and not k.startswith("codesign/cli/") for k in fp0)
    assert "codesign/sim/crossbar.py" in fp0 and "codesign/sweep/evaluate.py" in fp0
    # the same tree elsewhere: the same version (paths relative to the package's parent)
    other = tmp_path / "b" / "deeper" / "codesign"
    shutil.copytree(tree, other)
    assert _version(other) == (v0, fp0)

    f = tree / "hw" / "units.py"
    src = f.read_text()
    # docstrings, comments and blank lines: no change
    edited = ('"""A new module docstring."""\n# a comment\n\n\n' + src.split('"""', 2)[2]
              if src.lstrip().startswith('"""') else "# a comment\n\n" + src)
    f.write_text(edited + "\n\n# trailing comment\n")
    assert _version(tree)[0] == v0
    # a code edit (a new constant): another version, naming exactly that file
    f.write_text(edited + "\nH6_TEST_CONSTANT = 1\n")
    v1, fp1 = _version(tree)
    assert v1 != v0 and V.changed_files(fp0, fp1) == ["codesign/hw/units.py"]
    f.write_text(edited + "\nH6_TEST_CONSTANT = 2\n")
    assert _version(tree)[0] not in (v0, v1)
    # a new module counts, a file under cli/ does not
    (tree / "cli" / "extra.py").write_text("X = 1\n")
    assert _version(tree)[0] not in (v0, v1)
    (tree / "sim" / "extra.py").write_text("X = 1\n")
    assert "codesign/sim/extra.py" in V.changed_files(fp0, _version(tree)[1])


def test_hand_checked_docstring_stripping():
    a = V.source_digest('"""doc"""\ndef f(x):\n    """doc"""\n    return x + 1  # c\n')
    b = V.source_digest("def f(x):\n\n    return (x +\n            1)\n")
    c = V.source_digest("def f(x):\n    return x + 2\n")
    d = V.source_digest('def f(x):\n    s = "not a docstring"\n    return x + 1\n')
    assert a == b and a != c and a != d
    with pytest.raises(CodesignError, match="not valid Python"):
        V.source_digest("def f(:\n", "bad.py")


def test_code_files_cover_what_a_point_imports():
    code = ("import sys, json, torch\n"
            "torch.set_num_threads(1)\n"
            "from codesign.sweep import make_points\n"
            "from codesign.sweep.evaluate import evaluate_point\n"
            f"(p,) = make_points({str(MODEL)!r}, {str(RRAM)!r},"
            " 'mnist5k', wbits=[4], ubits=[4], adc_bits=[5], samples=8, activity_samples=2,"
            " nonideal='all')\n"
            "evaluate_point(p)\n"
            "print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items())"
            " if n.split('.')[0] == 'codesign' and getattr(m, '__file__', None))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = {Path(f).resolve() for f in json.loads(out.stdout.strip().splitlines()[-1])}
    hashed = {p.resolve() for p in V.code_files()}
    assert len(loaded) > 30
    assert loaded - hashed == set(), sorted(loaded - hashed)


# ------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def one_point(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ver") / "s"
    sweep_bits(MODEL, HW, "mnist5k", wbits=[4], ubits=[4], adc_bits=[5], out=out, workers=1,
               progress=False, figures=False, **TINY)
    return out


def _cli_args(out: Path) -> list[str]:
    return ["sweep-bits", str(MODEL), "--hw", str(HW), "--data", "mnist5k", "--wbits", "4",
            "--ubits", "4", "--adc-bits", "5", "--samples", "20", "--activity-samples", "4",
            "--seed", "1", "--workers", "1", "--quiet", "--out", str(out)]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_folder_of_other_code_is_refused_naming_the_file(one_point, monkeypatch):
    before = _snapshot(one_point)
    version, files = V._this_process()
    changed = dict(files)
    changed["codesign/sim/crossbar.py"] = "0" * 64
    new = V.version_of(changed)
    monkeypatch.setattr(V, "_this_process", lambda: (new, tuple(sorted(changed.items()))))
    res = CliRunner().invoke(cli, _cli_args(one_point))
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(err) == 1, res.stderr
    assert "computed by other code" in err[0] and f"code version {version}" in err[0]
    assert f"this code {new}" in err[0] and "changed: codesign/sim/crossbar.py" in err[0]
    assert "remove the folder" in err[0] and str(one_point) in err[0]
    assert _snapshot(one_point) == before  # nothing recomputed, nothing removed


def test_folder_from_before_code_versions_is_refused(one_point, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(one_point, old)
    m = json.loads((old / "manifest.json").read_text())
    m.pop("code")
    m["shared"].pop("code_version")
    m["version"] = 1
    (old / "manifest.json").write_text(json.dumps(m))
    res = CliRunner().invoke(cli, _cli_args(old))
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(err) == 1, res.stderr
    assert "made before code versions were recorded" in err[0]
    # another sweep (other samples) still gets the generic message
    res = CliRunner().invoke(cli, [*_cli_args(one_point)[:-2], "--samples", "21", "--out",
                                   str(one_point)])
    assert res.exit_code == 2 and "holds a different sweep" in res.stderr


def test_worker_running_other_code_refuses_the_point():
    from codesign.sweep.evaluate import evaluate_point

    (p,) = make_points(MODEL, HW, "mnist5k", wbits=[4], ubits=[4], adc_bits=[5], **TINY)
    with pytest.raises(CodesignError, match="runs codesign code version .* planned with "
                                            "0000000000000000"):
        evaluate_point(replace(p, code_version="0" * 16))


# ------------------------------------------------------------------------- path-free records


def test_two_copies_of_the_inputs_give_the_same_keys_and_files(tmp_path):
    outs = []
    for name in ("first", "second"):
        base = tmp_path / name
        (base / "in").mkdir(parents=True)
        model, hw = base / "in" / "m.pt", base / "in" / "hw.yaml"
        shutil.copy(MODEL, model)
        shutil.copy(HW, hw)
        out = base / "runs" / "s"
        sweep_bits(model, hw, "mnist5k", wbits=[4], ubits=[4], adc_bits=[5], out=out,
                   workers=1, progress=False, figures=False, iso_tolerance=1.0, **TINY)
        outs.append(out)
    a, b = (_snapshot(o) for o in outs)
    shared = {"manifest.json", "results.csv", "iso_accuracy.csv", "iso_accuracy.md"}
    assert shared <= set(a) and set(a) == set(b)
    assert [k for k in a if k.startswith("points/")] == [k for k in b if k.startswith("points/")]
    for name in shared:
        assert a[name] == b[name], name
    for name in a:
        if name.endswith(".json") and not name.endswith("computations.jsonl"):
            ra, rb = json.loads(a[name]), json.loads(b[name])
            if "point" in ra:  # a point or the reference: same point, paths relative to out
                assert ra["point"] == rb["point"] and ra["key"] == rb["key"]
                assert ra["point"]["model"] == "../../in/m.pt"
                assert ra["point"]["hw"] == "../../in/hw.yaml"
    for name, blob in a.items():
        if not name.endswith(".png"):
            assert str(tmp_path).encode() not in blob, f"{name} holds a machine path"
