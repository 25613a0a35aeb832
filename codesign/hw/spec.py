"""The hardware spec: validated dataclasses, one field per physical parameter, loaded from YAML.

File format (``hw_configs/*.yaml``)
----------------------------------
Top level: ``name``, optional ``description``, optional ``compat`` (``none`` | ``spikesim``),
optional ``sources`` and the sections below. A physical constant is written either as a mapping::

    adc:
      energy: {value: 2.03084, unit: pJ, source: "SpikeSim ela_spikesim.py ADC (65 nm)"}

or compactly as ``energy: "2.03084 pJ"`` with its source in the ``sources:`` map, keyed by the
key path or by any prefix of it (the longest prefix wins)::

    sources:
      adc: "SpikeSim ela_spikesim.py"          # every adc.* constant without its own source
      adc.area: "SpikeSim ela_spikesim.py compute_area"

Counts, bit-widths and choices are plain values (``bits: 4``); they may also be written as
``{value: 4, source: "..."}``. Every physical constant must carry a unit of the right dimension
(compatible units are converted: fJ/pJ/nJ, um2/mm2, ns/us, MHz/GHz, nS/uS/mS, ...) and a source.

Loading refuses, with one :class:`~codesign.errors.CodesignError` naming the file, the key path
and what was expected: unknown keys (with the closest valid key suggested), missing keys, a value
without unit or source, a unit of the wrong dimension, impossible numbers (negative energy, zero
rows, ADC bits above 16, ``g_off >= g_on``, ...).

Python attribute names carry the canonical unit (``energy_pj``, ``area_um2``, ``latency_ns``);
the YAML keys do not (the unit travels with the value). Provenance of every loaded value is kept
in :attr:`HardwareSpec.sources` (key path -> source).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from codesign.errors import CodesignError
from codesign.hw import tech, units
from codesign.hw.nonideal import NonIdeal
from codesign.params import (
    BITS_MAX,
    DEFAULT_SOURCE,
    REQUIRED,
    Ctx,
    choice,
    flag,
    integer,
    join,
    load_section,
    load_yaml,
    parse_value,
    qty,
    real,
    section,
    spec_fields,
    suggest,
    text,
)

OVERRIDE_SOURCE = "override"

# The field helpers and the validation engine live in :mod:`codesign.params` (shared with the
# workload, model-spec, NIR and checkpoint loaders); re-exported here for the section classes.
_REQUIRED = REQUIRED
_Ctx = Ctx
_suggest = suggest
_join = join
_spec_fields = spec_fields
_load_section = load_section
_parse_value = parse_value

_FROZEN = {"frozen": True, "kw_only": True}

# ----------------------------------------------------------------------------- sections


@dataclass(**_FROZEN)
class Technology:
    """CMOS process of the peripheral circuits."""

    node_nm: float = qty("node", "length", gt=0)
    """Technology node (nm); peripheral constants given at another ``ref_node`` are scaled to it
    with :mod:`codesign.hw.tech`."""


@dataclass(**_FROZEN)
class Device:
    """The memory cell storing one weight slice."""

    kind: str = choice("type", ("rram", "sram", "fefet", "pcm"))
    """Memory technology of the cell."""
    g_on_us: float = qty("g_on", "conductance", gt=0)
    """Highest programmed (on, LRS) conductance (uS)."""
    g_off_us: float = qty("g_off", "conductance", ge=0)
    """Lowest (off, HRS) conductance (uS); must be below ``g_on``."""
    levels_per_cell: int = integer("levels", ge=2, le=256)
    """Distinguishable conductance levels per cell (a power of two): ``bits_per_cell = log2``."""
    v_read_v: float = qty("v_read", "voltage", gt=0)
    """Read voltage applied to an active row (V)."""
    t_read_ns: float = qty("t_read", "time", gt=0)
    """Read pulse width (ns)."""
    cell_area_um2: Optional[float] = qty("cell_area", "area", default=None, gt=0)
    """Area of one cell (um2); used when ``crossbar.area`` is not given."""

    @property
    def bits_per_cell(self) -> int:
        """``log2(levels_per_cell)``."""
        return int(round(math.log2(self.levels_per_cell)))


@dataclass(**_FROZEN)
class Crossbar:
    """One crossbar array (sub-array) and how its read energy is modelled.

    Energy of one read of a crossbar with ``a`` active rows and ``c`` used columns (of ``C``):

    * ``lumped``:    ``E = read_energy * a / rows + row_energy * a + col_energy * c``
      (``read_energy`` is the energy of a read with every row active, e.g. SpikeSim's 1.76423 pJ);
    * ``resistive``: ``E = V_read^2 t_read a (c G_mean + (C - c) G_off) + row_energy a
      + col_energy c`` with ``G_mean = (g_on + g_off) / 2`` (levels used uniformly).
    """

    rows: int = integer("rows", ge=1, le=65536)
    """Word lines (inputs) per crossbar."""
    cols: int = integer("cols", ge=1, le=65536)
    """Bit lines (outputs) per crossbar."""
    signed: str = choice("signed", ("differential", "offset"))
    """Signed weights: ``differential`` pair of columns (magnitude bits per side), or ``offset``
    code with digital correction (SpikeSim NICE: ``+2^(n-1)`` offset, active-input count on
    negative weights subtracted digitally)."""
    energy_model: str = choice("energy_model", ("lumped", "resistive"))
    """How the read energy is computed (see class docstring)."""
    read_energy_pj: float = qty("read_energy", "energy", default=0.0, ge=0)
    """``lumped`` model: energy of one read with all rows active (pJ)."""
    row_energy_pj: float = qty("row_energy", "energy", default=0.0, ge=0)
    """Word-line / row-driver energy per active row per crossbar read (pJ)."""
    col_energy_pj: float = qty("col_energy", "energy", default=0.0, ge=0)
    """Bit-line precharge / sensing energy per used column per read (pJ)."""
    area_um2: Optional[float] = qty("area", "area", default=None, gt=0)
    """Area of one crossbar (um2); default ``rows * cols * device.cell_area``."""
    read_latency_ns: Optional[float] = qty("read_latency", "time", default=None, gt=0)
    """Time of one crossbar read before conversion (ns); default ``device.t_read``."""
    gate_zero_reads: bool = flag("gate_zero_reads")
    """Skip a crossbar read (and its conversions) when none of its rows is active."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Node at which the lumped energies and area were characterised (default: the spec's)."""


@dataclass(**_FROZEN)
class ADC:
    """Column analog-to-digital converters; one ADC serves ``mux`` columns in turn.

    Energy and area per conversion follow ONE law, :mod:`codesign.hw.adc_law` (fitted to the
    Murmann ADC survey, with a sample-rate term), at the resolution, the spec's node and the
    sample rate ``1 / latency``. ``energy`` / ``area``, when given, anchor the law at a measured
    ADC (``ref_bits``, ``ref_node``); otherwise the survey values are used. Latency: ``sar``
    ~ ``b`` (one comparator decision per bit), ``flash`` constant (one comparison).
    """

    kind: str = choice("type", ("flash", "sar"))
    """ADC architecture (selects the latency law)."""
    bits: int = integer("bits", ge=1, le=16)
    """Resolution (bits)."""
    mux: int = integer("mux", ge=1)
    """Columns sharing one ADC through an analog mux (converted sequentially)."""
    energy_model: str = choice("energy_model", ("survey",), default="survey")
    """The cost law: ``survey`` (:mod:`codesign.hw.adc_law`), the only one."""
    energy_pj: Optional[float] = qty("energy", "energy", default=None, gt=0)
    """Measured energy per conversion at ``ref_bits`` anchoring the law (pJ); default: the
    survey's own value."""
    area_um2: Optional[float] = qty("area", "area", default=None, gt=0)
    """Measured area of one ADC at ``ref_bits`` anchoring the law (um2); default: survey."""
    latency_ns: float = qty("latency", "time", gt=0)
    """Time of one conversion at ``ref_bits`` (ns); its inverse is the sample rate."""
    leakage_mw: float = qty("leakage", "power", default=0.0, ge=0)
    """Static power of one ADC at ``ref_bits`` (mW), ~ ``b`` (PUMA's ISAAC-derived table);
    charged for the whole inference latency."""
    ref_bits: Optional[int] = integer("ref_bits", default=None, ge=1, le=16)
    """Resolution at which energy, area and latency were characterised (default: ``bits``)."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Node at which the constants were characterised (default: the spec's)."""


@dataclass(**_FROZEN)
class Mux:
    """Analog column multiplexer in front of each ADC."""

    energy_pj: float = qty("energy", "energy", ge=0)
    """Energy per column switched to the ADC (per conversion) (pJ)."""
    area_um2: float = qty("area", "area", ge=0)
    """Area of one mux (one per ADC) (um2)."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Characterisation node (default: the spec's)."""


@dataclass(**_FROZEN)
class InputDrive:
    """How an analog (non-spike) input drives the rows, e.g. the first layer under direct coding.

    Spikes need neither: a spike is one read at ``v_read``. ``dac``: one DAC conversion per active
    row per crossbar read (DAC energy and area ~ ``2^bits``, as in the ISAAC DAC table reproduced
    by MNSIM: 1 bit 0.166 um2 ... 8 bit 21.248 um2). ``bit_serial``: the input, quantised to
    ``bits``, is applied one bit plane per read and the results shift-added.
    """

    first_layer: str = choice("first_layer", ("dac", "bit_serial"))
    """Input scheme for analog inputs."""
    bits: int = integer("bits", ge=1, le=16)
    """DAC resolution or number of bit planes (bits)."""
    dac_energy_pj: Optional[float] = qty("dac_energy", "energy", default=None, ge=0)
    """DAC energy per conversion at ``dac_ref_bits`` (pJ); required for ``dac``."""
    dac_area_um2: Optional[float] = qty("dac_area", "area", default=None, ge=0)
    """Area of one row DAC at ``dac_ref_bits`` (um2); required for ``dac``."""
    dac_ref_bits: int = integer("dac_ref_bits", default=1, ge=1, le=16)
    """Resolution at which the DAC constants were characterised."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Characterisation node (default: the spec's)."""


@dataclass(**_FROZEN)
class Adder:
    """A digital adder unit (shift-add or accumulator): energy and area ~ width (ripple carry)."""

    width: Optional[int] = integer("width", default=None, ge=1, le=128, nullable=True)
    """Operand width (bits); default (``null``): derived per layer from its weight bits, input
    planes and rows (:func:`codesign.hw.mapping.digital_widths`)."""
    energy_pj: float = qty("energy", "energy", ge=0)
    """Energy per add at ``ref_width`` (pJ)."""
    area_um2: float = qty("area", "area", ge=0)
    """Area of one unit at ``ref_width`` (um2)."""
    ref_width: Optional[int] = integer("ref_width", default=None, ge=1, le=128)
    """Width at which energy and area were characterised (default: ``width``)."""
    latency_cycles: int = integer("latency_cycles", default=1, ge=0)
    """Clock cycles per operation."""
    per: Optional[str] = choice("per", ("adc", "pe", "tile"), default=None)
    """Placement for the area: ``units`` of these per ADC, per PE or per tile (default: per
    ADC for ``shift_add``, per PE for ``accumulator``)."""
    units: int = integer("units", default=1, ge=0)
    """Units per placement site."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Characterisation node (default: the spec's)."""


@dataclass(**_FROZEN)
class Digital:
    """Digital post-processing of column outputs."""

    shift_add: Adder = section("shift_add", Adder)
    """Combines weight slices, bit planes and differential pairs (one op per conversion); one
    unit per ADC."""
    accumulator: Adder = section("accumulator", Adder)
    """Adds row-block partial sums into the output (one op per output per row-block read, two
    with offset correction); one unit per PE."""


@dataclass(**_FROZEN)
class Membrane:
    """Storage of the membrane potentials, read and written once per neuron per time step."""

    memory: str = choice("memory", ("sram", "register"))
    """Storage type."""
    read_pj_per_bit: float = qty("read_energy", "energy_per_bit", ge=0)
    """Read energy per stored bit (pJ/bit)."""
    write_pj_per_bit: float = qty("write_energy", "energy_per_bit", ge=0)
    """Write energy per stored bit (pJ/bit)."""
    area_um2_per_bit: float = qty("area", "area_per_bit", ge=0)
    """Area per stored bit (um2/bit)."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Characterisation node (default: the spec's)."""


@dataclass(**_FROZEN)
class Neuron:
    """The digital LIF/IF update unit; energy and area ~ membrane bits (adder/comparator width)."""

    energy_pj: float = qty("energy", "energy", ge=0)
    """Energy per neuron update (leak, integrate, compare, reset) at ``ref_bits`` (pJ)."""
    area_um2: float = qty("area", "area", ge=0)
    """Area of one unit at ``ref_bits`` (um2)."""
    ref_bits: int = integer("ref_bits", ge=1, le=64)
    """Membrane width at which energy and area were characterised."""
    units_per_tile: int = integer("units_per_tile", ge=1)
    """LIF units per tile (they update the tile's neurons in turn)."""
    latency_cycles: int = integer("latency_cycles", default=1, ge=0)
    """Clock cycles per update."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Characterisation node (default: the spec's)."""


@dataclass(**_FROZEN)
class Buffer:
    """An SRAM buffer; energy per access of ``access_bits`` bits."""

    size_kb: float = qty("size", "size", gt=0)
    """Capacity (KB, 1 KB = 8192 bit)."""
    access_bits: int = integer("access_bits", ge=1)
    """Bits per access (port width)."""
    energy_pj: float = qty("energy", "energy", ge=0)
    """Energy per access (pJ)."""
    area_um2: float = qty("area", "area", ge=0)
    """Area of the buffer (um2)."""
    leakage_mw: float = qty("leakage", "power", default=0.0, ge=0)
    """Static power of the buffer (mW), charged for the whole inference latency."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Characterisation node (default: the spec's)."""


@dataclass(**_FROZEN)
class Buffers:
    """On-chip buffers."""

    tile: Buffer = section("tile", Buffer)
    """Tile input buffer: written with the layer's input, read by the im2col fetch."""
    pe: Buffer = section("pe", Buffer)
    """PE (temporary) buffer holding partial sums."""


@dataclass(**_FROZEN)
class Interconnect:
    """Tile-to-tile network carrying spikes (and the analog network input)."""

    kind: str = choice("type", ("htree", "noc"))
    """``htree``: ``ceil(log2 tiles)`` hops per transfer; ``noc`` (2-D mesh): mean Manhattan
    distance ``~ 2 sqrt(tiles) / 3`` hops."""
    flit_bits: int = integer("flit_bits", ge=1)
    """Bits per transfer (link width)."""
    energy_pj: float = qty("energy", "energy", ge=0)
    """Energy per flit per hop (pJ)."""
    area_um2: float = qty("area", "area", ge=0)
    """Interconnect area per tile (um2)."""
    spike_format: str = choice("spike_format", ("bitmap", "aer"), default="bitmap")
    """``bitmap``: one bit per neuron per step; ``aer``: ``ceil(log2 neurons)`` bits per spike."""
    ref_node_nm: Optional[float] = qty("ref_node", "length", default=None, gt=0)
    """Characterisation node (default: the spec's)."""


@dataclass(**_FROZEN)
class Clock:
    """Digital clock."""

    freq_mhz: float = qty("frequency", "frequency", gt=0)
    """Clock frequency (MHz)."""

    @property
    def period_ns(self) -> float:
        return 1000.0 / self.freq_mhz


@dataclass(**_FROZEN)
class Hierarchy:
    """Crossbars -> PEs -> tiles."""

    pes_per_tile: int = integer("pes_per_tile", ge=1)
    """PEs per tile."""
    crossbars_per_pe: int = integer("crossbars_per_pe", ge=1)
    """Crossbars per PE."""
    share_tiles: bool = flag("share_tiles", default=True)
    """Layers share tiles (PEs packed contiguously, as SpikeSim's ``pe_tile_count`` does; the
    default): a layer is charged its crossbars, PEs and its share of tile-level parts.
    ``false``: every layer owns whole tiles (their tile-level parts charged in full)."""
    pipeline: str = choice("pipeline", ("layer", "none"), default="layer")
    """``layer``: layers work on successive time steps concurrently,
    ``latency = sum_l t_l + (T - 1) max_l t_l``; ``none``: ``T sum_l t_l``."""
    power_gating: bool = flag("power_gating", default=False)
    """``false`` (default, as NeuroSim's leakage x chip latency): every built component leaks
    for the whole inference; ``true``: a layer's components leak only while the layer works
    (the sum of its step latencies)."""


@dataclass(**_FROZEN)
class Precision:
    """Bit-widths assumed for floating-point layers, and optional forced bit-widths."""

    float_wbits: int = integer("float_wbits", default=32, ge=1, le=64)
    """Fixed-point weight bits a floating-point layer (``wbits`` ``None``) is mapped at, sliced
    over cells like any weight (default 32: an fp32 weight as 32-bit fixed point)."""
    float_ubits: int = integer("float_ubits", default=32, ge=1, le=64)
    """Membrane bits stored (and LIF datapath width) for LIF nodes whose ``ubits`` is ``None``
    (default 32)."""
    wbits: Optional[int] = integer("wbits", default=None, ge=1, le=BITS_MAX, nullable=True)
    """If set, every synaptic layer is mapped at this weight precision (overrides the graph)."""
    ubits: Optional[int] = integer("ubits", default=None, ge=1, le=64, nullable=True)
    """If set, every membrane is stored at this precision (overrides the graph)."""


@dataclass(**_FROZEN)
class SpikeSimCompat:
    """Constants only SpikeSim's released ELA accounting uses (``compat: spikesim``). Facts of
    one network's evaluation (post-pool output sizes, neuron memory for the first layers only)
    belong to that network's workload (:class:`codesign.hw.spikesim.GraphFacts`)."""

    pe_cycle_clocks: int = integer("pe_cycle_clocks", ge=1)
    """Clock cycles per PE cycle (26: ``PE_cycle = 26 * 1000 / clk_MHz``)."""
    pipeline_overlap: float = real("pipeline_overlap", gt=0, le=1)
    """Fraction of a layer done before the next starts (0.75)."""
    sub_ops_per_adc: int = integer("sub_ops_per_adc", ge=0)
    """Subtractor operations per ADC per PE cycle (16)."""
    mem_fetch_energy_pj: float = qty("mem_fetch_energy", "energy", ge=0)
    """Memory-fetch energy per PE cycle (pJ)."""
    fmap_bits: int = integer("fmap_bits", ge=0)
    """Bits of input-feature-map memory per input element (22)."""
    fmap_bit_area_um2: float = qty("fmap_bit_area", "area_per_bit", ge=0)
    """Area per feature-map memory bit (um2/bit)."""


COMPAT_MODES = ("none", "spikesim")


@dataclass(**_FROZEN)
class HardwareSpec:
    """A complete accelerator description (see module docstring for the file format)."""

    name: str = text("name")
    """Preset name."""
    technology: Technology = section("technology", Technology)
    device: Device = section("device", Device)
    crossbar: Crossbar = section("crossbar", Crossbar)
    adc: ADC = section("adc", ADC)
    mux: Mux = section("mux", Mux)
    input: InputDrive = section("input", InputDrive)
    digital: Digital = section("digital", Digital)
    membrane: Membrane = section("membrane", Membrane)
    neuron: Neuron = section("neuron", Neuron)
    buffers: Buffers = section("buffers", Buffers)
    interconnect: Interconnect = section("interconnect", Interconnect)
    clock: Clock = section("clock", Clock)
    hierarchy: Hierarchy = section("hierarchy", Hierarchy)
    precision: Precision = section("precision", Precision)
    spikesim: Optional[SpikeSimCompat] = section("spikesim", SpikeSimCompat, required=False)
    nonideal: Optional[NonIdeal] = section("nonideal", NonIdeal, required=False)
    """Crossbar non-idealities for the functional simulator (:mod:`codesign.hw.nonideal`)."""
    description: str = text("description", default="")
    compat: str = choice("compat", COMPAT_MODES, default="none")
    """``spikesim``: cost with SpikeSim's released ELA accounting (see :mod:`.spikesim`)."""
    file: Optional[str] = field(default=None, compare=False, metadata={"kind": "internal"})
    """Path the spec was loaded from."""
    sources: Mapping[str, str] = field(default_factory=dict, compare=False,
                                       metadata={"kind": "internal"})
    """Key path -> source of every loaded value."""

    # -- convenience

    @property
    def node_nm(self) -> float:
        return self.technology.node_nm

    @property
    def bits_per_cell(self) -> int:
        return self.device.bits_per_cell

    def source_of(self, path: str) -> Optional[str]:
        """Provenance of the value at ``path`` (e.g. ``'adc.energy'``)."""
        return self.sources.get(path)

    def to_dict(self) -> dict:
        """The spec as a plain dict in the file format (quantities as ``{value, unit, source}``,
        in canonical units); :func:`spec_from_dict` reads it back."""
        return _dump(self, "", self.sources)

    def with_overrides(self, values: Optional[Mapping[str, Any]] = None,
                       **aliases: Any) -> HardwareSpec:
        """A re-validated copy with some values replaced.

        ``values`` maps key paths (``"adc.bits"``, ``"crossbar.rows"``) to new values; keyword
        aliases cover the common knobs: ``adc_bits``, ``adc_type``, ``mux``, ``rows``, ``cols``,
        ``xbar`` (rows and cols), ``bits_per_cell``, ``levels``, ``signed``, ``gate_zero_reads``,
        ``first_layer``, ``input_bits``, ``clock_mhz``, ``node_nm``, ``pes_per_tile``,
        ``crossbars_per_pe``, ``share_tiles``, ``pipeline``, ``compat``, and ``wbits`` / ``ubits``
        (force every layer's weight / membrane precision, overriding the graph; ``None`` clears).
        A physical value may be a number in the canonical unit, ``"x unit"`` or a mapping. Values
        whose alias is ``None`` are left alone (except ``wbits`` / ``ubits``, see above).
        """
        updates: dict[str, Any] = dict(values or {})
        for name, v in aliases.items():
            if name not in _ALIASES:
                raise CodesignError(
                    f"{self.file or self.name}: unknown override {name!r}"
                    + _suggest(name, list(_ALIASES)) + f"; expected one of {sorted(_ALIASES)}"
                )
            if v is None and name not in ("wbits", "ubits"):
                continue
            if name == "bits_per_cell":
                updates["device.levels"] = 2 ** int(v)
            else:
                for path in _ALIASES[name]:
                    updates[path] = v
        raw = self.to_dict()
        for path, v in updates.items():
            _set_path(raw, path, v, self)
        spec = spec_from_dict(raw, file=f"{self.file or self.name} (with overrides)")
        merged = {**self.sources, **spec.sources, **{p: OVERRIDE_SOURCE for p in updates}}
        return dataclasses.replace(spec, file=self.file, sources=merged)


_ALIASES: dict[str, tuple[str, ...]] = {
    "adc_bits": ("adc.bits",), "adc_type": ("adc.type",), "mux": ("adc.mux",),
    "rows": ("crossbar.rows",), "cols": ("crossbar.cols",),
    "xbar": ("crossbar.rows", "crossbar.cols"), "bits_per_cell": ("device.levels",),
    "levels": ("device.levels",), "signed": ("crossbar.signed",),
    "gate_zero_reads": ("crossbar.gate_zero_reads",), "first_layer": ("input.first_layer",),
    "input_bits": ("input.bits",), "clock_mhz": ("clock.frequency",),
    "node_nm": ("technology.node",), "pes_per_tile": ("hierarchy.pes_per_tile",),
    "crossbars_per_pe": ("hierarchy.crossbars_per_pe",),
    "share_tiles": ("hierarchy.share_tiles",), "pipeline": ("hierarchy.pipeline",),
    "compat": ("compat",), "wbits": ("precision.wbits",), "ubits": ("precision.ubits",),
}

# ----------------------------------------------------------------------------- loading


def _check_nodes(obj: Any, prefix: str, ctx: _Ctx) -> None:
    """Every technology node (``technology.node`` and each ``ref_node``) must lie inside the
    scaling table of :mod:`codesign.hw.tech` (refused here, at load, with file and key)."""
    lo, hi = min(tech.NODES_NM), max(tech.NODES_NM)
    for f in _spec_fields(type(obj)):
        v = getattr(obj, f.name)
        path = _join(prefix, f.metadata["key"])
        if f.metadata["kind"] == "section" and v is not None:
            _check_nodes(v, path, ctx)
        elif f.metadata.get("dim") == "length" and v is not None and not lo <= v <= hi:
            ctx.fail(path, f"{v:g} nm is outside the technology scaling table; expected "
                           f"{lo:g}..{hi:g} nm")


def _check(spec: HardwareSpec, ctx: _Ctx) -> None:
    """Cross-field consistency."""
    _check_nodes(spec, "", ctx)
    d, xb, adc = spec.device, spec.crossbar, spec.adc
    if not d.g_off_us < d.g_on_us:
        ctx.fail("device.g_off", f"g_off = {d.g_off_us:g} uS must be below g_on = "
                                 f"{d.g_on_us:g} uS")
    if d.levels_per_cell & (d.levels_per_cell - 1):
        ctx.fail("device.levels", f"{d.levels_per_cell} is not a power of two (levels per cell "
                                  "= 2^bits_per_cell)")
    if xb.area_um2 is None and d.cell_area_um2 is None:
        ctx.fail("crossbar.area", "missing value (or give device.cell_area)")
    if adc.mux > xb.cols:
        ctx.fail("adc.mux", f"{adc.mux} columns per ADC exceeds crossbar.cols = {xb.cols}")
    if spec.input.first_layer == "dac":
        for key, v in (("dac_energy", spec.input.dac_energy_pj),
                       ("dac_area", spec.input.dac_area_um2)):
            if v is None:
                ctx.fail(f"input.{key}", "missing value (required with first_layer: dac)")
    if spec.compat == "spikesim" and spec.spikesim is None:
        ctx.fail("spikesim", "missing section (required with compat: spikesim)")


def spec_from_dict(raw: Mapping[str, Any], *, file: str = "<dict>") -> HardwareSpec:
    """Validate ``raw`` (the parsed YAML) and build a :class:`HardwareSpec`."""
    if not isinstance(raw, Mapping):
        raise CodesignError(f"{file}: expected a mapping at the top level, got "
                            f"{type(raw).__name__}")
    raw = dict(raw)
    sources = raw.pop("sources", None) or {}
    if not isinstance(sources, Mapping) or not all(isinstance(v, str) for v in sources.values()):
        raise CodesignError(f"{file}: sources: expected a mapping of key path -> text")
    ctx = _Ctx(file, {str(k): v for k, v in sources.items()})
    spec = _load_section(HardwareSpec, raw, "", ctx)
    _check(spec, ctx)
    spec = _materialise(spec, ctx)
    return dataclasses.replace(spec, file=file, sources=dict(ctx.found))


def _materialise(spec: HardwareSpec, ctx: _Ctx) -> HardwareSpec:
    """Pin implied characterisation points: ``ref_node`` = the spec's node, ``adc.ref_bits`` =
    ``adc.bits``, an adder's ``ref_width`` = its ``width``. Pinned, they stay put when an
    override later changes the node, the ADC bits or a width (so the constants scale)."""
    node = spec.technology.node_nm

    def fix(obj: Any, prefix: str) -> Any:
        changes: dict[str, Any] = {}
        for f in _spec_fields(type(obj)):
            v = getattr(obj, f.name)
            path = _join(prefix, f.metadata["key"])
            if f.metadata["kind"] == "section" and v is not None:
                changes[f.name] = fix(v, path)
            elif v is None and f.name == "ref_node_nm":
                changes[f.name] = node
                ctx.found.setdefault(path, "implied: technology.node")
            elif v is None and f.name == "ref_bits" and isinstance(obj, ADC):
                changes[f.name] = obj.bits
                ctx.found.setdefault(path, "implied: adc.bits")
            elif v is None and f.name == "ref_width" and isinstance(obj, Adder):
                changes[f.name] = obj.width
                ctx.found.setdefault(path, f"implied: {prefix}.width")
        return dataclasses.replace(obj, **changes) if changes else obj

    return fix(spec, "")


def load_spec(path: str | os.PathLike) -> HardwareSpec:
    """Load and validate a hardware spec YAML file."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        here = preset_dir()
        hint = ""
        if os.path.isdir(here):
            names = sorted(f for f in os.listdir(here) if f.endswith((".yaml", ".yml")))
            hint = f"; presets: {', '.join(names)}" if names else ""
        raise CodesignError(f"{p}: no such hardware spec file{hint}")
    return spec_from_dict(load_yaml(p, "hardware spec"), file=p)


def preset_dir() -> str:
    """Folder of the hardware presets: the repository's ``hw_configs/`` (source checkout or
    editable install), else the copy a wheel installs as data files under
    ``<prefix>/share/codesign/hw_configs`` (pyproject ``tool.setuptools.data-files``)."""
    repo = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "hw_configs"))
    if os.path.isdir(repo):
        return repo
    import site
    import sys

    for base in (sys.prefix, getattr(site, "USER_BASE", None) or ""):
        shared = os.path.join(base, "share", "codesign", "hw_configs")
        if base and os.path.isdir(shared):
            return shared
    return repo


def preset_path(name: str) -> str:
    """Path of the preset ``name`` (with or without ``.yaml``) in :func:`preset_dir`."""
    base = preset_dir()
    stem = name[:-5] if name.endswith(".yaml") else name
    return os.path.join(base, stem + ".yaml")


# ----------------------------------------------------------------------------- dumping


def _dump(obj: Any, prefix: str, sources: Mapping[str, str]) -> dict:
    out: dict[str, Any] = {}
    for f in _spec_fields(type(obj)):
        v = getattr(obj, f.name)
        key = f.metadata["key"]
        path = _join(prefix, key)
        if v is None:
            continue
        if f.metadata["kind"] == "section":
            out[key] = _dump(v, path, sources)
        elif f.metadata["kind"] == "qty":
            out[key] = {"value": v, "unit": units.canonical_unit(f.metadata["dim"]),
                        "source": sources.get(path, DEFAULT_SOURCE)}
        else:
            out[key] = v
    return out


def _set_path(raw: dict, path: str, value: Any, spec: HardwareSpec) -> None:
    parts = path.split(".")
    node = raw
    cls: Any = HardwareSpec
    for i, part in enumerate(parts):
        fs = {f.metadata["key"]: f for f in _spec_fields(cls)}
        if part not in fs:
            where = ".".join(parts[: i + 1])
            raise CodesignError(f"{spec.file or spec.name}: override {where}: unknown key"
                                + _suggest(part, list(fs)) + f"; expected one of {list(fs)}")
        f = fs[part]
        if i == len(parts) - 1:
            if f.metadata["kind"] == "qty" and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                value = {"value": value, "unit": units.canonical_unit(f.metadata["dim"]),
                         "source": OVERRIDE_SOURCE}
            elif f.metadata["kind"] == "qty" and isinstance(value, str):
                parsed = units.split_number_unit(value)
                if parsed is not None:
                    value = {"value": parsed[0], "unit": parsed[1], "source": OVERRIDE_SOURCE}
            node[part] = copy.deepcopy(value)
            return
        if f.metadata["kind"] != "section":
            raise CodesignError(f"{spec.file or spec.name}: override {path}: {part} is a value, "
                                "not a section")
        node = node.setdefault(part, {})
        cls = f.metadata["cls"]
