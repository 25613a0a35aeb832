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
from codesign.hw import spikesim as ss
from codesign.hw import topology as topo
from codesign.hw.activity import (
    BlockActivity,
    dense_activity,
    level_planes,
    row_block_activity,
    spike_counts,
)
from codesign.hw.components import build_components
from codesign.hw.cost import (
    AREA_COMPONENTS,
    ENERGY_COMPONENTS,
    LIFInfo,
    layer_area_um2,
    layer_energy,
    layer_step_latency_ns,
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
) -> MapResult:
    """Map ``graph`` onto ``spec`` and cost it.

    ``activity``: ``None`` for dense mode, or node name -> tensor: each synaptic layer's input
    ``(T, B, *in_shape)`` (binary spikes; analog for a direct-coded first layer) and each LIF
    node's output spikes ``(T, B, *shape)`` (optional; used for output traffic and rates).
    ``mapping``: ``im2col`` or ``kernel_position`` (``compat: spikesim`` forces the latter).
    ``duplication``: weight copies per layer (an int for all, or a name -> int mapping).
    ``wbits`` / ``ubits``: force every layer's weight / membrane precision (else the graph's, or
    ``spec.precision``). ``compat``: ``none`` | ``spikesim`` (default: the spec's).
    """
    if not isinstance(spec, HardwareSpec):
        spec = load_spec(spec)
    compat = spec.compat if compat is None else compat
    if compat not in COMPAT_MODES:
        raise CodesignError(f"compat: expected one of {COMPAT_MODES}, got {compat!r}")
    if mapping not in MAPPING_MODES:
        raise CodesignError(f"mapping: expected one of {MAPPING_MODES}, got {mapping!r}")
    g = graph
    order = topo.topo_order(g)
    synaptic = [n for n in order if topo.is_synaptic(g, n)]
    if not synaptic:
        raise CodesignError(f"graph {g.graph.get('name', '?')!r} has no conv or linear layer")
    owners = topo.lif_owners(g, order)
    lif_names = list(owners)
    owned = {syn: lif for lif, syn in owners.items() if syn is not None}
    if activity is not None:
        T = _check_activity(activity, g, synaptic, lif_names)
    else:
        T = int(g.graph.get("T") or 1)
    comps = build_components(spec)
    notes: list[str] = []

    def lif_info(lif: Optional[str]) -> Optional[LIFInfo]:
        if lif is None:
            return None
        lay = topo.layer(g, lif)
        spikes = None
        if activity is not None and lif in activity:
            spikes = spike_counts(activity[lif], tuple(lay.shape), lif)
        return LIFInfo(lif, lay.neurons, resolve_ubits(lay, spec, ubits), spikes)

    if compat == "spikesim":
        res = _spikesim(g, spec, comps, synaptic, owned, lif_info, activity, T, wbits, notes)
    else:
        res = _generic(g, spec, comps, synaptic, owned, owners, lif_info, activity, T, mapping,
                       duplication, wbits, notes)
    rows, steps, mappings, latency_ns, tiles_total = res
    layers = pd.DataFrame(rows)
    per_step = pd.DataFrame(steps)
    summary = _summary(layers, spec, compat=compat, mode="dense" if activity is None else
                       "activity", mapping="kernel_position" if compat == "spikesim" else
                       mapping, T=T, latency_ns=latency_ns, tiles=tiles_total, g=g,
                       activity=activity, notes=notes)
    return MapResult(layers=layers, summary=summary, per_step=per_step, mappings=mappings,
                     spec=spec)


def _stats(act: BlockActivity, info: Optional[LIFInfo]) -> dict[str, float]:
    reads = float(act.reads_nonzero.sum())
    possible = act.reads_total * len(act.active_rows)
    out_rate = float("nan")
    if info is not None and info.spikes is not None:
        out_rate = float(info.spikes.mean() / info.neurons)
    return {
        "input_spike_rate": float(act.input_rate.mean()),
        "output_spike_rate": out_rate,
        "active_row_fraction": float(act.active_rows.sum() / (act.rows_total * len(
            act.active_rows))),
        "read_skip_fraction": 1.0 - reads / possible if possible else 0.0,
    }


def _in_bits(spec: HardwareSpec, analog: bool, levels: int) -> int:
    """Bits per input element: analog -> the spec's input bits, multi-level spikes -> their
    bit planes, spikes -> 1."""
    if analog:
        return spec.input.bits
    return level_planes(levels) if levels > 1 else 1


def _activity_of(name, lay, m, spec, activity, T, analog, levels
                 ) -> tuple[BlockActivity, bool]:
    """Dense or measured row activity, and whether the input is analog (a non-binary measured
    input of a layer the graph says gets binary spikes is taken as analog)."""
    if activity is None:
        if analog:
            planes = spec.input.bits if spec.input.first_layer == "bit_serial" else 1
        else:
            planes = level_planes(levels) if levels > 1 else 1
        return dense_activity(m, T, planes), analog
    x = np.asarray(activity[name])
    if not analog and levels == 1 and x.dtype != bool and not bool(
            ((x == 0) | (x == 1)).all()):
        analog = True
    act = row_block_activity(x, lay, m, analog=analog, scheme=spec.input.first_layer,
                           bits=spec.input.bits, levels=levels, name=name)
    return act, analog


