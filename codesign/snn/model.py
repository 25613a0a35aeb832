"""The spiking network: an ordered set of multi-step layers with a non-spiking readout.

``SpikingNet.forward(x)`` encodes the batch into ``T`` steps, runs every layer on the whole
``(T, B, ...)`` sequence (stateless layers once with time folded into the batch, neurons loop
over time) and returns the per-step logits ``(T, B, K)`` of the final linear readout. The
prediction uses the mean logits over steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import torch
from torch import nn

from codesign.snn.encoding import encode
from codesign.snn.layers import Synapse
from codesign.snn.neuron import LIF


class MSBlock(nn.Module):
    """Membrane-shortcut residual block (MS-ResNet, Hu et al.), acting on input currents.

    ``out = I + BN(conv_b(LIF_b(BN(conv_a(LIF_a(I))))))``; the shortcut adds currents
    (membrane contributions), not spikes. When the stride or width changes, the shortcut is
    ``BN(conv_1x1(LIF_a(I)))``.
    """

    def __init__(self, lif_a: LIF, conv_a: Synapse, lif_b: LIF, conv_b: Synapse,
                 shortcut: Optional[Synapse] = None) -> None:
        super().__init__()
        self.lif_a, self.conv_a, self.lif_b, self.conv_b = lif_a, conv_a, lif_b, conv_b
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s_a = self.lif_a(x)
        y = self.conv_b(self.lif_b(self.conv_a(s_a)))
        return y + (self.shortcut(s_a) if self.shortcut is not None else x)


class SpikingNet(nn.Module):
    """Sequential multi-step SNN built by :func:`codesign.snn.zoo.build_model` from a spec."""

    def __init__(self, spec: dict, layers: nn.ModuleDict) -> None:
        super().__init__()
        self.spec = spec
        self.layers = layers
        self.T = int(spec["T"])
        self.encoding = spec.get("encoding", "direct")

    def forward(self, x: torch.Tensor, steps: Optional[int] = None) -> torch.Tensor:
        """Per-step logits ``(T, B, K)``; ``steps`` runs only the first ``steps`` steps."""
        h = encode(x, self.encoding, steps or self.T)
        for layer in self.layers.values():
            h = layer(h)
        return h

    def neurons(self) -> Iterator[tuple[str, LIF]]:
        """``(name, LIF)`` pairs in forward order."""
        for name, mod in self.named_modules():
            if isinstance(mod, LIF):
                yield name.removeprefix("layers."), mod

    def synapses(self) -> Iterator[tuple[str, Synapse]]:
        """``(name, Synapse)`` pairs in forward order."""
        for name, mod in self.named_modules():
            if isinstance(mod, Synapse):
                yield name.removeprefix("layers."), mod

    def set_record(self, on: bool = True) -> None:
        """Keep every neuron's pre-reset potential ``H`` (and spikes) of the next forward."""
        for _, lif in self.neurons():
            lif.record = on
            if not on:
                lif.h = lif.s = None

    def membranes(self) -> dict[str, torch.Tensor]:
        """Recorded pre-reset potentials ``H`` per neuron layer, each ``(T, B, ...)``."""
        return {name: lif.h for name, lif in self.neurons() if lif.h is not None}

    def spikes(self) -> dict[str, torch.Tensor]:
        """Recorded spikes per neuron layer, each ``(T, B, ...)``."""
        return {name: lif.s for name, lif in self.neurons() if lif.s is not None}

    @torch.no_grad()
    def calibrate_quantizers(self) -> None:
        """LSQ-initialise every weight step from the current (BN-folded) weights.

        The step is at least ``theta / (2^(ubits-1) - 1)`` when the neuron fed by the layer
        shares it, so that the threshold is representable in the membrane register.
        """
        feeds = {id(lif._scale_fn.__self__): lif for _, lif in self.neurons()  # type: ignore[union-attr]
                 if lif._scale_fn is not None}
        for _, syn in self.synapses():
            if not syn.wq.enabled:
                continue
            w, _ = syn.folded()
            lif = feeds.get(id(syn))
            min_step = 0.0
            if lif is not None and lif.ubits is not None:
                min_step = lif.theta / (2 ** (lif.ubits - 1) - 1)
            syn.wq.init_scale(w, min_step)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
