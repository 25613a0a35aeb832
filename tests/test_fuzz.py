"""Fuzz every input codesign reads: bad input is refused in one line, or runs cleanly.

Mutations of every hardware preset (``hw_configs/``), every workload (``models/workloads/``),
the model specs of the zoo presets and the shipped W4/U4 checkpoint: every key path deleted,
renamed, and set to each bad value class (wrong type, bool, negative, zero, huge int, 1e300,
inf, nan, string, list, null); and file-level damage (duplicate key, non-UTF-8 bytes, deep
nesting, a 400-digit integer literal). Each run must end in one of

* a clean refusal: :class:`~codesign.errors.CodesignError` with a one-line message naming the
  source, which the CLI prints as one line with exit status 2 (checked through ``CliRunner``
  for a sample of every class), or
* a clean run: the value was acceptable; a hardware spec or workload that loads is then mapped
  (dense) and must give finite energy, latency, area and EDAP; a model spec or checkpoint that
  loads builds its network.

Anything else (another exception type, a non-finite total) is a failure. In process, on
dense mapping, no data: a few seconds. Counts per class are printed (``pytest -s``) and
collected in ``COUNTS``.
"""

from __future__ import annotations

import copy
import glob
import math
import os
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner

from codesign.errors import CodesignError
from codesign.graph.workload import load_workload, parse_workload
from codesign.hw import map_network
from codesign.hw.spec import load_spec, spec_from_dict
from codesign.params import load_yaml
from codesign.snn.checkpoint import model_from_blob
from codesign.snn.zoo import resolve_spec

ROOT = Path(__file__).resolve().parent.parent
HW_PRESETS = sorted(glob.glob(str(ROOT / "hw_configs" / "*.yaml")))
WORKLOADS = sorted(glob.glob(str(ROOT / "models" / "workloads" / "*.yaml")))
CHECKPOINT = ROOT / "models" / "student_w4u4.pt"

#: A small graph (conv, pool, linear readout) that accepted hardware mutations are mapped on.
_MAP_WORKLOAD = {"name": "fuzz-small", "input_shape": [3, 8, 8], "T": 2,
                 "layers": [{"conv": 8, "k": 3, "p": 1}, {"pool": "avg", "k": 2},
                            {"conv": 8, "k": 3, "p": 1}, {"flatten": True},
                            {"linear": 10, "lif": False}]}

BAD_VALUES: dict[str, Any] = {
    "wrong_type": {"unexpected": {"nested": 1}},
    "bool": True,
    "negative": -1,
    "zero": 0,
    "huge_int": 10 ** 400,
    "1e300": 1e300,
    "inf": math.inf,
    "nan": math.nan,
    "string": "not-a-value",
    "list": [1, 2],
    "null": None,
}
CLASSES = ("delete", "rename", *BAD_VALUES, "duplicate_key", "non_utf8", "deep_nesting",
           "huge_int_literal")

#: (input kind, class) -> Counter of outcomes ("runs", "refused", "accepted")
COUNTS: dict[tuple[str, str], Counter] = defaultdict(Counter)
FAILURES: list[str] = []


# ----------------------------------------------------------------------------- mutations


