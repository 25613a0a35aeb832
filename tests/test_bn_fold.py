"""BN folding in quantization-aware training: batch statistics vs frozen running statistics.

Every expected value is computed independently of ``Synapse.folded``: ``nn.BatchNorm2d`` for the
statistics and their running update, ``F.conv2d`` on a hand-folded, hand-quantized weight
(``round(clamp(W'/s, -Q, Q)) * s``), all in float64, on real images (sklearn digits).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from codesign.cli.main import cli
from codesign.data import load_dataset
from codesign.errors import CodesignError
from codesign.snn.layers import BIAS_BITS, Synapse, freeze_batchnorm, one_conv_batchnorm
from codesign.snn.zoo import build_model
from codesign.train.loop import TrainConfig, fit

BITS = 4
Q = 2 ** (BITS - 1) - 1


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", split_seed=0, T=2)


def _synapse(seed: int = 0) -> Synapse:
    """A 1 -> 6 channel 3x3 conv with bias, BN and a 4-bit weight quantizer, float64, with
    non-trivial BN parameters and running statistics."""
    torch.manual_seed(seed)
    syn = Synapse("conv", 1, 6, bias=True, batch_norm=True, wbits=BITS).double()
    bn = syn.bn
    assert isinstance(bn, nn.BatchNorm2d)
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 1.5, 6))
        bn.bias.copy_(torch.linspace(-0.3, 0.4, 6))
        bn.running_mean.copy_(torch.linspace(-0.2, 0.3, 6))
        bn.running_var.copy_(torch.linspace(0.5, 2.0, 6))
        syn.wq.scale.fill_(0.05)
    return syn


def _reference(syn: Synapse, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
               ) -> torch.Tensor:
    """``F.conv2d(x, Q(W gamma/sigma)) + Q(b')`` folded and quantized by hand."""
    bn = syn.bn
    assert isinstance(bn, nn.BatchNorm2d)
    inv = bn.weight / torch.sqrt(var + bn.eps)
    w_f = syn.op.weight * inv[:, None, None, None]
    b_f = bn.bias + (syn.op.bias - mean) * inv
    s = float(syn.wq.scale.detach().abs())
    w_q = torch.round(torch.clamp(w_f / s, -Q, Q)) * s
    lim = 2 ** (BIAS_BITS - 1) - 1
    b_q = torch.round(torch.clamp(b_f / s, -lim, lim)) * s
    return F.conv2d(x, w_q, b_q, padding=1)


def _images(digits, n: int = 48) -> torch.Tensor:
    return digits.x_train[:n].double()


def test_batch_statistics_fold_matches_batchnorm2d(digits) -> None:
    syn = _synapse().train()
    x = _images(digits)
    bn_ref = nn.BatchNorm2d(6).double().train()
    bn_ref.load_state_dict(syn.bn.state_dict())
    with torch.no_grad():
        y_float = F.conv2d(x, syn.op.weight, syn.op.bias, padding=1)
        bn_out = bn_ref(y_float)  # updates bn_ref's running statistics as PyTorch does
        out = syn.forward_folded(x)
    mean = y_float.mean(dim=(0, 2, 3))
    var = y_float.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(out, _reference(syn, x, mean, var), rtol=0, atol=1e-12)
    assert torch.allclose(syn.bn.running_mean, bn_ref.running_mean, rtol=0, atol=1e-12)
    assert torch.allclose(syn.bn.running_var, bn_ref.running_var, rtol=0, atol=1e-12)
    assert int(syn.bn.num_batches_tracked) == 1
    # the fold itself is BN: at 16 bits (no clipping) only the rounding error is left
    # (|w err| <= s/2 per tap, 9 taps, 0 <= x <= 1, plus s/2 of bias rounding): within 5 s
    fine = Synapse("conv", 1, 6, bias=True, batch_norm=True, wbits=16).double().train()
    fine.op.load_state_dict(syn.op.state_dict())
    fine.bn.load_state_dict(syn.bn.state_dict())  # training: batch statistics are used
    with torch.no_grad():
        fine.wq.scale.fill_(1e-3)
        fine_out = fine.forward_folded(x)
    assert 0 < float((fine_out - bn_out).abs().max()) <= 5e-3
    assert float((out - bn_out).abs().max()) > 5e-3  # 4 bits: the bound is not vacuous


def test_frozen_fold_uses_running_statistics_one_conv_no_update(digits, monkeypatch) -> None:
    x = _images(digits)
    calls = {"n": 0}
    conv = F.conv2d

    def counting(*args, **kwargs):
        calls["n"] += 1
        return conv(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counting)
    syn = _synapse().train()
    syn.forward_folded(x)
    assert calls["n"] == 2  # statistics conv + quantized conv
    syn = _synapse().train()
    assert freeze_batchnorm(syn) == 1 and syn.bn_frozen
    before = {k: v.clone() for k, v in syn.bn.state_dict().items()}
    calls["n"] = 0
    x_req = x.clone().requires_grad_(True)
    out = syn.forward_folded(x_req)
    assert calls["n"] == 1
    monkeypatch.setattr(F, "conv2d", conv)
    for k, v in syn.bn.state_dict().items():
        assert torch.equal(v, before[k]), k
    ref = _reference(syn, x, syn.bn.running_mean, syn.bn.running_var)
    assert torch.allclose(out.detach(), ref, rtol=0, atol=1e-12)
    with torch.no_grad():
        deployed = syn.eval().forward_folded(x)
    assert torch.equal(out.detach(), deployed)  # training forward = deployed forward


def test_frozen_fold_gradients_match_hand_ste(digits) -> None:
    """Gradients of the frozen fold: the straight-through chain written out by hand,
    dL/dW = gamma/sigma_run * dL/dW_q inside the clip range, zero outside."""
    syn = _synapse().train()
    freeze_batchnorm(syn)
    x = _images(digits)
    g = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)[None, :, None, None]
    (syn.forward_folded(x) * g).sum().backward()
    bn = syn.bn
    inv = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    w_f = syn.op.weight.detach() * inv[:, None, None, None]
    s = float(syn.wq.scale.detach().abs())
    w_q = (torch.round(torch.clamp(w_f / s, -Q, Q)) * s).requires_grad_(True)
    (F.conv2d(x, w_q, None, padding=1) * g).sum().backward()
    inside = (w_f / s).abs() <= Q
    expected = torch.where(inside, w_q.grad, torch.zeros_like(w_q.grad)) * inv[:, None, None, None]
    assert torch.allclose(syn.op.weight.grad, expected, rtol=1e-10, atol=1e-12)


