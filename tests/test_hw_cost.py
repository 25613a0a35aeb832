"""Cost model: hand-computed dense totals, activity-driven energy, row counting, reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_hw_nets import q, seq_graph, tiny_dict, tiny_spec

from codesign.errors import CodesignError
from codesign.hw import map_network
from codesign.hw.activity import row_block_activity
from codesign.hw.cost import pipeline_latency_ns
from codesign.hw.mapping import map_layer
from codesign.hw.spec import spec_from_dict
from codesign.report import write_report


def two_fc(T=2):
    return seq_graph((6,), [("linear", "fc1", 5), ("lif", "lif1"), ("linear", "fc2", 3),
                            ("lif", "lif2")], T=T)


# ----------------------------------------------------------------------------- dense, by hand


def test_dense_two_layer_totals_by_hand():
    """tiny spec: 4x4 crossbars, 1 pJ per active row (4 pJ full read), ADC 1 pJ, shift-add
    0.5 pJ, accumulator 0.25 pJ, LIF 2 pJ, membrane 0.2 pJ/bit at 8 bits; buffers and
    interconnect free; offset code, 1-bit weights (float_wbits 1).

    fc1 6->5: row blocks (4, 2), 2 column blocks (4 + 1 columns); per step: array 6 rows x 2
    crossbars x 1 pJ = 12, ADC 2 reads x 5 columns = 10, shift-add 5, accumulator: 2 blocks ->
    1 add per output (5) + 1 offset correction per output (5) = 10 x 0.25 = 2.5, LIF 5 x 2 =
    10, membrane 5 x 8 x 0.2 = 8 -> 47.5 pJ.
    fc2 5->3: blocks (4, 1), 1 column block: 5 + 6 + 3 + (3 + 3) x 0.25 + 6 + 4.8 = 26.3 pJ.
    T = 2 -> 95 + 52.6 = 147.6 pJ.
    """
    r = map_network(two_fc(), tiny_spec())
    L = r.layers.set_index("layer")
    assert L.loc["fc1", "energy_pj"] == pytest.approx(95.0)
    assert L.loc["fc2", "energy_pj"] == pytest.approx(52.6)
    assert L.loc["fc1", "energy_array_pj"] == pytest.approx(24.0)
    assert L.loc["fc1", "energy_adc_pj"] == pytest.approx(20.0)
    assert L.loc["fc1", "energy_accumulator_pj"] == pytest.approx(5.0)
    assert L.loc["fc1", "energy_membrane_pj"] == pytest.approx(16.0)
    assert r.summary["energy_pj"] == pytest.approx(147.6)
    # latency: per position t_read 10 + 2 ADC rounds x 1 ns, + 2 cycles of shift-add and
    # accumulate = 14 ns per step and layer; pipeline over 2 steps: 14 + 14 + 14 = 42 ns
    assert L.loc["fc1", "latency_ns"] == pytest.approx(28.0)
    assert r.summary["latency_ns"] == pytest.approx(42.0)
    # area of what is built, tiles shared (default): fc1 4 crossbars (2 PEs), fc2 2 (1 PE)
    # -> 3 PEs, 2 tiles; fc1's share 2 x 2/3 tiles, fc2's 2 x 1/3.
    # fc1: 4 x 100 + 8 ADCs x 10 + 8 shift-adders x 1 + 2 accumulators x 1 + 4/3 LIF units
    # x 5 + membrane 5 x 8 = 536.667; fc2: 200 + 40 + 4 + 1 + 2/3 x 5 + 24 = 272.333
    assert L.loc["fc1", "area_um2"] == pytest.approx(530 + 20 / 3)
    assert L.loc["fc2", "area_um2"] == pytest.approx(269 + 10 / 3)
    assert r.summary["area_um2"] == pytest.approx(809.0)
    # metrics
    ops = 2 * (6 * 5 + 5 * 3) * 2
    assert r.summary["ops"] == ops
    assert r.summary["tops_per_w"] == pytest.approx(ops / 147.6)
    assert r.summary["edap_pj_ns_mm2"] == pytest.approx(147.6 * 42 * 809e-6)
    assert r.summary["mode"] == "dense" and "2 * MACs * T" in r.summary["op_convention"]
    assert len(r.per_step) == 4


def test_single_row_block_has_no_partial_sums():
    """A layer whose fan-in fits one crossbar has nothing to accumulate: no accumulator op, no
    partial-sum traffic (differential pairs: no offset correction either); the same layer with
    fan-in over two row blocks pays one add per output per position."""
    d = tiny_dict()
    d["crossbar"]["signed"] = "differential"
    d["precision"]["float_wbits"] = 2                       # 1 magnitude slice, a column pair
    d["buffers"]["pe"]["energy"] = q(8.0, "pJ")             # 1 pJ/bit if partial sums moved
    spec = spec_from_dict(d)
    one = seq_graph((4,), [("linear", "fc", 2), ("lif", "l")], T=3)     # 4 rows: 1 block
    r1 = map_network(one, spec).layers.iloc[0]
    assert r1["row_blocks"] == 1
    assert r1["energy_accumulator_pj"] == 0.0 and r1["energy_pe_buffer_pj"] == 0.0
    assert r1["partial_sum_bits"] == 0.0
    two = seq_graph((8,), [("linear", "fc", 2), ("lif", "l")], T=3)     # 8 rows: 2 blocks
    r2 = map_network(two, spec).layers.iloc[0]
    assert r2["row_blocks"] == 2
    # 2 outputs x 1 add x 3 steps x 0.25 pJ
    assert r2["energy_accumulator_pj"] == pytest.approx(2 * 3 * 0.25)
    # 2 blocks x 1 column block fit one PE (2 crossbars): partial sums meet in its adder tree
    assert r2["energy_pe_buffer_pj"] == 0.0


def test_partial_sums_across_pes_use_a_store_sized_to_them():
    """Three row blocks on 2-crossbar PEs: partial sums cross a PE and are written and read
    once per add, at the SRAM sqrt(capacity) law for a store of one position's outputs."""
    d = tiny_dict()
    d["buffers"]["pe"]["energy"] = q(8.0, "pJ")             # 8-bit port: 1 pJ/bit at 1 KB
    d["digital"]["accumulator"]["width"] = 8
    spec = spec_from_dict(d)
    g = seq_graph((12,), [("linear", "fc", 2), ("lif", "l")], T=1)     # 12 rows: 3 blocks
    r = map_network(g, spec).layers.iloc[0]
    held = 2 * 8                                            # 2 outputs x 8 bits
    e_bit = 1.0 * (held / 8192) ** 0.5                      # Horowitz sqrt(capacity)
    adds = 2 * (3 - 1)                                      # (blocks - 1) per output
    assert r["partial_sum_bits"] == pytest.approx(2 * adds * 8)
    assert r["energy_pe_buffer_pj"] == pytest.approx(2 * adds * 8 * e_bit)


