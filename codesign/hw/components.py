"""Component models, Accelergy style: each answers energy per action, latency per action, area.

Every model is built from a :class:`~codesign.hw.spec.HardwareSpec` section, scaled

* with its **bit-width** by an explicit law (named in each class docstring), relative to the
  width at which its constants were characterised, and
* with the **technology node** through the one table in :mod:`codesign.hw.tech`: a constant
  characterised at ``ref_node`` is multiplied by ``factor(node) / factor(ref_node)`` (energy,
  area and delay factors respectively). Device-physics terms (``V^2 G t`` of an RRAM cell) are
  not CMOS and do not scale.

The ADC is the exception: its energy and area follow bits, node and sample rate together through
the one survey law of :mod:`codesign.hw.adc_law` (only its latency uses the tech table).

Units: energies in pJ, latencies in ns, areas in um2 (names say so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.hw import adc_law, tech
from codesign.hw.spec import (
    ADC,
    Adder,
    Buffer,
    Crossbar,
    Device,
    HardwareSpec,
    InputDrive,
    Interconnect,
    Membrane,
    Mux,
    Neuron,
)

# ----------------------------------------------------------------------------- scaling laws


def adc_latency_law(kind: str, bits: int) -> float:
    """Relative conversion time at ``bits``: ``sar`` ~ ``b`` (one comparator decision per bit),
    ``flash`` constant (all ``2^b - 1`` comparators decide at once)."""
    if kind == "flash":
        return 1.0
    if kind == "sar":
        return float(bits)
    raise ValueError(kind)


def _scale(quantity: str, value: float, ref_node: float | None, node: float) -> float:
    return tech.scale(quantity, value, node if ref_node is None else ref_node, node)


# ----------------------------------------------------------------------------- components


@dataclass(frozen=True)
class CrossbarArray:
    """One crossbar: read energy linear in active rows ``a`` and used columns ``c``.

    ``E_read(a, c) = e_col * c + a * (e_row + e_cell_on(c))`` where, per active row,

    * ``lumped``:    ``e_cell = read_energy / rows`` (a full read spread over its rows);
    * ``resistive``: ``e_cell = V^2 t (c G_mean + (C - c) G_off)``, ``G_mean = (g_on + g_off)/2``
      (levels used uniformly; unprogrammed columns sit at ``g_off``). ``uS * V^2 * ns = fJ``.
    """

    rows: int
    cols: int
    model: str
    read_energy_pj: float
    row_energy_pj: float
    col_energy_pj: float
    v_read_v: float
    t_read_ns: float
    g_mean_us: float
    g_off_us: float
    area_um2: float
    latency_ns: float

    def per_row_pj(self, used_cols: int) -> float:
        """Energy per active row of one read with ``used_cols`` programmed columns (pJ)."""
        e = self.row_energy_pj
        if self.model == "lumped":
            e += self.read_energy_pj / self.rows
        else:
            unused = max(self.cols - used_cols, 0)
            g_sum_us = used_cols * self.g_mean_us + unused * self.g_off_us
            e += 1e-3 * self.v_read_v**2 * self.t_read_ns * g_sum_us
        return e

    def per_read_pj(self, used_cols: int) -> float:
        """Row-independent energy of one read (bit-line precharge / sensing) (pJ)."""
        return self.col_energy_pj * used_cols

    def read_energy(self, active_rows: float, used_cols: int) -> float:
        """Energy of one read with ``active_rows`` rows driven (pJ)."""
        return self.per_read_pj(used_cols) + active_rows * self.per_row_pj(used_cols)


@dataclass(frozen=True)
class ADCModel:
    """Column ADC at ``bits``: energy and area from :mod:`.adc_law` (one survey law)."""

    kind: str
    bits: int
    energy_pj: float
    """Energy per conversion."""
    area_um2: float
    """Area of one ADC."""
    latency_ns: float
    """Time of one conversion."""
    mux: int
    leakage_mw: float = 0.0
    """Static power of one ADC (mW)."""

    def adcs_per_crossbar(self, cols: int) -> int:
        """ADCs per crossbar: ``ceil(cols / mux)``."""
        return math.ceil(cols / self.mux)

    def rounds(self, used_cols: int, cols: int) -> int:
        """Sequential conversion rounds to read ``used_cols`` columns (<= ``mux``)."""
        return min(self.mux, math.ceil(max(used_cols, 1) / self.adcs_per_crossbar(cols)))


@dataclass(frozen=True)
class Unit:
    """A component with constant energy per action, latency per action and area."""

    energy_pj: float
    area_um2: float
    latency_ns: float = 0.0


@dataclass(frozen=True)
class BufferModel:
    """SRAM buffer: ``energy_pj`` per access of ``access_bits``; energy per bit is the ratio.

    Capacity law: energy per access ~ ``sqrt(capacity)`` (bit-line and word-line length both
    grow as the square root of the array; Horowitz ISSCC 2014: 64-bit read of an 8 KB SRAM
    10 pJ, 32 KB 20 pJ, 1 MB 100 pJ). Used to price a store sized to what it holds
    (:meth:`pj_per_bit_holding`).
    """

    size_kb: float
    """Capacity (KB = 1024 B)."""
    access_bits: int
    energy_pj: float
    area_um2: float
    leakage_mw: float = 0.0
    """Static power (mW)."""

    @property
    def size_bits(self) -> float:
        return self.size_kb * 8192.0

    @property
    def pj_per_bit(self) -> float:
        return self.energy_pj / self.access_bits

    def energy_for_bits(self, bits: float) -> float:
        """Energy to move ``bits`` through the port (fractional accesses averaged) (pJ)."""
        return bits * self.pj_per_bit

    def pj_per_bit_holding(self, bits_held: float) -> float:
        """Energy per bit of a store of ``bits_held`` bits, ``pj_per_bit * sqrt(held / size)``
        (capacity law above), never more than the full buffer's (pJ/bit)."""
        frac = min(max(bits_held, 1.0) / self.size_bits, 1.0)
        return self.pj_per_bit * math.sqrt(frac)


