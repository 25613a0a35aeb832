"""Training-time IR drop: the exact transfer's per-cell attenuation, refreshed every few chips.

Why. Hardware-aware training (:class:`codesign.loop.ChipPerBatch`) programs a fresh chip before
every batch. With the exact IR-drop model each chip costs the exact transfer matrix of every
crossbar tile (:func:`codesign.sim.irdrop.transfer_conductance`, about ``4 R C^3`` flops per
tile): for the shipped W4/U4 student's 60 tiles of 128x128 about 2.2 s on one core, against a
float training step of ~0.25 s (``reports/bench/train_quant.md``).

Model. The exact wires map a tile's programmed conductances ``G`` (before the wires) to the
transfer matrix ``G_eff = T(G)`` (``I = v @ G_eff``). On a *refresh* chip the exact ``T`` is
computed and the per-cell attenuation ``a = G_eff / G`` (elementwise) is kept; every following
chip until the next refresh is wired as ``G_eff' = a G'``. The refresh chip itself is exact.
The others err by what ``a`` leaves out: ``T`` is not elementwise (the current a cell adds
to its row and column wires lowers the drive of every cell sharing them), and ``G'`` differs
from the refresh chip's ``G`` by a fresh programming-variation draw and by the codes training
has moved since. So the error is largest in the columns whose codes moved: a cell raised by
``dG`` adds ``a dG v`` where the exact circuit adds less, since it also pulls its
neighbours' currents down through the shared wires.

Measured (``reports/closed-loop/refresh_error.py``, stop 22: the shipped student, the preset's
wires, column currents of 64 random inputs with 20 % of the rows active, relative to the
largest exact current of the layer; worst layer):

* a new 5 % lognormal variation draw on unchanged codes (``LR 0``): at most 0.49-0.71 %, on
  average 0.04-0.05 % (ignoring the wires errs by 16-44 % on the same currents);
* along real training (Adam at the loop's lr 5e-4, refresh every 8 chips; the codes of up to
  1-6 % of a layer's cells moved since the refresh): at most 2.4 % one chip after a refresh
  and 3.4-5.3 % after 2-7 chips, on average 0.14-0.43 %;
* a per-cell series resistance ``rho = 1/G_eff - 1/G`` instead of ``a`` (exact for a lone
  cell) does worse along the same training: at most 7.5-21 %.

So this is a training approximation, not an inference model: the straight-through gradient
does not see it, and selection and held-out chips are always wired exactly. End to end
(``reports/closed-loop/README.md``, case C', 3 seeds paired with case C): the loop recovers
68.6 % of the exact IR drop's accuracy loss with a refresh every 8 chips, 72.1 % with every
chip exact, a difference within seed and sampling noise.

A cell with ``G = 0`` on the refresh chip (normal variation clipped at zero) keeps ``a = 1``.
Every random draw is the exact path's (:func:`codesign.sim.network.draw_chips`): a chip's
conductances before the wires and its read-noise stream are the same for any refresh period.
"""

from __future__ import annotations

from typing import Optional

import torch

from codesign.errors import CodesignError
from codesign.sim.network import HardwareNet, draw_chips, set_tiles, wire_layers


def check_refresh(every: object) -> None:
    """Refuse a refresh period that is not an integer >= 1 (``--ir-refresh``)."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise CodesignError(f"--ir-refresh {every}: expected an integer >= 1 (training chips "
                            "per exact IR-drop transfer)")


class RefreshedIRDrop:
    """Programs one chip at a time (:meth:`program`); every ``every``-th chip (the first, then
    ``every`` chips later, ...) gets the exact wires and refreshes the attenuation, the chips
    between reuse it. ``every = 1`` is :func:`codesign.sim.network.program_chip` exactly."""

    def __init__(self, every: int) -> None:
        check_refresh(every)
        self.every = every
        self.chips = 0
        """Chips programmed so far."""
        self.refreshes = 0
        """Of those, chips wired by the exact transfer."""
        self.attenuation: Optional[dict[str, torch.Tensor]] = None

    def program(self, net: HardwareNet, chip_seed: Optional[int]) -> Optional[torch.Generator]:
        """Program every layer of one chip of ``net``; returns its generator (read noise)."""
        gens, models, pre = draw_chips(net, [chip_seed])
        if models.ir_drop is None:
            wired = pre
        elif self._due(pre):
            wired = wire_layers(models, pre)
            self.refreshes += 1
            if self.every > 1:
                self.attenuation = {n: torch.where(g > 0, wired[n] / g, torch.ones_like(g))
                                    for n, g in pre.items()}
        else:
            assert self.attenuation is not None
            wired = {n: self.attenuation[n] * g for n, g in pre.items()}
        self.chips += 1
        set_tiles(net, models, wired)
        return gens[0]

    def _due(self, pre: dict[str, torch.Tensor]) -> bool:
        att = self.attenuation
        if self.chips % self.every == 0 or att is None:
            return True
        return any(n not in att or att[n].shape != t.shape for n, t in pre.items())