def test_freeze_batchnorm_only_quantized_synapses() -> None:
    quant = build_model("vgg-tiny", in_channels=1, image_size=8, num_classes=10, T=2,
                        quant={"wbits": 4, "ubits": 4})
    assert freeze_batchnorm(quant) == 3  # conv1..conv3 have BN; the fc layers none
    flt = build_model("vgg-tiny", in_channels=1, image_size=8, num_classes=10, T=2)
    assert freeze_batchnorm(flt) == 0
    assert not any(getattr(m, "bn_frozen", False) for m in flt.modules())


def _running(model: nn.Module) -> torch.Tensor:
    return torch.cat([m.bn.running_mean.clone() for m in model.modules()
                      if isinstance(m, Synapse) and m.bn is not None])


@pytest.mark.parametrize("after", [0, 1])
def test_fit_freezes_after_the_given_epoch(digits, after: int) -> None:
    torch.manual_seed(0)
    net = build_model("vgg-tiny", in_channels=1, image_size=8, num_classes=10, T=2,
                      quant={"wbits": 4, "ubits": 4})
    start = _running(net)
    seen: list[torch.Tensor] = []
    cfg = TrainConfig(epochs=2, batch_size=256, seed=0, device="cpu", freeze_bn_after=after)
    fit(net, digits.x_train, digits.y_train, digits.x_test, digits.y_test, cfg, progress=False,
        after_epoch=lambda m, row: seen.append(_running(m)))
    if after == 0:  # frozen from the first step: never updated
        assert torch.equal(seen[0], start) and torch.equal(seen[1], start)
    else:  # epoch 1 with batch statistics moves them, epoch 2 (frozen) does not
        assert not torch.equal(seen[0], start) and torch.equal(seen[1], seen[0])
    assert not any(getattr(m, "bn_frozen", False) for m in net.modules())  # reset after fit


