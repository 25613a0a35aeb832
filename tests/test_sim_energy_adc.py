"""ADC area against bits: non-decreasing at fixed ADC sharing (codesign.hw.adc_law docstring).

Oracles: the survey area regression evaluated by hand at the design rate, and the property
that a wider converter never costs less area, per ADC and for a whole mapped network.
"""

from __future__ import annotations

import math

import pytest

from codesign.graph.from_model import graph_from_model
from codesign.hw import load_spec, map_network, preset_path
from codesign.hw.components import adc_model

PRESETS = ("rram_physical_32nm", "spikesim_rram_65nm", "sram_neurosim_22nm")


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("kind", ["sar", "flash"])
def test_adc_area_grows_with_bits(name, kind):
    spec = load_spec(preset_path(name)).with_overrides(adc_type=kind)
    areas = [adc_model(spec.adc, spec.node_nm, b).area_um2 for b in range(1, 17)]
    assert all(b >= a for a, b in zip(areas, areas[1:], strict=False)), areas
    assert areas[15] > 2 * areas[3]  # and it does grow


def test_area_is_the_survey_regression_at_the_design_rate():
    """32 nm preset, SAR, 4 bits: the regression by hand at f = 1 / 0.78125 ns (the 8-bit
    reference ADC's rate), with the energy law at the 4-bit sample rate (4 / 8 of the time)."""
    spec = load_spec(preset_path("rram_physical_32nm"))
    f_design, f4 = 1e9 / 0.78125, 1e9 / (0.78125 * 4 / 8)
    e4 = 0.866 * (1 + 2 ** (4 - 8.037)) * max(1.0, f4 / (1.07e9 * 3.069 ** 4)) ** 0.661
    want = math.exp(1.34619) * 32 ** 0.99328 * f_design ** 0.180715 * e4 ** 0.299124
    got = adc_model(spec.adc, spec.node_nm, 4)
    assert got.area_um2 == pytest.approx(want, rel=1e-3)
    assert got.energy_pj == pytest.approx(e4, rel=1e-3)


def test_spikesim_anchor_unchanged():
    """The preset quoting a measured ADC (693.633 um2 at 4 b, 65 nm) keeps it at its bits."""
    spec = load_spec(preset_path("spikesim_rram_65nm"))
    assert adc_model(spec.adc, spec.node_nm, 4).area_um2 == pytest.approx(693.633, rel=1e-9)


def test_network_adc_area_non_decreasing_in_bits(student):
    graph = graph_from_model(student)
    spec = load_spec(preset_path("rram_physical_32nm"))
    adc = [map_network(graph, spec.with_overrides(adc_bits=b)).summary[
        "area_by_component_um2"]["adc"] for b in (3, 4, 5, 6, 7, 8, 9)]
    assert all(b >= a for a, b in zip(adc, adc[1:], strict=False)), adc
