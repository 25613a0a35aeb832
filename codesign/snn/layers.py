"""Stateless multi-step layers: time is folded into the batch, ``(T, B, ...) -> (T*B, ...)``.

A :class:`Synapse` is a convolution or a fully connected layer with an optional batch norm and
an optional weight quantizer. In floating point it computes ``BN(W * x)``. Quantized, the batch
norm is folded into the weights before quantizing, as the hardware stores them:

    W' = W * gamma / sigma,   b' = beta_bn + (b - mu) * gamma / sigma,   sigma = sqrt(var + eps)
    y  = Q_w(W') * x + Q_s(b')

with ``Q_w`` the LSQ weight quantizer of step ``s`` and ``Q_s`` rounding the bias to the same
step (an integer of ``bias_bits`` bits). In training the fold uses the batch statistics of the
float convolution ``W * x`` (and updates the running ones); in eval it uses the running ones.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from codesign.snn.quant import WeightQuantizer, round_ste

BIAS_BITS = 16


def fold_time(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1)


def unfold_time(y: torch.Tensor, steps: int) -> torch.Tensor:
    return y.reshape((steps, -1) + tuple(y.shape[1:]))


def _cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """NHWC memory layout for 4-d CPU tensors (same values; ``x`` itself when already so).

    PyTorch's CPU convolution (oneDNN), batch norm and max/avg pooling kernels are several times
    faster in channels-last than in NCHW; the layout then flows through the LIF neurons and
    pooling to the next convolution. Values and shapes are unchanged (``flatten``/``reshape``
    still see the logical NCHW order); CUDA tensors are left as they are.
    """
    if x.dim() == 4 and x.device.type == "cpu":
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _cpu_channels_last_weight(w: torch.Tensor) -> torch.Tensor:
    """Channels-last copy of a 4-d CPU conv weight, strides ``(C*k*k, 1, k*C, C)`` even for
    ``C = 1`` (where ``contiguous`` keeps the NCHW strides and the convolution would then stay
    NCHW). A differentiable copy: the parameter itself keeps its layout."""
    if w.dim() == 4 and w.device.type == "cpu":
        return torch.empty_like(w, memory_format=torch.channels_last).copy_(w)
    return w


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
            # a channels-last weight makes the output channels-last even for C_in = 1
            x, w = _cpu_channels_last(x), _cpu_channels_last_weight(w)
            return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
        return F.linear(x, w, b)

    def folded(self, x: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Float weight and bias with the batch norm folded in (``x`` gives batch statistics)."""
        w, b = self.op.weight, self.op.bias
        if self.bn is None:
            return w, b
        bn = self.bn
        if self.training and x is not None:
            y = self._linear_op(x, w, None)
            dims = [0, 2, 3] if y.dim() == 4 else [0]
            mean = y.mean(dim=dims)
            var = y.var(dim=dims, unbiased=False)
            with torch.no_grad():
                n = y.numel() / y.shape[1]
                m = bn.momentum if bn.momentum is not None else 0.1
                bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                bn.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
                bn.num_batches_tracked += 1
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

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """One step (or time-folded batch) ``(N, ...) -> (N, ...)``."""
        if not self.wq.enabled:
            y = self._linear_op(x, self.op.weight, self.op.bias)
            return self.bn(y) if self.bn is not None else y
        w, b = self.folded(x)
        wq, bq = self._quantize(w, b)
        return self._linear_op(x, wq, bq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold_time(self.forward_folded(fold_time(x)), x.shape[0])


class Pool(nn.Module):
    """Max (an OR on binary spikes) or average pooling, multi-step."""

    def __init__(self, kind: str = "max", kernel_size: int = 2, stride: Optional[int] = None):
        super().__init__()
        self.kind = kind
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.max_pool2d if self.kind == "max" else F.avg_pool2d
        y = _cpu_channels_last(fold_time(x))
        return unfold_time(f(y, self.kernel_size, self.stride), x.shape[0])


class GlobalAvgPool(nn.Module):
    """Average over the spatial dimensions: ``(T, B, C, H, W) -> (T, B, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


class Flatten(nn.Module):
    """``(T, B, C, H, W) -> (T, B, C*H*W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)


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
