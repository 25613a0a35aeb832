"""graph_from_model (torch model -> SNN graph) and measure_activity (hooks -> node activity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import CodesignError
from codesign.graph.build import summary, synaptic_layers, validate_graph
from codesign.graph.from_model import graph_from_checkpoint, graph_from_model
from codesign.graph.nir_io import read_nir, write_nir
from codesign.hw import map_network, preset_path
from codesign.sim.activity import activity_stats, measure_activity, select_samples
from codesign.snn.checkpoint import save_checkpoint
from codesign.snn.zoo import build_model

HW = preset_path("rram_physical_32nm")


def _perturb_bn(model) -> None:
    """Give every batch norm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.fixture(scope="module")
def vgg_q():
    torch.manual_seed(0)
    m = build_model("vgg-tiny", image_size=8, T=2, quant={"wbits": 4, "ubits": 4},
                    neuron={"theta": 0.3})
    _perturb_bn(m)
    m.calibrate_quantizers()
    return m.eval()


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    m = build_model("resnet-small", image_size=8, T=2, stages=[[8, 1, 1], [16, 1, 2]], stem=8)
    _perturb_bn(m)
    return m.eval()


@pytest.fixture(scope="module")
def digits_x():
    from codesign.data import load_dataset

    return load_dataset("digits").x_test[:48]


def test_vgg_graph_names_shapes_and_bits(vgg_q) -> None:
    g = graph_from_model(vgg_q)
    validate_graph(g)
    assert list(g.nodes) == ["input", *vgg_q.layers.keys(), "output"]
    assert g.graph["T"] == 2 and g.graph["dt_s"] is None
    assert g.graph["input_shape"] == (1, 8, 8) and g.graph["encoding"] == "direct"
    assert g.graph["source"] == "checkpoint" and g.graph["name"] == "vgg-tiny"
    df = summary(g).set_index("name")
    # conv2: 8 -> 16 channels, 3x3, padding 1, on the 4x4 map after pool1
    assert df.loc["conv2", "in_shape"] == (8, 4, 4)
    assert df.loc["conv2", "out_shape"] == (16, 4, 4)
    assert df.loc["conv2", "macs_per_step"] == 16 * 4 * 4 * 8 * 3 * 3
    # fc1 reads the flattened 16 x 1 x 1 map
    assert df.loc["fc1", "macs_per_step"] == 16 * 64
    assert df.loc["conv1", "wbits"] == 8 and df.loc["conv2", "wbits"] == 4  # first layer 8 bits
    assert df.loc["lif1", "ubits"] == 4 and df.loc["lif1", "theta"] == pytest.approx(0.3)
    assert list(g.predecessors("output")) == ["fc_out"]


def test_weights_are_deployed_folded_quantized(vgg_q) -> None:
    g = graph_from_model(vgg_q)
    syns = dict(vgg_q.synapses())
    for name, layer in synaptic_layers(g):
        w, b = syns[name].quantized_params()
        np.testing.assert_array_equal(layer.weight, w.detach().numpy())
        np.testing.assert_array_equal(layer.bias, b.detach().numpy())
        step = float(syns[name].weight_step().detach())
        codes = layer.weight / step
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)  # on the weight grid
    # the graph's conv reproduces the module's (eval) output
    x = torch.rand(3, 1, 8, 8)
    lay = g.nodes["conv1"]["layer"]
    ref = syns["conv1"].forward_folded(x)
    out = F.conv2d(x, torch.from_numpy(lay.weight), torch.from_numpy(lay.bias),
                   lay.stride, lay.padding)
    torch.testing.assert_close(out, ref)


def test_float_bn_model_folds_batchnorm(resnet) -> None:
    g = graph_from_model(resnet)
    validate_graph(g)
    syns = dict(resnet.synapses())
    lay = g.nodes["block2.conv_a"]["layer"]
    x = (torch.rand(2, 8, 8, 8) > 0.7).float()
    ref = syns["block2.conv_a"].forward_folded(x)  # conv + BN (running statistics)
    out = F.conv2d(x, torch.from_numpy(lay.weight), torch.from_numpy(lay.bias), lay.stride,
                   lay.padding)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert lay.wbits is None and lay.has_bias


