"""The report writer: published as a whole, figures with fixed colours, table units, totals and
a log axis where layers differ by orders of magnitude."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex
from test_hw_nets import seq_graph, tiny_spec

from codesign.errors import CodesignError
from codesign.graph.workload import load_workload
from codesign.hw import load_spec, map_network, preset_path
from codesign.report import (
    COMPONENT_COLOURS,
    REPORT_FILES,
    area_figure,
    energy_figure,
    write_report,
)

ROOT = Path(__file__).resolve().parents[1]


def _bars(fig) -> dict[str, list]:
    """component -> its bar patches (drawn with gid = component)."""
    ax = fig.axes[0]
    out: dict[str, list] = {}
    for p in ax.patches:
        out.setdefault(p.get_gid(), []).append(p)
    return out


@pytest.fixture(scope="module")
def vgg16():
    g = load_workload(ROOT / "models" / "workloads" / "vgg16_cifar10.yaml")
    return map_network(g, load_spec(preset_path("sram_neurosim_22nm")))


def test_figures_fixed_colours_units_totals(vgg16):
    L = vgg16.layers
    e, a = energy_figure(vgg16), area_figure(vgg16)
    eb, ab = _bars(e), _bars(a)
    for bars in (eb, ab):
        for comp, patches in bars.items():
            assert {to_hex(p.get_facecolor()) for p in patches} == {COMPONENT_COLOURS[comp]}
    assert "adc" in eb and "adc" in ab          # one colour for the ADC in both figures
    assert "(uJ)" in e.axes[0].get_ylabel() and "(mm2)" in a.axes[0].get_ylabel()
    # stacked heights in uJ: each layer's bars add up to its energy_pj / 1e6
    heights = np.zeros(len(L))
    for patches in eb.values():
        for i, p in enumerate(patches):
            heights[i] += p.get_height()
    assert heights == pytest.approx(L["energy_pj"].to_numpy() / 1e6, rel=1e-9)
    total_uj = L["energy_pj"].sum() / 1e6
    assert f"total {total_uj:.4g} uJ" in e.axes[0].get_title()
    assert f"total {L['area_um2'].sum() / 1e6:.4g} mm2" in a.axes[0].get_title()
    labels = [t.get_text() for t in e.axes[0].texts]
    assert labels == [f"{v / 1e6:.3g}" for v in L["energy_pj"]]


def test_log_axis_only_when_layers_span_orders_of_magnitude(vgg16):
    L = vgg16.layers
    span = L["energy_pj"].max() / L["energy_pj"].min()
    assert span > 100                           # conv layers against the 512 -> 10 classifier
    assert energy_figure(vgg16).axes[0].get_yscale() == "log"
    even = map_network(seq_graph((8,), [("linear", "a", 8), ("lif", "la"), ("linear", "b", 8),
                                        ("lif", "lb")], T=2), tiny_spec())
    assert even.layers["energy_pj"].max() / even.layers["energy_pj"].min() < 100
    assert energy_figure(even).axes[0].get_yscale() == "linear"


def test_report_published_as_a_whole(tmp_path, vgg16):
    out = tmp_path / "rep"
    paths = write_report(vgg16, out)
    assert sorted(paths) == sorted(REPORT_FILES)
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0
    s = json.loads((out / "summary.json").read_text())
    assert s["energy_pj"] == pytest.approx(vgg16.summary["energy_pj"])
    # a second report replaces the first; nothing temporary is left beside it
    (out / "layers.csv").write_text("stale\n")
    write_report(vgg16, out)
    assert (out / "layers.csv").read_text().startswith("layer,")
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
    # extra files of the same report are published with it, and a later report may replace
    # a folder holding them
    paths = write_report(vgg16, out, extra={"notes.csv": lambda p: p.write_text("a,b\n")})
    assert (out / "notes.csv").read_text() == "a,b\n" and "notes.csv" in paths
    write_report(vgg16, out, names=["notes.csv"])
    assert not (out / "notes.csv").exists()
    with pytest.raises(CodesignError, match="replace the report's own"):
        write_report(vgg16, out, extra={"layers.csv": lambda p: None})
    # a folder with other files is not a report: refused, left as it was
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(CodesignError, match="other files"):
        write_report(vgg16, other)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
