"""Network-level costing: shared LIF populations (residual shortcuts), signal kinds read from the
graph's edges, the static first layer under direct encoding computed once.

Expectations are derived by hand from the shapes (positions, row blocks, T), not from the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from codesign.graph.workload import load_workload, parse_workload
from codesign.hw import build_components, load_spec, map_network, preset_path

ROOT = Path(__file__).resolve().parents[1]
RESNET19 = ROOT / "models" / "workloads" / "resnet19_cifar10.yaml"
VGG16 = ROOT / "models" / "workloads" / "vgg16_cifar10.yaml"
XBAR = ("array", "adc", "mux", "shift_add")


@pytest.fixture(scope="module")
def rram():
    return load_spec(preset_path("rram_physical_32nm"))


def _xbar_energy(row) -> float:
    return sum(float(row[f"energy_{k}_pj"]) for k in XBAR)


def test_resnet_shortcut_shares_the_block_neurons_and_costs_less(rram):
    g = load_workload(RESNET19)
    T = int(g.graph["T"])
    L = map_network(g, rram).layers.set_index("layer")
    sc, c1, c2 = L.loc["b4.shortcut"], L.loc["b4.conv1"], L.loc["b4.conv2"]
    # b4: 128x32x32 -> 256x16x16; conv1 3x3 reads 1152 rows, the 1x1 shortcut 128 rows, same
    # output positions and columns. On 128-row crossbars: 9 row blocks against 1.
    R = rram.crossbar.rows
    assert (c1["row_blocks"], sc["row_blocks"]) == (math.ceil(1152 / R), math.ceil(128 / R))
    assert 1152 % R == 0 and 128 % R == 0  # whole blocks: every per-read count is exactly 1/9
    assert _xbar_energy(sc) == pytest.approx(_xbar_energy(c1) / 9, rel=1e-12)
    assert sc["energy_pj"] < c1["energy_pj"] < c2["energy_pj"]
    # the shortcut adds its currents into b4.lif2, whose neurons are charged once, to conv2
    assert sc["lif"] == "b4.lif2" and c2["lif"] == "b4.lif2" and bool(sc["lif_shared"])
    assert sc["energy_neuron_pj"] == 0 and sc["energy_membrane_pj"] == 0
    assert sc["area_membrane_um2"] == 0
    # no 24-bit sums shipped over the network (the old readout branch), no spikes of its own
    assert sc["energy_interconnect_pj"] == 0
    comps = build_components(rram)
    neurons = 256 * 16 * 16
    assert c2["energy_neuron_pj"] == pytest.approx(neurons * T * comps.lif(8).energy_pj)
    assert c2["neuron_updates"] == neurons * T and sc["neuron_updates"] == 0
    assert sc["input_signal"] == "spikes"


def _ms_workload(style: str) -> dict:
    return {"name": f"res-{style}", "input_shape": [3, 16, 16], "T": 2, "encoding": "rate",
            "bits": {"wbits": 4, "ubits": 8},
            "layers": [{"conv": 16, "k": 3, "p": 1, "name": "stem"},
                       {"block": "basic", "channels": 16, "style": style, "name": "b1"},
                       {"block": "basic", "channels": 32, "stride": 2, "style": style,
                        "name": "b2"},
                       {"lif": True} if style == "ms" else {"flatten": True},
                       ] + ([{"flatten": True}] if style == "ms" else [])
            + [{"linear": 10, "lif": False}]}


def test_ms_shortcut_reads_real_values_and_is_costed_so(rram):
    ms = parse_workload(_ms_workload("ms"))
    td = parse_workload(_ms_workload("tdbn"))
    assert ms.edges["b1.add", "b2.shortcut"]["signal"] == "analog"
    assert td.edges["b1.lif2", "b2.shortcut"]["signal"] == "spikes"
    Lm = map_network(ms, rram).layers.set_index("layer")
    Lt = map_network(td, rram).layers.set_index("layer")
    a, s = Lm.loc["b2.shortcut"], Lt.loc["b2.shortcut"]
    assert a["input_signal"] == "analog" and a["input_planes"] == rram.input.bits
    assert s["input_signal"] == "spikes" and s["input_planes"] == 1
    # same shape (16x16x16 -> 32x8x8, 1x1): dense, bit-serial analog input = bits x the reads
    assert a["crossbar_reads"] == rram.input.bits * s["crossbar_reads"]
    assert a["energy_adc_pj"] == pytest.approx(rram.input.bits * s["energy_adc_pj"], rel=1e-12)
    # in the ms block the shortcut feeds the next LIF (the closing lif) together with conv2
    assert a["lif"] == Lm.loc["b2.conv2", "lif"] and bool(a["lif_shared"])


def test_static_first_layer_read_once_dense(rram):
    g = load_workload(VGG16)
    T = int(g.graph["T"])
    once = map_network(g, rram)
    every = map_network(g, rram, static_input_once=False)
    a = once.layers.set_index("layer").loc["conv1"]
    b = every.layers.set_index("layer").loc["conv1"]
    assert bool(a["static_once"]) and not bool(b["static_once"])
    for k in ("array", "adc", "mux", "shift_add"):
        assert a[f"energy_{k}_pj"] == pytest.approx(b[f"energy_{k}_pj"] / T, rel=1e-12), k
    assert a["adc_conversions"] == pytest.approx(b["adc_conversions"] / T)
    # the LIF still integrates the held current at every step
    assert a["energy_neuron_pj"] == pytest.approx(b["energy_neuron_pj"])
    assert a["neuron_updates"] == b["neuron_updates"] == 64 * 32 * 32 * T
    # layers reading spikes are not touched
    a2 = once.layers.set_index("layer").loc["conv2"]
    b2 = every.layers.set_index("layer").loc["conv2"]
    assert a2["energy_adc_pj"] == pytest.approx(b2["energy_adc_pj"], rel=1e-12)
    assert any("static input computed once" in n for n in once.summary["notes"])
    assert not any("static input computed once" in n for n in every.summary["notes"])
    # per step: the crossbar is read at step 0 only
    ps = once.per_step[once.per_step["layer"] == "conv1"]
    assert ps["energy_adc_pj"].tolist()[1:] == [0.0] * (T - 1)


def test_rate_encoded_input_is_not_static(rram):
    g = parse_workload({"input_shape": [1, 8, 8], "T": 3, "encoding": "rate",
                        "layers": [{"conv": 4, "k": 3}, {"flatten": True},
                                   {"linear": 2, "lif": False}]})
    assert g.edges["input", "conv1"]["signal"] == "spikes"
    r = map_network(g, rram)
    assert not r.layers["static_once"].any()
