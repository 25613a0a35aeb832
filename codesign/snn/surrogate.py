"""Heaviside spike function with selectable surrogate gradients.

Forward: ``S = 1[x >= 0]`` with ``x = H - theta`` (a spike when the pre-reset membrane potential
reaches the threshold; SpikingJelly's convention, snnTorch fires on ``x > 0``: the two differ only
when ``H`` equals ``theta`` exactly).

Backward replaces the Dirac delta by a smooth pseudo-derivative ``g(x)`` of slope parameter
``alpha`` (each integrates to 1 over the real line except ``atan``'s, which also does):

* ``atan``      g = (alpha/2) / (1 + (pi/2 * alpha * x)^2)          (snnTorch ``atan``, alpha=2)
* ``sigmoid``   g = alpha * sig(alpha x) * (1 - sig(alpha x))        (SpikingJelly, alpha=4)
* ``triangle``  g = alpha * max(0, 1 - alpha |x|)                   (MINT / Q-SNN, alpha=1)
* ``rectangle`` g = alpha * 1[|x| < 1/(2 alpha)]                    (MS-ResNet, alpha=1)
"""

from __future__ import annotations

import math

import torch

from codesign.errors import CodesignError

SURROGATES = ("atan", "sigmoid", "triangle", "rectangle")
DEFAULT_ALPHA = {"atan": 2.0, "sigmoid": 4.0, "triangle": 1.0, "rectangle": 1.0}


def surrogate_grad(x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
    """Pseudo-derivative dS/dx of the spike function at ``x = H - theta``."""
    if kind == "atan":
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)
    if kind == "sigmoid":
        sg = torch.sigmoid(alpha * x)
        return alpha * sg * (1.0 - sg)
    if kind == "triangle":
        return alpha * torch.clamp(1.0 - alpha * x.abs(), min=0.0)
    if kind == "rectangle":
        return alpha * (x.abs() < 0.5 / alpha).to(x.dtype)
    raise CodesignError(
        f"surrogate: unknown kind {kind!r}; expected one of {', '.join(SURROGATES)}"
    )


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.kind = kind
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * surrogate_grad(x, ctx.kind, ctx.alpha), None, None


def spike(x: torch.Tensor, kind: str = "atan", alpha: float | None = None) -> torch.Tensor:
    """Heaviside step ``1[x >= 0]`` whose gradient is the chosen surrogate."""
    if kind not in SURROGATES:
        raise CodesignError(
            f"surrogate: unknown kind {kind!r}; expected one of {', '.join(SURROGATES)}"
        )
    return _SpikeFn.apply(x, kind, DEFAULT_ALPHA[kind] if alpha is None else float(alpha))
