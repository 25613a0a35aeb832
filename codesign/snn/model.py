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

#: The threshold floor of the shared step is relaxed so that at least ``1 - KEEP_QUANTILE`` of
#: a layer's weights keep a nonzero code (:meth:`SpikingNet.calibrate_quantizers`).
KEEP_QUANTILE = 0.75


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

        With a shared weight/membrane step ``s`` (MINT-style) the threshold is the integer
        ``theta_int = clamp(round(theta / s), 1, hi)``, ``hi = 2^(ubits-1) - 1``, so it is
        exact only when ``s >= theta / hi``; a weight gets a nonzero code only when
        ``|w| >= s / 2``. For a layer initialised from a float teacher whose weights are small
        against ``theta`` (a wide fan-in: fc1 of vgg-small has ``max|w| = 0.16 theta``) the two
        conflict, and flooring ``s`` at ``theta / hi`` (the former rule) rounded every code of
        fc1 (W3/U3) and of conv2, conv3, fc1 (W2/U2) to 0: a dead network.

        Rescaling the layer cannot resolve this. Lemma (scale invariance): for ``c > 0`` the
        LIF with input ``c I``, threshold ``c theta`` has ``H' = c H``, ``U' = c U`` and the
        same spikes. Proof by induction on ``t``: ``U'[0] = 0 = c U[0]``; if ``U'[t-1] =
        c U[t-1]`` then ``H'[t] = beta c U[t-1] + c I[t] = c H[t]``, ``S'[t] = 1[c H >= c
        theta] = S[t]`` (``c > 0``), and subtract reset ``U' = c H - c theta S = c U``, zero
        reset ``U' = c H (1 - S) = c U``, delayed reset likewise. ``I = W x + b`` is linear in
        ``(W, b)``, so scaling ``W, b, theta`` of one layer by ``c`` changes none of the
        network's spikes. But the LSQ step is homogeneous (``s(cW) = c s(W)``) and so is the
        floor (``c theta / hi``): every code ``round(cw / cs)`` and ``theta_int`` is unchanged.
        The conflict is a property of the ratios ``w / theta``, which no rescaling changes: the
        float layer is not representable, and the init must choose an approximation.

        Rule: ``s = max(s_lsq, min(theta / hi, 2 q75(|w|)))`` (per layer, or per output channel
        with ``per_channel``). The threshold floor is kept while it leaves at least a quarter of
        the weights a nonzero code (``|w| >= s / 2`` for the largest 25 %), and relaxed to that
        step otherwise; then ``theta_int`` clamps at ``hi`` and the quantized neuron fires at
        ``hi s`` < ``theta`` (a gain error the fine-tuning learns away through ``s``) instead of
        never. No layer starts with all-zero codes. Post-training accuracy of the shipped
        mnist5k teacher on its first 500 test images: W4/U4 74.6 -> 95.8 %, W3/U3 9.8 -> 47 %,
        W2/U2 9.8 -> 31 % (``reports/distillation/README.md``, issue 11). Loaded checkpoints
        are unaffected: the stored steps replace these after the build.
        """
        feeds = {id(lif._scale_fn.__self__): lif for _, lif in self.neurons()  # type: ignore[union-attr]
                 if lif._scale_fn is not None}
        for _, syn in self.synapses():
            if not syn.wq.enabled:
                continue
            w, _ = syn.folded()
            syn.wq.init_scale(w, 0.0)
            lif = feeds.get(id(syn))
            if lif is None or lif.ubits is None:
                continue
            floor = lif.theta / (2 ** (lif.ubits - 1) - 1)
            mags = w.detach().abs().flatten(1) if syn.wq.per_channel else \
                w.detach().abs().reshape(1, -1)
            keep = 2.0 * torch.quantile(mags, KEEP_QUANTILE, dim=1)
            step = torch.maximum(syn.wq.scale, torch.clamp(keep, max=floor))
            syn.wq.scale.copy_(torch.clamp(step, min=1e-8))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
