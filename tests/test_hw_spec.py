"""Hardware spec loading, units, sources, overrides and every validation refusal."""

from __future__ import annotations

import glob
import os

import pytest
import yaml
from test_hw_nets import q, tiny_dict, tiny_spec

from codesign.errors import CodesignError
from codesign.hw import units
from codesign.hw.spec import load_spec, preset_path, spec_from_dict

HERE = os.path.dirname(__file__)
PRESETS = sorted(glob.glob(os.path.join(HERE, "..", "hw_configs", "*.yaml")))


def refuse(d, *fragments, file="tiny.yaml"):
    with pytest.raises(CodesignError) as e:
        spec_from_dict(d, file=file)
    msg = str(e.value)
    assert file in msg, msg
    for f in fragments:
        assert f in msg, msg
    return msg


# ----------------------------------------------------------------------------- presets


@pytest.mark.parametrize("path", PRESETS, ids=os.path.basename)
def test_presets_load_with_a_source_for_every_constant(path):
    s = load_spec(path)
    assert s.file == path

    def quantities(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and "unit" in v:
                yield f"{prefix}{k}", v
            elif isinstance(v, dict):
                yield from quantities(v, f"{prefix}{k}.")

    found = dict(quantities(s.to_dict()))
    assert len(found) > 30
    for key, v in found.items():
        assert isinstance(v["source"], str) and v["source"].strip(), key
    # a constant written in the file never falls back to the default source
    raw = yaml.safe_load(open(path))
    raw.pop("sources", None)

    def written(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and "value" not in v:
                yield from written(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    for key in written(raw):
        if key in found:
            assert found[key]["source"] != "codesign default", key


def test_three_presets_exist():
    names = {os.path.basename(p) for p in PRESETS}
    assert {"spikesim_rram_65nm.yaml", "rram_physical_32nm.yaml",
            "sram_neurosim_22nm.yaml"} <= names
    assert os.path.isfile(preset_path("spikesim_rram_65nm"))


def test_spikesim_preset_values_in_canonical_units():
    s = load_spec(preset_path("spikesim_rram_65nm"))
    assert s.compat == "spikesim" and s.node_nm == 65
    assert s.crossbar.read_energy_pj == pytest.approx(1.76423)
    assert s.adc.energy_pj == pytest.approx(2.03084) and s.adc.mux == 8
    assert s.clock.freq_mhz == 250 and s.clock.period_ns == 4
    assert s.bits_per_cell == 4
    assert "ela_spikesim" in s.source_of("adc.energy")


def test_round_trip_to_dict():
    for path in PRESETS:
        s = load_spec(path)
        s2 = spec_from_dict(s.to_dict(), file="again")
        assert s2 == s


# ----------------------------------------------------------------------------- units


def test_unit_conversion_and_forms():
    d = tiny_dict()
    d["adc"]["energy"] = "1500 fJ"                            # compact form, source by prefix
    d["sources"] = {"adc": "a survey"}
    d["crossbar"]["area"] = {"value": 1e-4, "unit": "mm2", "source": "x"}
    d["device"]["t_read"] = {"value": 0.01, "unit": "us", "source": "x"}
    d["clock"]["frequency"] = q(2, "GHz")
    d["device"]["g_on"] = q(0.1, "mS")
    d["buffers"]["tile"]["size"] = q(8192, "bit")
    s = spec_from_dict(d, file="t.yaml")
    assert s.adc.energy_pj == pytest.approx(1.5)
    assert s.source_of("adc.energy") == "a survey"
    assert s.crossbar.area_um2 == pytest.approx(100)
    assert s.device.t_read_ns == pytest.approx(10)
    assert s.clock.freq_mhz == pytest.approx(2000)
    assert s.device.g_on_us == pytest.approx(100)
    assert s.buffers.tile.size_kb == pytest.approx(1)


def test_unit_helpers():
    assert units.normalise_unit("µm²") == "um2"
    assert units.dimension_of("pJ/bit") == "energy_per_bit"
    assert units.convert(3, "nJ", "energy") == 3000
    assert units.split_number_unit("2.5e-3 mm2") == (2.5e-3, "mm2")
    assert units.split_number_unit("7") is None


def test_longest_prefix_source_wins():
    d = tiny_dict()
    d["adc"]["energy"] = "1 pJ"
    d["adc"]["area"] = "10 um2"
    d["sources"] = {"adc": "general", "adc.area": "specific"}
    s = spec_from_dict(d)
    assert s.source_of("adc.energy") == "general"
    assert s.source_of("adc.area") == "specific"


# ----------------------------------------------------------------------------- refusals


REFUSED_VALUES = [
    # (section, key, value, fragments the one-line message must hold besides "section.key")
    ("adc", "bitz", 4, ("unknown key", "did you mean 'bits'")),
    ("adc", "energy", q(1, "um2"), ("'um2'", "area", "energy unit", "pJ")),
    ("adc", "latency", q(1, "fortnights"), ("unknown unit",)),
    ("mux", "energy", 0.1, ("no unit",)),
    ("adc", "energy", {"value": 1.0, "unit": "pJ"}, ("no source",)),
    ("adc", "energy", "1 pJ", ("no source",)),
    ("neuron", "energy", q(-1, "pJ"), ("impossible", ">= 0")),
    ("crossbar", "rows", 0, ("expected an integer >= 1",)),
    ("adc", "bits", 17, ("<= 16",)),
    ("device", "g_off", q(100, "uS"), ("below g_on",)),
    ("device", "levels", 3, ("power of two",)),
    ("crossbar", "signed", "diferential", ("did you mean 'differential'",)),
    ("crossbar", "gate_zero_reads", "yes", ("true or false",)),
    ("crossbar", "gate_zero_reads", "no", ("true or false",)),
    ("adc", "mux", 8, ("crossbar.cols",)),
]


@pytest.mark.parametrize("section,key,value,fragments", REFUSED_VALUES,
                         ids=[f"{s}.{k}={v!r}" for s, k, v, _ in REFUSED_VALUES])
def test_refused_value_names_file_key_and_reason(section, key, value, fragments):
    d = tiny_dict()
    d[section][key] = value
    refuse(d, f"{section}.{key}", *fragments)


def test_unknown_top_level_section_suggests():
    d = tiny_dict()
    d["crosbar"] = d.pop("crossbar")
    refuse(d, "crosbar", "did you mean 'crossbar'")


def test_missing_value():
    d = tiny_dict()
    del d["crossbar"]["rows"]
    refuse(d, "crossbar.rows", "missing")


def test_missing_section():
    d = tiny_dict()
    del d["clock"]
    refuse(d, "clock", "missing section")


def test_required_if():
    d = tiny_dict()
    d["input"]["first_layer"] = "dac"
    refuse(d, "input.dac_energy", "first_layer: dac")
    d = tiny_dict()
    d["compat"] = "spikesim"
    refuse(d, "spikesim", "compat: spikesim")


def test_file_errors(tmp_path):
    with pytest.raises(CodesignError, match="no such hardware spec file"):
        load_spec(tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("adc: [unclosed\n")
    with pytest.raises(CodesignError, match="invalid YAML at line 2"):
        load_spec(p)
    d = tiny_dict()
    d["adc"]["bits"] = 40
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(CodesignError, match=r"mine\.yaml: adc\.bits"):
        load_spec(p)


# ----------------------------------------------------------------------------- overrides


def test_with_overrides_aliases_and_paths():
    s = tiny_spec()
    s2 = s.with_overrides(adc_bits=6, xbar=8, wbits=3, ubits=5, clock_mhz="500 MHz")
    assert (s2.adc.bits, s2.crossbar.rows, s2.crossbar.cols) == (6, 8, 8)
    assert (s2.precision.wbits, s2.precision.ubits) == (3, 5)
    assert s2.clock.freq_mhz == 500
    assert s2.source_of("adc.bits") == "override"
    assert s.adc.bits == 4  # original untouched
    s3 = s.with_overrides({"neuron.energy": 3.0, "crossbar.signed": "differential"},
                          bits_per_cell=2)
    assert s3.neuron.energy_pj == 3.0 and s3.bits_per_cell == 2
    assert s3.crossbar.signed == "differential"
    assert s2.with_overrides(wbits=None).precision.wbits is None
    assert s.with_overrides(adc_bits=None) == s


def test_with_overrides_refusals():
    s = tiny_spec()
    with pytest.raises(CodesignError, match="did you mean 'adc_bits'"):
        s.with_overrides(adcbits=5)
    with pytest.raises(CodesignError, match="adc.bits.*<= 16"):
        s.with_overrides(adc_bits=20)
    with pytest.raises(CodesignError, match="did you mean 'bits'"):
        s.with_overrides({"adc.bit": 3})


# ----------------------------------------------------------------------------- issue 9 refusals


def test_precision_wbits_above_16_refused():
    d = tiny_dict()
    d["precision"]["wbits"] = 64
    refuse(d, "precision.wbits", "1 and <= 16")
    d["precision"]["wbits"] = 16
    assert spec_from_dict(d, file="tiny.yaml").precision.wbits == 16


@pytest.mark.parametrize("key,value", [("technology.node", 3), ("technology.node", 250),
                                       ("adc.ref_node", 180)])
def test_node_outside_scaling_table_refused_at_load(key, value):
    d = tiny_dict()
    sec, k = key.split(".")
    d[sec][k] = q(value, "nm")
    refuse(d, key, "outside the technology scaling table", "7..130 nm")


@pytest.mark.parametrize("value", ["1e300 pJ", ".inf", float("inf"), float("nan")])
def test_energy_huge_or_non_finite_refused(value):
    d = tiny_dict()
    d["neuron"]["energy"] = q(value, "pJ") if isinstance(value, float) else value
    refuse(d, "neuron.energy")


def test_duplicate_key_in_spec_file_refused(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text(yaml.safe_dump(tiny_dict(), sort_keys=False)
                 + "crossbar:\n  rows: 128\n")
    with pytest.raises(CodesignError, match=r"dup\.yaml: invalid YAML at line \d+.*duplicate key "
                       r"'crossbar' \(first at line \d+\)"):
        load_spec(p)
