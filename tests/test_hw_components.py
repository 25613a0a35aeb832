"""Component models: bit-width laws, technology scaling, crossbar physics."""

from __future__ import annotations

import math

import pytest
from test_hw_nets import q, tiny_dict, tiny_spec

from codesign.errors import CodesignError
from codesign.hw import adc_law, tech
from codesign.hw.components import adc_model, build_components
from codesign.hw.spec import load_spec, preset_path, spec_from_dict

# Murmann-survey regression as evaluated in ../shared/research/imc_simulators.md, section 5.2
# (accelergy-adc-plug-in model.yaml): node -> {bits: pJ per conversion}, below the rate corner
SURVEY_PJ = {65: {4: 3.5, 6: 4.0, 8: 6.5}, 32: {4: 0.92, 6: 1.07, 8: 1.71},
             22: {4: 0.46, 6: 0.53, 8: 0.85}}


@pytest.mark.parametrize("node", [65, 32, 22])
def test_adc_law_matches_the_survey_points(node):
    for bits, e in SURVEY_PJ[node].items():
        assert adc_law.energy_pj(bits, node, 1e8) == pytest.approx(e, rel=0.02), (node, bits)
    # area regression: ~6.0e3 um2 for 8 bits at 1 GS/s, 32 nm (research notes)
    assert adc_law.area_um2(8, 32, 1e9) == pytest.approx(6.0e3, rel=0.02)


def test_adc_rate_term_follows_the_schreier_fom():
    """Above the corner the survey FOM falls 2.872 dB per e-fold of rate: by hand from the
    plug-in's coefficients, an 8-bit ADC at 2 GS/s sits at FOMS 213.78 - 2.872 ln(2e9) =
    152.27 dB against the 8-bit cap 128.31 + 8 x 3.2205 = 154.07 dB: energy x 10^(1.80/10)."""
    ratio = 10 ** ((128.3068 + 8 * 3.22051 - (213.7807 - 2.87190 * math.log(2e9))) / 10)
    assert adc_law.energy_pj(8, 32, 2e9) / adc_law.energy_pj(8, 32, 1e8) == pytest.approx(
        ratio, rel=0.01)
    assert adc_law.energy_pj(4, 32, 2e9) == adc_law.energy_pj(4, 32, 1e8)  # 4 b: below corner


@pytest.mark.parametrize("preset", ["rram_physical_32nm", "sram_neurosim_22nm"])
def test_preset_adc_at_4_and_8_bits_within_the_survey_band(preset):
    """Every non-compat preset prices its ADC with the survey law: at 4 and 8 bits, at the
    preset's node and its own sample rate, within the survey's band for that node (the notes'
    4-bit value -5 % up to the 8-bit value + 15 % rate allowance)."""
    s = load_spec(preset_path(preset))
    lo, hi = {32: (0.92, 1.71), 22: (0.46, 0.85)}[int(s.node_nm)]
    e4 = adc_model(s.adc, s.node_nm, bits=4).energy_pj
    e8 = adc_model(s.adc, s.node_nm, bits=8).energy_pj
    assert lo * 0.95 <= e4 <= lo * 1.05, e4
    assert hi * 0.95 <= e8 <= hi * 1.15, e8


def test_spikesim_preset_anchors_the_law_at_its_adc():
    """SpikeSim quotes 2.03084 pJ / 693.633 um2 at 4 b, 65 nm: kept there exactly; other widths
    move by the survey's own ratio (65 nm: 6.5 / 3.5 from 4 to 8 bits)."""
    s = load_spec(preset_path("spikesim_rram_65nm"))
    a4 = adc_model(s.adc, s.node_nm, bits=4)
    assert a4.energy_pj == pytest.approx(2.03084) and a4.area_um2 == pytest.approx(693.633)
    a8 = adc_model(s.adc, s.node_nm, bits=8)
    assert a8.energy_pj / a4.energy_pj == pytest.approx(6.5 / 3.5, rel=0.02)


def test_adc_latency_laws():
    s = tiny_spec()  # sar, 1 ns at 4 bits
    for b in (2, 4, 8):
        assert adc_model(s.adc, s.node_nm, bits=b).latency_ns == pytest.approx(b / 4)
    f = tiny_spec(adc_type="flash")
    assert adc_model(f.adc, f.node_nm, bits=8).latency_ns == pytest.approx(1.0)


def test_walden_law_is_refused_cleanly():
    d = tiny_dict()
    d["adc"]["energy_model"] = "walden"
    with pytest.raises(CodesignError, match="adc.energy_model"):
        spec_from_dict(d)


def test_adc_leakage_scales_with_bits():
    s = load_spec(preset_path("rram_physical_32nm"))   # 0.2 mW at 8 bits (PUMA)
    assert adc_model(s.adc, s.node_nm, bits=8).leakage_mw == pytest.approx(0.2)
    assert adc_model(s.adc, s.node_nm, bits=4).leakage_mw == pytest.approx(0.1)


def test_row_driver_energy_is_its_derivation():
    s = load_spec(preset_path("rram_physical_32nm"))
    assert s.crossbar.row_energy_pj == pytest.approx(3.9e-3 * 100)   # 3.9 uW x 100 ns, mW*ns


def test_size_units_are_stated():
    from codesign.hw import units
    assert units.convert(8, "KB", "size") == 8.0
    assert units.convert(8, "KiB", "size") == 8.0
    assert units.convert(8, "kB", "size") == pytest.approx(8000 / 1024)
    assert units.convert(8, "kb", "size") == pytest.approx(8000 / 8192)   # kilobit
    assert units.convert(8, "kbit", "size") == pytest.approx(8000 / 8192)
    assert units.convert(1, "uW", "power") == pytest.approx(1e-3)


def test_buffer_energy_follows_sqrt_capacity():
    """Horowitz ISSCC 2014: 64-bit read of 8 KB 10 pJ, 32 KB 20 pJ: x4 capacity, x2 energy."""
    c = build_components(load_spec(preset_path("rram_physical_32nm")))
    pe = c.pe_buffer                                          # 8 KB
    assert pe.pj_per_bit_holding(2 * 8192) == pytest.approx(pe.pj_per_bit / 2)
    assert pe.pj_per_bit_holding(1e9) == pytest.approx(pe.pj_per_bit)


def test_spec_adc_bits_override_reaches_components():
    c4 = build_components(tiny_spec())
    c8 = build_components(tiny_spec(adc_bits=8))
    assert c8.adc.energy_pj / c4.adc.energy_pj == pytest.approx(1.855, rel=0.01)


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
    cell = c.crossbar.per_row_pj(128) - c.crossbar.row_energy_pj        # V^2 G t: no scaling
    assert c45.crossbar.per_row_pj(128) - c45.crossbar.row_energy_pj == pytest.approx(cell)
    assert c45.crossbar.row_energy_pj > c.crossbar.row_energy_pj       # the CMOS driver scales


def test_interconnect_hops():
    c = build_components(tiny_spec()).interconnect
    assert c.hops(1) == 1 and c.hops(2) == 1 and c.hops(16) == 4
    assert c.spike_bits(3, 100) == 100
    c2 = build_components(tiny_spec().with_overrides(
        {"interconnect.spike_format": "aer", "interconnect.type": "noc"})).interconnect
    assert c2.spike_bits(3, 100) == 3 * 7
    assert c2.hops(36) == pytest.approx(4.0)