def test_pipeline_latency_formula():
    d = [np.array([3.0, 3.0, 3.0]), np.array([5.0, 5.0, 5.0]), np.array([1.0, 1.0, 1.0])]
    assert pipeline_latency_ns(d, "layer") == pytest.approx(9 + 2 * 5)
    assert pipeline_latency_ns(d, "none") == pytest.approx(27)


def test_adc_bits_and_ubits_move_energy():
    g = two_fc()
    base = map_network(g, tiny_spec()).summary["energy_by_component_pj"]
    hi = map_network(g, tiny_spec(adc_bits=8)).summary["energy_by_component_pj"]
    # the survey's 8-bit / 4-bit energy ratio (imc_simulators.md 5.2: 6.5/3.5 at 65 nm,
    # 1.71/0.92 at 32 nm, 0.85/0.46 at 22 nm: 1.848-1.859); both rates below the corner
    assert hi["adc"] / base["adc"] == pytest.approx(1.855, rel=0.01)
    lo_u = map_network(g, tiny_spec(), ubits=4).summary["energy_by_component_pj"]
    assert lo_u["membrane"] == pytest.approx(base["membrane"] / 2)
    assert lo_u["neuron"] == pytest.approx(base["neuron"] / 2)
    w4 = map_network(g, tiny_spec(), wbits=4)
    assert w4.layers["slices"].tolist() == [4, 4]
    assert w4.summary["energy_by_component_pj"]["adc"] == pytest.approx(4 * base["adc"])


# ----------------------------------------------------------------------------- activity


