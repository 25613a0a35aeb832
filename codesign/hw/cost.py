"""Per-layer, per-time-step energy, latency and area of a mapped layer (generic accounting).

Action counts per time step and sample, for a layer mapped as in :mod:`.mapping` with row-block
activity from :mod:`.activity` (``a`` = active rows of a row-block read, ``planes`` = input bit
planes, 1 for spikes):

==================  ==========================================================================
component           count (energy = count x per-action energy of :mod:`.components`)
==================  ==========================================================================
array               every row-block read done drives its ``col_blocks`` crossbars:
                    ``sum_reads [ e_col c_used + a sum_j e_row_j(c_j) ]``
                    (reads done = non-zero reads if ``gate_zero_reads`` else all reads)
adc, mux            one conversion per programmed column per read done: ``reads * c_used``
dac                 analog ``dac`` input only: one conversion per active row per crossbar
shift_add           one per conversion (slices, bit planes, differential pairs), at the width
                    of an exact row-block partial sum (:func:`.mapping.digital_widths`)
accumulator         partial sums exist only when a group has ``k > 1`` row blocks: ``k - 1``
                    adds per output per output position (``block reads - positions``); plus,
                    in ``offset`` mode, one correction per output per position (subtract
                    ``2^(w-1) x`` active-input count, physically required by the offset code)
pe_buffer           partial sums cross a PE only when a group's ``k x col_blocks`` crossbars
                    do not fit in one PE (else they meet in the PE's adder tree): then each add
                    reads and writes an ``acc_width`` word, in a store sized to one position's
                    outputs (``outs x acc_width`` bits, SRAM ``sqrt(capacity)`` law)
tile_buffer         input written once (``elements * in_bits``) and fetched by im2col
                    (``positions * rows * in_bits``)
interconnect        output spikes (``bitmap``/``aer``, :class:`InterconnectModel`) and, for the
                    first layer, the analog input; ``bits / flit * hops * e_flit``
neuron, membrane    one LIF update and one ``ubits`` read + write per neuron
leakage             static power of what the layer builds (its ADCs, PE buffers, share of the
                    tile buffer, :func:`layer_static_power_mw`) x the network latency, or x the
                    layer's own busy time with ``hierarchy.power_gating`` (``mW x ns = pJ``;
                    added by :mod:`.network` once the latency is known)
==================  ==========================================================================

Dense mode (no activity) sets ``a = rows`` for every read and every read done, and lets every
neuron fire (an upper bound: padding rows count as active). Pooling, flatten and residual adds
are not costed (max pooling of spikes is an OR; a residual add is folded into the consumer's
membrane update).

Latency per step: output positions (those with a non-zero read when gated) are processed one
after another, divided among ``duplication`` weight copies; each takes
``planes * (t_read + rounds * t_adc)`` with ``rounds = min(mux, ceil(c / (C / mux)))`` sequential
conversions of the fullest crossbar; the LIF units (``units_per_tile`` per tile) update the
layer's neurons in ``ceil(neurons / units) * t_lif``; the step takes the larger. Layers form a
pipeline over time steps (see :func:`pipeline_latency_ns`).

Area of what is built: the layer's own crossbars (``m.crossbars``), with per crossbar
``ceil(C / mux)`` ADCs and muxes (and ``R`` row DACs for an analog ``dac`` first layer); its PEs
(``m.pes``) each with a PE buffer; shift-adders and accumulators placed per ADC, PE or tile
(``digital.*.per``, ``units``; default one shift-adder per ADC, one accumulator per PE) at the
layer's derived widths; its share of tile-level parts (tile buffer, LIF units, interconnect):
``tiles`` (its own tiles, or ``tiles_total * pes / total_pes`` when tiles are shared); plus the
membrane storage of its neurons at ``ubits``. Empty crossbar slots are not built, so the
utilisation (used cells / cells of the crossbars built) is against what is charged.

Sources: every per-action energy, latency and area comes from ``comps`` (the component models
built from the spec at its node); ``spec`` gives only what the components do not hold: the
architecture switches (``crossbar.gate_zero_reads``, ``crossbar.signed``), the placement of the
digital units (``digital.*.per`` / ``units`` / fixed ``width``, via
:func:`.mapping.digital_widths`), ``neuron.units_per_tile`` and ``precision.float_ubits``. No
value is read from both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from codesign.hw.activity import BlockActivity
from codesign.hw.components import Components
from codesign.hw.mapping import LayerMapping, digital_widths
from codesign.hw.spec import HardwareSpec

ENERGY_COMPONENTS = (
    "array", "adc", "mux", "dac", "shift_add", "accumulator", "pe_buffer", "tile_buffer",
    "interconnect", "neuron", "membrane", "mem_fetch", "leakage",
)
AREA_COMPONENTS = (
    "array", "adc", "mux", "dac", "shift_add", "accumulator", "pe_buffer", "tile_buffer",
    "interconnect", "neuron", "membrane", "fmap_memory",
)


@dataclass(frozen=True)
class LIFInfo:
    """The LIF population a layer feeds."""

    name: Optional[str]
    neurons: int
    ubits: int
    spikes: Optional[np.ndarray] = None
    """Measured spikes per sample per step ``(T,)``; ``None``: dense (every neuron fires)."""


@dataclass
class LayerCost:
    """Energy per step by component (pJ), counts, latency per step (ns), area by component."""

    energy_pj: dict[str, np.ndarray]
    counts: dict[str, float]
    step_latency_ns: np.ndarray
    area_um2: dict[str, float]


def col_block_widths(m: LayerMapping) -> list[int]:
    """Programmed columns of each crossbar of a row block."""
    full = m.col_blocks - 1
    return [m.xbar_cols] * full + [m.cols_used - m.xbar_cols * full]


def layer_energy(
    m: LayerMapping,
    act: BlockActivity,
    comps: Components,
    spec: HardwareSpec,
    lif: Optional[LIFInfo],
    *,
    analog: bool,
    in_bits: int,
    in_elements: int,
    tiles_total: int,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Energy per step ``(T,)`` by component and total action counts (per sample).

    ``analog``: the input is the network's analog input (DAC energy, input traffic);
    ``in_bits``: bits per input element (1 for spikes, the planes of multi-level spikes, the
    input bits of an analog input)."""
    xb = comps.crossbar
    widths = col_block_widths(m)
    row_coeff = sum(xb.per_row_pj(c) for c in widths)
    read_coeff = sum(xb.per_read_pj(c) for c in widths)
    reads = act.reads_nonzero if spec.crossbar.gate_zero_reads else np.full_like(
        act.active_rows, act.reads_total, dtype=float)
    arows = act.active_rows
    conv = reads * m.cols_used
    outs = m.out_per_group
    sa_w, acc_w = digital_widths(m, in_bits, spec)
    shift_add, acc = comps.shift_add_at(sa_w), comps.accumulator_at(acc_w)
    gated = spec.crossbar.gate_zero_reads and not act.dense
    pos_done = (act.positions_active if gated else np.full(arows.shape, float(m.positions))) \
        * m.groups
    blocks = len(m.block_rows)
    add_ops = (np.maximum(reads / act.planes - pos_done, 0.0) * outs if blocks > 1
               else np.zeros(arows.shape))
    fix_ops = pos_done * outs if spec.crossbar.signed == "offset" else np.zeros(arows.shape)
    acc_ops = add_ops + fix_ops
    crosses_pe = blocks * m.col_blocks > m.crossbars_per_pe
    psum_bits = 2.0 * add_ops * acc_w if crosses_pe else np.zeros(arows.shape)
    e_psum_bit = comps.pe_buffer.pj_per_bit_holding(outs * acc_w)
    fetch_bits = m.positions * m.groups * m.rows_per_group * in_bits
    T = arows.shape[0]
    zero = np.zeros(T)
    e: dict[str, np.ndarray] = {k: zero.copy() for k in ENERGY_COMPONENTS}
    e["array"] = reads * read_coeff + arows * row_coeff
    e["adc"] = conv * comps.adc.energy_pj
    e["mux"] = conv * comps.mux.energy_pj
    if analog and comps.dac is not None:
        e["dac"] = arows * m.col_blocks * comps.dac.energy_pj
    e["shift_add"] = conv * shift_add.energy_pj
    e["accumulator"] = acc_ops * acc.energy_pj
    e["pe_buffer"] = psum_bits * e_psum_bit
    e["tile_buffer"] = np.full(T, comps.tile_buffer.energy_for_bits(
        in_elements * in_bits + fetch_bits))
    ic_bits = np.full(T, float(in_elements * in_bits) if analog else 0.0)
    spikes = np.zeros(T)
    if lif is not None:
        spikes = np.full(T, float(lif.neurons)) if lif.spikes is None else lif.spikes
        ic_bits = ic_bits + np.array([comps.interconnect.spike_bits(s, lif.neurons)
                                      for s in spikes])
        e["neuron"] = np.full(T, lif.neurons * comps.lif(lif.ubits).energy_pj)
        e["membrane"] = np.full(T, lif.neurons * comps.membrane(lif.ubits).energy_pj)
    else:  # no LIF: the layer's sums leave as accumulator words (e.g. a readout layer)
        ic_bits = ic_bits + m.groups * outs * m.positions * acc_w
    e["interconnect"] = np.array([comps.interconnect.energy_for_bits(b, tiles_total)
                                  for b in ic_bits])
    counts = {
        "crossbar_reads": float(reads.sum() * m.col_blocks),
        "row_block_reads": float(reads.sum()),
        "active_rows": float(arows.sum()),
        "adc_conversions": float(conv.sum()),
        "accumulator_ops": float(acc_ops.sum()),
        "partial_sum_bits": float(psum_bits.sum()),
        "shift_add_width": float(sa_w),
        "accumulator_width": float(acc_w),
        "neuron_updates": float(T * lif.neurons) if lif is not None else 0.0,
        "spikes_out": float(spikes.sum()),
        "sops": float(act.sop_rows.sum() * outs),
    }
    return e, counts