def _generic(g, spec, comps, synaptic, owned, owners, lif_info, activity, T, mapping,
             duplication, wbits, notes):
    maps = {n: map_layer(topo.layer(g, n), spec, name=n, mode=mapping,
                         duplication=_dup_of(duplication, n), wbits=wbits) for n in synaptic}
    share = spec.hierarchy.share_tiles
    total_pes = sum(m.pes for m in maps.values())
    tiles_total = (math.ceil(total_pes / spec.hierarchy.pes_per_tile) if share
                   else sum(m.tiles for m in maps.values()))
    rows, steps, lat_steps = [], [], []
    for n in synaptic:
        lay, m = topo.layer(g, n), maps[n]
        analog = topo.analog_input(g, n)
        levels = 1 if analog else topo.input_levels(g, n)
        act, analog = _activity_of(n, lay, m, spec, activity, T, analog, levels)
        info = lif_info(owned.get(n))
        in_elems = int(np.prod(lay.in_shape))
        e, counts = layer_energy(m, act, comps, spec, info, analog=analog,
                                 in_bits=_in_bits(spec, analog, levels), in_elements=in_elems,
                                 tiles_total=tiles_total)
        if analog:
            counts["sops"] = float(lay.macs_per_step * T)
        tiles_l = tiles_total * m.pes / total_pes if share else float(m.tiles)
        d = layer_step_latency_ns(m, act, comps, spec, info, tiles_l)
        lat_steps.append(d)
        area = layer_area_um2(comps, spec, tiles_l, info,
                              dac=analog and spec.input.first_layer == "dac")
        rows.append(_row(n, lay, m, spec, info, analog, T, e, counts, float(d.sum()), area,
                         tiles_l, _stats(act, info), planes=act.planes))
        steps.extend(_step_rows(n, e, d, act, info))
    for lif, owner in owners.items():  # LIF populations fed by no synaptic layer
        if owner is not None:
            continue
        info = lif_info(lif)
        e = {k: np.zeros(T) for k in ENERGY_COMPONENTS}
        e["neuron"] = np.full(T, info.neurons * comps.lif(info.ubits).energy_pj)
        e["membrane"] = np.full(T, info.neurons * comps.membrane(info.ubits).energy_pj)
        area = {k: 0.0 for k in AREA_COMPONENTS}
        area["membrane"] = info.neurons * comps.membrane(info.ubits).area_um2
        rows.append(_lif_row(lif, info, e, area, T))
        notes.append(f"LIF {lif!r} has no synaptic producer: costed for updates and membrane "
                     "storage only")
    latency = pipeline_latency_ns(lat_steps, spec.hierarchy.pipeline)
    return rows, steps, maps, latency, tiles_total


def _spikesim(g, spec, comps, synaptic, owned, lif_info, activity, T, wbits, notes):
    convs = [n for n in synaptic if topo.layer(g, n).op == "conv"]
    skipped = [n for n in synaptic if n not in convs]
    if skipped:
        notes.append(f"compat spikesim: linear layers {skipped} not costed (SpikeSim's ELA has "
                     "conv layers only)")
    if activity is not None:
        notes.append("compat spikesim is dense: measured activity is reported, not costed")
    maps, layers = {}, []
    for n in convs:
        lay = topo.layer(g, n)
        k2 = lay.kernel_size[0] * lay.kernel_size[1]
        m = map_layer(lay, spec, name=n, mode="kernel_position", wbits=wbits,
                      crossbars_per_pe=k2)
        maps[n] = m
        out_hw = (topo.post_pool_hw(g, n) if spec.spikesim is not None
                  and spec.spikesim.out_dim == "post_pool" else tuple(lay.out_shape[1:]))
        info = lif_info(owned.get(n))
        ub = info.ubits if info is not None else resolve_ubits(None, spec)
        layers.append(ss.SpikeSimLayer(n, m, lay.in_channels, lay.out_channels,
                                       tuple(lay.in_shape[1:]), out_hw, ub))
    notes.extend(ss.check_layers(layers, spec))
    areas, n_tiles = ss.network_area_um2(layers, spec, comps)
    latency, busy = ss.network_latency_ns(layers, spec, T)
    total_pes = max(sum(ss.pes(x) for x in layers), 1)
    rows, steps = [], []
    for lay_ss in layers:
        n, m = lay_ss.name, lay_ss.mapping
        lay = topo.layer(g, n)
        e, counts = ss.layer_energy(lay_ss, spec, comps, T)
        counts["sops"] = float(lay.macs_per_step * T)
        info = lif_info(owned.get(n))
        analog = topo.analog_input(g, n)
        levels = 1 if analog else topo.input_levels(g, n)
        act, analog = _activity_of(n, lay, m, spec, activity, T, analog, levels)
        tiles_l = n_tiles * ss.pes(lay_ss) / total_pes
        d = np.full(T, busy[n] / T)
        rows.append(_row(n, lay, m, spec, info, analog, T, e, counts, busy[n], areas[n],
                         tiles_l, _stats(act, info), pes=ss.pes(lay_ss), planes=act.planes))
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
        "adc_bits": spec.adc.bits,
        "adc_bits_lossless": lossless_adc_bits(min(max(m.block_rows), m.xbar_rows),
                                               spec.bits_per_cell),
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
                                  else float("nan")),
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
        "notes": notes,
    }
