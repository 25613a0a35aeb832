"""Quantizers, BN folding, multi-step execution and checkpoints."""

from __future__ import annotations

import pytest
import torch

from codesign.errors import CodesignError
from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
from codesign.snn.layers import Synapse, fold_batchnorm
from codesign.snn.model import MSBlock
from codesign.snn.neuron import LIF
from codesign.snn.quant import WeightQuantizer, channel_stats
from codesign.snn.zoo import build_model


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_quantizer_levels_and_error(bits: int, per_channel: bool) -> None:
    torch.manual_seed(0)
    w = torch.randn(6, 5, 3, 3)
    q = WeightQuantizer(bits, 6, per_channel)
    q.init_scale(w)
    wq = q(w)
    step = q.step().reshape(-1, 1, 1, 1)
    for c in range(6):
        assert wq[c].unique().numel() <= 2**bits
    if bits > 1:
        inside = (w.abs() <= (2 ** (bits - 1) - 1) * step)
        err = (wq - w).abs()
        assert torch.all(err[inside] <= (step / 2).expand_as(w)[inside] + 1e-6)
    ints = q.integer(w)
    assert torch.allclose(ints * step, wq, atol=1e-6)


def test_weight_quantizer_gradients_reach_weights_and_step() -> None:
    w = torch.randn(4, 3, requires_grad=True)
    q = WeightQuantizer(4, 4, True)
    q.init_scale(w.detach())
    (q(w) ** 2).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert q.scale.grad is not None and q.scale.grad.abs().sum() > 0


@pytest.mark.parametrize("bits", [0, -1, 17])
def test_bad_bits_refused(bits: int) -> None:
    with pytest.raises(CodesignError, match="bit-width"):
        WeightQuantizer(bits, 1)


def test_bn_folding_changes_float_outputs_below_1e5() -> None:
    torch.manual_seed(0)
    net = build_model("vgg-tiny").double()
    # give BN non-trivial statistics and affine parameters
    for _, syn in net.synapses():
        if syn.bn is not None:
            syn.bn.running_mean.uniform_(-0.2, 0.2)
            syn.bn.running_var.uniform_(0.5, 2.0)
            syn.bn.weight.data.uniform_(0.5, 1.5)
            syn.bn.bias.data.uniform_(-0.1, 0.1)
    net.eval()
    x = torch.rand(16, 1, 28, 28, dtype=torch.float64)
    folded = fold_batchnorm(net)
    assert all(s.bn is None for _, s in folded.synapses())
    ref, out = net(x), folded(x)
    assert (ref - out).abs().max() < 1e-5


def test_multistep_equals_step_by_step_loop() -> None:
    torch.manual_seed(0)
    for quant in ({}, {"wbits": 4, "ubits": 4}):
        net = build_model("vgg-tiny", quant=quant).eval()
        x = torch.rand(3, 1, 28, 28)
        multi = net(x)
        state: dict[str, torch.Tensor | None] = {}
        outs = []
        for _ in range(net.T):
            h = x
            for name, layer in net.layers.items():
                if isinstance(layer, LIF):
                    s, _, state[name] = layer.step(h, state.get(name))
                    h = s
                elif isinstance(layer, Synapse):
                    h = layer.forward_folded(h)
                elif isinstance(layer, MSBlock):
                    raise AssertionError("vgg has no blocks")
                else:  # stateless: run it on a length-1 sequence
                    h = layer(h.unsqueeze(0))[0]
            outs.append(h)
        assert torch.allclose(multi, torch.stack(outs), atol=1e-5), quant


@pytest.mark.parametrize("name", ["vgg-tiny", "resnet-small"])
def test_checkpoint_round_trip_identical_outputs(tmp_path, name: str) -> None:
    torch.manual_seed(0)
    net = build_model(name, quant={"wbits": 4, "ubits": 4}).eval()
    x = torch.rand(4, 1, 28, 28)
    path = tmp_path / "m.pt"
    save_checkpoint(path, net, {"dataset": "test", "test_accuracy": 0.5})
    net2, meta = load_checkpoint(path)
    assert meta["dataset"] == "test" and "codesign_version" in meta
    assert torch.equal(net(x), net2(x))


