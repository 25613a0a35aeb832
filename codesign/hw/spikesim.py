"""SpikeSim-compatible accounting (``compat: spikesim``): the released ELA of SpikeSim.

Reproduces ``ela_spikesim.py`` (github.com/Intelligent-Computing-Lab-Yale/SpikeSim @ec70d30;
formulas in ../shared/research/spikesim.md Sec. 3) from the spec's constants, with
``X_r, X_c`` the crossbar rows/columns, ``k`` the kernel, ``n_adc = ceil(X_c / mux)`` (SpikeSim's
``xbar_size/8``) and ``cpw`` the columns per weight (1 for SpikeSim's 4-bit weights in 4-bit
cells; larger ``wbits`` widen the layer, the extension MD-SNN presumably made [INF]):

* PEs of conv layer l: ``ceil(Cin/X_r) * ceil(Cout*cpw/X_c)`` (``k^2`` crossbars each,
  kernel-position mapping); tiles ``ceil(sum PEs / pes_per_tile)``, layers packed together.
  (The ELA takes one ``k`` for the network; with mixed kernels, e.g. ResNet 1x1 shortcuts,
  each layer uses its own ``k^2`` -- an extension, noted in the summary.)
* PE cycles per step: ``cyc_l = ceil(Cout*cpw/X_c) * ceil(Cin/X_r) * dim_l^2`` with ``dim_l`` the
  conv output size, or the size after the following pooling where the *graph* says so
  (see "Network facts" below). Energy ``E_l = cyc_l * T * E_cycle`` where, per PE
  cycle, the actions are ``n_adc * k^2`` crossbar reads, ``n_adc^2`` conversions and mux
  switches, ``n_adc * sub_ops_per_adc`` subtractions, ``n_adc`` temp-buffer accesses and one
  tile-buffer access, H-tree transfer, memory fetch and neuron update:
  ``E_cycle = E_Htree + E_memfetch + E_neuron + n_adc (k^2 E_xbar + n_adc (E_ADC + E_MUX))
  + n_adc (16 E_Sub + E_TempBuf) + E_TileBuf`` (828.486 pJ for the 65 nm preset, X=64, k=3).
* Area: ``A_PE = k^2 A_xbar + n_adc (A_ADC + A_MUX)``, ``A_tile = n_adc A_Sub + A_TempBuf +
  A_TileBuf + pes_per_tile A_PE + A_Htree``, ``A = tiles A_tile + sum_l Cin H W fmap_bits
  A_bit + sum_l Cout dim_l^2 ubits A_membrane_bit`` (the last sum over the first
  ``neuron_memory_layers`` layers where the graph says so).
* Latency: ``PE_cycle = pe_cycle_clocks * 1000 / f_MHz``; with ``N_l = Cout dim_l^2``,
  ``latency = (sum_{l<L} floor(overlap N_l) T + N_L T) * PE_cycle`` -- one PE cycle per output
  neuron per step, 75 % overlap, independent of the crossbar size.

The ELA is dense (no sparsity, weight or ADC bits, or node). Here the per-action constants
still follow the spec's bit laws (ADC bits, membrane bits), so a spec at SpikeSim's values
reproduces SpikeSim exactly and a changed spec moves the numbers the way the generic model
would. Linear layers are not costed (the ELA has none; a graph without conv layers is
refused); measured activity is only reported.

Network facts. The released script's layer lists carry three facts of *its* VGG9 evaluation, not
of SpikeSim's hardware: conv2/4/7 are charged at their post-pooling output size, only the first
5 layers get neuron-memory area, and every neuron stores 22 bits. They belong to that network,
so they live in its workload file (``models/workloads/vgg9_cifar10.yaml``), as the graph
attribute ``graph.graph["spikesim"]`` (:class:`GraphFacts`), and any other graph is costed at
its conv output sizes, with membrane memory for every layer at its own ``ubits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from codesign.errors import CodesignError
from codesign.hw.components import Components
from codesign.hw.cost import AREA_COMPONENTS, ENERGY_COMPONENTS
from codesign.hw.mapping import LayerMapping
from codesign.hw.spec import HardwareSpec

OUT_DIMS = ("conv", "post_pool")
FACT_KEYS = ("out_dim", "neuron_memory_layers", "membrane_bits")


@dataclass(frozen=True)
class GraphFacts:
    """Facts of one network's SpikeSim evaluation (the graph's ``spikesim`` attribute)."""

    out_dim: str = "conv"
    """``conv``: each conv layer is charged at its output size; ``post_pool``: at the size after
    the pooling that follows it (the released VGG9 lists)."""
    neuron_memory_layers: Optional[int] = None
    """Only the first N conv layers get neuron-memory area (5 in the released VGG9 script);
    ``None``: all."""
    membrane_bits: Optional[int] = None
    """Membrane bits charged per neuron under compat spikesim (22 in the released script);
    ``None``: each LIF's own ``ubits``. An explicit ``ubits`` override still wins."""


