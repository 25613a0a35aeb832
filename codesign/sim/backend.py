"""The crossbar backend behind the :class:`~codesign.snn.layers.Synapse` seam.

:func:`attach` sets ``synapse.backend`` on every synaptic layer of a model to a
:class:`CrossbarBackend` of one programmed chip (:mod:`codesign.sim.network`); the model's own
forward (its float LIF included) then runs every weight-times-input step on the simulated
crossbars. The value returned is the hardware product ``(y / D + b_int) s``; the gradient is
that of the ideal product ``W x + b`` (straight-through), so the same backend serves
hardware-aware training. :func:`detach` restores the ideal product.

The straight-through step is one autograd node (:class:`_StraightThrough`): its forward returns
the simulated product and saves ``x`` and ``W``; its backward is the ideal product's backward
(``convolution_backward`` / the matrix products of ``F.linear``) from those saved inputs, the
same gradient as autograd gives ``ideal + (hw - ideal).detach()`` without computing the ideal
forward product at all (tested bit for bit in ``tests/test_sim_backend.py``).
"""

from __future__ import annotations

from typing import Optional

import torch

from codesign.errors import CodesignError
from codesign.sim.network import HardwareNet
from codesign.sim.noise_tape import core_for_draws
from codesign.snn.encoding import is_spike_tensor
from codesign.snn.layers import Synapse
from codesign.snn.model import SpikingNet


class _StraightThrough(torch.autograd.Function):
    """``hw = fn()`` (the simulated product, computed without a graph) in the forward; in the
    backward the gradient of the ideal product ``op(x, w, b)`` of ``syn`` (conv2d or linear)
    with respect to ``x``, ``w`` and ``b``: ``dL/dx = op^T(g, w)``, ``dL/dw = g (x) x`` (the
    weight gradient of the same op), ``dL/db = sum g`` over all but the channel dimension."""

    @staticmethod
    def forward(ctx, x, w, b, syn, fn):  # type: ignore[override]
        ctx.save_for_backward(x, w)
        ctx.syn = syn
        ctx.has_bias = b is not None
        return fn()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, w = ctx.saved_tensors
        syn = ctx.syn
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and ctx.has_bias
        gx = gw = gb = None
        if syn.kind == "conv":
            conv = syn.op
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, w, [w.shape[0]] if ctx.has_bias else None, list(conv.stride),
                list(conv.padding), list(conv.dilation), False, [0] * (x.dim() - 2),
                conv.groups, [need_x, need_w, need_b])
        else:  # F.linear on (N, in): addmm(b, x, w^T) / mm(x, w^T), as autograd derives it
            if need_x:
                gx = grad.mm(w)
            if need_w:
                gw = x.t().mm(grad).t()
            if need_b:
                gb = grad.sum(0)
        return gx, gw, gb, None, None


class CrossbarBackend:
    """``backend(synapse, x, w, b)`` of one programmed chip."""

    static_once = True
    """A static input (the direct-encoded first layer) is read once per sample, not once per
    step (:class:`~codesign.snn.layers.Synapse`), as :func:`codesign.sim.network.forward`
    reads it: the same products and the same number of noisy reads as the inference simulator.
    """

    def __init__(self, net: HardwareNet, gen: Optional[torch.Generator]) -> None:
        self.net = net
        self.gen = gen
        self.by_id = {id(layer): name for name, layer in net.model.layers.items()
                      if isinstance(layer, Synapse)}
        first = next(iter(self.by_id.values()))
        self.first = first
        self.calls: dict[str, int] = {}

    def __call__(self, syn: Synapse, x: torch.Tensor, w: torch.Tensor,
                 b: Optional[torch.Tensor]) -> torch.Tensor:
        name = self.by_id.get(id(syn))
        if name is None:
            raise CodesignError("crossbar backend: this synapse is not part of the simulated "
                                "network")
        info = self.net.synapses[name]
        self.calls[name] = self.calls.get(name, 0) + 1

        def hardware() -> torch.Tensor:
            analog = not is_spike_tensor(x)
            bits = self.net.spec.input.bits if analog else None
            with core_for_draws("read_noise" in self.net.names):  # as forward() does
                y, denom = info.xbar.forward_int(x.detach().float(), input_bits=bits,
                                                 scheme=self.net.spec.input.first_layer,
                                                 gen=self.gen)
            shape = (1, -1) + (1,) * (y.dim() - 2)
            hw = y.to(x.dtype) / denom
            if info.bias_int is not None:
                hw = hw + info.bias_int.to(x.dtype).reshape(shape)
            return hw * info.step.to(x.dtype).reshape(shape if info.step.numel() > 1 else (1,))

        if not torch.is_grad_enabled() or not any(
                t is not None and t.requires_grad for t in (x, w, b)):
            with torch.no_grad():
                return hardware()
        if syn.kind != "conv" and x.dim() != 2:  # (not produced by Synapse: time is folded)
            with torch.no_grad():
                hw = hardware()
            ideal = syn._linear_op(x, w, b)
            return ideal + (hw - ideal).detach()
        return _StraightThrough.apply(x, w, b, syn, hardware)


def attach(model: SpikingNet, backend: CrossbarBackend) -> None:
    """Route every synapse of ``model`` through ``backend``."""
    for _, syn in model.synapses():
        syn.backend = backend


def detach(model: SpikingNet) -> None:
    """Back to the ideal product."""
    for _, syn in model.synapses():
        syn.backend = None