def test_corrupt_and_wrong_shape_checkpoints_refused(tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CodesignError, match="bad.pt"):
        load_checkpoint(bad)
    net = build_model("vgg-tiny")
    path = tmp_path / "m.pt"
    save_checkpoint(path, net, {})
    blob = torch.load(path, weights_only=True)
    blob["state_dict"]["layers.conv1.op.weight"] = torch.zeros(3, 1, 3, 3)
    torch.save(blob, path)
    with pytest.raises(CodesignError, match="conv1.op.weight"):
        load_checkpoint(path)


def test_quantized_synapse_uses_folded_integer_weights() -> None:
    torch.manual_seed(0)
    net = build_model("vgg-tiny", quant={"wbits": 3, "ubits": 4}).eval()
    _, syn = next(iter(net.synapses()))
    _, conv2 = list(net.synapses())[1]
    w, b = conv2.quantized_params()
    step = conv2.weight_step().reshape(-1, 1, 1, 1)
    ints = w / step
    assert torch.allclose(ints, ints.round(), atol=1e-4)
    assert ints.abs().max() <= 3
    assert syn.wbits == 8  # first layer defaults to 8 bits


@pytest.mark.parametrize("shape", [(16, 3, 5, 4), (32, 6)])
def test_channel_stats_equal_torch_mean_var_with_gradients(shape) -> None:
    torch.manual_seed(0)
    y = (torch.randn(*shape, dtype=torch.float64) * 2.0 + 0.7).requires_grad_()
    dims = [0] + list(range(2, len(shape)))
    mean, var = channel_stats(y)
    assert torch.allclose(mean, y.mean(dim=dims), atol=1e-13)
    assert torch.allclose(var, y.var(dim=dims, unbiased=False), atol=1e-12)
    # gradients: numerical (central differences) and against autograd through Tensor.var
    assert torch.autograd.gradcheck(lambda t: channel_stats(t), (y,))
    w_m = torch.randn(shape[1], dtype=torch.float64)
    w_v = torch.randn(shape[1], dtype=torch.float64)
    (g1,) = torch.autograd.grad((mean * w_m).sum() + (var * w_v).sum(), y)
    ref = (y.mean(dim=dims) * w_m).sum() + (y.var(dim=dims, unbiased=False) * w_v).sum()
    (g2,) = torch.autograd.grad(ref, y)
    assert torch.allclose(g1, g2, atol=1e-13)
    (g3,) = torch.autograd.grad((channel_stats(y)[1] * w_v).sum(), y)  # variance only
    (g4,) = torch.autograd.grad((y.var(dim=dims, unbiased=False) * w_v).sum(), y)
    assert torch.allclose(g3, g4, atol=1e-13)
    (g5,) = torch.autograd.grad((channel_stats(y)[0] * w_m).sum(), y)  # mean only
    (g6,) = torch.autograd.grad((y.mean(dim=dims) * w_m).sum(), y)
    assert torch.allclose(g5, g6, atol=1e-13)


def test_reset_timing_is_carried_by_spec_and_checkpoint(tmp_path) -> None:
    torch.manual_seed(0)
    net = build_model("vgg-tiny", neuron={"reset_timing": "delayed"},
                      quant={"wbits": 4, "ubits": 4}).eval()
    lifs = [m for m in net.modules() if isinstance(m, LIF)]
    assert lifs and all(m.reset_timing == "delayed" and m.delayed for m in lifs)
    path = tmp_path / "d.pt"
    save_checkpoint(path, net, {})
    net2, _ = load_checkpoint(path)
    assert all(m.reset_timing == "delayed" for m in net2.modules() if isinstance(m, LIF))
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(net(x), net2(x))
    # the default stays the immediate reset (older checkpoints carry no reset_timing)
    assert all(m.reset_timing == "immediate"
               for m in build_model("vgg-tiny").modules() if isinstance(m, LIF))
    with pytest.raises(CodesignError, match="reset_timing"):
        build_model("vgg-tiny", neuron={"reset_timing": "late"})


