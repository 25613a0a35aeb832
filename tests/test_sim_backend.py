"""The Synapse seam: consulted on every path, ideal by default; the crossbar backend behind it."""

from __future__ import annotations

import pytest
import torch

from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.sim import network as hn
from codesign.sim.backend import CrossbarBackend, attach, detach
from codesign.snn.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def images():
    d = load_dataset("mnist5k", split_seed=0, test_fraction=0.2)
    return d.x_test[:12], d.y_test[:12]


@pytest.mark.parametrize("path", ["models/teacher_fp.pt", "models/student_w4u4.pt"])
def test_seam_is_consulted_on_every_path_and_ideal_changes_nothing(path, images):
    x, _ = images
    model, _ = load_checkpoint(path)
    model.eval()
    with torch.no_grad():
        plain = model(x)
    seen: list[str] = []
    names = {id(s): n for n, s in model.synapses()}

    def ideal(syn, xx, w, b):
        seen.append(names[id(syn)])
        return syn._linear_op(xx, w, b)

    for _, syn in model.synapses():
        syn.backend = ideal
    with torch.no_grad():
        routed = model(x)
    assert torch.equal(plain, routed)
    assert seen == [n for n, _ in model.synapses()]  # every layer, once (static conv1 too)


def test_crossbar_backend_behind_the_seam(images):
    x, y = images
    model, _ = load_checkpoint("models/student_w4u4.pt")
    model.eval()
    spec = load_spec(preset_path("rram_physical_32nm"))
    net = hn.build(model, spec, (1, 28, 28), nonideal="none", adc_bits=9)
    gen = hn.program_chip(net, None)
    with torch.no_grad():
        ideal = model(x)
    backend = CrossbarBackend(net, gen)
    attach(model, backend)
    out = model(x)
    # same integer products; only float rounding differs (and with it the float LIF's ties,
    # see codesign.sim.network), so logits agree on average and the predictions are equal
    assert float((out.detach() - ideal).abs().mean()) < 0.1 * float(ideal.abs().mean())
    assert torch.equal(out.mean(0).argmax(-1), ideal.mean(0).argmax(-1))
    assert set(backend.calls) == {n for n, _ in model.synapses()}
    # straight-through gradient for hardware-aware training
    loss = torch.nn.functional.cross_entropy(out.mean(0), y)
    loss.backward()
    grads = [s.op.weight.grad for _, s in model.synapses()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    detach(model)
    with torch.no_grad():
        assert torch.equal(model(x), ideal)
    # a 3-bit ADC behind the seam changes the logits: the backend really is in the path
    net3 = hn.build(model, spec, (1, 28, 28), nonideal="none", adc_bits=3)
    attach(model, CrossbarBackend(net3, hn.program_chip(net3, None)))
    with torch.no_grad():
        coarse = model(x)
    detach(model)
    assert float((coarse - ideal).abs().mean()) > 0.5 * float(ideal.abs().mean())


def test_static_first_layer_is_read_once_per_sample(images):
    """Direct encoding repeats the image over T: the chip reads it once per sample, as the
    inference simulator does (same read count), with the same products as reading it T times
    (ideal chip: deterministic), and the gradient sums the T steps."""
    x, _ = images
    model, _ = load_checkpoint("models/student_w4u4.pt")
    model.eval()
    spec = load_spec(preset_path("rram_physical_32nm"))
    net = hn.build(model, spec, (1, 28, 28), nonideal="none", adc_bits=9)
    gen = hn.program_chip(net, None)
    conv1 = net.synapses["conv1"].xbar
    hn.forward(net, x, gen)
    sim_reads = conv1.stats.reads
    # hand count: 8 bit-serial planes x 12 images x 28*28 positions x 1 row block
    assert spec.input.first_layer == "bit_serial" and spec.input.bits == 8
    assert sim_reads == 8 * 12 * 28 * 28 * 1
    conv1.stats.reads = 0
    attach(model, CrossbarBackend(net, gen))
    syn = model.layers["conv1"]
    static = x.unsqueeze(0).expand((model.T,) + tuple(x.shape)).requires_grad_(False)
    once = syn(static)
    assert conv1.stats.reads == sim_reads
    copies = static.contiguous()  # stride 0 gone: the T*B batch is read T times
    conv1.stats.reads = 0
    repeated = syn(copies)
    assert conv1.stats.reads == model.T * sim_reads
    assert torch.equal(once.detach(), repeated.detach())
    # the straight-through weight gradient of the broadcast product sums over the T steps
    g = torch.randn(once.shape, generator=torch.Generator().manual_seed(0))
    syn.op.weight.grad = None
    (once * g).sum().backward()
    g_once = syn.op.weight.grad.clone()
    syn.op.weight.grad = None
    (repeated * g).sum().backward()
    g_rep = syn.op.weight.grad
    assert float((g_once - g_rep).norm() / g_rep.norm()) < 1e-5  # float32 sums, other order
    detach(model)


def test_straight_through_node_gives_the_ideal_products_gradient_bit_for_bit(images):
    """The one-node straight-through step (simulated value forward, ideal product's gradient
    backward from the saved x and W) against the two-product formulation it replaces,
    ``ideal + (hw - ideal).detach()``: the same input, weight and bias gradients bit for bit
    on the real inputs of a conv layer with a bias-free weight, a static first layer read once
    and a linear layer with a bias; the values equal to float rounding."""
    x, _ = images
    model, _ = load_checkpoint("models/student_w4u4.pt")
    model.eval()
    inputs: dict[str, torch.Tensor] = {}
    hooks = [syn.register_forward_pre_hook(
        lambda _m, a, n=n: inputs.__setitem__(n, a[0].detach())) for n, syn in model.synapses()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    spec = load_spec(preset_path("rram_physical_32nm"))
    net = hn.build(model, spec, (1, 28, 28), nonideal="none", adc_bits=9)
    backend = CrossbarBackend(net, hn.program_chip(net, None))  # deterministic chip

    class TwoProducts:
        static_once = True

        def __call__(self, syn, xx, w, b):
            with torch.no_grad():
                hw = backend(syn, xx, w, b)
            ideal = syn._linear_op(xx, w, b)
            return ideal + (hw - ideal).detach()

    gen = torch.Generator().manual_seed(3)
    for name in ("conv1", "conv2", "fc1"):
        syn = model.layers[name]
        xin = inputs[name]
        needs_x = name != "conv1"  # the image needs no gradient; spikes do
        results = []
        for be in (backend, TwoProducts()):
            syn.backend = be
            xr = xin.clone().requires_grad_(needs_x) if needs_x else xin
            out = syn(xr)
            if not results:
                g = torch.randn(out.shape, generator=gen)
            params = [p for p in (syn.op.weight, syn.op.bias, syn.wq.scale) if p is not None]
            grads = torch.autograd.grad((out * g).sum(), params + ([xr] if needs_x else []))
            results.append((out.detach(), grads))
        syn.backend = None
        (o1, g1), (o2, g2) = results
        assert torch.allclose(o1, o2, rtol=1e-6, atol=1e-6) and o1.abs().sum() > 0
        assert len(g1) == len(g2) >= 2
        for a, b in zip(g1, g2, strict=True):
            assert torch.equal(a, b), name
            assert a.abs().sum() > 0, name
