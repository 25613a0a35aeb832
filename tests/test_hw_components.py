"""Component models: bit-width laws, technology scaling, crossbar physics."""

from __future__ import annotations

import pytest
from test_hw_nets import q, tiny_dict, tiny_spec

from codesign.errors import CodesignError
from codesign.hw import tech
from codesign.hw.components import adc_bit_law, adc_model, build_components
from codesign.hw.spec import load_spec, preset_path, spec_from_dict


def test_adc_sar_scales_linearly_with_bits():
    s = tiny_spec()  # sar, 1 pJ / 10 um2 / 1 ns at 4 bits
    for b in (2, 4, 8):
        a = adc_model(s.adc, s.node_nm, bits=b)
        assert a.energy_pj == pytest.approx(b / 4)
        assert a.area_um2 == pytest.approx(10 * b / 4)
        assert a.latency_ns == pytest.approx(b / 4)


def test_adc_flash_scales_with_comparators():
    s = tiny_spec(adc_type="flash")
    a8 = adc_model(s.adc, s.node_nm, bits=8)
    assert a8.energy_pj == pytest.approx(255 / 15)
    assert a8.area_um2 == pytest.approx(10 * 255 / 15)
    assert a8.latency_ns == pytest.approx(1.0)  # one comparison
    assert adc_bit_law("flash", "energy", 1) == 1


def test_adc_walden_fom():
    d = tiny_dict()
    d["adc"]["energy_model"] = "walden"
    d["adc"]["fom"] = q(20, "fJ")
    s = spec_from_dict(d)
    assert adc_model(s.adc, s.node_nm, bits=6).energy_pj == pytest.approx(0.02 * 64)
    assert adc_model(s.adc, s.node_nm, bits=7).energy_pj == pytest.approx(0.02 * 128)


def test_spec_adc_bits_override_reaches_components():
    c4 = build_components(tiny_spec())
    c8 = build_components(tiny_spec(adc_bits=8))
    assert c8.adc.energy_pj == pytest.approx(2 * c4.adc.energy_pj)


def test_dac_scales_as_two_to_the_bits():
    d = tiny_dict()
    d["input"] = {"first_layer": "dac", "bits": 3, "dac_energy": q(0.1, "pJ"),
                  "dac_area": q(0.166, "um2"), "dac_ref_bits": 1}
    c = build_components(spec_from_dict(d))
    assert c.dac.energy_pj == pytest.approx(0.4)
    assert c.dac.area_um2 == pytest.approx(0.664)


def test_adders_scale_with_width():
    d = tiny_dict()
    d["digital"]["shift_add"]["ref_width"] = 4   # 0.5 pJ at 4 bits, used at 8
    c = build_components(spec_from_dict(d))
    assert c.shift_add.energy_pj == pytest.approx(1.0)
    assert c.shift_add.area_um2 == pytest.approx(2.0)
    assert c.shift_add.latency_ns == pytest.approx(1.0)  # 1 cycle at 1 GHz


def test_lif_and_membrane_scale_with_ubits():
    c = build_components(tiny_spec())
    assert c.lif(8).energy_pj == pytest.approx(2.0)
    assert c.lif(4).energy_pj == pytest.approx(1.0)
    assert c.lif(16).area_um2 == pytest.approx(10.0)
    assert c.membrane(8).energy_pj == pytest.approx(8 * 0.2)
    assert c.membrane(3).area_um2 == pytest.approx(3.0)


def test_crossbar_lumped_energy():
    c = build_components(tiny_spec()).crossbar
    assert c.read_energy(4, 4) == pytest.approx(4.0)   # full read
    assert c.read_energy(1, 4) == pytest.approx(1.0)
    assert c.area_um2 == 100


def test_crossbar_resistive_energy_is_v2_g_t():
    d = tiny_dict()
    d["crossbar"]["energy_model"] = "resistive"
    c = build_components(spec_from_dict(d)).crossbar
    # 0.1 V, 10 ns, G_mean = 55 uS on used columns, 10 uS off on the rest
    per_row = 1e-3 * 0.01 * 10 * (3 * 55 + 1 * 10)
    assert c.per_row_pj(3) == pytest.approx(per_row)
    assert c.read_energy(2, 3) == pytest.approx(2 * per_row)


def test_tech_table():
    assert tech.factor("energy", 45) == 1 and tech.factor("area", 45) == 1
    for quantity in ("energy", "area", "delay"):
        vals = [tech.factor(quantity, n) for n in (130, 90, 65, 45, 32, 22, 14, 7)]
        assert all(a > b for a, b in zip(vals, vals[1:], strict=False)), quantity
    e22 = tech.factor("energy", 22)
    assert tech.factor("energy", 20) < e22 < tech.factor("energy", 32)
    assert tech.scale("area", 10.0, 65, 65) == 10.0
    assert tech.scale("area", 1.0, 45, 65) == pytest.approx(1.5)
    assert len(tech.scaling_table()) == 8
    with pytest.raises(CodesignError, match="outside"):
        tech.factor("energy", 3)


def test_ref_node_scaling_applies():
    s = load_spec(preset_path("rram_physical_32nm"))
    c = build_components(s)
    # the mux was characterised at 65 nm (SpikeSim) and is used at 32 nm
    assert c.mux.energy_pj == pytest.approx(
        0.094245 * tech.factor("energy", 32) / tech.factor("energy", 65))
    # moving the whole spec to another node moves peripheral energy, not the cell physics
    s45 = s.with_overrides(node_nm=45)
    c45 = build_components(s45)
    assert c45.adc.energy_pj > c.adc.energy_pj
    assert c45.crossbar.per_row_pj(128) == pytest.approx(c.crossbar.per_row_pj(128), rel=0.05)


def test_interconnect_hops():
    c = build_components(tiny_spec()).interconnect
    assert c.hops(1) == 1 and c.hops(2) == 1 and c.hops(16) == 4
    assert c.spike_bits(3, 100) == 100
    c2 = build_components(tiny_spec().with_overrides(
        {"interconnect.spike_format": "aer", "interconnect.type": "noc"})).interconnect
    assert c2.spike_bits(3, 100) == 3 * 7
    assert c2.hops(36) == pytest.approx(4.0)
