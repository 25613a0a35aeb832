"""compat: spikesim reproduces SpikeSim's released ELA (ela_spikesim.py @ec70d30).

The reference below re-implements the formulas of /work/shared/research/spikesim.md Sec. 3
directly from the layer lists, independently of codesign.hw.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from test_hw_nets import seq_graph, vgg9_spikesim

from codesign.errors import CodesignError
from codesign.hw import map_network
from codesign.hw.spec import load_spec, preset_path

VGG9 = dict(in_ch=[3, 64, 64, 128, 128, 256, 256], out_ch=[64, 64, 128, 128, 256, 256, 256],
            in_dim=[32, 32, 16, 16, 8, 8, 8], out_dim=[32, 16, 16, 8, 8, 8, 4])


VGG9_FACTS = {"out_dim": "post_pool", "neuron_memory_layers": 5, "membrane_bits": 22}
"""What models/workloads/vgg9_cifar10.yaml says of its SpikeSim evaluation."""


def with_facts(g, wbits=4, **facts):
    """The graph with the VGG9 workload's SpikeSim facts (``facts`` override some) and
    SpikeSim's 4-bit weights on every synaptic layer (a float layer maps at 32 bits)."""
    g.graph["spikesim"] = {**VGG9_FACTS, **facts}
    for n in g.nodes:
        if g.nodes[n]["layer"].op in ("conv", "linear"):
            g.nodes[n]["layer"].wbits = wbits
    return g


def ela_reference(in_ch, out_ch, in_dim, out_dim, X=64, k=3, ppt=8, T=5, clk=250,
                  mem_layers=5):
    """SpikeSim ELA (rram), straight from the formulas (``mem_layers``: the released script's
    ``out_ch_list[0:5]`` neuron memory; ``None``: every layer)."""
    E_xbar, E_adc, E_mux, E_sub, E_tmp, E_tile = 1.76423, 2.03084, 0.094245, 1.15e-6, 0.2, 397
    E_htree, E_fetch, E_neuron = 19.64 * 8, 4.64, 1.274 * 4.0
    E_pe = k * k * E_xbar + X / 8 * (E_adc + E_mux)
    E_cycle = (E_htree + E_fetch + E_neuron + X / 8 * E_pe + X / 8 * 16 * E_sub + X / 8 * E_tmp
               + E_tile)
    cyc = [math.ceil(o / X) * math.ceil(i / X) * d * d
           for i, o, d in zip(in_ch, out_ch, out_dim, strict=True)]
    energy = sum(cyc) * E_cycle * T
    pes = [math.ceil(i / X) * math.ceil(o / X) for i, o in zip(in_ch, out_ch, strict=True)]
    tiles = math.ceil(sum(pes) / ppt)
    A_pe = k * k * 26.2144 + X / 8 * (693.633 + 45.9)
    A_tile = X / 8 * 13411.41498 + 484.643999 + 0.7391 * 64 * 128 + ppt * A_pe + 216830 * 2
    fmap = sum(c * d * d for c, d in zip(in_ch, in_dim, strict=True)) * 0.7391 * 22
    nm = len(out_ch) if mem_layers is None else mem_layers
    neuron_mem = sum(c * d * d for c, d in zip(out_ch[:nm], out_dim[:nm], strict=True)
                     ) * 0.7391 * 22
    area = A_tile * tiles + fmap + neuron_mem
    N = [c * d * d for c, d in zip(out_ch, out_dim, strict=True)]
    latency = (sum(int(0.75 * n) * T for n in N[:-1]) + N[-1] * T) * 26 * 1000 / clk
    return dict(E_cycle=E_cycle, energy=energy, area=area, latency=latency, pes=sum(pes),
                tiles=tiles, per_layer=[c * E_cycle * T for c in cyc])


@pytest.fixture(scope="module")
def spec():
    return load_spec(preset_path("spikesim_rram_65nm"))


