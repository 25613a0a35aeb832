"""The crossbar backend behind the :class:`~codesign.snn.layers.Synapse` seam.

:func:`attach` sets ``synapse.backend`` on every synaptic layer of a model to a
:class:`CrossbarBackend` of one programmed chip (:mod:`codesign.sim.network`); the model's own
forward (its float LIF included) then runs every weight-times-input step on the simulated
crossbars. The value returned is the hardware product ``(y / D + b_int) s``; the gradient is
that of the ideal product (straight-through), so the same backend serves hardware-aware
training. :func:`detach` restores the ideal product.
"""

from __future__ import annotations

from typing import Optional

import torch

from codesign.errors import CodesignError
from codesign.sim.network import HardwareNet
from codesign.snn.layers import Synapse
from codesign.snn.model import SpikingNet


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
        with torch.no_grad():
            analog = not bool(((x == 0) | (x == 1)).all())
            bits = self.net.spec.input.bits if analog else None
            y, denom = info.xbar.forward_int(x.detach().float(), input_bits=bits,
                                             scheme=self.net.spec.input.first_layer,
                                             gen=self.gen)
            shape = (1, -1) + (1,) * (y.dim() - 2)
            hw = y.to(x.dtype) / denom
            if info.bias_int is not None:
                hw = hw + info.bias_int.to(x.dtype).reshape(shape)
            hw = hw * info.step.to(x.dtype).reshape(shape if info.step.numel() > 1 else (1,))
        ideal = syn._linear_op(x, w, b)
        return ideal + (hw - ideal).detach()


def attach(model: SpikingNet, backend: CrossbarBackend) -> None:
    """Route every synapse of ``model`` through ``backend``."""
    for _, syn in model.synapses():
        syn.backend = backend


def detach(model: SpikingNet) -> None:
    """Back to the ideal product."""
    for _, syn in model.synapses():
        syn.backend = None
