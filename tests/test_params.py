"""The one strict YAML loader and the one validation path (codesign.params), and its users:
model specs, checkpoints, npz labels and NIR metadata."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from codesign import params
from codesign.errors import CodesignError
from codesign.params import load_yaml, parse_yaml

MODELS = __import__("pathlib").Path(__file__).resolve().parent.parent / "models"


def _write(tmp_path, data: bytes | str, name: str = "f.yaml"):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return p


# ----------------------------------------------------------------------------- the loader


def test_plain_file_loads(tmp_path):
    p = _write(tmp_path, "a: 1\nb: {c: [1, 2.5, 1e-3]}\nd: h\u00e9\n")
    assert load_yaml(p) == {"a": 1, "b": {"c": [1, 2.5, 0.001]}, "d": "h\u00e9"}


def test_duplicate_key_names_both_lines(tmp_path):
    p = _write(tmp_path, "x: 1\nsec:\n  rows: 64\n  cols: 64\n  rows: 128\n")
    with pytest.raises(CodesignError) as e:
        load_yaml(p)
    msg = str(e.value)
    assert str(p) in msg and "duplicate key 'rows' (first at line 3)" in msg
    assert "line 5" in msg and "\n" not in msg


def test_non_utf8_and_binary_refused(tmp_path):
    p = _write(tmp_path, b"a: 1\nb: caf\xe9\n")
    with pytest.raises(CodesignError, match=r"byte 11 \(line 2\) is not UTF-8"):
        load_yaml(p)
    p = _write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CodesignError, match="binary data"):
        load_yaml(p)


def test_deep_nesting_refused_without_recursion_error(tmp_path):
    depth = 5000  # far beyond Python's recursion limit
    p = _write(tmp_path, "a: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(CodesignError, match=f"nested deeper than {params.MAX_YAML_DEPTH}"):
        load_yaml(p)
    ok = "a: " + "[" * (params.MAX_YAML_DEPTH - 1) + "1" + "]" * (params.MAX_YAML_DEPTH - 1)
    v = parse_yaml(ok)["a"]
    for _ in range(params.MAX_YAML_DEPTH - 1):
        v = v[0]
    assert v == 1


def test_huge_integers_refused(tmp_path):
    p = _write(tmp_path, "node: " + "9" * 400 + "\n")
    with pytest.raises(CodesignError, match="integer with 400 digits is too large"):
        load_yaml(p)
    with pytest.raises(CodesignError, match="too large"):
        parse_yaml(f"n: {2 ** 63}\n")
    assert parse_yaml(f"n: {2 ** 63 - 1}\n") == {"n": 2 ** 63 - 1}


@pytest.mark.parametrize("text,key", [("theta: .inf\n", "theta"), ("a: {b: [1, .nan]}\n",
                                                                     r"a\.b\[1\]"),
                                      ("a: -.Inf\n", "a")])
def test_non_finite_numbers_refused_with_key_path(text, key):
    with pytest.raises(CodesignError, match=rf"f\.yaml: {key}: non-finite number"):
        parse_yaml(text, "f.yaml")


@pytest.mark.parametrize("text,what", [("- 1\n- 2\n", "got list"), ("", "empty file"),
                                       ("just text\n", "got str"), ("a: *x\n", "aliases"),
                                       ("a: &x 1\nb: *x\n", "aliases"),
                                       ("? [1, 2]\n: 3\n", "key must be text"),
                                       ("1: a\n", "expected a text key"),
                                       ("a: [1\n", "invalid YAML at line 2")])
def test_bad_shapes_refused(text, what):
    with pytest.raises(CodesignError, match=r"^f\.yaml: .*" + what):
        parse_yaml(text, "f.yaml")


def test_missing_folder_and_huge_file(tmp_path):
    with pytest.raises(CodesignError, match="no such file"):
        load_yaml(tmp_path / "nope.yaml", "workload file")
    with pytest.raises(CodesignError, match="is a folder"):
        load_yaml(tmp_path)
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(params.MAX_YAML_BYTES + 1)
    with pytest.raises(CodesignError, match="bytes; expected at most"):
        load_yaml(big)


# ----------------------------------------------------------------------------- single checks


def test_single_value_checks():
    assert params.check_bits(16, "f", "wbits") == 16
    assert params.check_bits(None, "f", "wbits") is None
    for bad in (0, 17, 99, 4.5, "4", True, float("nan")):
        with pytest.raises(CodesignError, match="f: wbits: expected a bit-width, an integer "
                                                "1..16"):
            params.check_bits(bad, "f", "wbits")
    assert params.check_int(4.0, "f", "k", ge=1) == 4
    with pytest.raises(CodesignError, match=r"got 1000000000[0-9]*\.\.\.$"):
        params.check_int(10 ** 400, "f", "k", ge=1, le=10)
    for bad in (float("inf"), float("nan"), 10 ** 400, "1.0", None, False):
        with pytest.raises(CodesignError):
            params.check_real(bad, "f", "x", gt=0)
    assert params.check_real(1e300, "f", "x") == 1e300
    for bad in ("no", "false", 0, 1, None):
        with pytest.raises(CodesignError, match="expected true or false"):
            params.check_bool(bad, "f", "batch_norm")
    with pytest.raises(CodesignError, match="did you mean 'subtract'"):
        params.check_choice("subtrat", "f", "reset", ("subtract", "zero"))
    with pytest.raises(CodesignError, match="exceeds the limit of 10,000"):
        params.check_size(10_001, 10_000, "f", "T", "T")


# ----------------------------------------------------------------------------- model specs


def _spec_refused(spec, *fragments):
    from codesign.snn.zoo import resolve_spec

    with pytest.raises(CodesignError) as e:
        resolve_spec(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_model_spec_file_through_the_strict_loader(tmp_path):
    from codesign.snn.zoo import resolve_spec

    p = _write(tmp_path, "arch: vgg\nchannels: [8, M]\nfc: []\nT: 2\n", "m.yaml")
    assert resolve_spec(p)["T"] == 2
    p = _write(tmp_path, "- arch\n- vgg\n", "list.yaml")
    _spec_refused(p, "list.yaml", "top level: expected a mapping")
    p = _write(tmp_path, "arch: vgg\nT: 2\nT: 3\nchannels: [8]\n", "dup.yaml")
    _spec_refused(p, "dup.yaml", "duplicate key 'T'")
    p = _write(tmp_path, b"arch: vgg\nname: \xff\n", "bin.yaml")
    _spec_refused(p, "bin.yaml", "not UTF-8")


@pytest.mark.parametrize("key,value,fragments", [
    ("batch_norm", "no", ("batch_norm", "true or false")),
    ("T", 10 ** 9, ("T", "<= 10,000")),
    ("T", 0, ("T",)),
    ("image_size", 10 ** 7, ("image_size", "<= 4,096")),
    ("num_classes", 10 ** 6, ("num_classes", "<= 10,000")),
    ("quant", None, ("quant", "expected a mapping")),
    ("neuron", [1], ("neuron", "expected a mapping")),
    ("channels", [32, "M", 10 ** 9], ("channels[2]",)),
    ("channels", [4096, 4096, 4096, 4096], ("weights", "exceeds the limit")),
])
def test_model_spec_values_refused(key, value, fragments):
    from codesign.snn.zoo import PRESETS

    spec = {"name": "x", **copy.deepcopy(PRESETS["vgg-small"]), key: value}
    _spec_refused(spec, *fragments)


@pytest.mark.parametrize("key,value,fragment", [
    ("beta", "0.9", "neuron.beta"), ("theta", float("inf"), "neuron.theta"),
    ("theta", 0, "neuron.theta"), ("reset", "none", "neuron.reset")])
def test_model_spec_neuron_values_refused(key, value, fragment):
    from codesign.snn.zoo import PRESETS

    spec = {**copy.deepcopy(PRESETS["vgg-small"]), "neuron": {key: value}}
    _spec_refused(spec, fragment)


def test_model_spec_quant_bits_refused():
    from codesign.snn.zoo import PRESETS

    for key in ("wbits", "first_bits", "last_bits", "ubits"):
        spec = {**copy.deepcopy(PRESETS["vgg-small"]), "quant": {key: 17}}
        _spec_refused(spec, f"quant.{key}", "16")


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def student_blob():
    return torch.load(MODELS / "student_w4u4.pt", map_location="cpu", weights_only=True)


def _ckpt_refused(tmp_path, blob, *fragments):
    from codesign.snn.checkpoint import load_checkpoint

    p = tmp_path / "c.pt"
    torch.save(blob, p)
    with pytest.raises(CodesignError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_checkpoint_contents_type_checked(tmp_path, student_blob):
    b = copy.copy(student_blob)
    for key, value, frag in [("meta", [1], "meta: expected a mapping"),
                             ("state_dict", "weights", "state_dict: expected a mapping"),
                             ("spec", str(MODELS / "README.md"), "spec: expected a mapping"),
                             ("version", 99, "version 99 is not supported"),
                             ("version", True, "version True")]:
        _ckpt_refused(tmp_path, {**b, key: value}, frag)


def test_checkpoint_spec_values(tmp_path, student_blob):
    b = student_blob
    _ckpt_refused(tmp_path, {**b, "spec": {**b["spec"], "neuron": {**b["spec"]["neuron"],
                                                                   "beta": "0.5"}}},
                  "bad spec in checkpoint", "neuron.beta")
    _ckpt_refused(tmp_path, {**b, "spec": {**b["spec"], "quant": None}}, "quant")
    _ckpt_refused(tmp_path, {**b, "spec": {**b["spec"], "image_size": 3_000_000}},
                  "image_size")


def test_checkpoint_tensors(tmp_path, student_blob):
    b = student_blob
    sd = dict(b["state_dict"])
    w = sd["layers.conv1.op.weight"].clone()
    w[0, 0, 0, 0] = float("nan")
    _ckpt_refused(tmp_path, {**b, "state_dict": {**sd, "layers.conv1.op.weight": w}},
                  "state_dict.layers.conv1.op.weight", "1 non-finite")
    for step in (0.0, -0.1):
        _ckpt_refused(tmp_path, {**b, "state_dict": {**sd, "layers.fc1.wq.scale":
                                                      torch.tensor([step])}},
                      "layers.fc1.wq.scale", "expected every step > 0")
    _ckpt_refused(tmp_path, {**b, "state_dict": {**sd, "layers.fc1.wq.scale": [1.0]}},
                  "expected a tensor")


def test_shipped_checkpoints_still_load():
    from codesign.snn.checkpoint import load_checkpoint

    for name in ("student_w4u4.pt", "teacher_fp.pt"):
        model, meta = load_checkpoint(MODELS / name)
        assert isinstance(meta, dict) and sum(p.numel() for p in model.parameters()) > 1000


# ----------------------------------------------------------------------------- npz


def _digits_arrays():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * (255 / 16)).astype(np.uint8)
    return x, d.target.astype(np.int64)


def test_npz_labels_bounded_and_test_labels_seen(tmp_path):
    from codesign.data.npz import load_npz

    x, y = _digits_arrays()
    p = tmp_path / "d.npz"
    y_big = y.copy()
    y_big[0] = 1_000_000
    np.savez(p, x=x, y=y_big)
    with pytest.raises(CodesignError, match=r"label 1000000; expected labels 0..9999"):
        load_npz(f"npz:{p}", split_seed=0, test_fraction=0.2)
    train, test = (y != 9), (y == 9) | (y == 0)
    np.savez(p, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    with pytest.raises(CodesignError, match=r"y_test' has label\(s\) \[9\] that never occur"):
        load_npz(f"npz:{p}", split_seed=0, test_fraction=0.2)
    np.savez(p, x_train=x[:1500], y_train=y[:1500], x_test=x[1500:], y_test=y[1500:])
    split = load_npz(f"npz:{p}", split_seed=0, test_fraction=0.2)
    assert split is not None


# ----------------------------------------------------------------------------- NIR metadata


_NIR_CACHE: list = []


def _student_nir(tmp_path):
    """A fresh copy of the shipped student's NIR graph (built once)."""
    from codesign.graph.from_model import graph_from_checkpoint
    from codesign.graph.nir_io import graph_to_nir

    if not _NIR_CACHE:
        _NIR_CACHE.append(graph_to_nir(graph_from_checkpoint(MODELS / "student_w4u4.pt"),
                                       max_pool="sum"))
    return copy.deepcopy(_NIR_CACHE[0])


