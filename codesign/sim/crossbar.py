"""One synaptic layer on crossbars: integer codes -> cell slices -> conductances -> ADC -> sums.

Mapping (the one :mod:`codesign.hw.mapping` costs, ``im2col``)
    The integer weight codes ``w`` (``(Cout, K)``, ``K = Cin kh kw`` in ``unfold`` order, or the
    input features) fill ``K`` rows, split into row blocks of ``crossbar.rows``. A weight takes
    ``slices`` cells of ``bpc = log2(levels)`` bits:

    * ``differential``: ``slices = ceil((wbits - 1) / bpc)`` magnitude slices on a positive and
      a negative column; column value ``sum_j L^j (m+_j - m-_j)`` (``L = levels``);
    * ``offset``: ``u = w + 2^(wbits-1) >= 0`` in ``ceil(wbits / bpc)`` slices on one column;
      digital correction subtracts ``2^(wbits-1)`` times the active-row count.

    Column ``o cpw + side slices + j`` holds slice ``j`` of output ``o`` (``cpw`` columns per
    weight); columns fill crossbars of ``crossbar.cols`` side by side. A cell holding code ``c``
    is programmed to ``G = g_off + c dG``, ``dG = (g_on - g_off) / (L - 1)`` (finite on/off ratio:
    code 0 still conducts ``g_off``). Unused cells of a crossbar stay at ``g_off``.

Read
    The rows are driven by binary planes (spikes, or one bit of a bit-serial input) or, through
    a DAC, by ``x / (2^bits - 1)`` of ``v_read``. Column current ``I = sum_r x_r G_rc`` (units of
    ``v_read dG``), read noise, then the ADC (:mod:`codesign.sim.adc`) per row block; the digital
    back end removes ``g_off`` of the active rows, rounds to the slice grid, shift-adds the slices
    (and the bit planes), subtracts the negative column (or the offset) and accumulates row
    blocks. The result is the integer product ``y = sum_k w_ok x_k`` (bit-serial: of the integer
    input codes), exact when every non-ideality is off and the ADC has enough bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from codesign.errors import CodesignError
from codesign.sim.adc import ADC
from codesign.sim.nonideal import Drift, IRDropFast, ProgrammingVariation, ReadNoise, StuckAt


@dataclass(frozen=True)
class Geometry:
    """The array and cell as the spec describes them (conductances in units of ``dG``)."""

    rows: int
    cols: int
    levels: int
    signed: str
    g_on: float
    """``g_on / dG``."""
    g_off: float
    """``g_off / dG``."""
    dg_s: float
    """``dG`` in siemens."""


@dataclass
class Models:
    """The non-ideality models switched on (``None``: off)."""

    programming: Optional[ProgrammingVariation] = None
    stuck_at: Optional[StuckAt] = None
    drift: Optional[Drift] = None
    read_noise: Optional[ReadNoise] = None
    ir_drop: Optional[IRDropFast] = None


@dataclass
class ReadStats:
    """What the cost model charges, counted on the simulated reads of one layer."""

    reads: int = 0
    """Crossbar-row-block reads (per input plane, output position and sample)."""
    zero_reads: int = 0
    """Reads whose rows were all inactive."""
    active_rows: int = 0
    """Active rows summed over all reads."""
    clipped: int = 0
    """Column conversions at the top code of the ADC."""
    conversions: int = 0
    extra: dict = field(default_factory=dict)


def slice_codes(w: torch.Tensor, wbits: int, levels: int, signed: str
                ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Cell codes ``(K, Cout * cpw)`` of integer weights ``w`` ``(Cout, K)``, the digital
    weight of each column ``(cpw,)`` and the offset ``2^(wbits-1)`` (0 for differential)."""
    bpc = int(round(math.log2(levels)))
    wb = max(int(wbits), 2)  # a binary (+-1) weight sits on the 2-bit grid
    w = w.to(torch.int64)
    if signed == "differential":
        n = max(1, math.ceil((wb - 1) / bpc))
        mag = w.abs()
        sides = [torch.where(w > 0, mag, 0), torch.where(w < 0, mag, 0)]
        signs = [1, -1]
        offset = 0
    else:
        n = math.ceil(wb / bpc)
        offset = 2 ** (wb - 1)
        sides = [w + offset]
        signs = [1]
    cols, digital = [], []
    for side, sign in zip(sides, signs, strict=True):
        for j in range(n):
            cols.append((side >> (bpc * j)) & (levels - 1))
            digital.append(sign * levels ** j)
    codes = torch.stack(cols, dim=-1)  # (Cout, K, cpw)
    cpw = codes.shape[-1]
    codes = codes.permute(1, 0, 2).reshape(w.shape[1], w.shape[0] * cpw)
    return codes, torch.tensor(digital, dtype=torch.float32), offset


