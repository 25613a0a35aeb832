"""Multi-step leaky integrate-and-fire (LIF) neuron.

Per time step ``t = 1..T`` (``U[0] = 0``, ``S[0] = 0``), with ``reset_timing = "immediate"``
(the default):

    H[t] = beta * U[t-1] + I[t]                  charge (pre-reset potential)
    S[t] = 1[H[t] >= theta]                      fire
    U[t] = H[t] - theta * S[t]                   reset by subtraction  ("subtract")
    U[t] = H[t] * (1 - S[t])                     reset to zero         ("zero")

With ``reset_timing = "delayed"`` (snnTorch's default ``reset_delay=True``) the subtraction is
applied one step late and is not decayed: the register keeps the pre-reset potential and

    H[t] = beta * U[t-1] + I[t] - theta * S[t-1],   U[t] = H[t]          ("subtract")

For ``"zero"`` the two timings are the same function (``beta * H (1 - S) = beta * 0`` whether
the register is cleared before or after the decay), so ``delayed`` only changes ``subtract``.

``beta = 1`` is the integrate-and-fire (IF) neuron. The input ``I`` and the outputs have shape
``(T, B, ...)``. With ``record = True`` the pre-reset potentials ``H`` of the last call are kept
in :attr:`LIF.h` (with their autograd graph, so a loss on them trains the network).

Membrane storage precision (``ubits``): the potential written back to memory each step is an
integer of ``ubits`` bits on step ``s`` (see :mod:`codesign.snn.quant`): with
``Q_s(x) = s * round(x / s)`` (straight-through gradient), ``theta_q = s * theta_int`` and
``clamp`` to ``[s*lo, s*hi]`` (gradient to the clamped value inside the range, ties included,
and to the bounds outside it),

    immediate: H[t] = Q_s(beta * U[t-1] + I[t]),  S[t] = 1[H[t] >= theta_q],
               U[t] = clamp(H[t] - theta_q S[t])   (or clamp(H[t](1 - S[t])) for zero reset)
    delayed:   H[t] = Q_s(beta * U[t-1] + I[t] - theta_q S[t-1]),  S[t] = 1[H[t] >= theta_q],
               U[t] = clamp(H[t])

which an integer datapath (leak as a rounded multiply/shift, ``ubits``-bit register, integer
threshold) computes exactly. This module evaluates them in the tensor's float dtype, which
matches that datapath except at ties: ``round`` is half-to-even, but wherever ``(beta U + I) / s``
is exactly a half-integer (common: ``beta = 1/2`` and an odd register value) the float32
product, sum and division land a few ulp to either side of it, and that error, not the tie
rule, decides the rounding. float32 and float64 runs of one network therefore disagree on some
spikes (the shipped W4/U4 student on 200 mnist5k test images: 0.14 % of neuron-steps, 1.0 % of
the spikes, from 0.02 % of ``lif1``'s spikes to 6 % of ``lif3``'s as the differences propagate;
``tests/test_sim_network.py`` checks that they differ). The exact integer datapath is
:mod:`codesign.sim.network`.

Both the float and the quantized neuron run all ``T`` steps in one autograd node with a
hand-written BPTT backward (:class:`_FusedLIF`, :class:`_FusedQuantLIF`); :meth:`LIF.step`
is the plain-autograd oracle they are tested against (``tests/test_neuron.py``).

Mapping to the libraries (checked spike for spike in ``tests/test_neuron.py``):

* snnTorch ``snn.Leaky(beta=b, threshold=th, reset_mechanism="subtract"|"zero",
  reset_delay=False)`` equals ``LIF(beta=b, theta=th, reset=...)``; snnTorch's default
  ``reset_delay=True`` equals ``LIF(..., reset_timing="delayed")``. snnTorch fires on
  ``mem > th`` (ours ``>=``: they differ only when ``H`` equals ``theta`` exactly) and detaches
  the reset from the graph (ours keeps its gradient). Quantized: ``Leaky(state_quant=Q)`` with
  ``Q(m) = s clamp(round(m / s), lo, hi)``, ``threshold = theta_q`` and a ``>=`` spike function
  equals ours with the delayed reset at any input; with ``reset_delay=False`` snnTorch subtracts
  after the clamp (``clamp(H) - theta_q S``, ours ``clamp(H - theta_q S)``), so the two agree
  while ``H`` stays inside the register range.
* SpikingJelly ``LIFNode(tau, decay_input=False, v_threshold=th, v_reset=0.0 | None)`` equals
  ``LIF(beta=1 - 1/tau, theta=th, reset="zero" | "subtract")``. With ``decay_input=True`` the
  input is scaled by ``1/tau``; multiply the threshold instead: ``theta = tau * th``.
  ``IFNode`` is ``beta = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Optional, Union

import torch
from torch import nn

from codesign.errors import CodesignError
from codesign.snn.quant import check_bits, membrane_range, round_ste
from codesign.snn.surrogate import DEFAULT_ALPHA, SURROGATES, spike, surrogate_grad

RESETS = ("subtract", "zero")
RESET_TIMINGS = ("immediate", "delayed")

# State carried by :meth:`LIF.step`: ``U`` (immediate reset) or ``(U, S)`` (delayed reset).
State = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


def _surrogate_into(h: torch.Tensor, theta: Union[float, torch.Tensor], kind: str,
                    alpha: float, out: torch.Tensor) -> torch.Tensor:
    """``out = g(h - theta)``, the surrogate derivative (in place for ``atan``: no temporaries)."""
    if kind == "atan":  # (alpha/2) / (1 + (pi/2 alpha (H - theta))^2)
        torch.sub(h, theta, out=out)
        torch.addcmul(torch.ones((), dtype=out.dtype, device=out.device), out, out,
                      value=(math.pi / 2.0 * alpha) ** 2, out=out)
        torch.div(torch.full((), alpha / 2.0, dtype=out.dtype, device=out.device), out, out=out)
    else:
        out.copy_(surrogate_grad(h - theta, kind, alpha))
    return out


class _FusedLIF(torch.autograd.Function):
    """Float LIF over all T steps with a hand-written BPTT backward (no per-step autograd graph).

    Backward (``g`` = dL/d, ``sg[t]`` = surrogate derivative at ``H[t] - theta``), the
    per-step recursion ``gU[T] = 0``, ``gU[t-1] = beta gH[t]`` and

        subtract: gH[t] = gU[t] + (gS[t] - theta gU[t]) sg[t]
        zero:     gH[t] = gU[t] (1 - S[t]) + (gS[t] - H[t] gU[t]) sg[t]
        delayed subtract (H[t+1] = beta H[t] + I[t+1] - theta S[t]):
                  gH[t] = beta gH[t+1] + (gS[t] - theta gH[t+1]) sg[t]
        gH[t] += external gradient on recorded H;  gI[t] = gH[t]

    is evaluated as ``gI[t] = base[t] + k[t] gI[t+1]`` with ``base = gS sg + gH_ext`` and
    ``k = beta (1 - theta sg)`` (subtract), ``k = beta (1 - S - H sg)`` (zero) or
    ``k = beta - theta sg`` (delayed subtract): a few in-place passes per step into the output
    and one step-sized scratch buffer. The forward writes every step straight into its output
    buffers. Avoiding large temporaries matters on CPU, where every fresh multi-MB tensor costs
    page faults on first touch.
    """

    @staticmethod
    def forward(ctx, current, beta, theta, zero_reset, delayed, kind, alpha):  # type: ignore[override]
        steps = current.shape[0]
        out_s = torch.empty_like(current)
        out_h = torch.empty_like(current)
        u = torch.empty_like(current[0]) if steps > 1 and not delayed else None
        for t in range(steps):
            h, s = out_h[t], out_s[t]
            if t == 0:  # U[0] = 0, S[0] = 0
                h.copy_(current[t])
            elif delayed:  # H = beta H[t-1] + I - theta S[t-1]
                torch.mul(out_h[t - 1], beta, out=h)
                h.add_(current[t]).sub_(out_s[t - 1], alpha=theta)
            elif beta == 0:
                h.copy_(current[t])
            else:  # H = beta U + I (a multiply, then an add: the rounding of LIF.step, no FMA)
                torch.mul(u, beta, out=h)
                h.add_(current[t])
            torch.ge(h, theta, out=s)
            if t < steps - 1 and beta != 0 and not delayed:
                if zero_reset:
                    torch.addcmul(h, h, s, value=-1.0, out=u)  # U = H - H S = H (1 - S)
                else:
                    torch.sub(h, s, alpha=theta, out=u)  # U = H - theta S
        ctx.set_materialize_grads(False)
        if zero_reset:
            ctx.save_for_backward(out_h, out_s)
        else:
            ctx.save_for_backward(out_h)
        ctx.cfg = (beta, theta, zero_reset, delayed, kind, alpha)
        return out_s, out_h

    @staticmethod
    def backward(ctx, grad_s, grad_h):  # type: ignore[override]
        beta, theta, zero_reset, delayed, kind, alpha = ctx.cfg
        out_h = ctx.saved_tensors[0]
        out_s = ctx.saved_tensors[1] if zero_reset else None
        none = (None,) * 6
        if grad_s is None and grad_h is None:
            return (None,) + none
        steps = out_h.shape[0]
        grad_in = torch.empty_like(out_h)
        # one step-sized scratch buffer (large fresh allocations are slow on CPU: page faults)
        sg = torch.empty_like(out_h[0])
        bt = torch.full((), beta, dtype=sg.dtype, device=sg.device)
        for t in range(steps - 1, -1, -1):
            h, g = out_h[t], grad_in[t]
            _surrogate_into(h, theta, kind, alpha, sg)
            if grad_s is not None:
                torch.mul(grad_s[t], sg, out=g)  # base = gS sg (+ gH_ext)
                if grad_h is not None:
                    g.add_(grad_h[t])
            else:
                g.copy_(grad_h[t])
            if t == steps - 1 or (beta == 0 and not delayed):
                continue
            if delayed:
                torch.add(bt, sg, alpha=-theta, out=sg)  # k = beta - theta sg
            elif zero_reset:
                torch.addcmul(out_s[t], h, sg, out=sg)  # S + H sg
                torch.add(bt, sg, alpha=-beta, out=sg)  # k = beta (1 - S - H sg)
            else:
                torch.add(bt, sg, alpha=-beta * theta, out=sg)  # k = beta (1 - theta sg)
            g.addcmul_(grad_in[t + 1], sg)  # gI[t] = base[t] + k[t] gI[t+1]
        return (grad_in,) + none


def _pow2(beta: float) -> bool:
    """True when ``beta * u`` is exact in binary floating point (``beta`` a power of two)."""
    return beta > 0.0 and math.frexp(beta)[0] == 0.5


def _sub_scaled(a: torch.Tensor, b: torch.Tensor, k: Union[float, torch.Tensor],
                out: torch.Tensor) -> torch.Tensor:
    """``out = a - k b`` with ``k`` a Python number (one pass, ``alpha``) or a broadcast tensor."""
    if isinstance(k, float):
        return torch.sub(a, b, alpha=k, out=out)
    return torch.addcmul(a, b, k, value=-1.0, out=out)


class _StepGrad:
    """Accumulator of the membrane step's gradient ``sum(scale * a * b)`` reduced to the step's
    shape: a Python float (one-element step: the products summed with PyTorch's cascade sum of
    one scratch buffer) or a tensor of the step's shape (``sum_to_size``)."""

    def __init__(self, step: torch.Tensor, scratch: torch.Tensor) -> None:
        self.step = step
        self.scalar = step.numel() == 1
        self.scratch = scratch
        self.total: Union[float, torch.Tensor] = 0.0 if self.scalar else torch.zeros_like(step)

    def add(self, a: torch.Tensor, b: Optional[torch.Tensor] = None,
            scale: Union[float, torch.Tensor] = 1.0) -> None:
        prod = a if b is None else torch.mul(a, b, out=self.scratch)
        if self.scalar:
            self.total += float(prod.sum()) * float(scale)
        else:
            self.total = self.total + prod.sum_to_size(self.step.shape) * scale

    def result(self) -> torch.Tensor:
        if self.scalar:
            return torch.full(self.step.shape, self.total, dtype=self.step.dtype,
                              device=self.step.device)
        assert isinstance(self.total, torch.Tensor)
        return self.total


