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

    The read matrix of each chip and row block is held on a dyadic grid fine enough that every
    binary read's column currents are exact in float32 (:mod:`codesign.sim.table_read`): binary
    reads of matrices up to :data:`TABLE_MAX_COLS` columns sum partial-sum tables, the others
    run a matrix product, and both give the same currents bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from codesign.errors import CodesignError
from codesign.hw.input_codes import input_codes, input_levels
from codesign.sim.adc import ADC
from codesign.sim.noise_tape import tape_of
from codesign.sim.nonideal import Drift, IRDropFast, ProgrammingVariation, ReadNoise, StuckAt
from codesign.sim.table_read import (
    build_table,
    on_sum_grid,
    table_applies,
    table_bytes,
    table_product,
)

CHUNK_BYTES = 1 << 21
"""Column currents processed at a time (bytes of float32): rows of reads in chunks that stay in
the core's cache through the noise, ADC and back-end passes."""

EXACT_SHORTCUT = True
"""Read ideal chips through a lossless ADC as the integer product itself
(:meth:`CrossbarLayer.exact_read`), which is what the crossbar datapath computes then; off:
every read goes through the crossbars (the tests check the two agree)."""

TABLE_MAX_COLS = 512
"""Widest read matrix whose binary-drive reads use partial-sum tables
(:mod:`codesign.sim.table_read`; 8 MB of table per 128-row block at 512 columns). A table
read in cache beats the matrix product 1.5-2x on an AVX2 host and 2.5-4x on an AVX-512 one
(``tests/bench/bench_table_read.py``). Wider matrices gained little on the AVX2 host and cost
16 MB of table per block."""