def test_resnet_graph_structure(resnet) -> None:
    g = graph_from_model(resnet)
    names = set(g.nodes)
    assert {n for n, _ in resnet.synapses()} <= names
    assert {n for n, _ in resnet.neurons()} <= names
    # identity shortcut: the block input (stem current) is summed with conv_b
    assert set(g.predecessors("block1.add")) == {"block1.conv_b", "stem"}
    # projection shortcut: a 1x1 stride-2 conv reading lif_a's spikes
    assert set(g.predecessors("block2.add")) == {"block2.conv_b", "block2.shortcut"}
    assert list(g.predecessors("block2.shortcut")) == ["block2.lif_a"]
    assert g.nodes["block2.shortcut"]["layer"].kernel_size == (1, 1)
    # global average pool -> avg pool over the whole map, then flatten
    gap = g.nodes["gap"]["layer"]
    assert gap.kind == "avg" and gap.kernel_size == (4, 4) and gap.out_shape == (16, 1, 1)
    assert g.nodes["gap.flatten"]["layer"].out_shape == (16,)
    assert list(g.predecessors("fc_out")) == ["gap.flatten"]


def test_unknown_module_refused_by_name(tmp_path: Path) -> None:
    m = build_model("vgg-tiny", image_size=8, T=2)
    m.layers["weird"] = nn.ReLU()
    with pytest.raises(CodesignError, match=r"'weird'.*ReLU.*not a known layer type"):
        graph_from_model(m)


def test_graph_from_checkpoint(tmp_path: Path, vgg_q) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(path, vgg_q, {"dataset": "digits"})
    g = graph_from_checkpoint(path)
    ref = graph_from_model(vgg_q)
    for name, layer in synaptic_layers(g):
        np.testing.assert_array_equal(layer.weight, ref.nodes[name]["layer"].weight)


@pytest.mark.parametrize("which", ["vgg", "resnet"])
def test_nir_round_trip(tmp_path: Path, which, vgg_q, resnet) -> None:
    g = graph_from_model(vgg_q if which == "vgg" else resnet)
    path = write_nir(g, tmp_path / "m.nir", max_pool="sum")
    back = read_nir(path)
    a, b = summary(g), summary(back)
    assert list(a["name"]) == list(b["name"])
    for col in ("op", "in_shape", "out_shape", "macs_per_step", "wbits", "ubits", "beta",
                "theta", "reset"):
        assert list(a[col].astype(str)) == list(b[col].astype(str)), col
    for name, layer in synaptic_layers(g):
        np.testing.assert_array_equal(layer.weight, back.nodes[name]["layer"].weight)
    assert back.graph["T"] == g.graph["T"]


# ----------------------------------------------------------------------------- activity


def test_activity_keys_shapes_dtypes(vgg_q, digits_x) -> None:
    act = measure_activity(vgg_q, digits_x, max_samples=20, batch_size=8, seed=3)
    g = graph_from_model(vgg_q)
    syn = [n for n, _ in synaptic_layers(g)]
    lifs = [n for n, _ in vgg_q.neurons()]
    assert set(act) == set(syn) | set(lifs)
    for n in syn:
        assert act[n].shape == (2, 20, *g.nodes[n]["layer"].in_shape)
        assert act.meta["kinds"][n] == "input"
    assert act["conv1"].dtype == np.float32  # direct-encoded analog image
    assert act["conv2"].dtype == bool and act["lif1"].dtype == bool
    assert act.meta["indices"] == list(select_samples(48, 20, 3))
    assert act.meta["samples"] == 20 and act.meta["seed"] == 3
    # the first layer sees the selected images at every step
    np.testing.assert_array_equal(act["conv1"][1], digits_x[act.meta["indices"]].numpy())
    # LIF output equals the model's own record
    vgg_q.set_record(True)
    with torch.no_grad():
        vgg_q(digits_x[act.meta["indices"]])
    np.testing.assert_array_equal(act["lif1"], vgg_q.spikes()["lif1"].numpy().astype(bool))
    vgg_q.set_record(False)
    stats = activity_stats(act).set_index("name")
    assert stats.loc["lif1", "rate"] > 0 and stats.loc["conv2", "binary"]
    assert 0.0 <= stats.loc["fc1", "silent_fraction"] <= 1.0


