"""Stateless multi-step layers: time is folded into the batch, ``(T, B, ...) -> (T*B, ...)``.

A :class:`Synapse` is a convolution or a fully connected layer with an optional batch norm and
an optional weight quantizer. In floating point it computes ``BN(W * x)``. Quantized, the batch
norm is folded into the weights before quantizing, as the hardware stores them:

    W' = W * gamma / sigma,   b' = beta_bn + (b - mu) * gamma / sigma,   sigma = sqrt(var + eps)
    y  = Q_w(W') * x + Q_s(b')

with ``Q_w`` the LSQ weight quantizer of step ``s`` and ``Q_s`` rounding the bias to the same
step (an integer of ``bias_bits`` bits). In training the fold uses the batch statistics of the
float convolution ``W * x`` (and updates the running ones); in eval it uses the running ones.
That costs a second convolution per quantized layer (forward and backward): ``W * x`` for the
statistics, then ``Q_w(W') * x`` for the output. With :attr:`Synapse.bn_frozen` (QAT's "freeze
BN", Jacob et al. 2018, Krishnamoorthi 2018; :func:`freeze_batchnorm`) the training fold uses
the running statistics and leaves them unchanged: one convolution, and the training forward is
then the deployed (eval) function (identical in float64; in float32 the time-repeated input of
the first layer is convolved once in training, T times in eval, so the sums may round apart).
It is a different training function than the batch-statistics fold (no batch normalisation, no
gradient through the statistics), so it is an option (``TrainConfig.freeze_bn_after``, CLI
``--freeze-bn-after``), not the default: the default keeps the training function of the
shipped checkpoints.

The seam: the weight-times-input step ``y = W x + b`` of every path (float, quantized, static
first layer) goes through :attr:`Synapse.backend` when one is set: a callable
``backend(synapse, x, w, b) -> y`` with the weight and bias the path would use (fake-quantized
on the quantized path; BN applied after a float backend as after the plain op). ``None``
(default) is the ideal digital product, computed exactly as without the seam. A crossbar backend
(:class:`codesign.sim.backend.CrossbarBackend`) replaces it for inference and hardware-aware
training alike. A backend with a true ``static_once`` attribute is given a static input (direct
encoding: the same image at every step) once, ``(B, ...)``, and its product is broadcast over
the ``T`` steps, as the chip reads it once; other backends see the ``T*B`` time-folded batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from codesign.snn.quant import WeightQuantizer, channel_stats, round_ste

BIAS_BITS = 16

#: ``backend(synapse, x, w, b) -> y``: the weight-times-input step of a :class:`Synapse`
Backend = Callable[["Synapse", torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def fold_time(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1)


def unfold_time(y: torch.Tensor, steps: int) -> torch.Tensor:
    return y.reshape((steps, -1) + tuple(y.shape[1:]))


@torch.no_grad()
def update_running_stats(bn: nn.Module, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
    """``nn.BatchNorm``'s running update from batch statistics over ``n`` values per channel:
    ``r_mean <- (1 - m) r_mean + m mean``, ``r_var <- (1 - m) r_var + m var n / (n - 1)``
    (the unbiased variance), momentum ``m`` (0.1 when ``None``)."""
    m = bn.momentum if bn.momentum is not None else 0.1
    bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
    bn.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
    bn.num_batches_tracked += 1


class Synapse(nn.Module):
    """Conv2d or Linear, optional BatchNorm, optional weight quantization; multi-step."""

    def __init__(
        self,
        kind: str,
        in_features: int,
        out_features: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        bias: bool = False,
        batch_norm: bool = False,
        wbits: Optional[int] = None,
        per_channel: bool = False,
    ) -> None:
        super().__init__()
        self.kind = kind
        if kind == "conv":
            self.op: nn.Module = nn.Conv2d(
                in_features, out_features, kernel_size, stride, padding, bias=bias
            )
            self.bn: Optional[nn.Module] = nn.BatchNorm2d(out_features) if batch_norm else None
        elif kind == "linear":
            self.op = nn.Linear(in_features, out_features, bias=bias)
            self.bn = nn.BatchNorm1d(out_features) if batch_norm else None
        else:
            raise ValueError(f"Synapse kind {kind!r}")
        self.wq = WeightQuantizer(wbits, out_features, per_channel)
        self.backend: Optional[Backend] = None
        """The weight-times-input step (module docstring); ``None``: ideal."""
        self.bn_frozen: bool = False
        """Quantized training folds BN with the running statistics, not the batch ones, and
        leaves them unchanged (module docstring); no effect in float or in eval."""
        self.bn_one_conv: bool = False
        """Quantized training uses the one-convolution batch-statistics fold of PyTorch's
        ``ConvBn2d`` (:meth:`_one_conv_bn`), an approximation of the two-convolution default;
        no effect in float, in eval, with :attr:`bn_frozen` or with a backend."""

    @property
    def wbits(self) -> Optional[int]:
        return self.wq.bits

    def weight_step(self) -> torch.Tensor:
        """Step of the weight grid, shape ``(C,)`` or ``(1,)`` (shared with the next membrane)."""
        return self.wq.step()

    def _linear_op(self, x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor]):
        if self.kind == "conv":
            conv = self.op
            assert isinstance(conv, nn.Conv2d)
            return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
        return F.linear(x, w, b)

    def folded(
        self, x: Optional[torch.Tensor] = None, copies: int = 1
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Float weight and bias with the batch norm folded in (``x`` gives batch statistics;
        ``copies``: ``x`` stands for that many stacked copies of itself, which have the same
        batch statistics but ``copies`` times the samples in the running-variance correction).
        With :attr:`bn_frozen` the running statistics are used and ``x`` is not convolved."""
        w, b = self.op.weight, self.op.bias
        if self.bn is None:
            return w, b
        bn = self.bn
        if self.training and x is not None and not self.bn_frozen:
            y = self._linear_op(x, w, b)  # the mean includes b, as nn.BatchNorm on op(x)
            mean, var = channel_stats(y)  # per channel over (N, H, W): fast kernel
            update_running_stats(bn, mean, var, copies * y.numel() / y.shape[1])
        else:
            mean, var = bn.running_mean, bn.running_var
        inv = bn.weight / torch.sqrt(var + bn.eps)
        w_f = w * inv.reshape((-1,) + (1,) * (w.dim() - 1))
        b0 = b if b is not None else torch.zeros_like(mean)
        b_f = bn.bias + (b0 - mean) * inv
        return w_f, b_f

    def quantized_params(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Deployed (eval-mode) fake-quantized weight and bias, BN folded."""
        w, b = self.folded()
        return self._quantize(w, b)

    def _quantize(self, w: torch.Tensor, b: Optional[torch.Tensor]):
        wq = self.wq(w)
        if b is None:
            return wq, None
        s = self.weight_step()
        lim = 2 ** (BIAS_BITS - 1) - 1
        bq = round_ste(torch.clamp(b / s, -lim, lim)) * s
        return wq, bq

    def _one_conv_bn(self, x: torch.Tensor, copies: int = 1) -> torch.Tensor:
        """Quantized training forward with one convolution (Krishnamoorthi 2018, sec. 3.2;
        PyTorch ``torch.ao.nn.intrinsic.qat.ConvBn2d._forward_approximate``):

            f = gamma / sqrt(running_var + eps)
            z = (Q_w(W f) * x) / f + b                     (one convolution)
            y = gamma (z - mean_B(z)) / sqrt(var_B(z) + eps) + beta

        with the batch statistics of ``z`` (updating the running ones, ``copies`` as in
        :meth:`folded`). Without quantization ``z = W * x`` and ``y`` is exactly the default
        fold's ``BN_B(W * x)``; quantized, ``y`` is the quantized product rescaled by
        ``sigma_running / sigma_B(z)`` and shifted, not the grid values ``Q_w(W gamma /
        sigma_B) * x + Q_s(b')`` of the default: a different training function (the eval and
        deployed function, with the running statistics, is unchanged)."""
        bn = self.bn
        assert bn is not None
        w, b = self.op.weight, self.op.bias
        f = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        wq = self.wq(w * f.reshape((-1,) + (1,) * (w.dim() - 1)))
        y = self._linear_op(x, wq, None)  # z = y / f + b, never formed:
        shape = (1, -1) + (1,) * (y.dim() - 2)
        mean_y, var_y = channel_stats(y)
        mean = mean_y / f + (b if b is not None else 0.0)  # batch statistics of z
        var = var_y / (f * f)
        update_running_stats(bn, mean, var, copies * y.numel() / y.shape[1])
        # gamma (z - mean) / sqrt(var + eps) + beta = k y + (beta - k mean_y), b cancels:
        # one pass over the output (and one in the backward) instead of five
        k = bn.weight / (f * torch.sqrt(var + bn.eps))
        return torch.addcmul((bn.bias - k * mean_y).reshape(shape), y, k.reshape(shape))

    def _uses_one_conv(self) -> bool:
        return (self.bn_one_conv and self.training and self.bn is not None
                and not self.bn_frozen and self.backend is None and self.wq.enabled)

    def _product(self, x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor]
                 ) -> torch.Tensor:
        """The weight-times-input step through the backend (module docstring)."""
        assert self.backend is not None
        return self.backend(self, x, w, b)

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """One step (or time-folded batch) ``(N, ...) -> (N, ...)``."""
        if not self.wq.enabled:
            if self.backend is None:
                y = self.op(x)
            else:
                y = self._product(x, self.op.weight, self.op.bias)
            return self.bn(y) if self.bn is not None else y
        if self._uses_one_conv():
            return self._one_conv_bn(x)
        w, b = self.folded(x)
        wq, bq = self._quantize(w, b)
        if self.backend is not None:
            return self._product(x, wq, bq)
        return self._linear_op(x, wq, bq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[0]
        if steps > 1 and x.stride(0) == 0 and not self.wq.enabled:
            # Every step holds the same input (direct encoding expands the image over T): compute
            # once and broadcast. Same function as on the T copies (batch statistics of T equal
            # copies are those of one); only float rounding of the sums can differ.
            y = self._forward_static(x[0], steps)
            return y.unsqueeze(0).expand((steps,) + tuple(y.shape))
        if steps > 1 and x.stride(0) == 0 and self.backend is None and self.training:
            # Quantized training, ideal product: the same once-and-broadcast (BN folded with the
            # batch statistics of one copy, which are those of the T copies). Not in eval, where
            # the conv's rounding for B vs T*B images could flip a spike of a shipped model.
            if self._uses_one_conv():
                y = self._one_conv_bn(x[0], copies=steps)
            else:
                w, b = self.folded(x[0], copies=steps)
                wq, bq = self._quantize(w, b)
                y = self._linear_op(x[0], wq, bq)
            return y.unsqueeze(0).expand((steps,) + tuple(y.shape))
        if steps > 1 and x.stride(0) == 0 and getattr(self.backend, "static_once", False):
            # A backend that reads a static input once (the crossbar chip, as the inference
            # simulator does: codesign.sim.network): one product for the B images, broadcast
            # over T (the gradient sums over the T steps). Train or eval alike.
            w, b = self.folded(x[0], copies=steps)
            wq, bq = self._quantize(w, b)
            y = self._product(x[0], wq, bq)
            return y.unsqueeze(0).expand((steps,) + tuple(y.shape))
        return unfold_time(self.forward_folded(fold_time(x)), steps)

    def _forward_static(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """``forward_folded`` of ``steps`` stacked copies of ``x``, returned for one copy."""
        y = self.op(x) if self.backend is None else self._product(x, self.op.weight, self.op.bias)
        bn = self.bn
        if bn is None:
            return y
        assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
        if not (bn.training and bn.track_running_stats):
            return bn(y)  # running statistics (eval) or plain batch statistics: per copy
        # Training with running statistics: normalise with the batch statistics (identical for
        # one copy and for the T copies) and update the running ones as nn.BatchNorm would for
        # the T*B batch, whose unbiased variance uses n = T * (numel / C) samples.
        assert bn.num_batches_tracked is not None
        assert bn.running_mean is not None and bn.running_var is not None
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            factor = 1.0 / float(bn.num_batches_tracked)
        else:
            factor = bn.momentum
        out, mean, invstd = torch.native_batch_norm(
            y, bn.weight, bn.bias, None, None, True, 0.0, bn.eps
        )
        with torch.no_grad():
            n = steps * y.numel() / y.shape[1]
            var = invstd.double().pow(-2).sub(bn.eps).clamp(min=0.0) * (n / max(n - 1.0, 1.0))
            bn.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
            bn.running_var.mul_(1.0 - factor).add_(var.to(bn.running_var.dtype), alpha=factor)
        return out


def _window_quadrants(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Views ``a, b, c, d`` of the 2x2 windows of ``(N, C, H, W)``: top-left, top-right,
    bottom-left, bottom-right (raster order); odd trailing rows/columns are dropped."""
    ho, wo = x.shape[-2] // 2, x.shape[-1] // 2
    xc = x[..., : 2 * ho, : 2 * wo]
    return xc[..., 0::2, 0::2], xc[..., 0::2, 1::2], xc[..., 1::2, 0::2], xc[..., 1::2, 1::2]


class _MaxPool2x2(torch.autograd.Function):
    """``F.max_pool2d(x, 2, 2)`` for contiguous NCHW CPU tensors, same values and gradients.

    PyTorch's NCHW CPU max-pool forward is slow (about 4 ns per input element here, 5-10x the
    cost of an elementwise op); this forward uses a few elementwise ops on the four window
    quadrants and builds the same ``indices`` as ``max_pool2d_with_indices`` (the first maximum
    in raster order gets the gradient, as in PyTorch's kernel: ``val > max``), so the backward
    is PyTorch's own. Windows holding a NaN (detected through a NaN sum) fall back to the native
    kernel, whose NaN rule (the last NaN wins) the comparisons here would not reproduce.
    """

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        a, b, c, d = _window_quadrants(x)
        out = torch.maximum(a, b)  # top row maximum, then the window's (few temporaries:
        m_cd = torch.maximum(c, d)  # every fresh CPU buffer costs page faults)
        pick_cd = m_cd > out  # ties keep the earlier (top) row
        torch.maximum(out, m_cd, out=out)
        del m_cd
        if torch.isnan(out.sum()):  # NaN (or both infinities): native kernel
            out, idx = F.max_pool2d_with_indices(x, 2, 2)
        else:
            pick_b = b > a  # ties keep the earlier (left) column
            pick_d = torch.gt(d, c)
            pick_d.logical_xor_(pick_b).logical_and_(pick_cd)
            pick_b.logical_xor_(pick_d)  # column pick of the chosen row: pick_cd ? d > c : b > a
            h, w = x.shape[-2:]
            ho, wo = out.shape[-2:]
            rows = torch.arange(ho, device=x.device) * (2 * w)
            base = rows[:, None] + torch.arange(wo, device=x.device)[None, :] * 2
            idx = torch.add(base, pick_cd, alpha=w)  # flat index in the H x W plane
            idx.add_(pick_b)
        ctx.save_for_backward(x, idx)
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, idx = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx
        )


