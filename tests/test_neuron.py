"""LIF neuron: hand-computed sequences, surrogate gradients, fused path, library equivalence."""

from __future__ import annotations

import pytest
import torch

from codesign.errors import CodesignError
from codesign.snn.neuron import LIF
from codesign.snn.surrogate import SURROGATES, spike

CURRENT = [0.6, 0.6, 0.6, 1.5, 0.2]


def _run(reset: str) -> tuple[list[float], list[float]]:
    lif = LIF(beta=0.5, theta=1.0, reset=reset)
    lif.record = True
    x = torch.tensor(CURRENT, dtype=torch.float64).reshape(5, 1, 1)
    s = lif(x)
    return s.flatten().tolist(), lif.h.flatten().tolist()


def test_lif_subtract_reset_hand_computed() -> None:
    # H = 0.5 U + I; U = H - S
    s, h = _run("subtract")
    assert s == [0, 0, 1, 1, 0]
    assert h == pytest.approx([0.6, 0.9, 1.05, 1.525, 0.4625])


def test_lif_zero_reset_hand_computed() -> None:
    # H = 0.5 U + I; U = H (1 - S)
    s, h = _run("zero")
    assert s == [0, 0, 1, 1, 0]
    assert h == pytest.approx([0.6, 0.9, 1.05, 1.5, 0.2])


def test_if_neuron_is_beta_one() -> None:
    lif = LIF(beta=1.0, theta=1.0)
    x = torch.full((4, 1, 1), 0.4, dtype=torch.float64)
    # H: 0.4, 0.8, 1.2 -> spike, U 0.2; 0.6
    assert lif(x).flatten().tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("kind", SURROGATES)
def test_surrogate_gradient_nonzero_near_threshold_only(kind: str) -> None:
    x = torch.tensor([-0.05, 0.0, 0.05, 5.0, -5.0], requires_grad=True)
    spike(x, kind).sum().backward()
    g = x.grad
    assert torch.all(g[:3] > 0), g
    # far from threshold the pseudo-derivative vanishes (atan/sigmoid decay, others are exact 0)
    assert torch.all(g[3:] < 0.02 * g[1]), g


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_fused_path_equals_autograd_reference(reset: str, surrogate: str) -> None:
    torch.manual_seed(0)
    x = (torch.randn(6, 3, 7, dtype=torch.float64) * 0.8 + 0.4).requires_grad_()
    lif = LIF(beta=0.7, theta=1.0, reset=reset, surrogate=surrogate)
    lif.record = True
    w_s = torch.randn(6, 3, 7, dtype=torch.float64)
    w_h = torch.randn(6, 3, 7, dtype=torch.float64)
    s1 = lif(x)
    loss1 = (s1 * w_s).sum() + (lif.h * w_h).sum()
    (g1,) = torch.autograd.grad(loss1, x)
    s2 = lif.reference_forward(x)
    loss2 = (s2 * w_s).sum() + (lif.h * w_h).sum()
    (g2,) = torch.autograd.grad(loss2, x)
    assert torch.equal(s1, s2)
    assert torch.allclose(g1, g2, atol=1e-12)
    assert g1.abs().sum() > 0


def test_quantized_lif_multistep_equals_step_loop_and_lies_on_grid() -> None:
    torch.manual_seed(1)
    lif = LIF(beta=0.5, theta=1.0, ubits=4)
    x = torch.randn(5, 4, 8) * 0.7 + 0.3
    lif.record = True
    s = lif(x)
    u, outs = None, []
    for t in range(5):
        st, ht, u = lif.step(x[t], u)
        outs.append(st)
        step = lif.membrane_step()
        assert torch.allclose(ht / step, torch.round(ht / step), atol=1e-5)
        ratio = (u / step).detach()
        assert float(ratio.max()) <= 7 + 1e-5 and float(ratio.min()) >= -8 - 1e-5
    assert torch.equal(s, torch.stack(outs))
    assert 1 <= int(lif.threshold_int()) <= 7


def test_bad_neuron_parameters_are_refused() -> None:
    with pytest.raises(CodesignError, match="reset"):
        LIF(reset="hard")
    with pytest.raises(CodesignError, match="beta"):
        LIF(beta=1.5)
    with pytest.raises(CodesignError, match="theta"):
        LIF(theta=0.0)
    with pytest.raises(CodesignError, match="ubits"):
        LIF(ubits=0)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_matches_snntorch_leaky_spike_for_spike(reset: str) -> None:
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(2)
    x = torch.rand(30, 8, 16) * 0.8
    leaky = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism=reset, reset_delay=False)
    mem = leaky.init_leaky()
    ref = []
    for t in range(x.shape[0]):
        spk, mem = leaky(x[t], mem)
        ref.append(spk)
    ours = LIF(beta=0.9, theta=1.0, reset=reset)(x)
    assert ours.sum() > 10
    assert torch.equal(ours, torch.stack(ref))


def test_matches_snntorch_default_delayed_reset_for_if() -> None:
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(3)
    x = torch.rand(30, 8, 16) * 0.8
    leaky = snn.Leaky(beta=1.0, threshold=1.0)  # default: subtract, reset_delay=True
    mem = leaky.init_leaky()
    ref = []
    for t in range(x.shape[0]):
        spk, mem = leaky(x[t], mem)
        ref.append(spk)
    assert torch.equal(LIF(beta=1.0, theta=1.0)(x), torch.stack(ref))


@pytest.mark.parametrize("v_reset,reset", [(None, "subtract"), (0.0, "zero")])
@pytest.mark.parametrize("decay_input", [False, True])
def test_matches_spikingjelly_lifnode_spike_for_spike(v_reset, reset, decay_input) -> None:
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    torch.manual_seed(4)
    tau, th = 2.0, 1.0
    x = torch.rand(30, 8, 16) * (1.6 if decay_input else 0.8)
    node = neuron.LIFNode(tau=tau, decay_input=decay_input, v_threshold=th, v_reset=v_reset,
                          step_mode="m")
    ref = node(x)
    theta = tau * th if decay_input else th
    ours = LIF(beta=1 - 1 / tau, theta=theta, reset=reset)(x)
    assert ours.sum() > 10
    assert torch.equal(ours, ref)