TABLE_BYTES_MAX = 128 << 20
"""Partial-sum tables one layer keeps (bytes, all its chips; tables are 32x their read
matrices: the shipped student's five layers take 31 MB per chip). Reads whose table would
pass it run the matrix product instead, with the same currents, so the budget bounds memory
for many chips without changing any result."""


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
        self._w_t = w_int.t().to(torch.float32).contiguous()
        """``(K, Cout)`` integer weights for :meth:`exact_read`."""
        self._w_sum = float(w_int.abs().sum(1).max()) if w_int.numel() else 0.0
        """Largest ``sum_k |w_ok|``: bounds ``|y| <= w_sum x_max`` of the integer product."""
        self.cpw = int(self.digital.numel())
        self.ncols = self.cout * self.cpw
        self._slice_major = torch.arange(self.ncols).reshape(self.cout, self.cpw).t().flatten()
        """Read order of the columns: column ``j Cout + o`` of a read is slice ``j`` of output
        ``o`` (physical column ``o cpw + j``), so the shift-add sums contiguous slabs."""
        self._g_read: Optional[torch.Tensor] = None
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
        self._ideal_chips = False
        """Every chip holds exactly the written codes (:meth:`set_chips`)."""

    # -- programming

    def _program_draws(self, models: Models, gen: Optional[torch.Generator]) -> torch.Tensor:
        """One fresh chip's cell conductances ``(nb R, cb C)`` in units of ``dG`` before the
        wires (the draws of ``gen``: programming variation, then stuck-at cells, each one per
        cell; then drift)."""
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
        return g

    def tiles_of(self, gs: list[torch.Tensor]) -> torch.Tensor:
        """Chips ``gs`` (:meth:`_program_draws`) cut into their crossbar tiles
        ``(chips, nb, cb, rows, cols)`` (stacked, then a view: no arithmetic)."""
        R, C = self.geom.rows, self.geom.cols
        return torch.stack(gs).reshape(len(gs), self.nb, R, self.cb, C).transpose(2, 3)

    def read_conductances(self, tiles: torch.Tensor) -> list[torch.Tensor]:
        """Inverse of :meth:`tiles_of`, then the used rows and columns: each chip's read
        conductances ``(nb, rb, ncols)``."""
        R, C = self.geom.rows, self.geom.cols
        gs = tiles.transpose(2, 3).reshape(tiles.shape[0], self.nb * R, self.cb * C).unbind(0)
        return [g[:, : self.ncols].reshape(self.nb, R, self.ncols)[:, : self.rb].contiguous()
                for g in gs]

    def _program_one(self, models: Models, gen: Optional[torch.Generator]) -> torch.Tensor:
        """One fresh chip: conductances ``(nb, rb, ncols)`` in units of ``dG``."""
        tiles = wire_tiles(models, [self.tiles_of([self._program_draws(models, gen)])])[0]
        return self.read_conductances(tiles)[0]

    def program(self, models: Models, gen: Optional[torch.Generator]) -> None:
        """Write the codes into one fresh chip (``chips = 1``)."""
        self.set_chips([self._program_one(models, gen)], models.read_noise)

    def set_chips(self, gs: list[torch.Tensor], read_noise: Optional[ReadNoise]) -> None:
        """Hold the programmed chips ``gs`` (each ``(nb, rb, ncols)``): ``g`` is
        ``(chips, nb, rb, ncols)``, read as one folded batch (:meth:`read`)."""
        self.g = torch.stack(gs)
        # on the grid where every binary read is exact in float32 (table_read.on_sum_grid):
        # the matrix product and the partial-sum tables then give the same currents
        self._g_read = on_sum_grid(self.g[..., self._slice_major].contiguous())
        self._tables: dict[tuple[int, int], Optional[torch.Tensor]] = {}
        self._table_bytes = 0
        self.read_noise = read_noise
        ideal = self.read_conductances(self.tiles_of([self._program_draws(Models(), None)]))[0]
        # no variation, stuck cell, drift or wire: one condition of :meth:`_exact`
        self._ideal_chips = bool(torch.equal(self.g, ideal.expand_as(self.g)))

    def _buffer(self, key: tuple, numel: int) -> torch.Tensor:
        """A reused flat float32 buffer of at least ``numel`` elements (the large per-read
        tensors: a fresh one of tens of MB is page-faulted and zeroed by the kernel every
        call). ``key``: its use (the noise of chip ``c``, the column currents)."""
        bufs = self.__dict__.setdefault("_bufs", {})
        buf = bufs.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(max(numel, int(1.25 * numel)), dtype=torch.float32)
            bufs[key] = buf
        return buf[:numel]

    def _table(self, c: int, blk: int, kb: int) -> Optional[torch.Tensor]:
        """Chip ``c``'s partial-sum table of row block ``blk`` (its ``kb`` driven rows),
        built on first use and kept until the chips change (:meth:`set_chips`); ``None``
        (read by matrix product) once the layer's tables would pass :data:`TABLE_BYTES_MAX`."""
        if (c, blk) not in self._tables:
            assert self._g_read is not None
            nbytes = table_bytes(kb, self.ncols)
            if self._table_bytes + nbytes > TABLE_BYTES_MAX:
                self._tables[(c, blk)] = None
            else:
                self._tables[(c, blk)] = build_table(self._g_read[c, blk, :kb])
                self._table_bytes += nbytes
        return self._tables[(c, blk)]

    @property
    def chips(self) -> int:
        return 0 if self.g is None else int(self.g.shape[0])

    def calibrate(self, full_scale: torch.Tensor) -> None:
        """Set the ADC full scale per row block (``calibrated`` range)."""
        self.full_scale = torch.clamp(full_scale, min=1e-6).reshape(1, self.nb, 1, 1)

    # -- reading

    def rows_of(self, x: torch.Tensor) -> torch.Tensor:
        """Input ``(N, ...)`` -> row drives ``(N, L, K)``."""
        return self._patches(x).reshape(x.shape[0], -1, self.k)

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """Input ``(N, ...)`` -> row drives ``(N L, K)`` (contiguous, ``x``'s dtype): ``im2col``
        in ``unfold`` order (``K = (Cin, kh, kw)``), built from ``kh kw`` shifted views of the
        channels-last padded input (one copy; ``F.unfold`` is several times slower on CPU)."""
        if self.conv is None:
            return x.reshape(x.shape[0], -1)
        (kh, kw), (sh, sw), (ph, pw) = self.conv["kernel"], self.conv["stride"], \
            self.conv["padding"]
        h, w = self.conv["out_hw"]
        n, cin = x.shape[0], x.shape[1]
        xc = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1).contiguous()  # (N, H, W, C)
        views = [xc[:, i:i + sh * (h - 1) + 1:sh, j:j + sw * (w - 1) + 1:sw, :]
                 for i in range(kh) for j in range(kw)]
        return torch.stack(views, dim=-1).reshape(n * h * w, cin * kh * kw)

    def _block_counts(self, x: torch.Tensor) -> torch.Tensor:
        """Active rows ``(N L, nb)`` per read and row block of binary input ``x`` ``(N, ...)``
        (float32, exact integers): a convolution with a 0/1 kernel per block."""
        if self.conv is None:
            flat = x.reshape(x.shape[0], -1).to(torch.float32)
            if self.nb > 1:
                flat = F.pad(flat, (0, self.nb * self.rb - self.k))
            return flat.reshape(x.shape[0], self.nb, self.rb).sum(-1)
        if getattr(self, "_mask", None) is None:
            mask = torch.zeros(self.nb, self.k)
            for blk in range(self.nb):
                mask[blk, blk * self.rb:(blk + 1) * self.rb] = 1.0
            self._mask = mask.reshape((self.nb, x.shape[1]) + tuple(self.conv["kernel"]))
        cnt = F.conv2d(x.to(torch.float32), self._mask, stride=self.conv["stride"],
                       padding=self.conv["padding"])  # (N, nb, H', W')
        return cnt.permute(0, 2, 3, 1).reshape(-1, self.nb)

    def _digital(self, current: torch.Tensor, n_act: torch.Tensor, fs: torch.Tensor,
                 denom: int, bypass_adc: bool, out: torch.Tensor,
                 steps: Optional[tuple[float, float]] = None) -> int:
        """ADC and digital back end of column currents ``current`` ``(M, ncols)`` (in place) of
        reads with ``n_act`` ``(M, 1)`` summed drive and full scale ``fs`` (broadcastable;
        ``steps``: its :meth:`ADC.steps` when one value): writes the slice sums ``(M, Cout)``
        in units of ``1 / denom`` to ``out``; returns the conversions at full scale."""
        clipped = 0
        if not bypass_adc:
            current = self.adc.convert(current, fs, steps=steps)
            if self.count_clipped:
                clipped = int(torch.count_nonzero(current >= fs * (1 - 1e-6)))
        # digital: remove g_off of the active rows, round to the slice grid (1/denom)
        current.sub_(n_act * self.geom.g_off)
        if denom != 1:
            current.mul_(denom)
        current.round_()
        # shift-add the slices (and the pair), slice-major columns (``_slice_major``):
        # integers, exact in float32 in any order
        slabs = current.view(-1, self.cpw, self.cout)
        weights = self.digital.tolist()
        torch.mul(slabs[:, 0], weights[0], out=out)
        for j in range(1, self.cpw):
            out.add_(slabs[:, j], alpha=weights[j])
        return clipped

    def _idle(self, denom: int, bypass_adc: bool
              ) -> tuple[Optional[torch.Tensor], torch.Tensor]:
        """Digital value ``(nb, Cout)`` of an all-inactive read per block (zero current, no
        noise) and its conversions at full scale ``(nb,)``; ``None`` when it is 0 and unclipped
        (differential columns, no ADC offset)."""
        fs = self.full_scale.reshape(self.nb, 1)
        zero = torch.zeros((self.nb, self.ncols), dtype=torch.float32)
        clip = torch.zeros(self.nb)
        if not bypass_adc:
            zero = self.adc.convert(zero, fs)
            if self.count_clipped:
                clip = (zero >= fs * (1 - 1e-6)).sum(1).to(torch.float32)
        y = torch.empty((self.nb, self.cout), dtype=torch.float32)
        self._digital(zero, torch.zeros((self.nb, 1)), fs, denom, True, out=y)
        if not bool(y.any()) and not bool(clip.any()):
            return None, clip
        return y, clip

    def _exact(self, denom: int, bypass_adc: bool) -> bool:
        """The crossbar datapath computes the exact integer product ``sum_k w_ok x_k`` here:
        ideal chips, no read noise, the ``array`` ADC range (no current beyond full scale, so
        no clipping) without offset or gain error, and ``LSB denom < 1`` in every block (the
        ADC error ``|I_hat - I| <= LSB / 2`` stays below half a level of the back end's grid
        ``1 / denom``); and the product is exact in float32 (``|y| < 2^24``)."""
        adc = self.adc
        return (EXACT_SHORTCUT and not bypass_adc and not self.count_clipped
                and self._ideal_chips and self.read_noise is None
                and self.adc_range == "array" and adc.offset_lsb == 0 and adc.gain_error == 0
                and float(self.full_scale.max()) / adc.max_code * denom < 1.0
                and self._w_sum * denom < 2.0 ** 24)

    def exact_read(self, rows: torch.Tensor, denom: int) -> torch.Tensor:
        """:meth:`read`'s result where :meth:`_exact` holds: the integer product of the input
        codes ``round(rows denom)`` and the weights, one float32 matrix product per drive
        (exact: every partial sum is an integer below ``2^24``)."""
        x = rows.to(torch.float32)
        if denom != 1:
            x = (x * denom).round_()
        y = torch.matmul(x, self._w_t)  # (D, M, Cout)
        return y.expand(self.chips, -1, -1).contiguous() if rows.shape[0] == 1 else y

    def _count_reads(self, n_act: torch.Tensor, denom: int, bypass_adc: bool) -> None:
        """Add to :attr:`stats` what a :meth:`read` of drives with summed drive ``n_act``
        ``(D, M, nb)`` costs on every chip (``D = 1``: one drive read by each)."""
        D, M, _ = n_act.shape
        reps = self.chips // D
        st = self.stats
        st.reads += self.chips * M * self.nb
        st.conversions += self.chips * M * self.nb * self.ncols if not bypass_adc else 0
        st.zero_reads += reps * int((n_act == 0).sum())
        # float64: the sum over every drive can pass 2^24
        st.active_rows += reps * int(n_act.sum(dtype=torch.float64).round()) if denom == 1 else 0

    def read(self, rows: torch.Tensor, n_act: torch.Tensor, drive_sq: torch.Tensor, denom: int,
             gens: list[Optional[torch.Generator]], *, bypass_adc: bool = False) -> torch.Tensor:
        """One read of every row block of every chip.

        ``rows``: row drives (in units of ``v_read``) ``(D, M, K)`` for ``M`` reads, ``D`` =
        chips, or ``D = 1`` read by every chip (``denom`` = 1 for binary planes, ``2^bits - 1``
        through a DAC; any dtype, binary drives may be ``uint8``); ``n_act`` ``(D, M, nb)``:
        the summed drive of each read and block; ``drive_sq`` the same of ``x^2``; ``gens[c]``:
        chip ``c``'s read noise. Returns the digital slice-combined column sums ``(chips, M,
        Cout)`` in units of ``1 / denom``. Where the result is the exact integer product
        (:meth:`_exact`: ideal chips, lossless ADC), it is computed as such
        (:meth:`exact_read`).

        A read whose rows are all inactive (``gate_zero_reads``) carries no current and no
        noise (its noise scales with the drive), so its digital value is the same constant for
        every such read of a block (0 for differential columns without ADC offset): only the
        active reads go through the matmul, the read noise, the ADC and the back end, gathered
        block by block. Read noise: the next ``active reads x ncols`` values of chip ``c``'s
        stream (:mod:`codesign.sim.noise_tape`, the draws of ``gens[c]``), rows in (block,
        read) order, columns in read order (``_slice_major``: slice-major)."""
        assert self.g is not None, "program() the layer first"
        chips = self.chips
        D, M, K = rows.shape
        shared = D == 1
        if not shared and D != chips:
            raise ValueError(f"{self.name}: drive for {D} chips, {chips} programmed")
        self._count_reads(n_act, denom, bypass_adc)
        if self._exact(denom, bypass_adc):
            return self.exact_read(rows, denom)
        fs_b = self.full_scale.reshape(self.nb)
        out = torch.zeros((chips, M, self.cout), dtype=torch.float32)
        st = self.stats
        idle_y, idle_clip = self._idle(denom, bypass_adc)
        plans: list = []
        for c in range(chips):
            d = 0 if shared else c
            if not plans or not shared:
                active = (n_act[d] != 0).t()  # (nb, M)
                bi, mi = torch.nonzero(active, as_tuple=True)  # block-major
                per_block = active.sum(1).tolist()
                sel = []
                for blk, mi_b in enumerate(torch.split(mi, per_block)):
                    # the drive's own dtype (uint8 planes): float32 chunk by chunk below; a
                    # last block of fewer rows than the crossbar's is read on those rows only
                    # (its other rows are undriven: the same product, bit for bit, at a
                    # fraction of the matmul)
                    sel.append(rows[d, :, blk * self.rb:(blk + 1) * self.rb]
                               .index_select(0, mi_b))
                na = n_act[d][mi, bi].unsqueeze(1)
                dsq = na if denom == 1 else drive_sq[d][mi, bi].unsqueeze(1)
                zero = M * self.nb - int(mi.numel())  # all-inactive reads
                plans.append((bi, mi, per_block, sel, na, dsq, zero))
            else:
                plans.append(plans[0])
        g_read = self._g_read
        assert g_read is not None
        rows_per = max(1, CHUNK_BYTES // (4 * self.ncols))
        cur_buf = self._buffer(("current",), rows_per * self.ncols)
        drive_buf = self._buffer(("drive",), rows_per * self.rb)
        for c in range(chips):
            d = 0 if shared else c
            bi, mi, per_block, sel, na, dsq, zero = plans[c]
            m_a = int(mi.numel())
            noisy = self.read_noise is not None and m_a > 0
            if noisy:
                assert self.read_noise is not None and gens[c] is not None
                tape, std = tape_of(gens[c]), self.read_noise.std(dsq)
            y = self._buffer(("sums",), m_a * self.cout).view(m_a, self.cout)
            peak = torch.zeros(self.nb)
            o = 0
            for blk, nrow in enumerate(per_block):
                steps = self.adc.steps(fs_b[blk]) if nrow and not bypass_adc else None
                # row chunks of ~CHUNK_BYTES of column currents: the ADC and back-end passes
                # run on data still in cache
                for s in range(0, nrow, rows_per):
                    n, r = min(rows_per, nrow - s), o + s
                    cur = cur_buf[: n * self.ncols].view(n, self.ncols)
                    drive = sel[blk][s:s + n]
                    kb = drive.shape[1]
                    table = (self._table(c, blk, kb)
                             if self.ncols <= TABLE_MAX_COLS and table_applies(drive) else None)
                    if table is not None:
                        cur = table_product(drive, table)
                    else:
                        if drive.dtype != torch.float32:
                            drive = drive_buf[: n * kb].view(n, kb).copy_(drive)
                        torch.mm(drive, g_read[c, blk, :kb], out=cur)
                    if noisy:
                        tape.add_(cur, std[r:r + n])
                    if bypass_adc:
                        peak[blk] = torch.maximum(peak[blk], cur.max())
                    st.clipped += self._digital(cur, na[r:r + n], fs_b[blk], denom,
                                                bypass_adc, out=y[r:r + n], steps=steps)
                o += nrow
            if bypass_adc:
                self.max_current = peak if self.max_current is None else \
                    torch.maximum(self.max_current, peak)
            if self.nb == 1:
                out[c].index_copy_(0, mi, y)
            else:  # accumulate the row blocks (exact: integer sums in float32)
                out[c].index_add_(0, mi, y)
            if zero and idle_y is not None:
                idle = (n_act[d] == 0).to(torch.float32)  # (M, nb)
                out[c] += idle @ idle_y
                st.clipped += int(idle.sum(0) @ idle_clip)
        if self.offset:  # digital correction: the offset times the summed input codes
            codes = n_act.sum(-1, keepdim=True)
            if denom != 1:  # DAC rows: the drives are codes / denom; their sum times denom is
                codes = (codes * denom).round_()  # an integer up to float32 rounding
            out.sub_(self.offset * codes)
        return out

    def _read_input(self, x: torch.Tensor, shared: bool, denom: int, binary: bool,
                    gens: list[Optional[torch.Generator]], bypass_adc: bool) -> torch.Tensor:
        """:meth:`read` of input ``x`` ``(D B, ...)`` (``D`` = 1 if ``shared`` else chips) ->
        ``(chips, B L, Cout)``."""
        D = 1 if shared else self.chips
        if binary:
            n_act = self._block_counts(x)
            rows = self._patches(x.to(torch.uint8))
            dsq = n_act
        else:
            rows = self._patches(x)
            flat = rows
            if self.nb > 1:
                flat = F.pad(rows, (0, self.nb * self.rb - self.k))
            blocks = flat.reshape(flat.shape[0], self.nb, self.rb)
            n_act = blocks.sum(-1)
            dsq = (blocks * blocks).sum(-1)
        M = rows.shape[0] // D
        return self.read(rows.reshape(D, M, -1), n_act.reshape(D, M, self.nb),
                         dsq.reshape(D, M, self.nb), denom, gens, bypass_adc=bypass_adc)

    def forward_chips(self, x: torch.Tensor, *, shared: bool, input_bits: Optional[int],
                      scheme: str, gens: list[Optional[torch.Generator]],
                      bypass_adc: bool = False) -> tuple[torch.Tensor, int]:
        """Integer product of the layer on every programmed chip, chips folded into the batch.

        ``x``: ``(B, ...)`` read by every chip (``shared``, e.g. the first layer's input) or
        ``(chips * B, ...)`` chip-major (row ``c B + b`` is sample ``b`` on chip ``c``).
        Binary ``x`` (spikes): one read. Analog ``x`` in [0, 1] (``input_bits`` given): the codes
        ``round(x (2^bits - 1))`` bit-serially (``scheme='bit_serial'``, shift-added planes) or
        through the DAC (``'dac'``). Returns ``(y, denom)`` with the product ``y / denom`` in
        units of the input (``denom = 2^bits - 1`` for analog inputs, 1 for spikes), ``y`` as
        ``(chips * B, Cout, H', W')`` or ``(chips * B, Cout)``, chip-major.
        """
        chips = self.chips
        if input_bits is None:
            y, denom = self._read_input(x, shared, 1, True, gens, bypass_adc), 1
        else:
            denom = input_levels(input_bits)
            q = input_codes(x, input_bits)  # the cost model's codes (codesign.hw.input_codes)
            if scheme == "dac":
                y = self._read_input(q / denom, shared, denom, False, gens, bypass_adc)
            elif scheme == "bit_serial":
                qi = q.to(torch.int32)
                y = None
                for b in range(input_bits):
                    plane = ((qi >> b) & 1).to(torch.float32)
                    yb = self._read_input(plane, shared, 1, True, gens, bypass_adc)
                    y = yb if y is None else y.add_(yb, alpha=2 ** b)
                assert y is not None
            else:
                raise CodesignError(f"input.first_layer {scheme!r}: expected dac or bit_serial")
        n = x.shape[0] * chips // (1 if shared else chips)
        if self.conv is not None:
            h, w = self.conv["out_hw"]
            y = y.reshape(n, h * w, self.cout).transpose(1, 2).reshape(n, self.cout, h, w)
        else:
            y = y.reshape(n, self.cout)
        return y, denom

    def forward_int(self, x: torch.Tensor, *, input_bits: Optional[int], scheme: str,
                    gen: Optional[torch.Generator], bypass_adc: bool = False
                    ) -> tuple[torch.Tensor, int]:
        """Integer product of the layer on its one programmed chip for input ``x`` ``(N, ...)``
        (:meth:`forward_chips` with ``chips = 1``): ``(y, denom)``, ``y`` ``(N, Cout, ...)``."""
        if self.chips != 1:
            raise ValueError(f"{self.name}: forward_int reads one chip, {self.chips} programmed")
        return self.forward_chips(x, shared=True, input_bits=input_bits, scheme=scheme,
                                  gens=[gen], bypass_adc=bypass_adc)


def wire_tiles(models: Models, tiles: list[torch.Tensor]) -> list[torch.Tensor]:
    """IR drop folded into crossbar tiles (:meth:`CrossbarLayer.tiles_of`, any leading shape),
    deterministic: every tile of the list in one transfer batch per tile size, since with few
    tiles per call the sweep's time is mostly per-operation overhead (one chip of the shipped
    student, 60 tiles, 1 thread, AMD EPYC: one call per layer 5.3 s, one call for all 2.1 s;
    ``reports/bench/sim_irdrop.md``, notes of stop 20). Unchanged without IR drop."""
    if models.ir_drop is None:
        return list(tiles)
    out: list[torch.Tensor] = list(tiles)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(tiles):
        groups.setdefault(tuple(t.shape[-2:]), []).append(i)
    for size, idx in groups.items():
        flat = torch.cat([tiles[i].reshape((-1,) + size) for i in idx])
        eff = models.ir_drop.apply(flat).split([tiles[i][..., 0, 0].numel() for i in idx])
        for i, e in zip(idx, eff, strict=True):
            out[i] = e.reshape(tiles[i].shape)
    return out
