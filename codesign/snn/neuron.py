"""Multi-step leaky integrate-and-fire (LIF) neuron.

Per time step ``t = 1..T`` (``U[0] = 0``):

    H[t] = beta * U[t-1] + I[t]                  charge (pre-reset potential)
    S[t] = 1[H[t] >= theta]                      fire
    U[t] = H[t] - theta * S[t]                   reset by subtraction  ("subtract")
    U[t] = H[t] * (1 - S[t])                     reset to zero         ("zero")

``beta = 1`` is the integrate-and-fire (IF) neuron. The input ``I`` and the outputs have shape
``(T, B, ...)``. With ``record = True`` the pre-reset potentials ``H`` of the last call are kept
in :attr:`LIF.h` (with their autograd graph, so a loss on them trains the network).

Membrane storage precision (``ubits``): the potential written back to memory each step is an
integer of ``ubits`` bits on step ``s`` (see :mod:`codesign.snn.quant`): with
``Q_s(x) = s * round(x / s)`` and ``theta_q = s * theta_int``,

    H[t] = Q_s(beta * U[t-1] + I[t]),  S[t] = 1[H[t] >= theta_q],
    U[t] = clamp(H[t] - theta_q S[t], s*lo, s*hi)   (or H[t](1 - S[t]) for zero reset)

so an integer datapath (leak as a rounded multiply/shift, ``ubits``-bit register, integer
threshold) reproduces the spikes exactly.

Mapping to the libraries (checked spike for spike in ``tests/test_neuron.py``):

* snnTorch ``snn.Leaky(beta=b, threshold=th, reset_mechanism="subtract"|"zero",
  reset_delay=False)`` equals ``LIF(beta=b, theta=th, reset=...)``. snnTorch's default
  ``reset_delay=True`` subtracts an *undecayed* ``th`` one step later
  (``mem[t] = b mem[t-1] + I[t] - th S[t-1]``); that equals ours only for ``beta = 1`` (IF).
* SpikingJelly ``LIFNode(tau, decay_input=False, v_threshold=th, v_reset=0.0 | None)`` equals
  ``LIF(beta=1 - 1/tau, theta=th, reset="zero" | "subtract")``. With ``decay_input=True`` the
  input is scaled by ``1/tau``; multiply the threshold instead: ``theta = tau * th``.
  ``IFNode`` is ``beta = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Optional

import torch
from torch import nn

from codesign.errors import CodesignError
from codesign.snn.quant import check_bits, membrane_range, round_ste
from codesign.snn.surrogate import DEFAULT_ALPHA, SURROGATES, spike, surrogate_grad

RESETS = ("subtract", "zero")


class _FusedLIF(torch.autograd.Function):
    """Float LIF over all T steps with a hand-written BPTT backward (no per-step autograd graph).

    Backward (``g`` = dL/d, ``sg[t]`` = surrogate derivative at ``H[t] - theta``), the
    per-step recursion ``gU[T] = 0``, ``gU[t-1] = beta gH[t]`` and

        subtract: gH[t] = gU[t] + (gS[t] - theta gU[t]) sg[t]
        zero:     gH[t] = gU[t] (1 - S[t]) + (gS[t] - H[t] gU[t]) sg[t]
        gH[t] += external gradient on recorded H;  gI[t] = gH[t]

    is evaluated as ``gI[t] = base[t] + k[t] gI[t+1]`` with ``base = gS sg + gH_ext`` and
    ``k = beta (1 - theta sg)`` (subtract) or ``k = beta (1 - S - H sg)`` (zero): a few
    in-place passes per step into the output and one step-sized scratch buffer. The forward
    writes every step straight into its output buffers. Avoiding large temporaries matters on
    CPU, where every fresh multi-MB tensor costs page faults on first touch.
    """

    @staticmethod
    def forward(ctx, current, beta, theta, zero_reset, kind, alpha):  # type: ignore[override]
        steps = current.shape[0]
        out_s = torch.empty_like(current)
        out_h = torch.empty_like(current)
        u = torch.empty_like(current[0]) if steps > 1 else None
        for t in range(steps):
            h, s = out_h[t], out_s[t]
            if t == 0 or beta == 0:  # U[0] = 0
                h.copy_(current[t])
            else:
                torch.add(current[t], u, alpha=beta, out=h)  # H = I + beta U
            torch.ge(h, theta, out=s)
            if t < steps - 1 and beta != 0:
                if zero_reset:
                    torch.addcmul(h, h, s, value=-1.0, out=u)  # U = H - H S = H (1 - S)
                else:
                    torch.sub(h, s, alpha=theta, out=u)  # U = H - theta S
        ctx.set_materialize_grads(False)
        if zero_reset:
            ctx.save_for_backward(out_h, out_s)
        else:
            ctx.save_for_backward(out_h)
        ctx.cfg = (beta, theta, zero_reset, kind, alpha)
        return out_s, out_h

    @staticmethod
    def backward(ctx, grad_s, grad_h):  # type: ignore[override]
        beta, theta, zero_reset, kind, alpha = ctx.cfg
        out_h = ctx.saved_tensors[0]
        out_s = ctx.saved_tensors[1] if zero_reset else None
        if grad_s is None and grad_h is None:
            return None, None, None, None, None, None
        steps = out_h.shape[0]
        grad_in = torch.empty_like(out_h)
        # one step-sized scratch buffer (large fresh allocations are slow on CPU: page faults)
        sg = torch.empty_like(out_h[0])
        scalar = dict(dtype=sg.dtype, device=sg.device)
        one = torch.ones((), **scalar)
        half_alpha = torch.full((), alpha / 2.0, **scalar)
        bt = torch.full((), beta, **scalar)
        c2 = (math.pi / 2.0 * alpha) ** 2
        for t in range(steps - 1, -1, -1):
            h, g = out_h[t], grad_in[t]
            if kind == "atan":  # (alpha/2) / (1 + (pi/2 alpha (H - theta))^2)
                torch.sub(h, theta, out=sg)
                torch.addcmul(one, sg, sg, value=c2, out=sg)
                torch.div(half_alpha, sg, out=sg)
            else:
                sg.copy_(surrogate_grad(h - theta, kind, alpha))
            if grad_s is not None:
                torch.mul(grad_s[t], sg, out=g)  # base = gS sg (+ gH_ext)
                if grad_h is not None:
                    g.add_(grad_h[t])
            else:
                g.copy_(grad_h[t])
            if t == steps - 1 or beta == 0:
                continue
            if zero_reset:
                torch.addcmul(out_s[t], h, sg, out=sg)  # S + H sg
                torch.add(bt, sg, alpha=-beta, out=sg)  # k = beta (1 - S - H sg)
            else:
                torch.add(bt, sg, alpha=-beta * theta, out=sg)  # k = beta (1 - theta sg)
            g.addcmul_(grad_in[t + 1], sg)  # gI[t] = base[t] + k[t] gI[t+1]
        return grad_in, None, None, None, None, None


class LIF(nn.Module):
    """Multi-step LIF population; see the module docstring for the equations."""

    def __init__(
        self,
        beta: float = 0.5,
        theta: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "atan",
        alpha: Optional[float] = None,
        ubits: Optional[int] = None,
    ) -> None:
        super().__init__()
        if reset not in RESETS:
            raise CodesignError(f"neuron.reset: {reset!r} is not known; expected one of {RESETS}")
        if surrogate not in SURROGATES:
            raise CodesignError(
                f"neuron.surrogate: {surrogate!r} is not known; expected one of {SURROGATES}"
            )
        if not 0.0 <= float(beta) <= 1.0:
            raise CodesignError(f"neuron.beta: {beta!r} is out of range; expected 0 <= beta <= 1")
        if not float(theta) > 0.0:
            raise CodesignError(f"neuron.theta: {theta!r} is out of range; expected theta > 0")
        self.beta = float(beta)
        self.theta = float(theta)
        self.reset = reset
        self.surrogate = surrogate
        self.alpha = float(DEFAULT_ALPHA[surrogate] if alpha is None else alpha)
        self.ubits = check_bits(ubits, "neuron.ubits", minimum=2)
        self.record = False
        self.h: Optional[torch.Tensor] = None
        self.s: Optional[torch.Tensor] = None
        # Step of the membrane grid: shared with the feeding synaptic layer when bound,
        # otherwise a learned step of this population.
        self._scale_fn: Optional[Callable[[], torch.Tensor]] = None
        self.own_scale: Optional[nn.Parameter] = None
        if self.ubits is not None:
            self.own_scale = nn.Parameter(torch.tensor([self.theta / 2 ** (self.ubits - 2)]))

    def bind_scale(self, fn: Callable[[], torch.Tensor]) -> None:
        """Share the membrane step with the feeding layer's weight step (MINT-style)."""
        self._scale_fn = fn

    def membrane_step(self) -> torch.Tensor:
        """Step ``s`` of the membrane grid, shape ``(C,)`` or ``(1,)``."""
        if self._scale_fn is not None:
            return self._scale_fn()
        assert self.own_scale is not None
        return self.own_scale.abs().clamp(min=1e-8)

    def threshold_int(self) -> torch.Tensor:
        """Integer threshold ``clamp(round(theta / s), 1, 2^(b-1) - 1)`` of the quantized neuron."""
        if self.ubits is None:
            raise CodesignError("neuron: a floating-point neuron has no integer threshold")
        hi = membrane_range(self.ubits)[1]
        return torch.clamp(torch.round(self.theta / self.membrane_step().detach()), 1, hi)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if self.ubits is None:
            s, h = _FusedLIF.apply(
                current, self.beta, self.theta, self.reset == "zero", self.surrogate, self.alpha
            )
        else:
            s, h = self._loop(current)
        if self.record:
            self.h, self.s = h, s
        return s

    def step(self, current: torch.Tensor, u: Optional[torch.Tensor]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One time step through plain autograd: ``(I[t], U[t-1]) -> (S[t], H[t], U[t])``.

        ``u=None`` starts from rest (``U = 0``). Float and quantized neurons alike; the
        multi-step :meth:`forward` must equal a loop over this (``tests/test_neuron.py``).
        """
        if u is None:
            u = torch.zeros_like(current)
        if self.ubits is None:
            h = self.beta * u + current
            s = spike(h - self.theta, self.surrogate, self.alpha)
            u = h * (1 - s) if self.reset == "zero" else h - self.theta * s
            return s, h, u
        lo, hi = membrane_range(self.ubits)
        step = self.membrane_step()
        shape = (1, -1) + (1,) * (current.dim() - 2) if step.numel() > 1 else (1,)
        step = step.reshape(shape)
        theta_q = self.threshold_int().reshape(shape) * step
        h = round_ste((self.beta * u + current) / step) * step
        s = spike(h - theta_q, self.surrogate, self.alpha)
        u = h * (1 - s) if self.reset == "zero" else h - theta_q * s
        u = torch.maximum(torch.minimum(u, hi * step), lo * step)
        return s, h, u

    def reference_forward(self, current: torch.Tensor) -> torch.Tensor:
        """All steps through :meth:`step` and plain autograd (the oracle for the fused path)."""
        s, h = self._loop(current)
        if self.record:
            self.h, self.s = h, s
        return s

    def _loop(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = None
        spikes, hs = [], []
        for t in range(current.shape[0]):
            s, h, u = self.step(current[t], u)
            spikes.append(s)
            hs.append(h)
        return torch.stack(spikes), torch.stack(hs)

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, theta={self.theta}, reset={self.reset}, "
            f"surrogate={self.surrogate}({self.alpha}), ubits={self.ubits}"
        )