def test_reference_numbers_are_the_released_ones():
    ref = ela_reference(**VGG9)
    assert ref["E_cycle"] == pytest.approx(828.486, abs=1e-3)          # spikesim.md Sec. 3.1
    assert (ref["pes"], ref["tiles"]) == (48, 6)                        # 48 PEs = 432 xbars
    assert ref["energy"] == pytest.approx(15_906_934.03, rel=1e-9)
    assert ref["area"] == pytest.approx(8_425_528.76, rel=1e-9)
    assert ref["latency"] == pytest.approx(62_832_640.0)


def test_vgg9_compat_reproduces_ela(spec):
    ref = ela_reference(**VGG9)
    r = map_network(with_facts(vgg9_spikesim(T=5)), spec)
    s = r.summary
    assert s["compat"] == "spikesim" and s["mapping"] == "kernel_position"
    assert s["energy_pj"] == pytest.approx(ref["energy"], rel=1e-12)
    assert s["area_um2"] == pytest.approx(ref["area"], rel=1e-12)
    assert s["latency_ns"] == pytest.approx(ref["latency"], rel=1e-12)
    assert s["tiles"] == 6 and s["crossbars"] == 432
    assert r.layers["pes"].tolist() == [1, 1, 2, 4, 8, 16, 16]
    assert r.layers["energy_pj"].to_numpy() == pytest.approx(ref["per_layer"], rel=1e-12)
    assert any("linear layers" in n for n in s["notes"])


def test_per_cycle_breakdown_matches_spikesim_md(spec):
    r = map_network(with_facts(vgg9_spikesim(T=5)), spec)
    cycles = 3840 * 5
    by = {k: v / cycles for k, v in r.summary["energy_by_component_pj"].items()}
    table = {"tile_buffer": 397.0, "interconnect": 157.12, "adc": 64 * 2.03084,
             "array": 72 * 1.76423, "mux": 64 * 0.094245, "neuron": 5.096, "mem_fetch": 4.64,
             "pe_buffer": 1.6, "shift_add": 128 * 1.15e-6}
    for k, v in table.items():
        assert by[k] == pytest.approx(v, rel=1e-9), k
    assert sum(by.values()) == pytest.approx(828.4861472, rel=1e-9)


def test_other_lists_and_time_steps(spec):
    # conv output sizes instead of post-pool sizes, and T = 2
    g = with_facts(vgg9_spikesim(T=2), out_dim="conv")
    r = map_network(g, spec)
    ref = ela_reference(VGG9["in_ch"], VGG9["out_ch"], VGG9["in_dim"],
                        [32, 32, 16, 16, 8, 8, 8], T=2)
    assert r.summary["energy_pj"] == pytest.approx(ref["energy"], rel=1e-12)
    assert r.summary["area_um2"] == pytest.approx(ref["area"], rel=1e-12)
    assert r.summary["latency_ns"] == pytest.approx(ref["latency"], rel=1e-12)
    # a small 3-layer stack (in_dim 16) with one pool
    g3 = seq_graph((3, 16, 16), [("conv", "a", 32, 3, 1, 1), ("lif", "la"),
                                 ("conv", "b", 96, 3, 1, 1), ("lif", "lb"), ("pool", "p", 2),
                                 ("conv", "c", 130, 3, 1, 1), ("lif", "lc")], T=3)
    ref3 = ela_reference([3, 32, 96], [32, 96, 130], [16, 16, 8], [16, 8, 8], T=3)
    r3 = map_network(with_facts(g3), spec)
    assert r3.summary["energy_pj"] == pytest.approx(ref3["energy"], rel=1e-12)
    assert r3.summary["area_um2"] == pytest.approx(ref3["area"], rel=1e-12)
    assert r3.summary["latency_ns"] == pytest.approx(ref3["latency"], rel=1e-12)


