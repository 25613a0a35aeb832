"""Mapping counts for small layers, both modes, slicing, duplication, utilisation."""

from __future__ import annotations

import numpy as np
import pytest
from test_hw_nets import seq_graph, tiny_spec

from codesign.errors import CodesignError
from codesign.graph.schema import ConvLayer, LinearLayer
from codesign.hw.mapping import lossless_adc_bits, map_layer, resolve_wbits, weight_slices


def conv(cin, cout, k=3, hw=8, groups=1, wbits=None):
    return ConvLayer(in_shape=(cin, hw, hw), out_shape=(cout, hw, hw), in_channels=cin,
                     out_channels=cout, kernel_size=(k, k), padding=(k // 2, k // 2),
                     groups=groups, wbits=wbits)


def spec64(**over):
    # 64x64 crossbars, 1 bit per cell, offset; crossbars_per_pe 2, pes_per_tile 2
    return tiny_spec(xbar=64, **over)


def test_weight_slices():
    assert weight_slices(4, 1, "offset") == (4, 4)
    assert weight_slices(4, 4, "offset") == (1, 1)
    assert weight_slices(8, 2, "offset") == (4, 4)
    assert weight_slices(8, 2, "differential") == (4, 8)   # 7 magnitude bits
    assert weight_slices(1, 1, "differential") == (1, 2)


def test_im2col_counts():
    # 16 in, 32 out, 3x3: rows 144 -> 3 row blocks (64, 64, 16); 1-bit weights: 32 cols
    m = map_layer(conv(16, 32), spec64(), name="c")
    assert m.rows_per_group == 144
    assert m.block_rows == (64, 64, 16)
    assert (m.col_blocks, m.cols_used, m.crossbars) == (1, 32, 3)
    assert m.positions == 64
    assert m.pes == 2 and m.tiles == 1
    assert m.utilisation == pytest.approx(144 * 32 / (3 * 64 * 64))


def test_kernel_position_counts():
    # SpikeSim mapping: k^2 * ceil(Cin/X) * ceil(Cout/X) crossbars
    m = map_layer(conv(100, 130), spec64(), name="c", mode="kernel_position")
    assert len(m.block_rows) == 9 * 2
    assert m.block_rows[:2] == (64, 36)
    assert m.col_blocks == 3
    assert m.crossbars == 9 * 2 * 3
    assert m.utilisation == pytest.approx(900 * 130 / (54 * 64 * 64))
    # the same layer unrolled: 900 rows -> 15 blocks, 3 column blocks
    m2 = map_layer(conv(100, 130), spec64(), name="c", mode="im2col")
    assert m2.crossbars == 15 * 3


def test_slices_and_differential_widen_columns():
    s = spec64(wbits=4)                     # 4-bit weights on 1-bit cells, offset
    m = map_layer(conv(8, 20), s)
    assert (m.slices, m.cols_per_weight, m.cols_used, m.col_blocks) == (4, 4, 80, 2)
    sd = spec64(wbits=4, signed="differential", bits_per_cell=2)
    md = map_layer(conv(8, 20), sd)
    assert (md.slices, md.cols_per_weight, md.cols_used) == (2, 4, 80)


def test_wbits_precedence():
    s = spec64()                            # float_wbits 1
    layer = conv(8, 8, wbits=3)
    assert resolve_wbits(layer, s) == 3
    assert resolve_wbits(conv(8, 8), s) == 1
    assert resolve_wbits(layer, s.with_overrides(wbits=5)) == 5
    assert resolve_wbits(layer, s.with_overrides(wbits=5), override=2) == 2
    assert map_layer(layer, s, wbits=6).wbits == 6


def test_linear_and_duplication():
    lin = LinearLayer(in_features=200, out_features=70)
    m = map_layer(lin, spec64(), name="fc", duplication=3)
    assert m.block_rows == (64, 64, 64, 8)
    assert m.col_blocks == 2
    assert m.crossbars == 4 * 2 * 3
    assert m.positions == 1
    assert m.utilisation == pytest.approx(200 * 70 / (8 * 64 * 64))  # duplication cancels
    assert map_layer(lin, spec64(), mode="kernel_position").crossbars == 8


def test_grouped_conv():
    m = map_layer(conv(32, 32, groups=4), spec64())
    assert (m.groups, m.in_per_group, m.out_per_group) == (4, 8, 8)
    assert m.block_rows == (64, 8)
    assert m.crossbars == 4 * 2 * 1


def test_block_index_orders():
    m = map_layer(conv(16, 8), spec64())
    b = m.block_index()
    assert b.shape == (16, 3, 3)
    rows = np.arange(144).reshape(16, 3, 3)   # unfold order: channel, then kernel row, col
    assert (b == rows // 64).all()
    mk = map_layer(conv(100, 8), spec64(), mode="kernel_position")
    bk = mk.block_index()
    assert bk[0, 0, 0] == 0 and bk[64, 0, 0] == 1 and bk[0, 0, 1] == 2 and bk[99, 2, 2] == 17


def test_tiles_are_per_layer_unless_shared():
    g = seq_graph((64, 4, 4), [("conv", "c1", 64, 3, 1, 1), ("lif", "l1"),
                               ("conv", "c2", 64, 3, 1, 1), ("lif", "l2")])
    from codesign.hw import map_network
    own = map_network(g, spec64(share_tiles=False))
    shared = map_network(g, spec64())                       # shared is the default
    # 9 crossbars per layer -> 5 PEs -> 3 tiles each (owned), 10 PEs -> 5 tiles shared
    assert list(own.layers["tiles"]) == [3, 3] and own.summary["tiles"] == 6
    assert shared.summary["tiles"] == 5
    assert shared.layers["area_um2"].sum() < own.layers["area_um2"].sum()


def test_mapping_refusals():
    with pytest.raises(CodesignError, match="mapping"):
        map_layer(conv(8, 8), spec64(), mode="diagonal")
    with pytest.raises(CodesignError, match="duplication"):
        map_layer(conv(8, 8), spec64(), duplication=0)


def test_lossless_adc_bits():
    assert lossless_adc_bits(64, 1) == 7
    assert lossless_adc_bits(128, 2) == 9
    # a 4-bit DAC input applied at once: 128 rows x 3 x 15 = 5760 -> 13 bits
    assert lossless_adc_bits(128, 2, 4) == 13


# ----------------------------------------------------------------------------- float layers, area


def mlp(wbits=None):
    return seq_graph((784,), [("linear", "fc1", 100, wbits), ("lif", "l1"),
                              ("linear", "fc2", 10, wbits), ("lif", "l2")], encoding="rate")


@pytest.mark.parametrize("preset,slices,cpw", [
    ("rram_physical_32nm", 16, 32),    # 2 bits/cell, differential: ceil(31 / 2) magnitude slices
    ("sram_neurosim_22nm", 32, 32),    # 1 bit/cell, offset: 32 slices
    ("spikesim_rram_65nm", 8, 8),      # 4 bits/cell, offset: "8 slices of 4 bits"
])
def test_float_layers_map_as_32_bit_fixed_point(preset, slices, cpw):
    from codesign.hw import load_spec, preset_path
    spec = load_spec(preset_path(preset))
    for lay in ("fc1", "fc2"):
        m = map_layer(mlp().nodes[lay]["layer"], spec, name=lay)
        assert m.wbits == 32 >= 16 and m.wbits_source == "float"
        assert (m.slices, m.cols_per_weight) == (slices, cpw)
        assert m.describe().startswith("float layer (no quantizer): 32-bit fixed point, "
                                       f"{slices} slices of {spec.bits_per_cell} bit")
    q = map_layer(mlp(wbits=4).nodes["fc1"]["layer"], spec, name="fc1")
    assert q.wbits == 4 and q.wbits_source == "graph" and q.describe().startswith("quantized")


def test_float_net_widths_and_membrane_follow_the_bits():
    """rram preset: fc1 784 -> 100 on spikes (1 plane), 128-row blocks: shift-add holds one
    block's exact sum, 32 + 1 + log2(128) = 40 bits; the accumulator the whole fan-in,
    32 + 1 + ceil(log2 784) = 43 bits; a LIF without ubits stores 32 bits."""
    from codesign.hw import load_spec, map_network, preset_path
    r = map_network(mlp(), load_spec(preset_path("rram_physical_32nm")))
    L = r.layers.set_index("layer")
    assert (L.loc["fc1", "shift_add_width"], L.loc["fc1", "accumulator_width"]) == (40, 43)
    assert (L.loc["fc2", "shift_add_width"], L.loc["fc2", "accumulator_width"]) == (40, 40)
    assert L.loc["fc1", "ubits"] == 32
    assert "32-bit fixed point" in r.summary["layer_mapping"]["fc1"]
    q = map_network(mlp(wbits=4), load_spec(preset_path("rram_physical_32nm")))
    assert q.layers.set_index("layer").loc["fc1", "shift_add_width"] == 4 + 1 + 7


def test_area_is_what_is_built_and_grows_with_crossbars():
    """rram preset (128x128 cells of 0.049152 um2, 16 ADCs per crossbar): fc1 784 -> 100 at
    32 cpw is 7 x 25 = 175 crossbars, fc2 100 -> 10 is 1 x 3 = 3; each is charged its own
    crossbars and ADCs, and the utilisation is against those crossbars: used cells
    784*100*32 + 100*10*32 over (175 + 3) * 128 * 128."""
    from codesign.hw import load_spec, map_network, preset_path
    spec = load_spec(preset_path("rram_physical_32nm"))
    r = map_network(mlp(), spec)
    L = r.layers.set_index("layer")
    assert (L.loc["fc1", "crossbars"], L.loc["fc2", "crossbars"]) == (175, 3)
    cell = 128 * 128 * 0.049152
    from codesign.hw.components import build_components
    adc_um2 = build_components(spec).adc.area_um2
    for lay, xb in (("fc1", 175), ("fc2", 3)):
        assert L.loc[lay, "area_array_um2"] == pytest.approx(xb * cell)
        assert L.loc[lay, "area_adc_um2"] == pytest.approx(xb * 16 * adc_um2)   # 128 / mux 8
    assert L.loc["fc1", "area_adc_um2"] / L.loc["fc2", "area_adc_um2"] == pytest.approx(175 / 3)
    assert L.loc["fc1", "area_um2"] > 20 * L.loc["fc2", "area_um2"]
    used = 784 * 100 * 32 + 100 * 10 * 32
    assert r.summary["utilisation"] == pytest.approx(used / (178 * 128 * 128))
    # more output features -> more column blocks -> more area
    wider = map_network(seq_graph((784,), [("linear", "fc1", 200), ("lif", "l1")],
                                  encoding="rate"), spec).layers.iloc[0]
    assert wider["crossbars"] == 7 * 50 and wider["area_um2"] > L.loc["fc1", "area_um2"]