def ones_activity(g, T, B):
    act = {}
    for n in g.nodes:
        lay = g.nodes[n]["layer"]
        if lay.op in ("conv", "linear"):
            act[n] = np.ones((T, B, *lay.in_shape), dtype=np.float32)
        elif lay.op == "lif":
            act[n] = np.ones((T, B, *lay.shape), dtype=np.float32)
    return act


@pytest.mark.parametrize("gated", [False, True])
def test_all_ones_activity_equals_dense_without_padding(gated):
    g = seq_graph((3, 6, 6), [("conv", "c1", 5, 3, 1, 0), ("lif", "l1"), ("flatten", "f"),
                              ("linear", "fc", 7), ("lif", "l2")], T=3)
    spec = tiny_spec(gate_zero_reads=gated)
    dense = map_network(g, spec)
    act = map_network(g, spec, activity=ones_activity(g, 3, 2))
    assert act.summary["mode"] == "activity"
    assert act.summary["energy_pj"] == pytest.approx(dense.summary["energy_pj"])
    assert act.summary["latency_ns"] == pytest.approx(dense.summary["latency_ns"])
    assert act.summary["sops"] == pytest.approx(dense.summary["sops"])


def test_padding_makes_all_ones_cheaper_than_dense():
    g = seq_graph((3, 6, 6), [("conv", "c1", 5, 3, 1, 1), ("lif", "l1")], T=2)
    spec = tiny_spec(gate_zero_reads=False)
    dense = map_network(g, spec).layers.iloc[0]
    act = map_network(g, spec, activity=ones_activity(g, 2, 1)).layers.iloc[0]
    assert act["energy_array_pj"] < dense["energy_array_pj"]   # padded rows are inactive
    assert act["energy_adc_pj"] == pytest.approx(dense["energy_adc_pj"])  # no gating


def test_removing_spikes_lowers_energy():
    g = two_fc(T=4)
    rng = np.random.default_rng(0)
    full = ones_activity(g, 4, 8)
    sparse = {k: (rng.random(v.shape) < 0.2).astype(np.float32) for k, v in full.items()}
    spec = tiny_spec()                                       # gated
    e_full = map_network(g, spec, activity=full).summary
    e_sparse = map_network(g, spec, activity=sparse).summary
    assert e_sparse["energy_pj"] < e_full["energy_pj"]
    assert e_sparse["energy_by_component_pj"]["array"] < e_full["energy_by_component_pj"]["array"]
    assert e_sparse["energy_by_component_pj"]["adc"] < e_full["energy_by_component_pj"]["adc"]
    assert e_sparse["sops"] < e_full["sops"]
    # silence one block of fc1's input entirely: those reads are skipped when gated
    quiet = {k: v.copy() for k, v in full.items()}
    quiet["fc1"][..., :4] = 0
    L = map_network(g, spec, activity=quiet).layers.set_index("layer")
    assert L.loc["fc1", "read_skip_fraction"] == pytest.approx(0.5)
    assert L.loc["fc1", "adc_conversions"] == pytest.approx(4 * 1 * 5)
    ungated = map_network(g, tiny_spec(gate_zero_reads=False), activity=quiet)
    assert ungated.layers.set_index("layer").loc["fc1", "adc_conversions"] == 4 * 2 * 5
    # no spikes at all: only neuron and membrane upkeep is left
    zero = {k: np.zeros_like(v) for k, v in full.items()}
    z = map_network(g, spec, activity=zero).summary["energy_by_component_pj"]
    assert z["array"] == 0 and z["adc"] == 0 and z["neuron"] > 0