def layer_step_latency_ns(
    m: LayerMapping, act: BlockActivity, comps: Components, spec: HardwareSpec,
    lif: Optional[LIFInfo], tiles_layer: float,
) -> np.ndarray:
    """Latency of each time step of the layer (ns), see module docstring."""
    rounds = comps.adc.rounds(m.max_cols_per_crossbar, m.xbar_cols)
    t_pos = act.planes * (comps.crossbar.latency_ns + rounds * comps.adc.latency_ns)
    if act.dense or not spec.crossbar.gate_zero_reads:
        positions = np.full(act.active_rows.shape, math.ceil(m.positions / m.duplication))
    else:
        positions = act.positions_active / m.duplication
    tail = comps.shift_add.latency_ns + (comps.accumulator.latency_ns
                                         if len(m.block_rows) > 1 else 0.0)
    xbar_ns = positions * t_pos + tail
    if lif is None:
        return xbar_ns
    return np.maximum(xbar_ns, lif_step_latency_ns(comps, spec, lif, tiles_layer))


def lif_step_latency_ns(comps: Components, spec: HardwareSpec, lif: Optional[LIFInfo],
                        tiles_layer: float) -> float:
    """One step's LIF updates: ``ceil(neurons / units) * t_lif`` with ``units_per_tile`` units
    per tile of the layer (ns); 0 without a LIF."""
    if lif is None:
        return 0.0
    units = spec.neuron.units_per_tile * max(tiles_layer, 1.0)
    return math.ceil(lif.neurons / units) * comps.lif(lif.ubits).latency_ns