def _max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    fast = (x.dim() == 4 and x.device.type == "cpu" and x.is_floating_point()
            and x.is_contiguous() and x.shape[-2] >= 2 and x.shape[-1] >= 2)
    if not fast:
        return F.max_pool2d(x, 2, 2)
    if torch.is_grad_enabled() and x.requires_grad:
        return _MaxPool2x2.apply(x)
    a, b, c, d = _window_quadrants(x)  # inference: the values only
    return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))


class Pool(nn.Module):
    """Max (an OR on binary spikes) or average pooling, multi-step."""

    def __init__(self, kind: str = "max", kernel_size: int = 2, stride: Optional[int] = None):
        super().__init__()
        self.kind = kind
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max" and self.kernel_size == 2 and self.stride == 2:
            return unfold_time(_max_pool_2x2(fold_time(x)), x.shape[0])
        f = F.max_pool2d if self.kind == "max" else F.avg_pool2d
        return unfold_time(f(fold_time(x), self.kernel_size, self.stride), x.shape[0])


class GlobalAvgPool(nn.Module):
    """Average over the spatial dimensions: ``(T, B, C, H, W) -> (T, B, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


class Flatten(nn.Module):
    """``(T, B, C, H, W) -> (T, B, C*H*W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)


def _set_on_quantized_bn(model: nn.Module, attr: str, value: bool) -> int:
    """Set ``attr`` on every quantized synapse with a batch norm of ``model``; returns how
    many. Float synapses keep their ``nn.BatchNorm`` behaviour."""
    count = 0
    for mod in model.modules():
        if isinstance(mod, Synapse) and mod.bn is not None and mod.wq.enabled:
            setattr(mod, attr, value)
            count += 1
    return count


def freeze_batchnorm(model: nn.Module, frozen: bool = True) -> int:
    """Set :attr:`Synapse.bn_frozen` on every quantized synapse with a batch norm of
    ``model``; returns how many. Float synapses keep their ``nn.BatchNorm`` behaviour."""
    return _set_on_quantized_bn(model, "bn_frozen", frozen)


def one_conv_batchnorm(model: nn.Module, on: bool = True) -> int:
    """Set :attr:`Synapse.bn_one_conv` on every quantized synapse with a batch norm of
    ``model`` (the one-convolution training fold, an approximation); returns how many."""
    return _set_on_quantized_bn(model, "bn_one_conv", on)


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Copy of ``model`` (eval mode) whose floating-point synapses have BN folded into W and b."""
    out = copy.deepcopy(model).eval()
    for mod in out.modules():
        if isinstance(mod, Synapse) and mod.bn is not None and not mod.wq.enabled:
            w, b = mod.folded()
            mod.op.weight.copy_(w)
            if mod.op.bias is None:
                mod.op.bias = nn.Parameter(b.clone())
            else:
                mod.op.bias.copy_(b)
            mod.bn = None
    return out