def test_other_graphs_get_no_vgg9_facts(spec):
    # without the workload's facts a graph is charged at its conv output sizes, with neuron
    # memory for every layer at its own membrane bits (22 = the preset's float_ubits here)
    g = with_facts(vgg9_spikesim(T=5))
    del g.graph["spikesim"]
    for n in g.nodes:
        if g.nodes[n]["layer"].op == "lif":
            g.nodes[n]["layer"].ubits = 22
    s = map_network(g, spec).summary
    ref = ela_reference(VGG9["in_ch"], VGG9["out_ch"], VGG9["in_dim"],
                        [32, 32, 16, 16, 8, 8, 8], mem_layers=None)
    assert s["energy_pj"] == pytest.approx(ref["energy"], rel=1e-12)
    assert s["area_um2"] == pytest.approx(ref["area"], rel=1e-12)
    assert s["latency_ns"] == pytest.approx(ref["latency"], rel=1e-12)
    assert not any("facts applied" in n for n in s["notes"])
    # conv2 at 32x32 instead of 16x16: four times the PE cycles of the released list
    L = map_network(g, spec).layers.set_index("layer")
    F = map_network(with_facts(vgg9_spikesim(T=5)), spec).layers.set_index("layer")
    assert L.loc["conv2", "energy_pj"] == pytest.approx(4 * F.loc["conv2", "energy_pj"])


def test_graph_facts_are_checked(spec):
    g = with_facts(vgg9_spikesim(T=1), out_dim="pooled")
    with pytest.raises(CodesignError, match="spikesim.out_dim"):
        map_network(g, spec)


def test_linear_only_graph_refused(spec):
    g = seq_graph((16,), [("linear", "fc1", 8), ("lif", "l1"), ("linear", "fc2", 4)], T=2)
    with pytest.raises(CodesignError, match="conv layers only"):
        map_network(g, spec)


def test_compat_extensions_follow_bits(spec):
    g = with_facts(vgg9_spikesim(T=5))
    base = map_network(g, spec).summary
    # 8-bit weights on 4-bit cells: twice the columns -> more PEs and cycles
    w8 = map_network(g, spec, wbits=8).summary
    assert w8["energy_pj"] > 1.5 * base["energy_pj"]
    # 4-bit membranes shrink SpikeSim's neuron-memory area and the neuron energy
    u4 = map_network(g, spec, ubits=4).summary
    assert u4["area_by_component_um2"]["membrane"] == pytest.approx(
        base["area_by_component_um2"]["membrane"] * 4 / 22)
    assert u4["energy_by_component_pj"]["neuron"] == pytest.approx(
        base["energy_by_component_pj"]["neuron"] * 4 / 22)


def test_compat_mode_is_dense_with_activity(spec):
    g = vgg9_spikesim(T=1)
    rng = np.random.default_rng(0)
    act = {}
    for n in g.nodes:
        lay = g.nodes[n]["layer"]
        if lay.op in ("conv", "linear"):
            act[n] = (rng.random((1, 1, *lay.in_shape)) < 0.1).astype(np.float32)
    act["conv1"] = rng.random((1, 1, 3, 32, 32)).astype(np.float32)
    r = map_network(g, spec, activity=act)
    dense = map_network(g, spec)
    assert r.summary["energy_pj"] == pytest.approx(dense.summary["energy_pj"])
    assert r.layers["input_spike_rate"].iloc[1] < 0.2
    assert any("dense" in n for n in r.summary["notes"])


def test_compat_mixed_kernels_use_per_layer_k2(spec):
    g = seq_graph((64, 8, 8), [("conv", "a", 64, 3, 1, 1), ("lif", "la"),
                               ("conv", "b", 64, 1, 1, 0), ("lif", "lb")], T=1)
    r = map_network(g, spec, wbits=4)
    assert any("kernel sizes" in n for n in r.summary["notes"])
    L = r.layers.set_index("layer")
    # same PE cycles (1 PE, 8x8 outputs); per cycle n_adc * k^2 reads: 72 for 3x3, 8 for 1x1
    per_read = 1.76423 * 8 * 8 * 8
    assert L.loc["a", "energy_array_pj"] == pytest.approx(9 * per_read)
    assert L.loc["b", "energy_array_pj"] == pytest.approx(per_read)
    assert L.loc["b", "crossbars"] == 1
    # 2 PEs in one tile of 8 PE slots: 6 empty slots charged in proportion (fill = 4)
    assert L.loc["a", "area_array_um2"] == pytest.approx(4 * 9 * 26.2144)
    assert map_network(g, spec, compat="none").summary["compat"] == "none"