def layer_area_um2(comps: Components, spec: HardwareSpec, m: LayerMapping, tiles: float,
                   lif: Optional[LIFInfo], *, dac: bool, planes: int = 1) -> dict[str, float]:
    """Area of what the layer builds (see module docstring), by component (um2); ``tiles`` is
    the layer's tile count (fractional: its share of shared tiles)."""
    sa_w, acc_w = digital_widths(m, planes, spec)
    ubits = lif.ubits if lif is not None else spec.precision.float_ubits
    xbars = m.crossbars
    n_adc = xbars * comps.adc.adcs_per_crossbar(comps.crossbar.cols)
    a = {k: 0.0 for k in AREA_COMPONENTS}
    a["array"] = xbars * comps.crossbar.area_um2
    a["adc"] = n_adc * comps.adc.area_um2
    a["mux"] = n_adc * comps.mux.area_um2
    sites = {"adc": float(n_adc), "pe": float(m.pes), "tile": float(tiles)}
    for key, adder, default, unit in (
            ("shift_add", spec.digital.shift_add, "adc", comps.shift_add_at(sa_w)),
            ("accumulator", spec.digital.accumulator, "pe", comps.accumulator_at(acc_w))):
        a[key] = sites[adder.per or default] * adder.units * unit.area_um2
    if dac and comps.dac is not None:
        a["dac"] = xbars * comps.crossbar.rows * comps.dac.area_um2
    a["pe_buffer"] = m.pes * comps.pe_buffer.area_um2
    a["tile_buffer"] = tiles * comps.tile_buffer.area_um2
    a["interconnect"] = tiles * comps.interconnect.area_um2
    a["neuron"] = tiles * spec.neuron.units_per_tile * comps.lif(ubits).area_um2
    if lif is not None:
        a["membrane"] = lif.neurons * comps.membrane(lif.ubits).area_um2
    return a