def test_reset_timing_survives_graph_and_nir_round_trip(tmp_path) -> None:
    from codesign.graph.build import topo_layers
    from codesign.graph.from_model import graph_from_model
    from codesign.graph.nir_io import read_nir, write_nir
    from codesign.graph.schema import LIFLayer

    for timing in ("delayed", "immediate"):
        net = build_model("vgg-tiny", neuron={"reset_timing": timing}).eval()
        g = graph_from_model(net)
        lifs = [layer for _, layer in topo_layers(g) if isinstance(layer, LIFLayer)]
        assert lifs and {layer.reset_timing for layer in lifs} == {timing}
        path = write_nir(g, tmp_path / f"{timing}.nir", dt_s=1e-3, max_pool="sum")
        back = [layer for _, layer in topo_layers(read_nir(path))
                if isinstance(layer, LIFLayer)]
        assert len(back) == len(lifs) and {layer.reset_timing for layer in back} == {timing}


def test_quantized_synapse_static_input_equals_time_folded_copies() -> None:
    """Direct encoding repeats the image over T (a stride-0 view): the quantized synapse computes
    it once. Same outputs, gradients and running statistics as on the T materialised copies."""
    import copy

    torch.manual_seed(0)
    net = build_model("vgg-tiny", quant={"wbits": 4, "ubits": 4}).double().train()
    syn_a = net.layers["conv1"]
    with torch.no_grad():  # non-trivial BN affine parameters
        syn_a.bn.weight.uniform_(0.5, 1.5)
        syn_a.bn.bias.uniform_(-0.2, 0.2)
    syn_b = copy.deepcopy(syn_a)
    img = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    static = img.unsqueeze(0).expand(4, *img.shape)
    assert static.stride(0) == 0
    ya = syn_a(static)
    yb = syn_b(static.contiguous())
    assert torch.allclose(ya, yb, atol=1e-10) and ya.abs().sum() > 0
    w = torch.randn_like(ya)
    params_a = [syn_a.op.weight, syn_a.bn.weight, syn_a.bn.bias, syn_a.wq.scale]
    params_b = [syn_b.op.weight, syn_b.bn.weight, syn_b.bn.bias, syn_b.wq.scale]
    ga = torch.autograd.grad((ya * w).sum(), params_a)
    gb = torch.autograd.grad((yb * w).sum(), params_b)
    for a, b in zip(ga, gb, strict=True):
        assert b.abs().sum() > 0
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)
    assert torch.allclose(syn_a.bn.running_mean, syn_b.bn.running_mean, atol=1e-12)
    assert torch.allclose(syn_a.bn.running_var, syn_b.bn.running_var, atol=1e-12)


def test_a_step_that_crossed_zero_in_training_saves_and_loads(tmp_path):
    """LSQ's step parameter may go negative in training (the quantizers use ``|s|``); the
    checkpoint must load (the loader refuses non-positive steps) and compute the same
    logits as the in-memory model."""
    from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
    from codesign.snn.zoo import build_model

    torch.manual_seed(0)
    net = build_model("vgg-tiny", T=2, image_size=8, quant={"wbits": 4, "ubits": 4}).eval()
    syn = dict(net.synapses())["fc_out"]
    with torch.no_grad():
        syn.wq.scale.neg_()  # as a training run left it
    assert float(syn.wq.scale.detach().min()) < 0
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        want = net(x)
    save_checkpoint(tmp_path / "n.pt", net, {})
    back, _ = load_checkpoint(tmp_path / "n.pt")
    with torch.no_grad():
        got = back.eval()(x)
    assert torch.equal(got, want)
    assert float(dict(back.synapses())["fc_out"].wq.scale.detach().min()) > 0