class _FusedQuantLIF(torch.autograd.Function):
    """Quantized LIF (membrane on the grid ``s * [lo, hi]``) over all T steps, hand-written BPTT.

    Inputs: ``current`` ``(T, B, ...)``, the membrane step ``s`` and the integer threshold
    ``theta_int`` (both broadcastable to one step, ``theta_int`` without gradient). The forward
    performs exactly the floating-point operations of :meth:`LIF.step` (same values, bit for
    bit). The backward is the chain rule of that graph (``dL/d``: ``g``; ``sg`` the surrogate
    derivative at ``H - theta_q``; ``z = x / s`` and ``e = round(z) - z``):

        Q (straight-through):   gx = gH,            gs += gH e
        fire S = 1[H >= theta_q]:  gH += gS sg,     gtheta_q -= gS sg
        clamp(c, s lo, s hi):   gc = gU 1[lo s <= c <= hi s],  gs += gU (hi 1[c > hi s]
                                + lo 1[c < lo s])
        immediate subtract (c = H - theta_q S): gH += gc, gS -= theta_q gc, gtheta_q -= S gc
        immediate zero (c = H (1 - S)):         gH += gc (1 - S), gS -= H gc
        delayed subtract (c = H; x[t+1] -= theta_q S[t]): gH += gc, gS -= theta_q gx[t+1],
                                                          gtheta_q -= S gx[t+1]
        carry gU[t] = beta gx[t+1];  gI[t] = gx[t];  gs += theta_int gtheta_q

    summed over steps and reduced over the broadcast dimensions of ``s`` (each term reduced
    as it is formed: no elementwise accumulators). The forward notes per step whether the
    clamp bit anywhere (one min/max pass); the backward skips the clamp masks of steps where
    it did not (the masks would be all ones). A one-element step (the default, per-layer
    step) enters every elementwise op as a Python number: the same float32 value (so the same
    results), but PyTorch's vectorised scalar kernels instead of a broadcast 0-d tensor
    operand (a ternary ``addcmul`` with a 0-d operand runs at about half the speed). With a
    power-of-two ``beta`` (``beta u`` exact) the charge ``beta U + I`` is one ``add`` pass.
    """

    @staticmethod
    def forward(ctx, current, step, theta_int, beta, lo, hi, zero_reset, delayed, kind,  # type: ignore[override]
                alpha, need_step_grad):
        steps = current.shape[0]
        out_s = torch.empty_like(current)
        out_h = torch.empty_like(current)
        err = torch.empty_like(current) if need_step_grad else None
        theta_q = theta_int * step
        lo_s, hi_s = lo * step, hi * step
        lo_max, hi_min = float(lo_s.max()), float(hi_s.min())
        scalar = step.numel() == 1
        # the step-shaped operands, as Python numbers when one element (same float values)
        st = float(step) if scalar else step
        thq = float(theta_q) if scalar else theta_q
        lo_v = float(lo_s) if scalar else lo_s
        hi_v = float(hi_s) if scalar else hi_s
        one_add = _pow2(beta)
        x = torch.empty_like(current[0])
        u = torch.empty_like(current[0]) if steps > 1 else None
        clamped = [False] * steps
        for t in range(steps):
            h, s = out_h[t], out_s[t]
            if t == 0:  # U[0] = 0: x = beta * 0 + I, z = x / s
                torch.div(current[0], st, out=x)
            else:
                if one_add:  # beta U exact: I + beta U rounds once, as beta * U + I does
                    torch.add(current[t], u, alpha=beta, out=x)
                else:
                    torch.mul(u, beta, out=x)
                    x.add_(current[t])  # x = beta U + I
                if delayed:
                    _sub_scaled(x, out_s[t - 1], thq, out=x)  # - theta_q S[t-1]
                x.div_(st)  # z = x / s
            torch.round(x, out=h)
            if err is not None:
                torch.sub(h, x, out=err[t])  # e = round(z) - z (exact)
            h.mul_(st)  # H = s round(x / s)
            torch.ge(h, thq, out=s)
            if t < steps - 1:
                if delayed:
                    u.copy_(h)
                elif zero_reset:
                    torch.addcmul(h, h, s, value=-1.0, out=u)  # H (1 - S)
                else:
                    _sub_scaled(h, s, thq, out=u)  # H - theta_q S (S in {0, 1}: exact product)
                u_min, u_max = torch.aminmax(u)
                clamped[t] = bool(u_min < lo_max) or bool(u_max > hi_min)
                if clamped[t]:  # (otherwise the clamp is the identity)
                    torch.clamp(u, lo_v, hi_v, out=u)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(out_h, out_s, err, step, theta_int, theta_q, lo_s, hi_s)
        ctx.cfg = (beta, lo, hi, zero_reset, delayed, kind, alpha, clamped)
        return out_s, out_h

    @staticmethod
    def backward(ctx, grad_s, grad_h):  # type: ignore[override]
        beta, lo, hi, zero_reset, delayed, kind, alpha, clamped = ctx.cfg
        out_h, out_s, err, step, theta_int, theta_q, lo_s, hi_s = ctx.saved_tensors
        none = (None,) * 9
        if grad_s is None and grad_h is None:
            return (None, None) + none
        need_step = err is not None and ctx.needs_input_grad[1]
        scalar = step.numel() == 1
        thq = float(theta_q) if scalar else theta_q
        thi = float(theta_int) if scalar else theta_int
        steps = out_h.shape[0]
        grad_in = torch.empty_like(out_h)
        sg, gu, m, p = (torch.empty_like(out_h[0]) for _ in range(4))
        acc = _StepGrad(step, torch.empty_like(sg)) if need_step else None
        for t in range(steps - 1, -1, -1):
            h, s, g = out_h[t], out_s[t], grad_in[t]
            nxt = grad_in[t + 1] if t < steps - 1 else None
            # gradient reaching U[t] through the next step (then the clamp): gu = beta nxt,
            # formed only where it is needed (clamp, zero reset); otherwise folded into alphas
            gu_t: Optional[torch.Tensor] = None
            if nxt is not None and (clamped[t] or zero_reset):
                gu_t = torch.mul(nxt, beta, out=gu)
                if clamped[t]:
                    if delayed:
                        c = h
                    else:
                        c = sg  # scratch: the clamp input, recomputed with the forward's ops
                        if zero_reset:
                            torch.addcmul(h, h, s, value=-1.0, out=c)
                        else:
                            _sub_scaled(h, s, thq, out=c)
                    torch.gt(c, hi_s, out=m)
                    torch.lt(c, lo_s, out=p)
                    if acc is not None:
                        acc.add(gu_t, m, float(hi))
                        acc.add(gu_t, p, float(lo))
                    m.add_(p)
                    gu_t.addcmul_(gu_t, m, value=-1.0)  # inside the range only
            _surrogate_into(h, thq, kind, alpha, sg)
            # g = dL/dS[t] (before the surrogate)
            if nxt is None:
                if grad_s is not None:
                    g.copy_(grad_s[t])
                else:
                    g.zero_()
            else:
                gs_t = grad_s[t] if grad_s is not None else None
                if delayed:
                    a, k = nxt, thq
                elif zero_reset:
                    assert gu_t is not None
                    a, k = None, None
                elif gu_t is not None:
                    a, k = gu_t, thq
                else:
                    a, k = nxt, (beta * thq if scalar else theta_q * beta)
                if a is None:  # zero reset: - H gc
                    if gs_t is not None:
                        torch.addcmul(gs_t, h, gu_t, value=-1.0, out=g)
                    else:
                        torch.mul(h, gu_t, out=g).neg_()
                elif gs_t is not None:
                    _sub_scaled(gs_t, a, k, out=g)
                elif isinstance(k, float):
                    torch.mul(a, -k, out=g)
                else:
                    torch.mul(a, k, out=g).neg_()
            g.mul_(sg)  # gS sg: the gradient through the spike
            if acc is not None:
                acc.add(g, scale=-thi)  # gtheta_q -= gS sg
                if nxt is not None and not zero_reset:  # gtheta_q -= S gc (or S gx[t+1])
                    if delayed or gu_t is None:
                        acc.add(s, nxt, -thi * (1.0 if delayed else beta))
                    else:
                        acc.add(s, gu_t, -thi)
            if grad_h is not None:
                g.add_(grad_h[t])
            if nxt is not None:
                if gu_t is None:
                    g.add_(nxt, alpha=beta)
                else:
                    g.add_(gu_t)
                    if zero_reset:
                        g.addcmul_(gu_t, s, value=-1.0)  # gc (1 - S)
            if acc is not None:
                assert err is not None
                acc.add(g, err[t])
        grad_step = acc.result() if acc is not None else None
        return (grad_in, grad_step) + none


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
        reset_timing: str = "immediate",
    ) -> None:
        super().__init__()
        if reset not in RESETS:
            raise CodesignError(f"neuron.reset: {reset!r} is not known; expected one of {RESETS}")
        if reset_timing not in RESET_TIMINGS:
            raise CodesignError(
                f"neuron.reset_timing: {reset_timing!r} is not known; expected one of "
                f"{RESET_TIMINGS}"
            )
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
        self.reset_timing = reset_timing
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

    @property
    def delayed(self) -> bool:
        """True when the reset is applied one step late (only ``subtract`` differs)."""
        return self.reset_timing == "delayed" and self.reset == "subtract"

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

    def _grid(self, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Membrane step and integer threshold shaped to broadcast over one ``dim``-D step."""
        step = self.membrane_step()
        shape = (1, -1) + (1,) * (dim - 2) if step.numel() > 1 else ()  # () : a 0-d scalar
        return step.reshape(shape), self.threshold_int().reshape(shape)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if self.ubits is None:
            s, h = _FusedLIF.apply(current, self.beta, self.theta, self.reset == "zero",
                                   self.delayed, self.surrogate, self.alpha)
        else:
            lo, hi = membrane_range(self.ubits)
            step, theta_int = self._grid(current.dim() - 1)
            need = torch.is_grad_enabled() and step.requires_grad
            s, h = _FusedQuantLIF.apply(current, step, theta_int, self.beta, lo, hi,
                                        self.reset == "zero", self.delayed, self.surrogate,
                                        self.alpha, need)
        if self.record:
            self.h, self.s = h, s
        return s

    def step(self, current: torch.Tensor, state: Optional[State]
             ) -> tuple[torch.Tensor, torch.Tensor, State]:
        """One time step through plain autograd: ``(I[t], state[t-1]) -> (S[t], H[t], state[t])``.

        The state is ``U`` (immediate reset) or ``(U, S)`` (delayed reset); ``None`` starts
        from rest. Float and quantized neurons alike; the multi-step :meth:`forward` must equal
        a loop over this (``tests/test_neuron.py``).
        """
        if state is None:
            u = torch.zeros_like(current)
            s_prev = torch.zeros_like(current)
        elif isinstance(state, tuple):
            u, s_prev = state
        else:
            u, s_prev = state, torch.zeros_like(current)
        if self.ubits is None:
            h = self.beta * u + current
            if self.delayed:
                h = h - self.theta * s_prev
            s = spike(h - self.theta, self.surrogate, self.alpha)
            if self.delayed:
                return s, h, (h, s)
            u = h * (1 - s) if self.reset == "zero" else h - self.theta * s
            return s, h, u
        lo, hi = membrane_range(self.ubits)
        step, theta_int = self._grid(current.dim())
        theta_q = theta_int * step
        x = self.beta * u + current
        if self.delayed:
            x = x - theta_q * s_prev
        h = round_ste(x / step) * step
        s = spike(h - theta_q, self.surrogate, self.alpha)
        if self.delayed:
            u = h
        else:
            u = h * (1 - s) if self.reset == "zero" else h - theta_q * s
        u = torch.clamp(u, lo * step, hi * step)
        return s, h, ((u, s) if self.delayed else u)

    def reference_forward(self, current: torch.Tensor) -> torch.Tensor:
        """All steps through :meth:`step` and plain autograd (the oracle for the fused path)."""
        s, h = self._loop(current)
        if self.record:
            self.h, self.s = h, s
        return s

    def _loop(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state: Optional[State] = None
        spikes, hs = [], []
        for t in range(current.shape[0]):
            s, h, state = self.step(current[t], state)
            spikes.append(s)
            hs.append(h)
        return torch.stack(spikes), torch.stack(hs)

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, theta={self.theta}, reset={self.reset}, "
            f"reset_timing={self.reset_timing}, surrogate={self.surrogate}({self.alpha}), "
            f"ubits={self.ubits}"
        )