@dataclass(frozen=True)
class InterconnectModel:
    """Tile network: ``energy_pj`` per flit of ``flit_bits`` per hop, ``area_um2`` per tile."""

    kind: str
    flit_bits: int
    energy_pj: float
    area_um2: float
    spike_format: str

    def hops(self, tiles: int) -> float:
        """Mean hops of a transfer among ``tiles`` tiles: H-tree ``max(1, ceil(log2 N))``; 2-D
        mesh ``max(1, 2 sqrt(N) / 3)`` (mean Manhattan distance of a square mesh)."""
        n = max(int(tiles), 1)
        if self.kind == "htree":
            return float(max(1, math.ceil(math.log2(n)))) if n > 1 else 1.0
        return max(1.0, 2.0 * math.sqrt(n) / 3.0)

    def energy_for_bits(self, bits: float, tiles: int) -> float:
        """Energy to carry ``bits`` across the network of ``tiles`` tiles (pJ)."""
        return bits / self.flit_bits * self.hops(tiles) * self.energy_pj

    def spike_bits(self, spikes: float, neurons: int) -> float:
        """Bits to send ``spikes`` of a population of ``neurons`` in one step (``bitmap``: one
        bit per neuron; ``aer``: ``ceil(log2 neurons)`` address bits per spike)."""
        if self.spike_format == "bitmap":
            return float(neurons)
        return spikes * max(1, math.ceil(math.log2(max(neurons, 2))))


