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
shift_add           one per conversion (slices, bit planes, differential pairs)
accumulator         one per output per read done (x2 with ``offset`` correction)
pe_buffer           partial sums read and written: ``2 * accumulator_ops * acc_width`` bits
tile_buffer         input written once (``elements * in_bits``) and fetched by im2col
                    (``positions * rows * in_bits``)
interconnect        output spikes (``bitmap``/``aer``, :class:`InterconnectModel`) and, for the
                    first layer, the analog input; ``bits / flit * hops * e_flit``
neuron, membrane    one LIF update and one ``ubits`` read + write per neuron
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

Area: a layer's tiles (own, or its share of packed tiles) hold ``pes_per_tile`` PEs of
``crossbars_per_pe`` crossbars; per crossbar ``ceil(C / mux)`` ADCs and muxes (and ``R`` row
DACs for an analog ``dac`` first layer); shift-adders and accumulators placed per ADC, PE or
tile (``digital.*.per``, ``units``; default one shift-adder per ADC, one accumulator per PE); per
PE a PE buffer; per tile a tile buffer, LIF units and the interconnect; plus the membrane storage
of the layer's neurons at ``ubits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from codesign.hw.activity import BlockActivity
from codesign.hw.components import Components
from codesign.hw.mapping import LayerMapping
from codesign.hw.spec import HardwareSpec

ENERGY_COMPONENTS = (
    "array", "adc", "mux", "dac", "shift_add", "accumulator", "pe_buffer", "tile_buffer",
    "interconnect", "neuron", "membrane", "mem_fetch",
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
    acc_ops = reads * outs * (2 if spec.crossbar.signed == "offset" else 1)
    fetch_bits = m.positions * m.groups * m.rows_per_group * in_bits
    T = arows.shape[0]
    zero = np.zeros(T)
    e: dict[str, np.ndarray] = {k: zero.copy() for k in ENERGY_COMPONENTS}
    e["array"] = reads * read_coeff + arows * row_coeff
    e["adc"] = conv * comps.adc.energy_pj
    e["mux"] = conv * comps.mux.energy_pj
    if analog and comps.dac is not None:
        e["dac"] = arows * m.col_blocks * comps.dac.energy_pj
    e["shift_add"] = conv * comps.shift_add.energy_pj
    e["accumulator"] = acc_ops * comps.accumulator.energy_pj
    e["pe_buffer"] = comps.pe_buffer.energy_for_bits(2.0 * acc_ops * comps.accumulator_width)
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
        ic_bits = ic_bits + m.groups * outs * m.positions * comps.accumulator_width
    e["interconnect"] = np.array([comps.interconnect.energy_for_bits(b, tiles_total)
                                  for b in ic_bits])
    counts = {
        "crossbar_reads": float(reads.sum() * m.col_blocks),
        "row_block_reads": float(reads.sum()),
        "active_rows": float(arows.sum()),
        "adc_conversions": float(conv.sum()),
        "accumulator_ops": float(acc_ops.sum()),
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
    tail = comps.shift_add.latency_ns + comps.accumulator.latency_ns
    xbar_ns = positions * t_pos + tail
    if lif is None:
        return xbar_ns
    units = spec.neuron.units_per_tile * max(tiles_layer, 1.0)
    lif_ns = math.ceil(lif.neurons / units) * comps.lif(lif.ubits).latency_ns
    return np.maximum(xbar_ns, lif_ns)


def tile_area_um2(comps: Components, spec: HardwareSpec, *, ubits: int, dac: bool,
                  ) -> dict[str, float]:
    """Area of one fully built tile by component (um2)."""
    h = spec.hierarchy
    xbars = h.pes_per_tile * h.crossbars_per_pe
    n_adc = comps.adc.adcs_per_crossbar(comps.crossbar.cols)
    a = {k: 0.0 for k in AREA_COMPONENTS}
    a["array"] = xbars * comps.crossbar.area_um2
    a["adc"] = xbars * n_adc * comps.adc.area_um2
    a["mux"] = xbars * n_adc * comps.mux.area_um2
    sites = {"adc": xbars * n_adc, "pe": h.pes_per_tile, "tile": 1}
    for key, adder, default in (("shift_add", spec.digital.shift_add, "adc"),
                                ("accumulator", spec.digital.accumulator, "pe")):
        unit = comps.shift_add if key == "shift_add" else comps.accumulator
        a[key] = sites[adder.per or default] * adder.units * unit.area_um2
    if dac and comps.dac is not None:
        a["dac"] = xbars * comps.crossbar.rows * comps.dac.area_um2
    a["pe_buffer"] = h.pes_per_tile * comps.pe_buffer.area_um2
    a["tile_buffer"] = comps.tile_buffer.area_um2
    a["interconnect"] = comps.interconnect.area_um2
    a["neuron"] = spec.neuron.units_per_tile * comps.lif(ubits).area_um2
    return a


def layer_area_um2(comps: Components, spec: HardwareSpec, tiles: float, lif: Optional[LIFInfo],
                   *, dac: bool) -> dict[str, float]:
    """Area of a layer occupying ``tiles`` tiles (fractional when tiles are shared), plus the
    membrane storage of its neurons (um2)."""
    ubits = lif.ubits if lif is not None else spec.precision.float_ubits
    a = {k: v * tiles for k, v in tile_area_um2(comps, spec, ubits=ubits, dac=dac).items()}
    if lif is not None:
        a["membrane"] = lif.neurons * comps.membrane(lif.ubits).area_um2
    return a


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