def test_compat_needs_the_spikesim_section():
    from test_hw_nets import tiny_spec
    g = seq_graph((3, 8, 8), [("conv", "a", 8, 3, 1, 1), ("lif", "la")], T=1)
    with pytest.raises(CodesignError, match="spikesim: missing section"):
        map_network(g, tiny_spec(), compat="spikesim")


def test_post_pool_stops_at_residual_merges():
    import networkx as nx

    from codesign.graph.schema import AddLayer, ConvLayer, LIFLayer, PoolLayer
    from codesign.hw.topology import post_pool_hw

    def conv(c):
        return ConvLayer(in_shape=(c, 4, 4), out_shape=(c, 4, 4), in_channels=c,
                         out_channels=c, kernel_size=(3, 3), padding=(1, 1))

    g = nx.DiGraph()
    g.add_node("a", layer=conv(8))
    g.add_node("la", layer=LIFLayer(shape=(8, 4, 4)))
    g.add_node("b", layer=conv(8))
    g.add_node("add", layer=AddLayer(shape=(8, 4, 4)))
    g.add_node("lb", layer=LIFLayer(shape=(8, 4, 4)))
    g.add_node("pool", layer=PoolLayer(in_shape=(8, 4, 4), out_shape=(8, 2, 2), kind="max",
                                       kernel_size=(2, 2), stride=(2, 2)))
    g.add_edges_from([("a", "la"), ("la", "b"), ("b", "add"), ("la", "add"), ("add", "lb"),
                      ("lb", "pool")])
    assert post_pool_hw(g, "a") == (4, 4)      # its LIF feeds a merge, not the pool
    assert post_pool_hw(g, "b") == (4, 4)      # the add merges two streams
    g2 = nx.DiGraph()
    g2.add_node("a", layer=conv(8))
    g2.add_node("la", layer=LIFLayer(shape=(8, 4, 4)))
    g2.add_node("pool", layer=g.nodes["pool"]["layer"])
    g2.add_edges_from([("a", "la"), ("la", "pool")])
    assert post_pool_hw(g2, "a") == (2, 2)


WORKLOADS = os.path.join(os.path.dirname(__file__), "..", "models", "workloads")


def _workload(name):
    workload = pytest.importorskip("codesign.graph.workload")
    path = os.path.join(WORKLOADS, f"{name}.yaml")
    if not os.path.isfile(path):
        pytest.skip(f"{path} not there")
    return workload.load_workload(path)


def test_vgg9_workload_file_reproduces_ela(spec):
    g = _workload("vgg9_cifar10")
    ref = ela_reference(**VGG9, T=int(g.graph["T"]))
    assert g.graph["spikesim"] == VGG9_FACTS     # the facts live in the workload file
    s = map_network(g, spec).summary
    assert s["energy_pj"] == pytest.approx(ref["energy"], rel=1e-12)
    assert s["area_um2"] == pytest.approx(ref["area"], rel=1e-12)
    assert s["latency_ns"] == pytest.approx(ref["latency"], rel=1e-12)


@pytest.mark.parametrize("name", ["vgg9_cifar10", "vgg16_cifar10", "resnet19_cifar10"])
def test_workloads_cost_on_every_preset(name):
    g = _workload(name)
    for preset in ("spikesim_rram_65nm", "rram_physical_32nm", "sram_neurosim_22nm"):
        s = map_network(g, load_spec(preset_path(preset))).summary
        for k in ("energy_pj", "latency_ns", "area_um2", "edap_pj_ns_mm2", "tops_per_w"):
            assert np.isfinite(s[k]) and s[k] > 0, (preset, k)