@dataclass(frozen=True)
class Components:
    """All component models of one spec at its technology node."""

    node_nm: float
    crossbar: CrossbarArray
    adc: ADCModel
    mux: Unit
    dac: Unit | None
    shift_add: Unit
    """Shift-adder at the spec's width (or its ``ref_width`` when the width is derived)."""
    accumulator: Unit
    tile_buffer: BufferModel
    pe_buffer: BufferModel
    interconnect: InterconnectModel
    clock_period_ns: float
    _neuron: Neuron
    _membrane: Membrane
    _shift_add: Adder
    _accumulator: Adder

    def shift_add_at(self, width: int) -> Unit:
        """Shift-adder of ``width`` bits (energy and area ~ width)."""
        return adder_model(self._shift_add, self.node_nm, self.clock_period_ns, width)

    def accumulator_at(self, width: int) -> Unit:
        """Accumulator of ``width`` bits (energy and area ~ width)."""
        return adder_model(self._accumulator, self.node_nm, self.clock_period_ns, width)

    def lif(self, ubits: int) -> Unit:
        """LIF update unit at ``ubits``: energy and area ~ ``ubits / ref_bits`` (adder and
        comparator width); latency ``latency_cycles`` clock periods."""
        n = self._neuron
        k = ubits / n.ref_bits
        return Unit(
            energy_pj=_scale("energy", n.energy_pj, n.ref_node_nm, self.node_nm) * k,
            area_um2=_scale("area", n.area_um2, n.ref_node_nm, self.node_nm) * k,
            latency_ns=n.latency_cycles * self.clock_period_ns,
        )

    def membrane(self, ubits: int) -> Unit:
        """Membrane storage of one neuron at ``ubits``: ``energy_pj`` = one read plus one write
        of ``ubits`` bits (~ ``ubits``), ``area_um2`` = ``ubits`` bit cells."""
        m = self._membrane
        e_bit = m.read_pj_per_bit + m.write_pj_per_bit
        return Unit(
            energy_pj=_scale("energy", e_bit, m.ref_node_nm, self.node_nm) * ubits,
            area_um2=_scale("area", m.area_um2_per_bit, m.ref_node_nm, self.node_nm) * ubits,
        )


def crossbar_model(xb: Crossbar, dev: Device, node_nm: float) -> CrossbarArray:
    """Crossbar model: lumped energies and area scale with the node; ``V^2 G t`` does not."""
    area = xb.area_um2 if xb.area_um2 is not None else xb.rows * xb.cols * dev.cell_area_um2
    ref = xb.ref_node_nm
    return CrossbarArray(
        rows=xb.rows,
        cols=xb.cols,
        model=xb.energy_model,
        read_energy_pj=_scale("energy", xb.read_energy_pj, ref, node_nm),
        row_energy_pj=_scale("energy", xb.row_energy_pj, ref, node_nm),
        col_energy_pj=_scale("energy", xb.col_energy_pj, ref, node_nm),
        v_read_v=dev.v_read_v,
        t_read_ns=dev.t_read_ns,
        g_mean_us=0.5 * (dev.g_on_us + dev.g_off_us),
        g_off_us=dev.g_off_us,
        area_um2=_scale("area", area, ref, node_nm) if xb.area_um2 is not None else area,
        latency_ns=xb.read_latency_ns if xb.read_latency_ns is not None else dev.t_read_ns,
    )


def adc_model(adc: ADC, node_nm: float, bits: int | None = None) -> ADCModel:
    """ADC at ``bits`` (default ``adc.bits``) and the spec's node.

    Latency ``t(b) = latency * law(b) / law(ref_bits)`` (:func:`adc_latency_law`, tech-scaled as
    a delay); sample rate ``f = 1 / t(b)``; energy and area from :mod:`.adc_law` at
    ``(b, node, f)`` (area at the bits-independent design rate, see :func:`.adc_law.area_um2`),
    anchored at ``(ref_bits, ref_node, 1 / latency)`` when the spec quotes a
    measured ``energy`` / ``area``. Leakage ~ ``b / ref_bits`` (PUMA: ADC leakage linear in
    bits), tech-scaled with the area factor (static current ~ transistor width).
    """
    b = adc.bits if bits is None else int(bits)
    ref_b = adc.ref_bits or adc.bits
    ref = node_nm if adc.ref_node_nm is None else adc.ref_node_nm
    lat_ref = adc.latency_ns
    lat = _scale("delay", lat_ref * adc_latency_law(adc.kind, b) / adc_latency_law(
        adc.kind, ref_b), ref, node_nm)
    f_hz = 1e9 / lat
    f_ref_hz = 1e9 / lat_ref
    energy = adc_law.energy_pj(b, node_nm, f_hz)
    if adc.energy_pj is not None:
        energy *= adc.energy_pj / adc_law.energy_pj(ref_b, ref, f_ref_hz)
    # area at the design's rate (the ref-bits ADC at this node), not f(b): adc_law.area_um2
    f_design_hz = 1e9 / _scale("delay", lat_ref, ref, node_nm)
    area = adc_law.area_um2(b, node_nm, f_design_hz)
    if adc.area_um2 is not None:
        area *= adc.area_um2 / adc_law.area_um2(ref_b, ref, f_ref_hz)
    return ADCModel(
        kind=adc.kind,
        bits=b,
        energy_pj=energy,
        area_um2=area,
        latency_ns=lat,
        mux=adc.mux,
        leakage_mw=_scale("area", adc.leakage_mw * b / ref_b, ref, node_nm),
    )