def brute_force_counts(x, layer, m):
    """Active rows per (sample, position, block) by explicit im2col."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    _, ho, wo = layer.out_shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    bidx = m.block_index()
    nb = len(m.block_rows)
    cg = m.in_per_group
    out = np.zeros((n, ho, wo, m.groups * nb), dtype=int)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]   # (n, c, kh, kw)
            for g in range(m.groups):
                p = patch[:, g * cg:(g + 1) * cg]
                for b in range(nb):
                    out[:, i, j, g * nb + b] = (p * (bidx == b)).sum(axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("mode", ["im2col", "kernel_position"])
@pytest.mark.parametrize("groups,stride,pad", [(1, 1, 1), (1, 2, 0), (2, 2, 1)])
def test_row_counts_match_brute_force_im2col(mode, groups, stride, pad):
    from codesign.graph.schema import ConvLayer
    rng = np.random.default_rng(1)
    cin, cout, k, hw = 6, 4, 3, 7
    ho = (hw + 2 * pad - k) // stride + 1
    lay = ConvLayer(in_shape=(cin, hw, hw), out_shape=(cout, ho, ho), in_channels=cin,
                    out_channels=cout, kernel_size=(k, k), stride=(stride, stride),
                    padding=(pad, pad), groups=groups)
    m = map_layer(lay, tiny_spec(xbar=5, mux=1), mode=mode)
    T, B = 2, 3
    x = (rng.random((T, B, cin, hw, hw)) < 0.4).astype(np.float32)
    act = row_block_activity(x, lay, m)
    ref = brute_force_counts(x.reshape(T * B, cin, hw, hw), lay, m)
    assert act.active_rows == pytest.approx(ref.sum(axis=(1, 2, 3)).reshape(T, B).mean(1))
    assert act.reads_nonzero == pytest.approx((ref > 0).sum(axis=(1, 2, 3)).reshape(T, B)
                                              .mean(1))
    assert act.positions_active == pytest.approx((ref > 0).any(-1).sum(axis=(1, 2))
                                                 .reshape(T, B).mean(1))
    assert act.input_rate == pytest.approx(x.reshape(T, B, -1).mean(axis=(1, 2)))


def test_analog_first_layer_bit_serial_and_dac():
    g = seq_graph((2, 4, 4), [("conv", "c1", 3, 3, 1, 1), ("lif", "l1")], T=2,
                  encoding="direct")
    spec = tiny_spec()                              # bit_serial, 4 bits
    dense = map_network(g, spec).layers.iloc[0]
    assert dense["analog_input"]
    x = np.full((2, 1, 2, 4, 4), 0.5, dtype=np.float32)
    x[..., 0, 0] = 1.0                               # 1.0 -> 15 = 0b1111, 0.5 -> 8 = 0b1000
    act = map_network(g, spec, activity={"c1": x}).layers.iloc[0]
    assert act["adc_conversions"] < dense["adc_conversions"] or not spec.crossbar.gate_zero_reads
    assert act["energy_array_pj"] < dense["energy_array_pj"]
    d = tiny_dict()
    d["input"] = {"first_layer": "dac", "bits": 4, "dac_energy": q(0.01, "pJ"),
                  "dac_area": q(0.2, "um2")}
    sd = spec_from_dict(d)
    r = map_network(g, sd, activity={"c1": x})
    row = r.layers.iloc[0]
    assert row["energy_dac_pj"] > 0 and row["area_dac_um2"] > 0


def test_activity_errors():
    g = two_fc()
    good = ones_activity(g, 2, 1)
    with pytest.raises(CodesignError, match="missing the input tensor"):
        map_network(g, tiny_spec(), activity={"fc1": good["fc1"]})
    with pytest.raises(CodesignError, match="did you mean 'fc1'"):
        map_network(g, tiny_spec(), activity={**good, "fc_1": good["fc1"]})
    with pytest.raises(CodesignError, match="expected shape"):
        map_network(g, tiny_spec(), activity={**good, "fc2": np.ones((2, 1, 4))})
    with pytest.raises(CodesignError, match="T = 3"):
        map_network(g, tiny_spec(), activity=ones_activity(g, 3, 1))


def test_lif_without_synaptic_producer_gets_a_row():
    g = seq_graph((4,), [("lif", "enc"), ("linear", "fc", 2), ("lif", "out")], T=2)
    r = map_network(g, tiny_spec())
    assert list(r.layers["layer"]) == ["fc", "enc"]
    assert r.layers.set_index("layer").loc["enc", "energy_neuron_pj"] == pytest.approx(
        2 * 4 * 2.0)
    assert r.summary["notes"]


# ----------------------------------------------------------------------------- report


def test_write_report(tmp_path):
    r = map_network(two_fc(), tiny_spec())
    paths = write_report(r, tmp_path / "out")
    for name in ("layers.csv", "per_step.csv", "summary.json", "energy_breakdown.png",
                 "area_breakdown.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["spec_name"] == "tiny" and s["energy_pj"] == pytest.approx(147.6)
    assert s["edap_unit"] == "pJ * ns * mm2"
    import pandas as pd
    df = pd.read_csv(paths["layers.csv"])
    assert list(df["layer"]) == ["fc1", "fc2"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp")]
    assert list(r.table().columns)[:2] == ["layer", "op"]


def test_avg_pooled_spikes_are_multi_level_bit_planes():
    from codesign.graph.schema import PoolLayer
    from codesign.graph.signals import input_signal
    from codesign.hw.activity import binary_planes, level_planes

    g = seq_graph((2, 4, 4), [("conv", "c1", 4, 3, 1, 1), ("lif", "l1"), ("pool", "p", 2),
                              ("conv", "c2", 4, 3, 1, 1), ("lif", "l2")], T=2)
    g.nodes["p"]["layer"] = PoolLayer(in_shape=(4, 4, 4), out_shape=(4, 2, 2), kind="avg",
                                      kernel_size=(2, 2), stride=(2, 2))
    from codesign.graph.signals import annotate
    annotate(g)
    assert input_signal(g, "c2").levels == 4 and input_signal(g, "c1").levels == 1
    assert level_planes(4) == 3 and level_planes(1) == 1
    planes = binary_planes(np.array([0, 0.25, 0.5, 0.75, 1.0]), analog=False, scheme="dac",
                           bits=8, levels=4)
    assert [p.astype(int).tolist() for p in planes] == [[0, 1, 0, 1, 0], [0, 0, 1, 1, 0],
                                                        [0, 0, 0, 0, 1]]
    spec = tiny_spec(gate_zero_reads=False)
    dense = map_network(g, spec).layers.set_index("layer")
    assert dense.loc["c2", "input_planes"] == 3 and dense.loc["c1", "input_planes"] == 1
    # recorded activity: one spike in four -> 0.25 everywhere: only bit plane 0 is active
    act = {"c1": np.ones((2, 1, 2, 4, 4), np.float32),
           "c2": np.full((2, 1, 4, 2, 2), 0.25, np.float32)}
    L = map_network(g, spec, activity=act).layers.set_index("layer")
    assert L.loc["c2", "input_planes"] == 3
    assert not L.loc["c2", "analog_input"]
    assert L.loc["c2", "energy_adc_pj"] == pytest.approx(dense.loc["c2", "energy_adc_pj"])
    assert L.loc["c2", "energy_array_pj"] < dense.loc["c2", "energy_array_pj"] / 3 + 1e-9
    # synaptic ops count non-zero inputs once, not once per plane
    assert L.loc["c2", "sops"] < dense.loc["c2", "sops"]


# ----------------------------------------------------------------------------- every preset


LINEAR_ONLY = """\
name: mlp
input_shape: [1, 8, 8]
T: 2
encoding: rate
neuron: {beta: 0.5, theta: 1.0, reset: subtract}
layers:
  - {flatten: true}
  - {linear: 20}
  - {linear: 10, lif: false}