@pytest.mark.parametrize("key,value,fragment", [
    ("wbits", 99, "metadata.codesign.wbits: expected a bit-width, an integer 1..16"),
    ("ubits", 17, "metadata.codesign.ubits"), ("theta", math.inf, "metadata.codesign.theta"),
    ("beta", "0.5", "metadata.codesign.beta"), ("has_bias", "no", "has_bias")])
def test_nir_node_metadata_validated(tmp_path, key, value, fragment):
    from codesign.graph.nir_io import META_KEY, nir_to_graph

    ng = _student_nir(tmp_path)
    names = [n for n, node in ng.nodes.items()
             if key in (node.metadata or {}).get(META_KEY, {})]
    assert names, key
    ng.nodes[names[0]].metadata[META_KEY][key] = value
    with pytest.raises(CodesignError, match=fragment):
        nir_to_graph(ng, where="s.nir")
    assert nir_to_graph(_student_nir(tmp_path), where="s.nir").graph["T"] >= 1


def test_nir_T_bounded(tmp_path):
    from codesign.graph.nir_io import META_KEY, nir_to_graph

    ng = _student_nir(tmp_path)
    with pytest.raises(CodesignError, match=r"s\.nir: T: expected an integer >= 1 and <= 10,000"):
        nir_to_graph(ng, where="s.nir", T=1_000_000_000)
    ng.metadata[META_KEY]["T"] = 10 ** 9
    with pytest.raises(CodesignError, match="metadata.codesign.T"):
        nir_to_graph(ng, where="s.nir")
    with pytest.raises(CodesignError, match="s.nir: wbits"):
        nir_to_graph(_student_nir(tmp_path), where="s.nir", wbits=99)
