"""Network-level costing: ``map_network`` maps every layer of a graph on a spec and costs it.

The files (CSV, JSON, figures) are written by :func:`codesign.report.write_report`.

Op-counting convention (stored in ``summary['op_convention']``)
    ``ops = 2 * MACs * T`` per inference, dense: every synapse of every costed layer counts as a
    multiply and an add at every time step, whatever the spikes. It is independent of activity,
    so TOPS/W and TOPS/mm2 compare hardware and bit-widths at iso-workload. ``sops`` (synaptic
    operations: active input x fan-out, one accumulate each; analog-input layers count every MAC)
    is stored beside it with ``tops_per_w_sop = sops / energy``.

Metrics (per inference = one sample, T steps)
    ``tops_per_w = ops / energy_pJ`` (ops/pJ = TOPS/W), ``tops = ops / latency`` (throughput of
    one inference at a time), ``tops_per_mm2 = tops / area_mm2``, ``edp_pj_ns = E * D`` and
    ``edap_pj_ns_mm2 = E * D * A`` (pJ * ns * mm2; ``edap_j_s_mm2`` is the same in J * s * mm2,
    1e-21 of it).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import networkx as nx
import numpy as np
import pandas as pd

from codesign.errors import CodesignError
from codesign.graph import signals
from codesign.hw import spikesim as ss
from codesign.hw import topology as topo
from codesign.hw.activity import (
    BlockActivity,
    dense_activity,
    level_planes,
    row_block_activity,
    spike_counts,
)
from codesign.hw.components import Components, build_components
from codesign.hw.cost import (
    AREA_COMPONENTS,
    ENERGY_COMPONENTS,
    LIFInfo,
    capacity_notes,
    layer_area_um2,
    layer_energy,
    layer_static_power_mw,
    layer_step_latency_ns,
    lif_step_latency_ns,
    pipeline_latency_ns,
)
from codesign.hw.mapping import (
    MAPPING_MODES,
    LayerMapping,
    lossless_adc_bits,
    map_layer,
    resolve_ubits,
)
from codesign.hw.spec import COMPAT_MODES, HardwareSpec, load_spec

OP_CONVENTION = ("ops = 2 * MACs * T per inference (dense, every synapse every step, costed "
                 "layers only); tops_per_w = ops / energy; sops = active inputs x fan-out "
                 "(analog-input layers: every MAC), tops_per_w_sop = sops / energy")
EDAP_UNIT = "pJ * ns * mm2"


@dataclass
class MapResult:
    """Result of :func:`map_network`."""

    layers: pd.DataFrame
    """One row per costed layer: mapping counts, utilisation, activity statistics, energy by
    component (``energy_<c>_pj``), ``energy_pj``, ``latency_ns``, area by component
    (``area_<c>_um2``) and ``area_um2``. Energies are per inference (sum over T steps)."""
    summary: dict[str, Any]
    """Totals and metrics (see module docstring), spec name and file, mode, notes."""
    per_step: pd.DataFrame
    """One row per (layer, time step): ``energy_pj`` and its main parts, activity."""
    mappings: dict[str, LayerMapping] = field(default_factory=dict)
    spec: Optional[HardwareSpec] = None

    def table(self) -> pd.DataFrame:
        """A short per-layer table for printing."""
        cols = ["layer", "op", "crossbars", "utilisation", "energy_pj", "latency_ns", "area_um2"]
        return self.layers[cols]


# ----------------------------------------------------------------------------- orchestration


def _check_activity(activity: Mapping[str, Any], g: nx.DiGraph, synaptic: list[str],
                    lifs: list[str]) -> int:
    """Validate keys and return T of the activity tensors."""
    known = set(synaptic) | set(lifs)
    for k in activity:
        if k not in known:
            close = difflib.get_close_matches(str(k), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CodesignError(f"activity: {k!r} is not a synaptic or LIF node of graph "
                                f"{g.graph.get('name', '?')!r}{hint}")
    missing = [n for n in synaptic if n not in activity]
    if missing:
        raise CodesignError(f"activity: missing the input tensor (T, B, *in_shape) of synaptic "
                            f"layer(s) {missing}")
    ts = {int(np.shape(v)[0]) for v in activity.values()}
    if len(ts) != 1:
        raise CodesignError(f"activity: tensors disagree on T (first axis): {sorted(ts)}")
    T = ts.pop()
    gT = g.graph.get("T")
    if gT is not None and int(gT) != T:
        raise CodesignError(f"activity: T = {T} but graph {g.graph.get('name', '?')!r} has "
                            f"T = {gT}")
    return T


def _dup_of(duplication: Union[int, Mapping[str, int]], name: str) -> int:
    if isinstance(duplication, Mapping):
        return int(duplication.get(name, 1))
    return int(duplication)


def map_network(
    graph: nx.DiGraph,
    spec: Union[HardwareSpec, str, os.PathLike],
    *,
    activity: Optional[Mapping[str, np.ndarray]] = None,
    mapping: str = "im2col",
    duplication: Union[int, Mapping[str, int]] = 1,
    wbits: Optional[int] = None,
    ubits: Optional[int] = None,
    compat: Optional[str] = None,
    static_input_once: bool = True,
) -> MapResult:
    """Map ``graph`` onto ``spec`` and cost it.

    ``activity``: ``None`` for dense mode, or node name -> tensor: each synaptic layer's input
    ``(T, B, *in_shape)`` (what its input edge's ``signal`` says: spikes, multi-level or analog)
    and each LIF node's output spikes ``(T, B, *shape)`` (optional; used for output traffic and
    rates). ``mapping``: ``im2col`` or ``kernel_position`` (``compat: spikesim`` forces the
    latter). ``duplication``: weight copies per layer (an int for all, or a name -> int
    mapping). ``wbits`` / ``ubits``: force every layer's weight / membrane precision (else the
    graph's, or ``spec.precision``). ``compat``: ``none`` | ``spikesim`` (default: the spec's).
    ``static_input_once``: a layer whose input is static (the image under direct encoding,
    identical at every step) is read on the crossbars once per inference, not T times (see
    :func:`_static_once`); ``False`` recomputes it every step.

    The signal kind of every edge is the graph's (set by its builder); edges of a graph built by
    hand without one get the builder's rules (:func:`codesign.graph.signals.annotate`, on a
    copy).
    """
    if not isinstance(spec, HardwareSpec):
        spec = load_spec(spec)
    compat = spec.compat if compat is None else compat
    if compat not in COMPAT_MODES:
        raise CodesignError(f"compat: expected one of {COMPAT_MODES}, got {compat!r}")
    if mapping not in MAPPING_MODES:
        raise CodesignError(f"mapping: expected one of {MAPPING_MODES}, got {mapping!r}")
    g = signals.annotate(graph.copy()) if signals.missing(graph) else graph
    order = topo.topo_order(g)
    synaptic = [n for n in order if topo.is_synaptic(g, n)]
    if not synaptic:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r} has no conv or linear layer")
    plan = topo.neuron_plan(g, order)
    if activity is not None:
        T = _check_activity(activity, g, synaptic, list(plan.producers))
    else:
        T = int(g.graph.get("T") or 1)
    ctx = _Ctx(g, spec, build_components(spec), activity, T, ubits, [])
    if compat == "spikesim":
        res = _spikesim(ctx, synaptic, plan, wbits)
    else:
        res = _generic(ctx, synaptic, plan, mapping, duplication, wbits, static_input_once)
    rows, steps, mappings, latency_ns, tiles_total = res
    layers = pd.DataFrame(rows)
    per_step = pd.DataFrame(steps)
    summary = _summary(layers, spec, compat=compat, mode="dense" if activity is None else
                       "activity", mapping="kernel_position" if compat == "spikesim" else
                       mapping, T=T, latency_ns=latency_ns, tiles=tiles_total, g=g,
                       activity=activity, notes=ctx.notes)
    summary["static_input_once"] = bool(static_input_once) and compat != "spikesim"
    return MapResult(layers=layers, summary=summary, per_step=per_step, mappings=mappings,
                     spec=spec)


@dataclass
class _Ctx:
    """What every layer's costing reads: the graph, spec, components, activity, T, the
    membrane-bits override and the notes being collected."""

    g: nx.DiGraph
    spec: HardwareSpec
    comps: Components
    activity: Optional[Mapping[str, np.ndarray]]
    T: int
    ubits: Optional[int]
    notes: list[str]

    def lif_info(self, lifs: list[str], ubits: Optional[int] = None) -> Optional[LIFInfo]:
        """One :class:`LIFInfo` for the populations ``lifs`` charged to one layer (their
        neurons and measured spikes summed); ``None`` for none. ``ubits`` overrides."""
        if not lifs:
            return None
        ub = self.ubits if ubits is None else ubits
        lays = [topo.layer(self.g, n) for n in lifs]
        bits = {resolve_ubits(lay, self.spec, ub) for lay in lays}
        if len(bits) > 1:
            self.notes.append(f"LIF populations {lifs} share a producer but store {sorted(bits)}"
                              f" membrane bits: costed at {max(bits)}")
        spikes = None
        if self.activity is not None and all(n in self.activity for n in lifs):
            spikes = sum(spike_counts(self.activity[n], tuple(lay.shape), n)
                         for n, lay in zip(lifs, lays, strict=True))
        return LIFInfo("+".join(lifs), sum(lay.neurons for lay in lays), max(bits), spikes)

    def shared_info(self, lifs: list[str]) -> LIFInfo:
        """A layer adding its currents into populations charged to another producer: no
        neurons, updates, storage or output spikes of its own (and no sums to ship)."""
        info = self.lif_info(lifs)
        assert info is not None
        return LIFInfo(info.name, 0, info.ubits, np.zeros(self.T))


def _stats(act: BlockActivity, info: Optional[LIFInfo]) -> dict[str, float]:
    reads = float(act.reads_nonzero.sum())
    possible = act.reads_total * len(act.active_rows)
    out_rate = float("nan")
    if info is not None and info.spikes is not None and info.neurons:
        out_rate = float(info.spikes.mean() / info.neurons)
    return {
        "input_spike_rate": float(act.input_rate.mean()),
        "output_spike_rate": out_rate,
        "active_row_fraction": float(act.active_rows.sum() / (act.rows_total * len(
            act.active_rows))),
        "read_skip_fraction": 1.0 - reads / possible if possible else 0.0,
    }


def _in_bits(spec: HardwareSpec, sig: signals.Signal) -> int:
    """Bits per input element: analog -> the spec's input bits, multi-level spikes -> their
    bit planes, spikes -> 1."""
    if sig.kind == "analog":
        return spec.input.bits
    return level_planes(sig.levels) if sig.kind == "multilevel" else 1


def _activity_of(ctx: _Ctx, name: str, lay, m: LayerMapping, sig: signals.Signal
                 ) -> BlockActivity:
    """Dense or measured row activity of a layer whose input edge carries ``sig``."""
    spec, analog = ctx.spec, sig.kind == "analog"
    levels = sig.levels if sig.kind == "multilevel" else 1
    if ctx.activity is None:
        if analog:
            planes = spec.input.bits if spec.input.first_layer == "bit_serial" else 1
        else:
            planes = level_planes(levels)
        return dense_activity(m, ctx.T, planes)
    x = np.asarray(ctx.activity[name])
    if sig.kind == "spikes" and x.dtype != bool and not bool(((x == 0) | (x == 1)).all()):
        raise CodesignError(f"activity[{name!r}]: the graph says this layer reads binary spikes "
                            "(its input edge's signal), but the recorded input has other values")
    return row_block_activity(x, lay, m, analog=analog, scheme=spec.input.first_layer,
                              bits=spec.input.bits, levels=levels, name=name)


ONCE_COMPONENTS = ("array", "adc", "mux", "dac", "shift_add", "accumulator", "pe_buffer",
                   "tile_buffer")
"""Energy components of the crossbar read of an input: done once for a static input."""


def _is_static(ctx: _Ctx, name: str, sig: signals.Signal) -> bool:
    """A static input (graph) whose recorded tensor, if any, is identical at every step."""
    if not sig.static:
        return False
    if ctx.activity is None:
        return True
    x = np.asarray(ctx.activity[name])
    if all(np.array_equal(x[t], x[0]) for t in range(1, x.shape[0])):
        return True
    ctx.notes.append(f"{name}: the graph says its input is static, but the recorded input "
                     "changes between steps: recomputed at every step")
    return False


def _static_once(ctx: _Ctx, m: LayerMapping, e: dict[str, np.ndarray],
                 counts: dict[str, float], d: np.ndarray, e_spikes_ic: np.ndarray,
                 lif_ns: float) -> None:
    """Cost a layer with a static input as computed once (in place).

    Under direct encoding the image is the same at every step, so its crossbar reads, ADC
    conversions, shift-adds, accumulations and buffer traffic (``ONCE_COMPONENTS``) and the
    input's interconnect traffic happen at step 0 only. The layer's output currents are held
    and re-read from the PE buffer at each later step (``outputs * acc_width`` bits), and the
    LIF still updates, stores and fires every step (``neuron``, ``membrane`` and spike traffic
    ``e_spikes_ic`` unchanged). Later steps take the LIF update time ``lif_ns`` only.
    """
    for k in ONCE_COMPONENTS:
        e[k][1:] = 0.0
    held_bits = m.groups * m.out_per_group * m.positions * counts["accumulator_width"]
    e["pe_buffer"][1:] = ctx.comps.pe_buffer.energy_for_bits(held_bits)
    e["interconnect"][1:] = e_spikes_ic[1:]
    for k in ("crossbar_reads", "row_block_reads", "active_rows", "adc_conversions",
              "accumulator_ops"):
        if k in counts:
            counts[k] /= ctx.T
    d[1:] = lif_ns


def _generic(ctx: _Ctx, synaptic, plan: topo.NeuronPlan, mapping, duplication, wbits,
             static_once: bool):
    g, spec, comps, T = ctx.g, ctx.spec, ctx.comps, ctx.T
    maps = {n: map_layer(topo.layer(g, n), spec, name=n, mode=mapping,
                         duplication=_dup_of(duplication, n), wbits=wbits) for n in synaptic}
    share = spec.hierarchy.share_tiles
    total_pes = sum(m.pes for m in maps.values())
    tiles_total = (math.ceil(total_pes / spec.hierarchy.pes_per_tile) if share
                   else sum(m.tiles for m in maps.values()))
    rows, steps, lat_steps, static_mw = [], [], [], []
    static_layers = []
    for n in synaptic:
        lay, m = topo.layer(g, n), maps[n]
        sig = signals.input_signal(g, n)
        analog = sig.kind == "analog"
        act = _activity_of(ctx, n, lay, m, sig)
        if plan.primary.get(n):
            info = ctx.lif_info(plan.primary[n])
        elif plan.shared.get(n):
            info = ctx.shared_info(plan.shared[n])
        else:
            info = None
        in_elems = int(np.prod(lay.in_shape))
        in_bits = _in_bits(spec, sig)
        e, counts = layer_energy(m, act, comps, spec, info, analog=analog, in_bits=in_bits,
                                 in_elements=in_elems, tiles_total=tiles_total)
        if analog:
            counts["sops"] = float(lay.macs_per_step * T)
        tiles_l = tiles_total * m.pes / total_pes if share else float(m.tiles)
        d = layer_step_latency_ns(m, act, comps, spec, info, tiles_l)
        once = static_once and T > 1 and _is_static(ctx, n, sig)
        if once:
            e_spk, _ = layer_energy(m, act, comps, spec, info, analog=False, in_bits=in_bits,
                                    in_elements=in_elems, tiles_total=tiles_total)
            _static_once(ctx, m, e, counts, d, e_spk["interconnect"],
                         lif_step_latency_ns(comps, spec, info, tiles_l))
            static_layers.append(n)
        lat_steps.append(d)
        area = layer_area_um2(comps, spec, m, tiles_l, info,
                              dac=analog and spec.input.first_layer == "dac", planes=in_bits)
        static_mw.append(layer_static_power_mw(comps, m, tiles_l))
        ctx.notes.extend(capacity_notes(n, m, comps, in_bits, spec,
                                        in_bits=in_elems * in_bits, tiles=tiles_l))
        row = _row(n, lay, m, spec, info, analog, T, e, counts, float(d.sum()), area, tiles_l,
                   _stats(act, info), planes=act.planes)
        row.update(input_signal=sig.kind, input_levels=sig.levels, static_once=once,
                   lif_shared=bool(plan.shared.get(n)) and not plan.primary.get(n))
        rows.append(row)
        steps.extend(_step_rows(n, e, d, act, info))
    if static_layers:
        ctx.notes.append(f"static input computed once: {static_layers} read(s) an input that is "
                         f"identical at every step (direct encoding), so the crossbar reads, "
                         f"ADC conversions and buffer traffic happen once per inference, not "
                         f"T = {T} times; the held currents are re-read each step "
                         "(static_input_once=False recomputes)")
    for lif, prods in plan.producers.items():  # LIF populations fed by no synaptic layer
        if prods:
            continue
        info = ctx.lif_info([lif])
        e = {k: np.zeros(T) for k in ENERGY_COMPONENTS}
        e["neuron"] = np.full(T, info.neurons * comps.lif(info.ubits).energy_pj)
        e["membrane"] = np.full(T, info.neurons * comps.membrane(info.ubits).energy_pj)
        area = {k: 0.0 for k in AREA_COMPONENTS}
        area["membrane"] = info.neurons * comps.membrane(info.ubits).area_um2
        rows.append(_lif_row(lif, info, e, area, T))
        ctx.notes.append(f"LIF {lif!r} has no synaptic producer: costed for updates and membrane "
                         "storage only")
    shared = {n: v for n, v in plan.shared.items() if not plan.primary.get(n)}
    if shared:
        ctx.notes.append("shared neurons: " + "; ".join(
            f"{n} adds into {'+'.join(v)} (charged to {plan.producers[v[0]][0]})"
            for n, v in shared.items()))
    latency = pipeline_latency_ns(lat_steps, spec.hierarchy.pipeline)
    for r, p_mw in zip(rows, static_mw, strict=False):  # leakage: static power x latency
        t_on = r["latency_ns"] if spec.hierarchy.power_gating else latency
        for c, p in p_mw.items():
            r[f"static_power_{c}_mw"] = p
            r[f"energy_leakage_{c}_pj"] = p * t_on
        r["static_power_mw"] = sum(p_mw.values())
        r["energy_leakage_pj"] = r["static_power_mw"] * t_on
        r["energy_pj"] += r["energy_leakage_pj"]
    return rows, steps, maps, latency, tiles_total


def _spikesim(ctx: _Ctx, synaptic, plan: topo.NeuronPlan, wbits):
    g, spec, T = ctx.g, ctx.spec, ctx.T
    ela = ss.ela_model(spec, ctx.comps)
    facts = ss.graph_facts(g)
    convs = [n for n in synaptic if topo.layer(g, n).op == "conv"]
    if not convs:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r} on {spec.file or spec.name}: "
                            "compat: spikesim costs conv layers only (SpikeSim's ELA has no "
                            "linear layers) and this graph has none; use a preset without "
                            "compat: spikesim")
    skipped = [n for n in synaptic if n not in convs]
    if skipped:
        ctx.notes.append(f"compat spikesim: linear layers {skipped} not costed (SpikeSim's ELA "
                         "has conv layers only)")
    if ctx.activity is not None:
        ctx.notes.append("compat spikesim is dense: measured activity is reported, not costed")
    ctx.notes.extend(ss.facts_notes(facts))
    ub_override = ctx.ubits if ctx.ubits is not None else facts.membrane_bits
    maps, layers = {}, []
    infos = {}
    for n in convs:
        lay = topo.layer(g, n)
        k2 = lay.kernel_size[0] * lay.kernel_size[1]
        m = map_layer(lay, spec, name=n, mode="kernel_position", wbits=wbits,
                      crossbars_per_pe=k2)
        maps[n] = m
        out_hw = (topo.post_pool_hw(g, n) if facts.out_dim == "post_pool"
                  else tuple(lay.out_shape[1:]))
        info = ctx.lif_info(plan.primary.get(n) or plan.shared.get(n) or [], ub_override)
        infos[n] = info
        ub = info.ubits if info is not None else resolve_ubits(None, spec, ub_override)
        layers.append(ss.SpikeSimLayer(n, m, lay.in_channels, lay.out_channels,
                                       tuple(lay.in_shape[1:]), out_hw, ub))
    ctx.notes.extend(ss.check_layers(layers))
    areas, n_tiles = ss.network_area_um2(layers, ela, facts.neuron_memory_layers)
    latency, busy = ss.network_latency_ns(layers, ela, T)
    total_pes = max(sum(ss.pes(x) for x in layers), 1)
    rows, steps = [], []
    for lay_ss in layers:
        n, m = lay_ss.name, lay_ss.mapping
        lay = topo.layer(g, n)
        e, counts = ss.layer_energy(lay_ss, ela, T)
        counts["sops"] = float(lay.macs_per_step * T)
        info = infos[n]
        sig = signals.input_signal(g, n)
        act = _activity_of(ctx, n, lay, m, sig)
        tiles_l = n_tiles * ss.pes(lay_ss) / total_pes
        d = np.full(T, busy[n] / T)
        row = _row(n, lay, m, spec, info, sig.kind == "analog", T, e, counts, busy[n],
                   areas[n], tiles_l, _stats(act, info), pes=ss.pes(lay_ss), planes=act.planes)
        row.update(input_signal=sig.kind, input_levels=sig.levels, static_once=False,
                   lif_shared=False)
        rows.append(row)
        steps.extend(_step_rows(n, e, d, act, info))
    return rows, steps, maps, latency, n_tiles


# ----------------------------------------------------------------------------- rows


def _row(n, lay, m: LayerMapping, spec, info, analog, T, e, counts, latency_ns, area, tiles,
         stats, pes: Optional[int] = None, planes: int = 1) -> dict[str, Any]:
    r: dict[str, Any] = {
        "layer": n, "op": m.op, "mapping": m.mode, "wbits": m.wbits,
        "ubits": info.ubits if info is not None else None, "lif": info.name if info else None,
        "slices": m.slices, "cols_per_weight": m.cols_per_weight,
        "rows": m.groups * m.rows_per_group, "cols": m.groups * m.cols_used,
        "row_blocks": m.row_blocks, "col_blocks": m.col_blocks, "crossbars": m.crossbars,
        "pes": m.pes if pes is None else pes, "tiles": tiles, "duplication": m.duplication,
        "utilisation": m.utilisation, "analog_input": bool(analog),
        "input_planes": int(planes),
        "mapped_as": m.describe(),
        "adc_bits": spec.adc.bits,
        "adc_bits_lossless": lossless_adc_bits(
            min(max(m.block_rows), m.xbar_rows), spec.bits_per_cell,
            spec.input.bits if analog and spec.input.first_layer == "dac" else 1),
        "shift_add_width": counts.get("shift_add_width", float("nan")),
        "accumulator_width": counts.get("accumulator_width", float("nan")),
        "partial_sum_bits": counts.get("partial_sum_bits", 0.0),
        "macs_per_step": int(lay.macs_per_step), "ops": 2.0 * lay.macs_per_step * T,
        "sops": counts.get("sops", float("nan")),
        **stats,
        "crossbar_reads": counts.get("crossbar_reads", 0.0),
        "adc_conversions": counts.get("adc_conversions", 0.0),
        "neuron_updates": counts.get("neuron_updates", 0.0),
    }
    for k in ENERGY_COMPONENTS:
        r[f"energy_{k}_pj"] = float(np.sum(e[k]))
    r["energy_pj"] = float(sum(r[f"energy_{k}_pj"] for k in ENERGY_COMPONENTS))
    r["latency_ns"] = float(latency_ns)
    for k in AREA_COMPONENTS:
        r[f"area_{k}_um2"] = float(area.get(k, 0.0))
    r["area_um2"] = float(sum(r[f"area_{k}_um2"] for k in AREA_COMPONENTS))
    return r


def _lif_row(lif: str, info: LIFInfo, e, area, T) -> dict[str, Any]:
    r: dict[str, Any] = {"layer": lif, "op": "lif", "ubits": info.ubits, "lif": lif,
                         "neuron_updates": float(info.neurons * T), "ops": 0.0, "sops": 0.0,
                         "output_spike_rate": (float(info.spikes.mean() / info.neurons)
                                               if info.spikes is not None else float("nan"))}
    for k in ENERGY_COMPONENTS:
        r[f"energy_{k}_pj"] = float(np.sum(e[k]))
    r["energy_pj"] = float(sum(r[f"energy_{k}_pj"] for k in ENERGY_COMPONENTS))
    r["latency_ns"] = 0.0
    for k in AREA_COMPONENTS:
        r[f"area_{k}_um2"] = float(area.get(k, 0.0))
    r["area_um2"] = float(sum(r[f"area_{k}_um2"] for k in AREA_COMPONENTS))
    return r


def _step_rows(n, e, d, act: BlockActivity, info) -> list[dict[str, Any]]:
    T = len(d)
    total = sum(np.asarray(e[k], dtype=float) for k in ENERGY_COMPONENTS)
    out = []
    for t in range(T):
        out.append({
            "layer": n, "t": t, "energy_pj": float(total[t]),
            "energy_array_pj": float(e["array"][t]), "energy_adc_pj": float(e["adc"][t]),
            "latency_ns": float(d[t]),
            "active_row_fraction": float(act.active_rows[t] / act.rows_total),
            "input_spike_rate": float(act.input_rate[t]),
            "output_spike_rate": (float(info.spikes[t] / info.neurons)
                                  if info is not None and info.spikes is not None
                                  and info.neurons else float("nan")),
        })
    return out


def _summary(layers: pd.DataFrame, spec: HardwareSpec, *, compat, mode, mapping, T,
             latency_ns, tiles, g, activity, notes) -> dict[str, Any]:
    energy = float(layers["energy_pj"].sum())
    area = float(layers["area_um2"].sum())
    area_mm2 = area * 1e-6
    ops = float(layers["ops"].sum())
    sops = float(np.nansum(layers["sops"].to_numpy(dtype=float)))
    tops = ops / (latency_ns * 1e3) if latency_ns > 0 else float("nan")
    syn = layers[layers["op"] != "lif"]
    used = float((syn["utilisation"] * syn["crossbars"]).sum())
    batch = None
    if activity is not None:
        batch = int(np.shape(next(iter(activity.values())))[1])

    def nz(x: float) -> float:
        return x if x > 0 else float("nan")

    return {
        "spec_name": spec.name,
        "spec_file": spec.file,
        "graph": g.graph.get("name"),
        "compat": compat,
        "mode": mode,
        "mapping": mapping,
        "technology_nm": spec.node_nm,
        "T": T,
        "batch": batch,
        "layers": int(len(layers)),
        "crossbars": int(syn["crossbars"].sum()),
        "tiles": int(tiles),
        "utilisation": used / float(syn["crossbars"].sum()) if len(syn) else float("nan"),
        "energy_pj": energy,
        "latency_ns": float(latency_ns),
        "area_um2": area,
        "area_mm2": area_mm2,
        "edp_pj_ns": energy * latency_ns,
        "edap_pj_ns_mm2": energy * latency_ns * area_mm2,
        "edap_j_s_mm2": energy * latency_ns * area_mm2 * 1e-21,
        "edap_unit": EDAP_UNIT,
        "ops": ops,
        "sops": sops,
        "tops_per_w": ops / nz(energy),
        "tops_per_w_sop": sops / nz(energy),
        "tops": tops,
        "tops_per_mm2": tops / nz(area_mm2),
        "op_convention": OP_CONVENTION,
        "energy_by_component_pj": {k: float(layers[f"energy_{k}_pj"].sum())
                                   for k in ENERGY_COMPONENTS},
        "area_by_component_um2": {k: float(layers[f"area_{k}_um2"].sum())
                                  for k in AREA_COMPONENTS},
        "layer_mapping": {str(r["layer"]): r["mapped_as"] for _, r in layers.iterrows()
                          if isinstance(r.get("mapped_as"), str)},
        "notes": notes,
    }