def dac_model(inp: InputDrive, node_nm: float) -> Unit | None:
    """Row DAC at ``inp.bits``: energy and area ~ ``2^b`` (unit current/resistor elements, as the
    ISAAC DAC table reproduced in MNSIM: 1 bit 0.166 um2 ... 8 bit 21.248 um2 = x128)."""
    if inp.first_layer != "dac":
        return None
    k = 2.0 ** (inp.bits - inp.dac_ref_bits)
    return Unit(
        energy_pj=_scale("energy", inp.dac_energy_pj, inp.ref_node_nm, node_nm) * k,  # type: ignore
        area_um2=_scale("area", inp.dac_area_um2, inp.ref_node_nm, node_nm) * k,  # type: ignore
    )


def adder_model(a: Adder, node_nm: float, clock_period_ns: float,
                width: int | None = None) -> Unit:
    """Adder at ``width`` (default ``a.width``, else ``a.ref_width``): energy and area
    ~ ``width / ref_width`` (ripple-carry: one full adder per bit)."""
    ref_w = a.ref_width or a.width or 1
    w = width if width is not None else (a.width or ref_w)
    k = w / ref_w
    return Unit(
        energy_pj=_scale("energy", a.energy_pj, a.ref_node_nm, node_nm) * k,
        area_um2=_scale("area", a.area_um2, a.ref_node_nm, node_nm) * k,
        latency_ns=a.latency_cycles * clock_period_ns,
    )


def mux_model(m: Mux, node_nm: float) -> Unit:
    """Column mux: constant energy per conversion and area per ADC."""
    return Unit(energy_pj=_scale("energy", m.energy_pj, m.ref_node_nm, node_nm),
                area_um2=_scale("area", m.area_um2, m.ref_node_nm, node_nm))


def buffer_model(b: Buffer, node_nm: float) -> BufferModel:
    """SRAM buffer at the spec's node."""
    return BufferModel(size_kb=b.size_kb, access_bits=b.access_bits,
                       energy_pj=_scale("energy", b.energy_pj, b.ref_node_nm, node_nm),
                       area_um2=_scale("area", b.area_um2, b.ref_node_nm, node_nm),
                       leakage_mw=_scale("area", b.leakage_mw, b.ref_node_nm, node_nm))


def interconnect_model(ic: Interconnect, node_nm: float) -> InterconnectModel:
    """Tile network at the spec's node."""
    return InterconnectModel(kind=ic.kind, flit_bits=ic.flit_bits,
                             energy_pj=_scale("energy", ic.energy_pj, ic.ref_node_nm, node_nm),
                             area_um2=_scale("area", ic.area_um2, ic.ref_node_nm, node_nm),
                             spike_format=ic.spike_format)


def build_components(spec: HardwareSpec) -> Components:
    """Every component model of ``spec`` at ``spec.technology.node``."""
    node = spec.node_nm
    period = spec.clock.period_ns
    return Components(
        node_nm=node,
        crossbar=crossbar_model(spec.crossbar, spec.device, node),
        adc=adc_model(spec.adc, node),
        mux=mux_model(spec.mux, node),
        dac=dac_model(spec.input, node),
        shift_add=adder_model(spec.digital.shift_add, node, period),
        accumulator=adder_model(spec.digital.accumulator, node, period),
        tile_buffer=buffer_model(spec.buffers.tile, node),
        pe_buffer=buffer_model(spec.buffers.pe, node),
        interconnect=interconnect_model(spec.interconnect, node),
        clock_period_ns=period,
        _neuron=spec.neuron,
        _membrane=spec.membrane,
        _shift_add=spec.digital.shift_add,
        _accumulator=spec.digital.accumulator,
    )