"""


@pytest.mark.parametrize("preset", ["rram_physical_32nm", "sram_neurosim_22nm",
                                    "spikesim_rram_65nm"])
def test_linear_only_graph_maps_or_is_refused_cleanly(preset, tmp_path):
    from click.testing import CliRunner

    from codesign.cli.main import cli
    wl = tmp_path / "mlp.yaml"
    wl.write_text(LINEAR_ONLY)
    res = CliRunner().invoke(cli, ["map", str(wl), "--hw", preset, "--out",
                                   str(tmp_path / "out")])
    if preset == "spikesim_rram_65nm":               # SpikeSim's ELA costs conv layers only
        assert res.exit_code == 2, res.output
        err = [ln for ln in res.output.splitlines() if "error" in ln]
        assert len(err) == 1 and "compat: spikesim" in err[0] and "Traceback" not in res.output
    else:
        assert res.exit_code == 0, res.output
        s = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert s["energy_pj"] > 0 and set(s["layer_mapping"]) == {"fc1", "fc2"}
        assert "float layer" in s["layer_mapping"]["fc1"]


def test_leakage_is_static_power_times_latency():
    """tiny spec with 1 mW per ADC (at 4 bits) and 0.5 mW per PE buffer: fc1 builds 4 crossbars
    x 2 ADCs and 2 PEs, fc2 2 x 2 ADCs and 1 PE; the inference takes 42 ns (see the dense test):
    leakage fc1 = (8 x 1 + 2 x 0.5) mW x 42 ns = 378 pJ, fc2 = (4 + 0.5) x 42 = 189 pJ."""
    d = tiny_dict()
    d["adc"]["leakage"] = q(1.0, "mW")
    d["buffers"]["pe"]["leakage"] = q(500, "uW")
    r = map_network(two_fc(), spec_from_dict(d))
    L = r.layers.set_index("layer")
    assert r.summary["latency_ns"] == pytest.approx(42.0)
    assert L.loc["fc1", "energy_leakage_pj"] == pytest.approx(378.0)
    assert L.loc["fc1", "energy_leakage_adc_pj"] == pytest.approx(8 * 42.0)
    assert L.loc["fc1", "energy_leakage_pe_buffer_pj"] == pytest.approx(2 * 0.5 * 42.0)
    assert L.loc["fc1", "static_power_mw"] == pytest.approx(9.0)
    assert L.loc["fc2", "energy_leakage_pj"] == pytest.approx(189.0)
    assert r.summary["energy_pj"] == pytest.approx(147.6 + 378 + 189)
    # power gating: each layer leaks only while it works, 2 steps x 14 ns = 28 ns
    d["hierarchy"]["power_gating"] = True
    G = map_network(two_fc(), spec_from_dict(d)).layers.set_index("layer")
    assert G.loc["fc1", "energy_leakage_pj"] == pytest.approx(9.0 * 28)
    assert G.loc["fc2", "energy_leakage_pj"] == pytest.approx(4.5 * 28)


def test_buffer_capacity_is_checked_in_stated_units():
    """A 4x8x8 spike input (256 bits) fits the 3 tiles' 1 KB buffers; at 0.005 kB (SI: 5 B =
    40 bits) each, 3 x 40 = 120 bits do not, and the note says so in KB (256 / 8192)."""
    g = seq_graph((4, 8, 8), [("conv", "c1", 4, 3, 1, 1), ("lif", "l1")], T=1)
    assert not [n for n in map_network(g, tiny_spec()).summary["notes"] if "capacity" in n]
    d = tiny_dict()
    d["buffers"]["tile"]["size"] = q(0.005, "kB")
    notes = map_network(g, spec_from_dict(d)).summary["notes"]
    over = [n for n in notes if "over capacity" in n]
    assert len(over) == 1 and "c1" in over[0] and "0.0312 KB" in over[0]
    assert "0.0146 KB" in over[0]                            # 3 x 40 bits / 8192


def test_dac_input_bits_widen_the_digital_path():
    """A 3-bit DAC drives the direct-coded first layer (6 -> 2, 1-bit weights, 4-row blocks
    of 4 and 2 rows): one block's exact sum needs 1 + 3 + log2(4) = 6 bits, the whole fan-in
    1 + 3 + ceil(log2 6) = 7; the spike-fed second layer 1 + 1 + log2(2) = 3 and 3."""
    d = tiny_dict()
    d["input"] = {"first_layer": "dac", "bits": 3, "dac_energy": q(0.1, "pJ"),
                  "dac_area": q(0.166, "um2"), "dac_ref_bits": 1}
    del d["digital"]["shift_add"]["width"], d["digital"]["accumulator"]["width"]
    d["digital"]["shift_add"]["ref_width"] = d["digital"]["accumulator"]["ref_width"] = 8
    g = seq_graph((6,), [("linear", "fc1", 2), ("lif", "l1"), ("linear", "fc2", 2),
                         ("lif", "l2")], T=2, encoding="direct")
    L = map_network(g, spec_from_dict(d), static_input_once=False).layers.set_index("layer")
    assert bool(L.loc["fc1", "analog_input"])
    assert (L.loc["fc1", "shift_add_width"], L.loc["fc1", "accumulator_width"]) == (6, 7)
    assert (L.loc["fc2", "shift_add_width"], L.loc["fc2", "accumulator_width"]) == (3, 3)
    # energy ~ width: fc1's 2 x 2 conversions per step at 0.5 pJ x 6/8, T = 2
    assert L.loc["fc1", "energy_shift_add_pj"] == pytest.approx(2 * 4 * 0.5 * 6 / 8)