def _paths(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path of a nested dict/list (mappings and list items, leaves and sections)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _parent(obj: Any, path: tuple) -> Any:
    for p in path[:-1]:
        obj = obj[p]
    return obj


def _copy(obj: Any, path: tuple) -> Any:
    """Copy of ``obj`` in which the containers on the way to ``path``'s parent are new and
    everything else is shared with ``obj`` (the mutation then changes only the copy): a few
    small copies per case instead of the whole tree. The fuzz tests check at their end that the
    shared base was not changed by the code under test (:func:`_unchanged`)."""
    root = node = obj.copy()
    for p in path[:-1]:
        node[p] = node[p].copy()
        node = node[p]
    return root


def _unchanged(base: Any, snapshot: Any) -> None:
    assert base == snapshot, "the code under test changed its input dict in place"


def mutations(base: dict, paths: list[tuple]) -> Iterator[tuple[str, tuple, dict]]:
    """(class, path, mutated copy) for every path: deleted, renamed, set to each bad value."""
    for path in paths:
        d = _copy(base, path)
        par, last = _parent(d, path), path[-1]
        if isinstance(par, dict):
            del par[last]
            yield "delete", path, d
            d = _copy(base, path)
            par = _parent(d, path)
            par[f"{last}_x"] = par.pop(last)
            yield "rename", path, d
        else:
            del par[last]
            yield "delete", path, d
        for cls, value in BAD_VALUES.items():
            d = _copy(base, path)
            _parent(d, path)[last] = copy.deepcopy(value)
            yield cls, path, d


def _hw_paths(base: dict, n_full: int = 6) -> list[tuple]:
    """Every key path of a preset, except repeats of the same case: inside ``sources:`` only the
    map itself and its first two entries; of a quantity ``{value, unit, source}`` the ``value``
    always, its ``unit`` and ``source`` for the first ``n_full`` quantities only."""
    out, full = [], 0
    for kp in _paths(base):
        if kp[0] == "sources" and len(kp) > 1:
            continue
        if kp[-1] in ("unit", "source") and len(kp) > 1:
            if kp[-1] == "unit":
                full += 1
            if full > n_full:
                continue
        out.append(kp)
    out += [("sources", k) for k in list(base.get("sources") or {})[:2]]
    return out


def file_mutations(text: str) -> Iterator[tuple[str, bytes]]:
    """File-level damage of a YAML text: a duplicated key, a non-UTF-8 byte, deep nesting and a
    400-digit integer literal, each at the first and at a middle top-level key."""
    lines = text.splitlines(keepends=True)
    tops = [i for i, ln in enumerate(lines) if ln[:1].isalpha() and ":" in ln]
    for i in {tops[0], tops[len(tops) // 2]}:
        key = lines[i].split(":", 1)[0]
        dup = lines[:]
        dup.insert(len(lines), f"{key}: 1\n")
        yield "duplicate_key", "".join(dup).encode()
        bad = text.encode()
        at = len("".join(lines[:i]).encode()) + len(key)
        yield "non_utf8", bad[:at] + b"\xff\xfe" + bad[at:]
        deep = lines[:]
        deep[i] = f"{key}: " + "[" * 3000 + "]" * 3000 + "\n"
        yield "deep_nesting", "".join(_drop_block(deep, i)).encode()
        huge = lines[:]
        huge[i] = f"{key}: " + "9" * 400 + "\n"
        yield "huge_int_literal", "".join(_drop_block(huge, i)).encode()


def _drop_block(lines: list[str], i: int) -> list[str]:
    """Remove the indented block under line ``i`` (its old value)."""
    j = i + 1
    while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
        j += 1
    return lines[: i + 1] + lines[j:]


# ----------------------------------------------------------------------------- running


def attempt(kind: str, cls: str, label: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; record a clean refusal, a clean run, or a failure (anything else)."""
    c = COUNTS[(kind, cls)]
    c["runs"] += 1
    try:
        out = fn()
    except CodesignError as e:
        msg = str(e)
        if "\n" in msg or not msg.strip():
            FAILURES.append(f"{kind}/{cls} {label}: multi-line or empty message {msg!r}")
        c["refused"] += 1
        return None
    except Exception:  # noqa: BLE001 - that is the point: anything else is a failure
        FAILURES.append(f"{kind}/{cls} {label}:\n{traceback.format_exc(limit=4)}")
        return None
    c["accepted"] += 1
    return out if out is not None else True


def fuzz(kind: str, name: str, base: dict, paths: list[tuple],
         check: Callable[[dict, str], Any], text: str, file: Path,
         check_file: Callable[[Path], Any]) -> None:
    """The fuzz of one input: ``check(base, name)`` must pass; every value mutation of ``base``
    at ``paths`` (``check(mutated, label)``) and every file mutation of its ``text`` (written to
    ``file``, ``check_file(file)``) must pass or raise one clear CodesignError line
    (:func:`attempt`); ``base`` is left unchanged."""
    snapshot = copy.deepcopy(base)
    assert attempt(kind, "original", name, lambda: check(base, name))
    for cls, kp, d in mutations(base, paths):
        label = f"{name}:{'.'.join(map(str, kp))}"
        attempt(kind, cls, label, lambda d=d, label=label: check(d, label))
    _unchanged(base, snapshot)
    for cls, data in file_mutations(text):
        file.write_bytes(data)
        attempt(kind, cls, name, lambda: check_file(file))
    _no_failures()


def _finite_totals(summary: dict, label: str) -> None:
    for k in ("energy_pj", "latency_ns", "area_um2", "edap_pj_ns_mm2"):
        v = summary.get(k)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise AssertionError(f"{label}: accepted, but {k} = {v!r}")


@pytest.fixture(scope="module")
def map_graph():
    return parse_workload(_MAP_WORKLOAD, where="fuzz-small")


@pytest.fixture(scope="module")
def a_spec():
    return load_spec(ROOT / "hw_configs" / "sram_neurosim_22nm.yaml")


def _check_hw(raw: dict, label: str, graph) -> None:
    spec = spec_from_dict(raw, file=label)
    _finite_totals(map_network(graph, spec).summary, label)


def _check_workload(raw: dict, label: str, spec) -> None:
    g = parse_workload(raw, where=label)
    _finite_totals(map_network(g, spec).summary, label)


def _check_model(spec: dict, label: str) -> None:
    from codesign.snn.zoo import build_model

    full = resolve_spec(spec)
    build_model(full)


# ----------------------------------------------------------------------------- the fuzz


@pytest.mark.parametrize("path", HW_PRESETS, ids=os.path.basename)
def test_fuzz_hardware_presets(path, map_graph, tmp_path):
    base = load_yaml(path)
    name = os.path.basename(path)
    fuzz("hw", name, base, _hw_paths(base), lambda d, label: _check_hw(d, label, map_graph),
         Path(path).read_text(encoding="utf-8"), tmp_path / name,
         lambda p: _check_hw_file(p, map_graph))


def _check_hw_file(p: Path, graph) -> None:
    spec = load_spec(p)
    _finite_totals(map_network(graph, spec).summary, str(p))


def _layer_paths(base: dict) -> list[tuple]:
    """Top-level paths, and the paths of one layer entry per distinct entry shape."""
    out = [(k,) for k in base] + [kp for kp in _paths(base) if kp[0] != "layers" and len(kp) > 1]
    seen = set()
    for i, entry in enumerate(base.get("layers", [])):
        sig = tuple(sorted(entry)) if isinstance(entry, dict) else repr(entry)
        if sig in seen:
            continue
        seen.add(sig)
        out.append(("layers", i))
        out += [("layers", *kp) for kp in _paths({i: entry}) if len(kp) > 1]
    return out


@pytest.mark.parametrize("path", WORKLOADS, ids=os.path.basename)
def test_fuzz_workloads(path, a_spec, tmp_path):
    base = load_yaml(path)
    name = os.path.basename(path)
    fuzz("workload", name, base, _layer_paths(base),
         lambda d, label: _check_workload(d, label, a_spec),
         Path(path).read_text(encoding="utf-8"), tmp_path / name, load_workload)


@pytest.mark.parametrize("preset", ["vgg-small", "resnet-small"])
def test_fuzz_model_specs(preset, tmp_path):
    base = resolve_spec(preset)
    fuzz("model", preset, base, list(_paths(base)), _check_model,
         yaml.safe_dump(base, sort_keys=False), tmp_path / f"{preset}.yaml", _check_model_file)


def _check_model_file(p: Path) -> None:
    from codesign.snn.zoo import build_model

    build_model(p)


@pytest.fixture
def one_thread():
    """Small tensors: one intra-op thread is faster (and fair on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_fuzz_checkpoint(one_thread):
    blob = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    label = "student_w4u4.pt"
    assert attempt("checkpoint", "original", label, lambda: model_from_blob(blob, label))
    sd = blob["state_dict"]
    tensor_keys = [k for k in sd if k.startswith(("layers.conv1.", "layers.lif1.",
                                                  "layers.fc_out."))]
    paths = ([(k,) for k in blob]
             + [("spec", *kp) for kp in _paths(blob["spec"])]
             + [("meta", k) for k in list(blob["meta"])[:2]]
             + [("state_dict", k) for k in tensor_keys])
    shallow = {k: v for k, v in blob.items() if k != "state_dict"}
    snapshot = copy.deepcopy(shallow)
    for cls, kp, d in mutations(shallow, [p for p in paths if p[0] != "state_dict"]):
        d["state_dict"] = sd
        lb = f"{label}:{'.'.join(map(str, kp))}"
        attempt("checkpoint", cls, lb, lambda d=d, lb=lb: model_from_blob(d, lb))
    _unchanged(shallow, snapshot)
    for _, k in [p for p in paths if p[0] == "state_dict" and len(p) == 2]:
        t = sd[k]
        variants = {"delete": None, "rename": None,
                    "nan": torch.full_like(t, math.nan) if t.is_floating_point() else None,
                    "inf": torch.full_like(t, math.inf) if t.is_floating_point() else None,
                    "zero": torch.zeros_like(t), "negative": -torch.ones_like(t),
                    "1e300": torch.full(t.shape, 1e300, dtype=torch.float64),
                    "wrong_type": torch.zeros(3, 1, 7), "string": "w", "list": [1.0],
                    "null": None}
        for cls, value in variants.items():
            new = dict(sd)
            if cls in ("delete", "rename"):
                new.pop(k)
                if cls == "rename":
                    new[k + "_x"] = t
            elif value is None and cls != "null":
                continue
            else:
                new[k] = value
            d = {**blob, "state_dict": new}
            lb = f"{label}:state_dict.{k}"
            attempt("checkpoint", cls, lb, lambda d=d, lb=lb: model_from_blob(d, lb))
    _no_failures()


def test_deep_nesting_refused_by_the_scanner():
    """The flow-nesting limit fires in the YAML scanner, at the 33rd bracket (column 36 of
    ``a: [[[...``), before PyYAML scans ~1,000 brackets ahead (0.3 s a file, most of this
    test's deep-nesting cases); the composer alone would stop at the 32nd (column 35)."""
    from codesign.params import MAX_YAML_DEPTH, parse_yaml

    with pytest.raises(CodesignError, match=rf"line 1, column {MAX_YAML_DEPTH + 4}: nested "
                                            rf"deeper than {MAX_YAML_DEPTH} levels"):
        parse_yaml("a: " + "[" * 3000 + "]" * 3000 + "\n")


# ----------------------------------------------------------------------------- the CLI


def _cli_one_line(args: list[str], must_name: str) -> None:
    from codesign.cli.main import cli

    r = CliRunner().invoke(cli, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert r.exit_code == 2, (args, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign: error: "), r.stderr
    assert must_name in lines[0], lines[0]


def test_cli_refuses_each_file_class_in_one_line(tmp_path):
    """A sample of each class through ``codesign map`` / ``codesign info``: status 2, one line."""
    wl = Path(WORKLOADS[0]).read_text(encoding="utf-8")
    hw = Path(HW_PRESETS[0]).read_text(encoding="utf-8")
    seen = set()
    for text, role in ((hw, "hw"), (wl, "workload")):
        for cls, data in file_mutations(text):
            if (role, cls) in seen:
                continue
            seen.add((role, cls))
            p = tmp_path / f"{role}-{cls}.yaml"
            p.write_bytes(data)
            out = tmp_path / f"out-{role}-{cls}"
            if role == "hw":
                args = ["map", "--quiet", WORKLOADS[0], "--hw", str(p), "--dense", "--out",
                        str(out)]
            else:
                args = ["map", "--quiet", str(p), "--hw", HW_PRESETS[0], "--dense", "--out",
                        str(out)]
            _cli_one_line(args, p.name)
            assert not out.exists()
    blob = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    for key, value in (("spec", "/etc/passwd"), ("version", 99), ("meta", [1])):
        p = tmp_path / f"ck-{key}.pt"
        torch.save({**blob, key: value}, p)
        _cli_one_line(["info", str(p)], p.name)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out in (a_file, a_file / "under"):
        _cli_one_line(["map", "--quiet", WORKLOADS[0], "--hw", HW_PRESETS[0], "--dense", "--out",
                       str(out)], str(a_file))


# ----------------------------------------------------------------------------- the counts


def _no_failures() -> None:
    if FAILURES:
        shown = "\n\n".join(FAILURES[:8])
        pytest.fail(f"{len(FAILURES)} fuzz run(s) ended badly (first shown):\n{shown}")


def test_fuzz_counts_report():
    """Print the counts per input kind and class (run with ``-s``); every class was run."""
    if not COUNTS:
        pytest.skip("run together with the fuzz tests above")
    by_class: dict[str, Counter] = defaultdict(Counter)
    for (_kind, cls), c in sorted(COUNTS.items()):
        by_class[cls].update(c)
    lines = [f"{'class':<18}{'runs':>7}{'refused':>9}{'accepted':>10}"]
    for cls in ("original", *CLASSES):
        c = by_class.get(cls, Counter())
        lines.append(f"{cls:<18}{c['runs']:>7}{c['refused']:>9}{c['accepted']:>10}")
    tot = sum(by_class.values(), Counter())
    lines.append(f"{'total':<18}{tot['runs']:>7}{tot['refused']:>9}{tot['accepted']:>10}")
    kinds: dict[str, Counter] = defaultdict(Counter)
    for (kind, _), c in COUNTS.items():
        kinds[kind].update(c)
    for kind, c in sorted(kinds.items()):
        lines.append(f"  {kind:<16}{c['runs']:>7}{c['refused']:>9}{c['accepted']:>10}")
    print("\nfuzz counts\n" + "\n".join(lines))
    for cls in CLASSES:
        assert by_class[cls]["runs"] > 0, cls
    assert not FAILURES