def graph_facts(g) -> GraphFacts:
    """The :class:`GraphFacts` of graph ``g`` (defaults when it has none), checked."""
    raw = g.graph.get("spikesim") or {}
    where = f"graph {g.graph.get('name', '?')!r}: spikesim"
    if not isinstance(raw, dict) or any(k not in FACT_KEYS for k in raw):
        raise CodesignError(f"{where}: expected a mapping with keys among "
                            f"{', '.join(FACT_KEYS)}, got {raw!r}")
    out_dim = raw.get("out_dim", "conv")
    if out_dim not in OUT_DIMS:
        raise CodesignError(f"{where}.out_dim: expected one of {', '.join(OUT_DIMS)}, got "
                            f"{out_dim!r}")
    for k, low in (("neuron_memory_layers", 0), ("membrane_bits", 1)):
        v = raw.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            raise CodesignError(f"{where}.{k}: expected an integer >= {low} or null, got {v!r}")
    return GraphFacts(out_dim, raw.get("neuron_memory_layers"), raw.get("membrane_bits"))


def facts_notes(f: GraphFacts) -> list[str]:
    """Summary notes saying which network facts were applied."""
    if f == GraphFacts():
        return []
    mem = "all" if f.neuron_memory_layers is None else f"the first {f.neuron_memory_layers}"
    bits = "per LIF" if f.membrane_bits is None else f.membrane_bits
    return [f"compat spikesim: the graph's SpikeSim facts applied: output size {f.out_dim}, "
            f"neuron memory for {mem} conv layers, membrane bits {bits}"]


@dataclass(frozen=True)
class SpikeSimLayer:
    """What SpikeSim needs of one conv layer."""

    name: str
    mapping: LayerMapping
    in_channels: int
    out_channels: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    """Output size charged (conv output, or post-pool per the graph's ``out_dim``)."""
    ubits: int


@dataclass(frozen=True)
class ELA:
    """What SpikeSim's accounting reads, taken once from a spec: its component models and the
    few settings that are not components (built by :func:`ela_model`; the functions below read
    only this, never the spec beside it)."""

    comps: Components
    n_adc: int
    """ADCs per PE: ``ceil(cols / mux)`` (SpikeSim's ``xbar_size / 8``)."""
    pe_cycle_ns: float
    """``pe_cycle_clocks * 1000 / f_MHz`` (104 ns at 26 clocks, 250 MHz)."""
    pes_per_tile: int
    pipeline_overlap: float
    sub_ops_per_adc: int
    mem_fetch_energy_pj: float
    fmap_bits: int
    fmap_bit_area_um2: float


def ela_model(spec: HardwareSpec, comps: Components) -> ELA:
    """The :class:`ELA` of ``spec`` (which needs its ``spikesim`` section)."""
    ss = spec.spikesim
    if ss is None:
        raise CodesignError(f"{spec.file or spec.name}: spikesim: missing section (required "
                            "with compat: spikesim)")
    return ELA(comps=comps, n_adc=math.ceil(spec.crossbar.cols / spec.adc.mux),
               pe_cycle_ns=ss.pe_cycle_clocks * spec.clock.period_ns,
               pes_per_tile=spec.hierarchy.pes_per_tile, pipeline_overlap=ss.pipeline_overlap,
               sub_ops_per_adc=ss.sub_ops_per_adc, mem_fetch_energy_pj=ss.mem_fetch_energy_pj,
               fmap_bits=ss.fmap_bits, fmap_bit_area_um2=ss.fmap_bit_area_um2)


def pes(layer: SpikeSimLayer) -> int:
    """``groups * ceil(Cin/g / X_r) * ceil(Cout/g * cpw / X_c)``."""
    m = layer.mapping
    return m.groups * math.ceil(m.in_per_group / m.xbar_rows) * m.col_blocks


def cycle_actions(ela: ELA, k2: int) -> dict[str, float]:
    """Actions of one PE cycle by component (see module docstring)."""
    a = ela.n_adc
    return {
        "array": a * k2, "adc": a * a, "mux": a * a, "shift_add": a * ela.sub_ops_per_adc,
        "pe_buffer": a, "tile_buffer": 1, "interconnect": 1, "mem_fetch": 1, "neuron": 1,
    }


def cycle_energy_pj(ela: ELA, k2: int, ubits: int) -> dict[str, float]:
    """Energy of one PE cycle by component (pJ); sums to SpikeSim's ``PE_cycle_energy``."""
    act = cycle_actions(ela, k2)
    comps = ela.comps
    xb = comps.crossbar
    per_action = {
        "array": xb.read_energy(xb.rows, xb.cols),
        "adc": comps.adc.energy_pj,
        "mux": comps.mux.energy_pj,
        "shift_add": comps.shift_add.energy_pj,
        "pe_buffer": comps.pe_buffer.energy_pj,
        "tile_buffer": comps.tile_buffer.energy_pj,
        "interconnect": comps.interconnect.energy_pj,
        "mem_fetch": ela.mem_fetch_energy_pj,
        "neuron": comps.lif(ubits).energy_pj,
    }
    return {k: act[k] * per_action[k] for k in act}