def test_activity_seeded_and_restores_state(vgg_q, digits_x) -> None:
    vgg_q.train()
    state = torch.get_rng_state()
    a = measure_activity(vgg_q, digits_x, max_samples=10, seed=1)
    b = measure_activity(vgg_q, digits_x, max_samples=10, seed=1)
    assert vgg_q.training
    vgg_q.eval()
    assert torch.equal(state, torch.get_rng_state())
    assert a.meta["indices"] == b.meta["indices"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(CodesignError, match=r"expects \(N, 1, 8, 8\)"):
        measure_activity(vgg_q, torch.zeros(4, 1, 28, 28))
    with pytest.raises(CodesignError, match="max_samples"):
        measure_activity(vgg_q, digits_x, max_samples=0)


def test_energy_follows_activity(vgg_q, resnet, digits_x) -> None:
    for model in (vgg_q, resnet):
        g = graph_from_model(model)
        real = measure_activity(model, digits_x, max_samples=16)
        silent = measure_activity(model, torch.zeros(16, 1, 8, 8), max_samples=16)
        first = "conv1" if "conv1" in silent else "stem"
        assert not silent[first].any()  # the first layer's input is all zero
        e_real = map_network(g, HW, activity=real).summary["energy_pj"]
        e_zero = map_network(g, HW, activity=silent).summary["energy_pj"]
        e_dense = map_network(g, HW).summary["energy_pj"]
        assert e_zero < e_real < e_dense


def test_checkpoint_graph_edges_carry_signals(vgg_q, resnet) -> None:
    g = graph_from_model(vgg_q)
    first = next(iter(g.successors("input")))
    assert g.edges["input", first]["signal"] == "analog" and g.edges["input", first]["static"]
    r = graph_from_model(resnet)
    # MSBlock: the 1x1 shortcut convolves LIF_a's spikes; the global average pool of 4x4
    # spikes gives 16 levels to the readout
    assert r.edges["block2.lif_a", "block2.shortcut"]["signal"] == "spikes"
    assert r.edges["gap.flatten", "fc_out"]["signal"] == "multilevel"
    assert r.edges["gap.flatten", "fc_out"]["levels"] == 16


def test_static_first_layer_once_with_measured_activity(vgg_q, resnet, digits_x) -> None:
    for model in (vgg_q, resnet):
        g = graph_from_model(model)
        T = int(g.graph["T"])
        act = measure_activity(model, digits_x, max_samples=8)
        first = "conv1" if "conv1" in act else "stem"
        a = map_network(g, HW, activity=act).layers.set_index("layer").loc[first]
        b = map_network(g, HW, activity=act, static_input_once=False).layers.set_index(
            "layer").loc[first]
        assert bool(a["static_once"]) and T > 1
        for k in ("array", "adc"):   # the image is the same at every step: read once
            assert a[f"energy_{k}_pj"] == pytest.approx(b[f"energy_{k}_pj"] / T, rel=1e-12)
        assert a["energy_neuron_pj"] == pytest.approx(b["energy_neuron_pj"])


def test_checkpoint_shortcut_shares_neurons(resnet) -> None:
    g = graph_from_model(resnet)
    L = map_network(g, HW).layers.set_index("layer")
    sc, ca = L.loc["block2.shortcut"], L.loc["block2.conv_a"]
    assert sc["lif"] == L.loc["block2.conv_b", "lif"] and bool(sc["lif_shared"])
    assert sc["energy_interconnect_pj"] == 0 and sc["energy_neuron_pj"] == 0
    # same input (8x8x8 spikes) and output positions (4x4), 8 rows against 72: one row block
    # each on 128-row crossbars, so the 1x1 conv drives 8/72 of the rows per read
    assert sc["row_blocks"] == ca["row_blocks"] == 1
    assert sc["energy_pj"] < ca["energy_pj"]