def test_fit_bn_one_conv_uses_the_one_conv_fold(digits, monkeypatch) -> None:
    torch.manual_seed(0)
    net = build_model("vgg-tiny", in_channels=1, image_size=8, num_classes=10, T=2,
                      quant={"wbits": 4, "ubits": 4})
    calls = {"n": 0}
    orig = Synapse._one_conv_bn

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return orig(self, *args, **kwargs)

    monkeypatch.setattr(Synapse, "_one_conv_bn", counting)
    cfg = TrainConfig(epochs=1, batch_size=512, seed=0, device="cpu", bn_one_conv=True)
    fit(net, digits.x_train, digits.y_train, digits.x_test, digits.y_test, cfg, progress=False)
    n_bn = sum(1 for m in net.modules() if isinstance(m, Synapse) and m.bn is not None
               and m.wq.enabled)
    batches = -(-len(digits.x_train) // 512)
    assert n_bn > 0 and calls["n"] == n_bn * batches  # every BN synapse, every training batch
    assert not any(getattr(m, "bn_one_conv", False) for m in net.modules())  # reset after fit
    with pytest.raises(CodesignError, match="bn_one_conv"):
        TrainConfig(bn_one_conv=1).validate()  # type: ignore[arg-type]


def test_freeze_bn_after_validated(tmp_path: Path) -> None:
    with pytest.raises(CodesignError, match="--freeze-bn-after -1"):
        TrainConfig(freeze_bn_after=-1).validate()
    out = tmp_path / "o.pt"
    r = CliRunner().invoke(cli, ["train", "--model", "vgg-tiny", "--data", "digits", "--T", "2",
                                 "--epochs", "1", "--freeze-bn-after", "-1", "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--freeze-bn-after -1" in lines[0], r.output
    assert not out.exists()


def test_one_conv_fold_is_convbn2d_and_eval_unchanged(digits, monkeypatch) -> None:
    """The one-conv training fold (PyTorch ConvBn2d's approximate forward) against a hand
    evaluation: ``nn.BatchNorm2d`` (training) on ``F.conv2d(x, Q(W f)) / f + b`` with the
    quantizer by hand; one convolution; the same running-statistic update as nn.BatchNorm2d
    on that input; the eval (deployed) forward bit-identical to the default model's."""
    x = _images(digits)
    syn = _synapse().train()
    assert one_conv_batchnorm(syn) == 1 and syn.bn_one_conv
    bn_ref = nn.BatchNorm2d(6).double().train()
    bn_ref.load_state_dict(syn.bn.state_dict())
    f = syn.bn.weight / torch.sqrt(syn.bn.running_var + syn.bn.eps)
    s = float(syn.wq.scale.detach().abs())
    w_q = torch.round(torch.clamp(syn.op.weight * f[:, None, None, None] / s, -Q, Q)) * s
    calls = {"n": 0}
    conv = F.conv2d

    def counting(*args, **kwargs):
        calls["n"] += 1
        return conv(*args, **kwargs)

    with torch.no_grad():
        z = conv(x, w_q, None, padding=1) / f[None, :, None, None] \
            + syn.op.bias[None, :, None, None]
        expected = bn_ref(z)
        monkeypatch.setattr(F, "conv2d", counting)
        out = syn.forward_folded(x)
        monkeypatch.setattr(F, "conv2d", conv)
    assert calls["n"] == 1
    assert torch.allclose(out, expected, rtol=0, atol=1e-10)
    assert torch.allclose(syn.bn.running_mean, bn_ref.running_mean, rtol=0, atol=1e-12)
    assert torch.allclose(syn.bn.running_var, bn_ref.running_var, rtol=0, atol=1e-12)
    # the default two-conv fold from the same state: a different training function at 4 bits
    default = _synapse().train()
    with torch.no_grad():
        two = default.forward_folded(x)
    assert float((two - out).abs().max()) > 1e-3
    # each fold updates the running statistics with its own batch statistics; from equal
    # running statistics the eval (deployed) forward is the same, bit for bit
    default.bn.load_state_dict(syn.bn.state_dict())
    with torch.no_grad():
        assert torch.equal(syn.eval().forward_folded(x), default.eval().forward_folded(x))
        ref = _reference(syn, x, syn.bn.running_mean, syn.bn.running_var)
        assert torch.allclose(syn.forward_folded(x), ref, rtol=0, atol=1e-12)


def test_one_conv_fold_is_the_default_without_quantization_error(digits) -> None:
    """At 16 bits the one-conv fold equals BN_B(W x), which the default two-conv fold also
    computes, up to the rounding error: ``|Q(W f) - W f| <= s/2`` per tap, 9 taps, inputs in
    [0, 1], divided by ``f`` and scaled by ``gamma / sigma_B``: ``4.5 s sigma_r / sigma_B``
    per channel (``f = gamma / sigma_r``); the batch mean and variance move by as much, so
    within 3 times that."""
    x = _images(digits)
    syn = _synapse()
    fine = Synapse("conv", 1, 6, bias=True, batch_norm=True, wbits=16).double().train()
    fine.op.load_state_dict(syn.op.state_dict())
    fine.bn.load_state_dict(syn.bn.state_dict())
    bn_ref = nn.BatchNorm2d(6).double().train()
    bn_ref.load_state_dict(syn.bn.state_dict())
    with torch.no_grad():
        fine.wq.scale.fill_(1e-3)
        bn_out = bn_ref(F.conv2d(x, syn.op.weight, syn.op.bias, padding=1))
        one_conv_batchnorm(fine)
        one = fine.forward_folded(x)
    y = F.conv2d(x, syn.op.weight, syn.op.bias, padding=1).detach()
    var_b = y.var(dim=(0, 2, 3), unbiased=False)
    ratio = torch.sqrt((syn.bn.running_var.detach() + 1e-5) / (var_b + 1e-5))
    bound = 3 * 4.5 * 1e-3 * float(ratio.max())
    assert 0 < float((one - bn_out).abs().max()) <= bound
    assert bound < 0.1  # not vacuous: the outputs are O(1)


def test_one_conv_fold_gradients_match_autograd_of_the_hand_formula(digits) -> None:
    """Gradients (input, weight, bias, gamma, beta) of the one-conv fold equal autograd
    through the textbook form ``BN_train(F.conv2d(x, STE(Q(W f))) / f + b)`` (float64)."""
    x = _images(digits, 24).clone().requires_grad_(True)
    syn = _synapse().train()
    one_conv_batchnorm(syn)
    g = torch.randn((24, 6, 8, 8), dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    params = [syn.op.weight, syn.op.bias, syn.bn.weight, syn.bn.bias]
    got = torch.autograd.grad((syn.forward_folded(x) * g).sum(), [x, *params],
                              allow_unused=True)
    # the conv bias cancels in batch normalisation: no graph to it, a zero gradient
    got = tuple(torch.zeros_like(p) if a is None else a for a, p in zip(got, [x, *params],
                                                                        strict=True))
    ref = _synapse().train()
    bn = ref.bn
    f = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    s = float(ref.wq.scale.detach().abs())
    c = torch.clamp(ref.op.weight * f[:, None, None, None] / s, -Q, Q)
    w_q = (c + (torch.round(c) - c).detach()) * s
    z = F.conv2d(x, w_q, None, padding=1) / f[None, :, None, None] \
        + ref.op.bias[None, :, None, None]
    y = F.batch_norm(z, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    rparams = [ref.op.weight, ref.op.bias, bn.weight, bn.bias]
    want = torch.autograd.grad((y * g).sum(), [x, *rparams])
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)
    assert float(want[2].abs().max()) < 1e-9 and float(want[1].abs().max()) > 1e-3