def capacity_notes(name: str, m: LayerMapping, comps: Components, planes: int,
                   spec: HardwareSpec, *, in_bits: float, tiles: float) -> list[str]:
    """Buffer capacity checks (KB = 1024 B = 8192 bit): the layer's share of tile buffers must
    hold one step's input (``in_bits``), and a PE buffer one position's partial sums when they
    cross a PE (``outs x acc_width`` bits). A note per overflow (the spill traffic is not
    costed)."""
    notes = []
    tb = comps.tile_buffer
    have = max(tiles, 1.0) * tb.size_bits
    if in_bits > have:
        notes.append(f"{name}: one step's input is {in_bits / 8192:.3g} KB but its tile buffers "
                     f"hold {have / 8192:.3g} KB ({tb.size_kb:g} KB each): over capacity, spill "
                     "traffic not costed")
    _, acc_w = digital_widths(m, planes, spec)
    if len(m.block_rows) > 1 and len(m.block_rows) * m.col_blocks > m.crossbars_per_pe:
        need = m.out_per_group * acc_w
        if need > comps.pe_buffer.size_bits:
            notes.append(f"{name}: partial sums of one position need {need / 8192:.3g} KB, the "
                         f"PE buffer holds {comps.pe_buffer.size_kb:g} KB: over capacity")
    return notes


STATIC_COMPONENTS = ("adc", "pe_buffer", "tile_buffer")
"""Components with a static (leakage) power in the spec."""


def layer_static_power_mw(comps: Components, m: LayerMapping, tiles: float
                          ) -> dict[str, float]:
    """Static (leakage) power of what the layer builds, by component (mW): its ADCs
    (``crossbars x ceil(C / mux)``), its PE buffers and its share of the tile buffers. Times the
    inference latency (ns) it is the leakage energy (pJ)."""
    n_adc = m.crossbars * comps.adc.adcs_per_crossbar(comps.crossbar.cols)
    return {"adc": n_adc * comps.adc.leakage_mw,
            "pe_buffer": m.pes * comps.pe_buffer.leakage_mw,
            "tile_buffer": tiles * comps.tile_buffer.leakage_mw}


def pipeline_latency_ns(steps_ns: list[np.ndarray], mode: str) -> float:
    """Network latency from per-layer step latencies ``d[l][t]`` (layers in order).

    ``layer``: a pipeline over time steps, ``f[l][t] = max(f[l-1][t], f[l][t-1]) + d[l][t]``
    (reduces to ``sum_l d_l + (T - 1) max_l d_l`` for constant ``d``); ``none``:
    ``sum_l sum_t d[l][t]``.
    """
    if not steps_ns:
        return 0.0
    if mode == "none":
        return float(sum(float(np.sum(d)) for d in steps_ns))
    T = len(steps_ns[0])
    prev = np.zeros(T)
    for d in steps_ns:
        cur = np.zeros(T)
        done = 0.0
        for t in range(T):
            done = max(prev[t], done) + float(d[t])
            cur[t] = done
        prev = cur
    return float(prev[-1])
