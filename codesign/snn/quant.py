"""Uniform symmetric quantizers with learned step size (LSQ) and straight-through estimators.

Weights (``b`` bits, ``b >= 2``): ``w_int = round(clamp(w/s, -Q, Q))`` with ``Q = 2^(b-1) - 1``
(a symmetric, sign-magnitude grid of ``2^b - 1`` levels, the natural fit for a differential pair
of crossbar columns) and fake-quantized value ``w_q = w_int * s``. ``b = 1`` is binary,
``w_q = s * sign(w)`` (2 levels). The step ``s`` is a trainable parameter, per layer or per
output channel; LSQ (Esser et al., ICLR 2020) initialises it to ``2 mean|w| / sqrt(Q)`` and
scales its gradient by ``1 / sqrt(numel * Q)``. Rounding uses the straight-through estimator
``round_ste(x) = x + (round(x) - x).detach()``, which also yields LSQ's gradient for ``s``.

Membrane potential (``b`` bits, two's complement register): ``U_int`` in
``[-2^(b-1), 2^(b-1) - 1]`` on the *same* step ``s`` as the weights of the synaptic layer that
feeds the neuron (MINT's shared scale), so the integer accumulation needs no rescaling and the
threshold becomes the integer ``theta_int = clamp(round(theta / s), 1, 2^(b-1) - 1)``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from codesign.errors import CodesignError
from codesign.params import BITS_MAX

MAX_BITS = BITS_MAX  # the one limit of every bit-width (codesign.params)


def check_bits(bits: Optional[int], what: str, minimum: int = 1) -> Optional[int]:
    """Validate a bit-width: ``None`` (floating point) or an integer in ``minimum..16``."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, (int,)) or not minimum <= bits <= MAX_BITS:
        raise CodesignError(
            f"{what}: bit-width {bits!r} is out of range; expected an integer {minimum}..{MAX_BITS}"
            " or none for floating point"
        )
    return int(bits)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest with an identity (straight-through) gradient."""
    return x + (torch.round(x) - x).detach()


def grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``factor`` (LSQ)."""
    return (x - x * factor).detach() + x * factor


class _ChannelStats(torch.autograd.Function):
    """Per-channel batch mean and biased variance of ``(N, C, ...)`` with their gradients.

    Forward: PyTorch's batch-norm statistics kernel (``torch.batch_norm_update_stats``, no
    running buffers), several times faster on CPU than ``Tensor.var`` over ``dims = (0, 2, 3)``.
    Backward (``n = numel / C`` samples per channel):
    ``dL/dy = dL/dmean / n + dL/dvar * 2 (y - mean) / n``.
    """

    @staticmethod
    def forward(ctx, y):  # type: ignore[override]
        mean, var = torch.batch_norm_update_stats(y, None, None, 0.0)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(y, mean)
        return mean, var

    @staticmethod
    def backward(ctx, grad_mean, grad_var):  # type: ignore[override]
        y, mean = ctx.saved_tensors
        n = y.numel() / y.shape[1]
        shape = (1, -1) + (1,) * (y.dim() - 2)
        if grad_var is None and grad_mean is None:
            return None
        if grad_var is None:
            return (grad_mean / n).reshape(shape).expand_as(y).clone()
        grad = torch.sub(y, mean.reshape(shape))
        grad.mul_((grad_var * (2.0 / n)).reshape(shape))
        if grad_mean is not None:
            grad.add_((grad_mean / n).reshape(shape))
        return grad


def channel_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch mean and biased variance per channel (dim 1) of ``y``, differentiable.

    The batch statistics that quantization-aware training folds into the weights
    (``codesign.snn.layers.Synapse.folded``); equal to ``y.mean(dims)`` and
    ``y.var(dims, unbiased=False)`` up to float rounding of the sums.
    """
    return _ChannelStats.apply(y)


def weight_levels(bits: int) -> int:
    """Largest positive integer code ``Q`` of a symmetric ``bits``-bit weight grid."""
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def membrane_range(bits: int) -> tuple[int, int]:
    """Integer range ``(lo, hi)`` of a two's complement ``bits``-bit membrane register."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


class WeightQuantizer(nn.Module):
    """LSQ fake quantizer for a weight tensor (first dim = output channels).

    ``bits=None`` passes weights through unchanged (floating point).
    """

    def __init__(self, bits: Optional[int], channels: int, per_channel: bool = False) -> None:
        super().__init__()
        self.bits = check_bits(bits, "weight quantizer")
        self.per_channel = per_channel
        self.scale = nn.Parameter(torch.ones(channels if per_channel else 1))

    @property
    def enabled(self) -> bool:
        return self.bits is not None

    def _shape(self, w: torch.Tensor) -> tuple[int, ...]:
        return (-1,) + (1,) * (w.dim() - 1)

    @torch.no_grad()
    def init_scale(self, w: torch.Tensor, min_scale: float = 0.0) -> None:
        """LSQ initial step ``s = 2 mean|w| / sqrt(Q)`` (binary: ``mean|w|``), >= ``min_scale``."""
        if self.bits is None:
            return
        q = weight_levels(self.bits)
        dims = tuple(range(1, w.dim()))
        mean_abs = w.abs().mean(dim=dims) if self.per_channel else w.abs().mean().reshape(1)
        s = mean_abs if self.bits == 1 else 2.0 * mean_abs / math.sqrt(q)
        self.scale.copy_(torch.clamp(s, min=max(min_scale, 1e-8)))

    def step(self) -> torch.Tensor:
        """Positive step size ``s`` (shape ``(C,)`` or ``(1,)``)."""
        return self.scale.abs().clamp(min=1e-8)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return w
        q = weight_levels(self.bits)
        per = w.numel() / self.scale.numel()
        s = grad_scale(self.step(), 1.0 / math.sqrt(per * q)).reshape(self._shape(w))
        if self.bits == 1:
            x = torch.clamp(w / s, -1.0, 1.0)
            sign = torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
            return (x + (sign - x).detach()) * s
        return round_ste(torch.clamp(w / s, -q, q)) * s

    def integer(self, w: torch.Tensor) -> torch.Tensor:
        """Integer codes ``w_int`` of ``w`` (as a float tensor holding integers)."""
        if self.bits is None:
            raise CodesignError("weight quantizer: a floating-point layer has no integer codes")
        s = self.step().reshape(self._shape(w))
        if self.bits == 1:
            return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        q = weight_levels(self.bits)
        return torch.round(torch.clamp(w / s, -q, q)).detach()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"