class CrossbarLayer:
    """A conv or linear layer programmed onto crossbars (one chip instance at a time)."""

    def __init__(self, name: str, w_int: torch.Tensor, wbits: int, geom: Geometry, adc: ADC,
                 *, conv: Optional[dict] = None, adc_range: str = "array") -> None:
        self.name = name
        self.cout, self.k = int(w_int.shape[0]), int(w_int.shape[1])
        self.geom = geom
        self.adc = adc
        self.conv = conv
        codes, self.digital, self.offset = slice_codes(w_int, wbits, geom.levels, geom.signed)
        self.codes = codes
        self.cpw = int(self.digital.numel())
        self.ncols = self.cout * self.cpw
        R = geom.rows
        self.nb = max(1, math.ceil(self.k / R))
        self.rb = self.k if self.nb == 1 else R  # rows held per block in the matmul
        self.block_rows = torch.tensor([min(R, self.k - b * R) for b in range(self.nb)],
                                       dtype=torch.float32)
        self.cb = math.ceil(self.ncols / geom.cols)
        self.adc_range = adc_range
        self.full_scale = (self.block_rows * geom.g_on).reshape(1, self.nb, 1, 1)
        self.g: Optional[torch.Tensor] = None
        self.stats = ReadStats()
        self.max_current: Optional[torch.Tensor] = None
        self.count_clipped = False
        """Count conversions at full scale (one more pass over the column currents)."""

    # -- programming one chip

    def program(self, models: Models, gen: Optional[torch.Generator]) -> None:
        """Write the codes into a fresh chip: ``g`` ``(nb, rb, ncols)`` in units of ``dG``."""
        geom = self.geom
        R, C = geom.rows, geom.cols
        g = torch.full((self.nb * R, self.cb * C), geom.g_off, dtype=torch.float32)
        g[: self.k, : self.ncols] += self.codes.to(torch.float32)
        if models.programming is not None:
            assert gen is not None
            g = models.programming.apply(g, gen)
        if models.stuck_at is not None:
            assert gen is not None
            g = models.stuck_at.apply(g, gen, geom.g_on, geom.g_off)
        if models.drift is not None:
            g = models.drift.apply(g)
        if models.ir_drop is not None:
            tiles = g.reshape(self.nb, R, self.cb, C).permute(0, 2, 1, 3)
            g = models.ir_drop.apply(tiles).permute(0, 2, 1, 3).reshape(self.nb * R, -1)
        g = g[:, : self.ncols].reshape(self.nb, R, self.ncols)
        self.g = g[:, : self.rb].contiguous()
        self.read_noise = models.read_noise

    def calibrate(self, full_scale: torch.Tensor) -> None:
        """Set the ADC full scale per row block (``calibrated`` range)."""
        self.full_scale = torch.clamp(full_scale, min=1e-6).reshape(1, self.nb, 1, 1)

    # -- reading

    def rows_of(self, x: torch.Tensor) -> torch.Tensor:
        """Input ``(N, ...)`` -> row drives ``(N, L, K)``."""
        if self.conv is not None:
            cols = F.unfold(x, self.conv["kernel"], padding=self.conv["padding"],
                            stride=self.conv["stride"])  # (N, K, L)
            return cols.transpose(1, 2)
        return x.reshape(x.shape[0], 1, -1)

    def read(self, drive: torch.Tensor, denom: int, gen: Optional[torch.Generator],
             *, bypass_adc: bool = False) -> torch.Tensor:
        """One read of every row block with row drives ``drive`` ``(N, L, K)`` (in units of
        ``v_read``; ``denom`` = 1 for binary planes, ``2^bits - 1`` through a DAC). Returns the
        digital slice-combined column sums ``(N, L, Cout)`` in units of ``1 / denom``."""
        assert self.g is not None, "program() the layer first"
        N, L, K = drive.shape
        if self.nb > 1:
            pad = self.nb * self.rb - K
            if pad:
                drive = F.pad(drive, (0, pad))
        blocks = drive.reshape(N, L, self.nb, self.rb)
        n_active = blocks.sum(-1).transpose(1, 2).unsqueeze(-1)  # (N, nb, L, 1)
        if self.nb == 1:
            current = torch.matmul(drive, self.g[0]).unsqueeze(1)  # (N, 1, L, ncols)
        else:
            current = torch.matmul(blocks.transpose(1, 2), self.g)  # (N, nb, L, ncols)
        if self.read_noise is not None:
            assert gen is not None
            drive_sq = n_active if denom == 1 else \
                (blocks * blocks).sum(-1).transpose(1, 2).unsqueeze(-1)
            current = self.read_noise.apply(current, drive_sq, gen)
        st = self.stats
        st.reads += N * L * self.nb
        st.zero_reads += int(torch.count_nonzero(n_active == 0))
        st.active_rows += int(n_active.sum().round()) if denom == 1 else 0
        if bypass_adc:
            peak = current.amax(dim=(0, 2, 3))
            self.max_current = peak if self.max_current is None else \
                torch.maximum(self.max_current, peak)
        else:
            current = self.adc.convert(current, self.full_scale)
            st.conversions += current.numel()
            if self.count_clipped:
                st.clipped += int(torch.count_nonzero(current >= self.full_scale * (1 - 1e-6)))
        # digital: remove g_off of the active rows, round to the slice grid (1/denom)
        current.sub_(n_active * self.geom.g_off)
        if denom != 1:
            current.mul_(denom)
        current.round_()
        # shift-add the slices (and the pair) and accumulate the row blocks in one contraction
        y = torch.matmul(current.reshape(N, self.nb, L, self.cout, self.cpw), self.digital)
        if self.nb > 1:
            y = y.sum(1)
        else:
            y = y.squeeze(1)
        if self.offset:
            y.sub_(self.offset * n_active.sum(1) * (denom if denom != 1 else 1))
        return y

    def forward_int(self, x: torch.Tensor, *, input_bits: Optional[int], scheme: str,
                    gen: Optional[torch.Generator], bypass_adc: bool = False
                    ) -> tuple[torch.Tensor, int]:
        """Integer product of the layer for input ``x`` ``(N, ...)``.

        Binary ``x`` (spikes): one read. Analog ``x`` in [0, 1] (``input_bits`` given): the codes
        ``round(x (2^bits - 1))`` bit-serially (``scheme='bit_serial'``, shift-added planes) or
        through the DAC (``'dac'``). Returns ``(y, denom)`` with the product ``y / denom`` in
        units of the input (``denom = 2^bits - 1`` for analog inputs, 1 for spikes), ``y`` as
        ``(N, Cout, H', W')`` or ``(N, Cout)``.
        """
        rows = self.rows_of(x)
        if input_bits is None:
            y, denom = self.read(rows, 1, gen, bypass_adc=bypass_adc), 1
        else:
            denom = 2 ** input_bits - 1
            q = torch.round(torch.clamp(rows, 0.0, 1.0) * denom)
            if scheme == "dac":
                y = self.read(q / denom, denom, gen, bypass_adc=bypass_adc)
            elif scheme == "bit_serial":
                qi = q.to(torch.int32)
                y = None
                for b in range(input_bits):
                    plane = ((qi >> b) & 1).to(torch.float32)
                    yb = self.read(plane, 1, gen, bypass_adc=bypass_adc)
                    y = yb if y is None else y.add_(yb, alpha=2 ** b)
                assert y is not None
            else:
                raise CodesignError(f"input.first_layer {scheme!r}: expected dac or bit_serial")
        N = x.shape[0]
        if self.conv is not None:
            h, w = self.conv["out_hw"]
            y = y.transpose(1, 2).reshape(N, self.cout, h, w)
        else:
            y = y.reshape(N, self.cout)
        return y, denom