def check_layers(layers: list[SpikeSimLayer]) -> list[str]:
    """Notes on what goes beyond the released ELA (it assumes one kernel size ``k`` for the
    whole network; here each layer's PEs hold its own ``k^2`` crossbars)."""
    ks = sorted({lay.mapping.kernel for lay in layers})
    if len(ks) > 1:
        return [f"compat spikesim: kernel sizes {ks} differ; each layer's PEs hold its own "
                "k^2 crossbars (the released ELA assumes one k)"]
    return []


def k2_of(lay: SpikeSimLayer) -> int:
    """Crossbars per PE of this layer: ``kh * kw``."""
    return lay.mapping.kernel[0] * lay.mapping.kernel[1]


def layer_energy(lay: SpikeSimLayer, ela: ELA, T: int
                 ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Energy per step by component ``(T,)`` and counts of one conv layer."""
    m = lay.mapping
    k2 = k2_of(lay)
    cyc = m.col_blocks * m.groups * math.ceil(m.in_per_group / m.xbar_rows) * (
        lay.out_hw[0] * lay.out_hw[1])
    per_cycle = cycle_energy_pj(ela, k2, lay.ubits)
    e = {k: np.full(T, cyc * per_cycle.get(k, 0.0)) for k in ENERGY_COMPONENTS}
    act = cycle_actions(ela, k2)
    counts = {
        "pe_cycles": float(cyc * T),
        "crossbar_reads": float(cyc * T * act["array"]),
        "adc_conversions": float(cyc * T * act["adc"]),
        "neuron_updates": float(cyc * T),
    }
    return e, counts


def network_area_um2(layers: list[SpikeSimLayer], ela: ELA,
                     neuron_memory_layers: Optional[int] = None
                     ) -> tuple[dict[str, dict[str, float]], int]:
    """Area by component per layer and the tile count.

    Tiles are packed (``ceil(sum PEs / pes_per_tile)``); tile-level parts are shared in
    proportion to PEs and every PE slot of the built tiles is charged: a layer's PEs are scaled
    by ``fill = tiles * pes_per_tile / sum PEs`` (exactly SpikeSim's ``tiles * A_tile`` when all
    layers share one ``k``). Neuron memory is charged for the first ``neuron_memory_layers``
    layers (``None``: all).
    """
    comps = ela.comps
    a_adc = ela.n_adc
    ppt = ela.pes_per_tile
    pe_list = [pes(lay) for lay in layers]
    n_tiles = math.ceil(sum(pe_list) / ppt) if pe_list else 0
    total_pes = max(sum(pe_list), 1)
    fill = n_tiles * ppt / total_pes
    out: dict[str, dict[str, float]] = {}
    for i, (lay, p) in enumerate(zip(layers, pe_list, strict=True)):
        share = n_tiles * p / total_pes
        a = {k: 0.0 for k in AREA_COMPONENTS}
        a["array"] = fill * p * k2_of(lay) * comps.crossbar.area_um2
        a["adc"] = fill * p * a_adc * comps.adc.area_um2
        a["mux"] = fill * p * a_adc * comps.mux.area_um2
        a["shift_add"] = share * a_adc * comps.shift_add.area_um2
        a["pe_buffer"] = share * comps.pe_buffer.area_um2
        a["tile_buffer"] = share * comps.tile_buffer.area_um2
        a["interconnect"] = share * comps.interconnect.area_um2
        a["fmap_memory"] = (lay.in_channels * lay.in_hw[0] * lay.in_hw[1] * ela.fmap_bits
                            * ela.fmap_bit_area_um2)
        if neuron_memory_layers is None or i < neuron_memory_layers:
            a["membrane"] = (lay.out_channels * lay.out_hw[0] * lay.out_hw[1] * lay.ubits
                             * comps.membrane(1).area_um2)
        out[lay.name] = a
    return out, n_tiles


def network_latency_ns(layers: list[SpikeSimLayer], ela: ELA, T: int
                       ) -> tuple[float, dict[str, float]]:
    """Total latency (ns) and each layer's busy time ``N_l * T * PE_cycle`` (ns)."""
    cyc = ela.pe_cycle_ns
    overlap = ela.pipeline_overlap
    neurons = [lay.out_channels * lay.out_hw[0] * lay.out_hw[1] for lay in layers]
    if not neurons:
        return 0.0, {}
    halt = sum(int(overlap * n) * T for n in neurons[:-1]) + neurons[-1] * T
    busy = {lay.name: float(n * T * cyc) for lay, n in zip(layers, neurons, strict=True)}
    return float(halt * cyc), busy
