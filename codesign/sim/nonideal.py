"""Crossbar non-idealities, one small class each; parameters from the spec's ``nonideal:`` section.

Conductances are handled in units of the level step ``dG = (g_on - g_off) / (levels - 1)``
(dimensionless ``g = G / dG``), so a programmed cell holding slice code ``c`` is
``g = g_off / dG + c``. The models act in this order on one chip:

1. :class:`ProgrammingVariation` -- once per cell per chip (write noise);
2. :class:`StuckAt` -- once per cell per chip (a stuck cell ignores what was written);
3. :class:`Drift` -- deterministic power law from the programming time to the read time;
4. :class:`IRDropFast` -- wire resistance, a model of :mod:`codesign.sim.irdrop`
   folded into an effective conductance matrix per crossbar;
5. :class:`ReadNoise` -- on every read, added to each column current.

Every random draw uses the ``torch.Generator`` handed in (seeded per chip by the caller).
"""

from __future__ import annotations

import math

import torch

from codesign.hw import nonideal as p
from codesign.sim.irdrop import effective_conductance, transfer_conductance


class ProgrammingVariation:
    """Write variation: ``G = G0 (1 + sigma z)`` (``normal``, clipped at 0) or
    ``G = G0 exp(sigma z)`` (``lognormal``), ``z ~ N(0, 1)`` per cell."""

    def __init__(self, params: p.Programming) -> None:
        self.sigma = float(params.sigma)
        self.distribution = params.distribution

    def apply(self, g: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        z = torch.randn(g.shape, generator=gen, dtype=g.dtype)
        if self.distribution == "lognormal":
            return g * torch.exp(self.sigma * z)
        return torch.clamp(g * (1.0 + self.sigma * z), min=0.0)


class StuckAt:
    """A cell is stuck at ``g_on`` with probability ``on_rate`` and at ``g_off`` with
    probability ``off_rate`` (one uniform draw ``u`` per cell: ``u < off_rate`` -> off,
    ``off_rate <= u < off_rate + on_rate`` -> on)."""

    def __init__(self, params: p.StuckAt) -> None:
        self.on_rate = float(params.on_rate)
        self.off_rate = float(params.off_rate)

    def apply(self, g: torch.Tensor, gen: torch.Generator, g_on: float, g_off: float
              ) -> torch.Tensor:
        u = torch.rand(g.shape, generator=gen, dtype=g.dtype)
        g = torch.where(u < self.off_rate, torch.full_like(g, g_off), g)
        on = (u >= self.off_rate) & (u < self.off_rate + self.on_rate)
        return torch.where(on, torch.full_like(g, g_on), g)


class Drift:
    """Power-law drift (aihwkit / NeuroSim retention form): ``G(t) = G(t0) (t / t0)^(-nu)``
    for ``t >= t0``; no drift before ``t0``."""

    def __init__(self, params: p.Drift) -> None:
        self.factor = math.pow(max(params.time_ns / params.t0_ns, 1.0), -float(params.nu))

    def apply(self, g: torch.Tensor) -> torch.Tensor:
        return g * self.factor


class IRDropFast:
    """Wire resistance folded into an effective conductance per ``(rows, cols)`` crossbar tile
    (``I = v @ G_eff``, once per programmed chip; inference is then the plain matmul):
    ``transfer`` (default) is :func:`codesign.sim.irdrop.transfer_conductance`, the exact
    linear transfer matrix of the nodal circuit (direct Kron reduction, float32: ~3e-5 of the
    largest output at 128x128); ``first_order`` is
    :func:`codesign.sim.irdrop.effective_conductance` clipped at 0, a one-step linearisation
    valid only while the wire drops are a few percent (``r G N^2`` small: 32x32 at 1.9 / 5.6 ohm
    errs 0.6 %, 128x128 errs ~100 %; ``reports/bench/sim_irdrop.md``). Resistances enter as
    ``r * dG`` (dimensionless)."""

    def __init__(self, params: p.IRDrop, dg_s: float) -> None:
        self.r_row = float(params.r_row_ohm) * dg_s
        self.r_col = float(params.r_col_ohm) * dg_s
        self.model = params.model

    def apply(self, g_tiles: torch.Tensor) -> torch.Tensor:
        """``g_tiles``: ``(..., rows, cols)`` in units of ``dG``; returns ``G_eff``, same shape
        and units."""
        if self.model == "transfer":
            return transfer_conductance(g_tiles, self.r_row, self.r_col)
        return torch.clamp(effective_conductance(g_tiles, self.r_row, self.r_col), min=0.0)


class ReadNoise:
    """Each cell's conductance on one read is ``G + sigma g_on z``, independent per cell and
    read; a column reading ``x`` (row drive in units of ``v_read``) sums it to a current noise
    of standard deviation ``sigma g_on sqrt(sum_r x_r^2)`` (in units of ``v_read dG``). The
    draws ``z`` come from the chip's stream (:mod:`codesign.sim.noise_tape`), added by
    :meth:`codesign.sim.crossbar.CrossbarLayer.read`."""

    def __init__(self, params: p.ReadNoise, g_on: float) -> None:
        self.sigma = float(params.sigma) * g_on  # in units of dG

    def std(self, drive_sq: torch.Tensor) -> torch.Tensor:
        """Standard deviation of the column current of reads with ``drive_sq = sum x^2``
        (units of ``v_read dG``)."""
        return self.sigma * torch.sqrt(drive_sq)
