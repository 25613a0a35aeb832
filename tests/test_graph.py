"""Tests for codesign.graph: shape inference, validation, workload files, NIR read/write."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import nir
import numpy as np
import pytest
import yaml

from codesign.errors import CodesignError
from codesign.graph.build import (
    GraphBuilder,
    conv_out_shape,
    pool_out_shape,
    summary,
    synaptic_layers,
    topo_layers,
    total_macs_per_step,
    validate_graph,
)
from codesign.graph.nir_io import graph_to_nir, nir_to_graph, read_nir, write_nir
from codesign.graph.schema import AddLayer, ConvLayer, LIFLayer
from codesign.graph.workload import load_workload, parse_workload

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "models" / "workloads"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_nir_fixtures",
                                                  FIXTURES / "make_nir_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- shape inference


@pytest.mark.parametrize(
    "in_shape, args, expected",
    [
        ((3, 32, 32), dict(out_channels=64, kernel=3, padding=1), (64, 32, 32)),
        ((3, 32, 32), dict(out_channels=64, kernel=3, stride=2, padding=1), (64, 16, 16)),
        ((1, 28, 28), dict(out_channels=8, kernel=5), (8, 24, 24)),  # (28 - 5)/1 + 1
        ((2, 10, 7), dict(out_channels=4, kernel=(3, 1), stride=(2, 1)), (4, 4, 7)),  # 7//2+1=4
        ((4, 9, 9), dict(out_channels=4, kernel=3, padding=2, dilation=2), (4, 9, 9)),
        ((128, 32, 32), dict(out_channels=256, kernel=1, stride=2), (256, 16, 16)),
    ],
)
def test_conv_out_shape(in_shape, args, expected):
    assert conv_out_shape(in_shape, **args) == expected


def test_pool_out_shape_and_collapse():
    assert pool_out_shape((64, 32, 32), 2) == (64, 16, 16)
    assert pool_out_shape((8, 32, 32), 3, 2, 1) == (8, 16, 16)  # (32 + 2 - 3)//2 + 1
    assert pool_out_shape((8, 5, 5), 2) == (8, 2, 2)  # floor, no ceil_mode
    with pytest.raises(CodesignError, match="collapses to zero"):
        pool_out_shape((8, 1, 1), 2)
    with pytest.raises(CodesignError, match="collapses to zero"):
        conv_out_shape((3, 3, 3), 8, 5)
    with pytest.raises(CodesignError, match=r"\(C, H, W\)"):
        conv_out_shape((10,), 8, 3)


def _tiny(with_weights: bool = False, **kw) -> GraphBuilder:
    rng = np.random.default_rng(0)
    w = (lambda *s: rng.standard_normal(s).astype(np.float32)) if with_weights else (
        lambda *s: None)
    b = GraphBuilder((1, 8, 8), name="tiny", T=3, **kw)
    b.add_conv("conv1", 4, 3, padding=1, weight=w(4, 1, 3, 3), wbits=4)
    b.add_lif("lif1", beta=0.5, theta=1.5, reset="zero", ubits=6)
    b.add_pool("pool1", "avg", 2)
    b.add_flatten("flat")
    b.add_linear("fc", 10, weight=w(10, 64))
    b.add_output()
    return b


def test_builder_shapes_macs_and_summary():
    g = _tiny().build()
    conv = g.nodes["conv1"]["layer"]
    assert conv.out_shape == (4, 8, 8)
    assert conv.macs_per_step == 4 * 8 * 8 * 1 * 9  # 2304
    assert g.nodes["pool1"]["layer"].out_shape == (4, 4, 4)
    assert g.nodes["fc"]["layer"].in_features == 64
    assert [n for n, _ in topo_layers(g)] == ["input", "conv1", "lif1", "pool1", "flat", "fc",
                                                "output"]
    assert [n for n, _ in synaptic_layers(g)] == ["conv1", "fc"]
    assert total_macs_per_step(g) == 2304 + 640
    df = summary(g)
    assert list(df["name"]) == ["input", "conv1", "lif1", "pool1", "flat", "fc", "output"]
    row = df.set_index("name")
    assert row.loc["conv1", "macs_per_step"] == 2304 and row.loc["conv1", "params"] == 36
    assert row.loc["conv1", "wbits"] == 4 and row.loc["lif1", "ubits"] == 6
    assert row.loc["fc", "in_shape"] == (64,) and row.loc["fc", "out_shape"] == (10,)
    assert row.loc["lif1", "neurons"] == 256


def test_builder_refuses_bad_shapes():
    b = GraphBuilder((3, 8, 8), name="bad")
    with pytest.raises(CodesignError, match="flatten"):
        b.add_linear("fc", 10)
    b.add_conv("c1", 4, 3)
    b.add_conv("c2", 6, 3, src="input")
    with pytest.raises(CodesignError, match="one shape"):
        b.add_add("sum", ["c1", "c2"])
    with pytest.raises(CodesignError, match="duplicate"):
        b.add_lif("c1")


def _with_layer_field(g, node: str, **fields):
    """A copy of graph ``g`` whose ``node`` has a copy of its layer with ``fields`` set (``g``
    and its layers untouched)."""
    g2 = g.copy()
    layer = copy.copy(g.nodes[node]["layer"])
    for k, v in fields.items():
        setattr(layer, k, v)
    g2.nodes[node]["layer"] = layer
    return g2


@pytest.mark.parametrize("node,fields,match", [
    ("fc", {"in_features": 65}, "'fc'.*input shape"),
    ("conv1", {"in_channels": 3}, "in_channels"),
    ("lif1", {"beta": 1.2}, "beta"),
])
def test_validate_graph_catches_bad_layer_fields(node, fields, match):
    g = _tiny().build()
    with pytest.raises(CodesignError, match=match):
        validate_graph(_with_layer_field(g, node, **fields))
    validate_graph(g)  # the original is untouched and valid


def test_validate_graph_catches_cycles_and_bad_T():
    g = _tiny().build()
    g3 = g.copy()
    g3.add_edge("fc", "conv1")
    with pytest.raises(CodesignError, match="cycle"):
        validate_graph(g3)
    g5 = g.copy()
    g5.graph["T"] = 0
    with pytest.raises(CodesignError, match="T must be"):
        validate_graph(g5)


# ----------------------------------------------------------------------------- workloads


def test_vgg9_workload_macs_by_hand():
    g = load_workload(WORKLOADS / "vgg9_cifar10.yaml")
    assert g.graph["T"] == 5 and g.graph["source"] == "workload"
    syn = dict(synaptic_layers(g))
    assert list(syn) == [f"conv{i}" for i in range(1, 8)] + ["fc1", "fc2"]
    assert [layer.out_channels for n, layer in syn.items() if n.startswith("conv")] == [
        64, 64, 128, 128, 256, 256, 256]
    # conv1: 64 out ch x 32x32 sites x (3 in ch x 3x3) = 1,769,472 MACs per step
    assert syn["conv1"].macs_per_step == 64 * 32 * 32 * 3 * 9 == 1_769_472
    # conv2: 64 x 32x32 x (64 x 9) = 37,748,736
    assert syn["conv2"].macs_per_step == 37_748_736
    # conv5 runs on 8x8 maps after two 2x2 pools: 256 x 8x8 x 128 x 9 = 18,874,368
    assert syn["conv5"].in_shape == (128, 8, 8)
    assert syn["conv5"].macs_per_step == 18_874_368
    # fc1: 256*4*4 = 4096 inputs -> 1024
    assert syn["fc1"].in_features == 4096 and syn["fc1"].macs_per_step == 4_194_304
    conv_macs = 1_769_472 + 37_748_736 + 18_874_368 + 37_748_736 + 18_874_368 + 2 * 37_748_736
    assert total_macs_per_step(g) == conv_macs + 4096 * 1024 + 1024 * 10
    assert all(layer.wbits == 4 for layer in syn.values())
    lifs = [layer for _, layer in topo_layers(g) if isinstance(layer, LIFLayer)]
    assert len(lifs) == 8  # 7 convs + fc1; fc2 is a non-spiking readout
    assert all(lif.beta == 0.5 and lif.theta == 2.0 and lif.ubits == 8 for lif in lifs)
    assert list(g.predecessors("output")) == ["fc2"]
    pools = [n for n, layer in topo_layers(g) if layer.op == "pool"]
    assert [list(g.predecessors(p)) for p in pools] == [["conv2.lif"], ["conv4.lif"],
                                                        ["conv7.lif"]]


def test_vgg16_and_resnet19_workloads():
    g = load_workload(WORKLOADS / "vgg16_cifar10.yaml")
    syn = synaptic_layers(g)
    assert len(syn) == 14 and syn[-1][1].in_features == 512
    k = 9
    conv_params = (3 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 2 * 256 * 256
                   + 256 * 512 + 5 * 512 * 512) * k
    assert summary(g)["params"].sum() == conv_params + 512 * 10

    g = load_workload(WORKLOADS / "resnet19_cifar10.yaml")
    syn = dict(synaptic_layers(g))
    three_by_three = [n for n, layer in syn.items()
                      if isinstance(layer, ConvLayer) and layer.kernel_size == (3, 3)]
    assert len(three_by_three) == 17 and len(syn) == 17 + 2 + 2  # + 2 shortcuts + 2 FC
    assert syn["b4.shortcut"].stride == (2, 2) and syn["b4.shortcut"].out_shape == (256, 16, 16)
    assert set(g.predecessors("b4.add")) == {"b4.conv2", "b4.shortcut"}
    assert set(g.predecessors("b2.add")) == {"b2.conv2", "b1.lif2"}  # identity shortcut
    assert isinstance(g.nodes["b8.add"]["layer"], AddLayer)
    assert syn["b8.conv2"].out_shape == (512, 8, 8)
    assert syn["fc1"].in_features == 512 and syn["fc1"].out_features == 256
    assert syn["fc2"].out_features == 10


def test_residual_block_styles():
    base = {"input_shape": [16, 8, 8], "T": 2, "layers": []}
    sew = dict(base, layers=[{"block": "basic", "channels": 32, "stride": 2, "style": "sew"},
                             {"pool": "avg", "global": True}])
    g = parse_workload(sew)
    assert set(g.predecessors("b1.add")) == {"b1.lif2", "b1.shortcut.lif"}
    assert g.nodes["pool1"]["layer"].in_shape == (32, 4, 4)
    ms = dict(base, layers=[{"conv": 16, "k": 3, "p": 1, "lif": False},
                            {"block": "basic", "channels": 16, "style": "ms", "repeat": 2},
                            {"lif": True}])
    g = parse_workload(ms)
    assert list(g.predecessors("b1.lif0")) == ["conv1"]
    assert set(g.predecessors("b1.add")) == {"b1.conv2", "conv1"}
    assert list(g.predecessors("b2.lif0")) == ["b1.add"]
    assert list(g.predecessors("lif1")) == ["b2.add"]


def test_workload_float_and_defaults(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("input_shape: [784]\nT: 3\ndt_s: 1e-3\nlayers:\n"
                 "  - {linear: 100, lif: {beta: 0.9, ubits: 4}, wbits: 8}\n"
                 "  - {linear: 10, lif: false, bias: true}\n")
    g = load_workload(f)
    assert g.graph["dt_s"] == pytest.approx(1e-3) and g.graph["name"] == "w"
    lif = g.nodes["fc1.lif"]["layer"]
    assert (lif.beta, lif.theta, lif.reset, lif.ubits) == (0.9, 1.0, "subtract", 4)
    assert g.nodes["fc1"]["layer"].wbits == 8 and g.nodes["fc2"]["layer"].has_bias
    assert g.nodes["fc2"]["layer"].wbits is None


BASE = {
    "name": "t",
    "input_shape": [3, 16, 16],
    "T": 4,
    "neuron": {"beta": 0.5, "theta": 1.0, "reset": "subtract"},
    "bits": {"wbits": 4, "ubits": 8},
    "layers": [
        {"conv": 8, "k": 3, "p": 1},
        {"conv": 8, "k": 3, "p": 1},
        {"pool": "max", "k": 2},
        {"flatten": True},
        {"linear": 10, "lif": False},
    ],
}


def _set(d, path, value):
    """Set (or with value=... delete) a nested key given as a tuple path."""
    d = copy.deepcopy(d)
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


@pytest.mark.parametrize(
    "path, value, key",
    [
        (("Tt",), 4, "Tt"),                                  # unknown top-level key
        (("T",), ..., "T: missing"),
        (("T",), 0, "T: expected"),
        (("T",), "5", "T: expected"),
        (("input_shape",), [3, 0, 16], "input_shape"),
        (("input_shape",), ..., "input_shape: missing"),
        (("neuron", "beta"), 1.5, "neuron.beta"),
        (("neuron", "reset"), "hard", "neuron.reset"),
        (("neuron", "thresh"), 1.0, "neuron.thresh"),
        (("bits", "wbits"), 0, "bits.wbits"),
        (("bits", "xbits"), 4, "bits.xbits"),
        (("encoding",), "poisson", "encoding"),
        (("dt_s",), -1.0, "dt_s"),
        (("layers",), [], "layers"),
        (("layers", 0, "k"), -1, "layers[0].k"),
        (("layers", 0, "k"), ..., "layers[0].k: missing"),
        (("layers", 1, "kk"), 3, "layers[1].kk"),           # misspelt key
        (("layers", 0, "conv"), 0, "layers[0].conv"),
        (("layers", 0, "s"), [1, 2, 3], "layers[0].s"),
        (("layers", 0, "p"), "same-ish", "layers[0].p"),
        (("layers", 0, "lif"), {"bta": 0.5}, "layers[0].lif.bta"),
        (("layers", 0, "wbits"), 2.5, "layers[0].wbits"),
        (("layers", 2, "pool"), "mean", "layers[2].pool"),
        (("layers", 2, "k"), 40, "layers[2]"),                # collapses to zero
        (("layers", 3, "flatten"), False, "layers[3].flatten"),
        (("layers", 3), {"flaten": True}, "layers[3].flaten"),
        (("layers", 3), {"conv": 8, "pool": "max", "k": 2}, "layers[3]"),
        (("layers", 3), {"linear": 10}, "layers[3]"),         # linear on a (C, H, W) map
        (("layers", 4, "linear"), -10, "layers[4].linear"),
        (("layers", 1), {"block": "basic", "channels": 8, "stride": 0}, "layers[1].stride"),
        (("layers", 1), {"block": "basic", "channels": 8, "style": "resnet"}, "layers[1].style"),
        (("layers", 1), {"block": "bottleneck", "channels": 8}, "layers[1].block"),
        (("layers", 1), {"block": "basic"}, "layers[1].channels: missing"),
        (("layers", 1), {"conv": 8, "k": 3, "name": "conv1"}, "layers[1].name"),
        (("layers", 1), "conv 8", "layers[1]"),
    ],
)
def test_workload_errors_name_file_and_key(tmp_path, path, value, key):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(_set(BASE, path, value)))
    with pytest.raises(CodesignError) as exc:
        load_workload(f)
    msg = str(exc.value)
    assert str(f) in msg and key in msg, msg
    assert "\n" not in msg


def test_workload_error_hints_and_yaml_problems(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(_set(BASE, ("layers", 1, "kk"), 3)))
    with pytest.raises(CodesignError, match="did you mean 'k'"):
        load_workload(f)
    f.write_text("T: 4\nT: 5\ninput_shape: [1]\nlayers: [{linear: 2}]\n")
    with pytest.raises(CodesignError, match="duplicate key 'T'"):
        load_workload(f)
    f.write_text("T: [4\n")
    with pytest.raises(CodesignError, match="invalid YAML at line"):
        load_workload(f)
    with pytest.raises(CodesignError, match="cannot read"):
        load_workload(tmp_path / "missing.yaml")


def test_workload_graph_cannot_be_exported(tmp_path):
    g = load_workload(WORKLOADS / "vgg9_cifar10.yaml")
    with pytest.raises(CodesignError, match="'conv1'.*no weights"):
        write_nir(g, tmp_path / "x.nir")


# ----------------------------------------------------------------------------- NIR


def _weighted_graph() -> GraphBuilder:
    """Conv -> LIF -> residual add -> IF -> avg pool -> flatten -> affine -> LIF -> output."""
    rng = np.random.default_rng(7)

    def w(*s):
        return rng.standard_normal(s).astype(np.float32)

    b = GraphBuilder((2, 6, 6), name="rt", T=6, dt_s=2e-3, encoding="rate")
    b.add_conv("c1", 4, 3, padding=1, weight=w(4, 2, 3, 3), bias=w(4), wbits=4)
    b.add_lif("l1", beta=0.9, theta=0.7, reset="subtract", ubits=5)
    b.add_conv("c2", 4, 3, padding=1, weight=w(4, 4, 3, 3), wbits=4)
    b.add_conv("sc", 4, 1, src="l1", weight=w(4, 4, 1, 1))
    b.add_add("sum", ["c2", "sc"])
    b.add_lif("l2", beta=1.0, theta=1.25, reset="zero")
    b.add_pool("p", "avg", 2, stride=2)
    b.add_flatten("f")
    b.add_linear("fc", 5, weight=w(5, 36), bias=w(5), wbits=8)
    b.add_lif("l3", beta=0.0, theta=2.0, ubits=8)
    b.add_linear("out_fc", 3, weight=w(3, 5))
    b.add_output("y")
    return b


def _assert_same_graph(g, h):
    assert [n for n, _ in topo_layers(g)] == [n for n, _ in topo_layers(h)]
    assert set(g.edges) == set(h.edges)
    for n, a in topo_layers(g):
        b = h.nodes[n]["layer"]
        assert type(a) is type(b) and a.op == b.op, n
        assert tuple(a.out_shape) == tuple(b.out_shape), n
        for attr in ("wbits", "ubits", "beta", "theta", "reset", "has_bias", "kind",
                     "kernel_size", "stride", "padding", "dilation", "groups"):
            assert getattr(a, attr, None) == getattr(b, attr, None), (n, attr)
        for attr in ("weight", "bias"):
            x, y = getattr(a, attr, None), getattr(b, attr, None)
            assert (x is None) == (y is None), (n, attr)
            if x is not None:
                assert x.dtype == y.dtype and np.array_equal(x, y), (n, attr)


def test_nir_round_trip(tmp_path):
    g = _weighted_graph().build()
    path = write_nir(g, tmp_path / "rt.nir")
    h = read_nir(path)
    _assert_same_graph(g, h)
    for k in ("T", "dt_s", "name", "input_shape", "encoding"):
        assert h.graph[k] == g.graph[k], k
    assert h.graph["source"] == "nir"
    # the file is standard NIR: types as other tools see them
    ng = nir.read(str(path))
    kinds = {n: type(node).__name__ for n, node in ng.nodes.items()}
    assert kinds["l1"] == "LIF" and kinds["l2"] == "IF" and kinds["sum"] == "Scale"
    assert kinds["fc"] == "Affine" and kinds["out_fc"] == "Linear" and kinds["f"] == "Flatten"
    assert int(ng.nodes["f"].start_dim) == 0
    assert np.allclose(ng.nodes["l1"].tau, 2e-3 / (1 - 0.9))


def test_nir_without_our_metadata_recovers_beta_theta():
    g = _weighted_graph().build()
    ng = graph_to_nir(g)
    for node in ng.nodes.values():
        node.metadata = {}
    ng.metadata = {}
    with pytest.raises(CodesignError, match="--dt"):
        nir_to_graph(ng, T=6)
    with pytest.raises(CodesignError, match="--T"):
        nir_to_graph(ng, dt_s=2e-3)
    h = nir_to_graph(ng, dt_s=2e-3, T=6, reset="subtract", wbits=3, ubits=7)
    for n in ("l1", "l2", "l3"):
        a, b = g.nodes[n]["layer"], h.nodes[n]["layer"]
        assert b.beta == pytest.approx(a.beta, abs=1e-12)
        assert b.theta == pytest.approx(a.theta, rel=1e-12)
        assert b.reset == "subtract" and b.ubits == 7
    assert all(layer.wbits == 3 for _, layer in synaptic_layers(h))
    # bias flags come from the values when there is no metadata (c2 wrote a zero bias)
    assert h.nodes["c1"]["layer"].has_bias and not h.nodes["c2"]["layer"].has_bias
    assert isinstance(h.nodes["sum"]["layer"], AddLayer)
    # the default reset is NIR's hard reset
    assert nir_to_graph(ng, dt_s=2e-3, T=6).nodes["l1"]["layer"].reset == "zero"


def test_nir_max_pool(tmp_path):
    b = GraphBuilder((1, 4, 4), name="mp", T=2)
    b.add_conv("c", 2, 3, padding=1, weight=np.ones((2, 1, 3, 3), np.float32))
    b.add_lif("l")
    b.add_pool("p", "max", 2)
    b.add_output()
    g = b.build()
    with pytest.raises(CodesignError, match="'p'.*max pooling"):
        write_nir(g, tmp_path / "mp.nir")
    h = read_nir(write_nir(g, tmp_path / "mp.nir", max_pool="sum"))
    assert h.nodes["p"]["layer"].kind == "max"
    assert type(nir.read(str(tmp_path / "mp.nir")).nodes["p"]).__name__ == "SumPool2d"


def test_spikingjelly_fixture_maps_correctly():
    path = FIXTURES / "spikingjelly_cnn.nir"
    assert path.stat().st_size < 200_000
    p = _fixture_module().fixture_params()
    g = read_nir(path, dt_s=1e-3, T=4, wbits=4, ubits=8)
    assert [n for n, _ in topo_layers(g)] == ["input_1", "_0", "_1", "_2", "_3", "_4", "output"]
    assert g.graph["input_shape"] == (1, 8, 8) and g.graph["T"] == 4
    conv, lif1, flat = (g.nodes[n]["layer"] for n in ("_0", "_1", "_2"))
    fc, lif2 = g.nodes["_3"]["layer"], g.nodes["_4"]["layer"]
    assert conv.out_shape == (4, 8, 8) and conv.padding == (1, 1) and conv.wbits == 4
    assert flat.out_shape == (256,) and fc.in_features == 256 and fc.out_features == 10
    np.testing.assert_array_equal(conv.weight, p["conv_w"])
    np.testing.assert_array_equal(conv.bias, p["conv_b"])
    np.testing.assert_array_equal(fc.weight, p["fc_w"])
    np.testing.assert_array_equal(fc.bias, p["fc_b"])
    # LIFNode(tau=2, decay_input=True): tau_nir = 2 dt, r = 1 -> beta 0.5, gain 1/2, theta 2
    assert lif1.beta == pytest.approx(0.5) and lif1.theta == pytest.approx(2.0)
    # LIFNode(tau=4, decay_input=False, v_th=0.5): r = 4 -> beta 0.75, gain 1, theta 0.5
    assert lif2.beta == pytest.approx(0.75) and lif2.theta == pytest.approx(0.5)
    assert lif1.reset == lif2.reset == "zero" and lif1.ubits == 8
    assert read_nir(path, dt_s=1e-3, T=4, reset="subtract").nodes["_1"]["layer"].reset == (
        "subtract")


def test_spikingjelly_fixture_is_reproducible(tmp_path):
    out = _fixture_module().write_spikingjelly_fixture(tmp_path, try_real=False)
    a = read_nir(out, dt_s=1e-3, T=1)
    b = read_nir(FIXTURES / "spikingjelly_cnn.nir", dt_s=1e-3, T=1)
    a.graph["name"] = b.graph["name"]
    _assert_same_graph(a, b)


def test_nir_missing_dt_refused():
    with pytest.raises(CodesignError) as exc:
        read_nir(FIXTURES / "spikingjelly_cnn.nir", T=4)
    msg = str(exc.value)
    assert "spikingjelly_cnn.nir" in msg and "--dt" in msg and "'_1'" in msg


def _chain(tmp_path, neuron, name="weird"):
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Linear(weight=np.ones((2, 3), np.float32)),
        name: neuron,
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "fc"), ("fc", name), (name, "output")]
    path = tmp_path / "g.nir"
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def test_nir_unsupported_node_refused_by_name(tmp_path):
    two = np.ones(2)
    cuba = nir.CubaLIF(tau_syn=two * 1e-3, tau_mem=two * 2e-3, r=two, v_leak=0 * two,
                       v_threshold=two)
    with pytest.raises(CodesignError) as exc:
        read_nir(_chain(tmp_path, cuba, "syn_lif"), dt_s=1e-3, T=2)
    msg = str(exc.value)
    assert "'syn_lif'" in msg and "CubaLIF" in msg and "supported" in msg and "LIF" in msg
    with pytest.raises(CodesignError, match="'sc'.*Scale with factors"):
        read_nir(_chain(tmp_path, nir.Scale(scale=np.array([2.0, 1.0])), "sc"), T=2)
    lif = nir.LIF(tau=np.array([2e-3, 4e-3]), r=two, v_leak=0 * two, v_threshold=two)
    with pytest.raises(CodesignError, match="'n'.*differs between neurons"):
        read_nir(_chain(tmp_path, lif, "n"), dt_s=1e-3, T=2)
    lif = nir.LIF(tau=two * 1e-4, r=two, v_leak=0 * two, v_threshold=two)
    with pytest.raises(CodesignError, match="shorter than dt"):
        read_nir(_chain(tmp_path, lif, "n"), dt_s=1e-3, T=2)


def test_nir_nested_graph_refused(tmp_path):
    two = np.ones(2)
    inner = nir.NIRGraph(
        nodes={"i": nir.Input(input_type={"input": np.array([2])}),
               "l": nir.LIF(tau=two, r=two, v_leak=0 * two, v_threshold=two),
               "o": nir.Output(output_type={"output": np.array([2])})},
        edges=[("i", "l"), ("l", "o")],
    )
    with pytest.raises(CodesignError, match="'rnn'.*nested"):
        read_nir(_chain(tmp_path, inner, "rnn"), dt_s=1e-3, T=2)


def test_nir_node_with_two_inputs_gets_an_add(tmp_path):
    two = np.ones(2)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3])}),
        "a": nir.Linear(weight=np.ones((2, 3), np.float32)),
        "b": nir.Affine(weight=np.ones((2, 3), np.float32), bias=np.zeros(2, np.float32)),
        "lif": nir.IF(r=two * 1e3, v_threshold=two),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "a"), ("input", "b"), ("a", "lif"), ("b", "lif"), ("lif", "output")]
    path = tmp_path / "two.nir"
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges))
    g = read_nir(path, dt_s=1e-3, T=3)
    assert set(g.predecessors("lif.sum")) == {"a", "b"}
    lif = g.nodes["lif"]["layer"]
    assert lif.beta == 1.0 and lif.theta == pytest.approx(1.0)  # gain r*dt = 1
    assert not g.nodes["b"]["layer"].has_bias  # an all-zero Affine bias


# ----------------------------------------------------------------------------- edge signals


def _sig(g, u, v):
    d = g.edges[u, v]
    return d["signal"], d["levels"], d["static"]


def test_signals_set_by_the_builder_propagation_rules():
    b = GraphBuilder((2, 8, 8), name="sig", T=3, encoding="direct")
    b.add_conv("c1", 4, 3, padding=1)
    b.add_lif("l1")
    b.add_pool("ap", "avg", 2)                    # 2x2 average of spikes: 4 non-zero levels
    b.add_pool("ap2", "avg", 2)                   # of a 4-level signal: 16 levels
    b.add_conv("c2", 4, 1, src="ap2")
    b.add_lif("l2")
    b.add_pool("mp", "max", 2, src="l1")          # max of spikes: an OR, still spikes
    b.add_conv("c3", 4, 1)
    b.add_lif("l3")
    b.add_add("sew", ["l3", "mp"])                # sum of two spike trains: levels 1 + 1
    b.add_conv("c4", 4, 1, src="sew")
    b.add_add("ms", ["c4", "mp"])                 # a current plus spikes: real-valued
    b.add_flatten("f")
    b.add_linear("fc", 2)
    b.add_output()
    g = b.build()
    assert _sig(g, "input", "c1") == ("analog", 0, True)       # direct: the image, every step
    assert _sig(g, "c1", "l1") == ("analog", 0, True)          # its currents are static too
    assert _sig(g, "l1", "ap") == ("spikes", 1, False)
    assert _sig(g, "ap", "ap2") == ("multilevel", 4, False)
    assert _sig(g, "ap2", "c2") == ("multilevel", 16, False)
    assert _sig(g, "mp", "c3") == ("spikes", 1, False)
    assert _sig(g, "sew", "c4") == ("multilevel", 2, False)
    assert _sig(g, "ms", "f") == ("analog", 0, False)
    assert _sig(g, "f", "fc") == ("analog", 0, False)
    rate = GraphBuilder((4,), T=2, encoding="rate")
    rate.add_linear("fc", 2)
    assert _sig(rate.g, "input", "fc") == ("spikes", 1, False)


def test_signals_on_workload_checkpoint_and_nir_graphs(tmp_path):
    from codesign.graph.signals import missing

    for name in ("vgg9_cifar10", "vgg16_cifar10", "resnet19_cifar10"):
        g = load_workload(WORKLOADS / f"{name}.yaml")
        assert not missing(g), name
        assert _sig(g, "input", next(iter(g.successors("input")))) == ("analog", 0, True)
    g = load_workload(WORKLOADS / "vgg9_cifar10.yaml")
    assert _sig(g, "pool1", "conv3") == ("multilevel", 4, False)   # avg pool 2x2 of spikes
    r19 = load_workload(WORKLOADS / "resnet19_cifar10.yaml")
    assert _sig(r19, "b3.lif2", "b4.shortcut") == ("spikes", 1, False)
    assert _sig(r19, "b4.shortcut", "b4.add") == ("analog", 0, False)
    h = read_nir(write_nir(_weighted_graph().build(), tmp_path / "s.nir"))
    assert not missing(h)
    for u, v, d in _weighted_graph().build().edges(data=True):
        assert h.edges[u, v]["signal"] == d["signal"], (u, v)


def test_validate_graph_refuses_a_bad_signal():
    b = GraphBuilder((4,), T=2)
    b.add_linear("fc", 2)
    b.add_output()
    g = b.g
    g.edges["input", "fc"]["signal"] = "voltage"
    with pytest.raises(CodesignError, match="signal 'voltage'"):
        validate_graph(g)
    g.edges["input", "fc"].update(signal="multilevel", levels=0)
    with pytest.raises(CodesignError, match="levels 0"):
        validate_graph(g)


def test_annotate_fills_hand_built_graphs_only_where_missing():
    import networkx as nx

    from codesign.graph.schema import InputLayer, LinearLayer, OutputLayer
    from codesign.graph.signals import annotate

    g = nx.DiGraph(T=2, encoding="events", name="hand")
    g.add_node("input", layer=InputLayer(shape=(4,)))
    g.add_node("fc", layer=LinearLayer(4, 2))
    g.add_node("output", layer=OutputLayer(shape=(2,)))
    g.add_edge("input", "fc")
    g.add_edge("fc", "output", signal="analog", levels=0, static=False, note="kept")
    annotate(g)
    assert _sig(g, "input", "fc") == ("spikes", 1, False)
    assert g.edges["fc", "output"]["note"] == "kept"
