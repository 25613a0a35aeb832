"""Training-time IR drop (``codesign.sim.wire_refresh``): the exact transfer on every
``every``-th chip, its per-cell attenuation on the chips between.

The exact path is checked against ``program_chip`` bit for bit (``every = 1``, and every refresh
chip); the chips between against the circuit itself: the independent nodal solver
(``codesign.sim.irdrop.solve_crossbar``, scipy's sparse LU on the Kirchhoff equations) on a
fresh programming-variation draw of a full 128x128 tile.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from codesign.cli.main import cli
from codesign.errors import CodesignError
from codesign.hw.spec import load_spec, preset_path
from codesign.sim import network as hn
from codesign.sim.irdrop import solve_crossbar
from codesign.sim.wire_refresh import RefreshedIRDrop
from codesign.snn.zoo import build_model

NAMES = ("ir_drop", "programming")


@pytest.fixture(scope="module")
def spec():
    return load_spec(preset_path("rram_physical_32nm")).with_overrides(
        {"nonideal.ir_drop.model": "transfer"})


def _net(spec, names=NAMES) -> hn.HardwareNet:
    torch.manual_seed(0)
    model = build_model("vgg-tiny", in_channels=1, image_size=8, num_classes=10, T=2,
                        quant={"wbits": 4, "ubits": 4})
    return hn.build(model.eval(), spec, (1, 8, 8), nonideal=names)


def _g(net: hn.HardwareNet) -> dict[str, torch.Tensor]:
    return {n: i.xbar.g.clone() for n, i in net.synapses.items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_every_one_and_every_refresh_chip_is_program_chip(spec):
    small = spec.with_overrides({"crossbar.rows": 32, "crossbar.cols": 32})
    ref, net = _net(small), _net(small)
    wires = RefreshedIRDrop(3)
    for c, seed in enumerate([5, 6, 7, 8]):
        gen_ref = hn.program_chip(ref, seed)
        gen = wires.program(net, seed)
        assert gen is not None and gen_ref is not None
        # same draws: the read-noise stream goes on identically
        assert torch.equal(torch.randn(4, generator=gen), torch.randn(4, generator=gen_ref))
        assert _same(_g(net), _g(ref)) == (c % 3 == 0), c  # exact only on refresh chips
    assert (wires.chips, wires.refreshes) == (4, 2)
    one = RefreshedIRDrop(1)
    for seed in (5, 6):
        hn.program_chip(ref, seed)
        one.program(net, seed)
        assert _same(_g(net), _g(ref))
    assert (one.chips, one.refreshes, one.attenuation) == (2, 2, None)


def test_without_ir_drop_every_chip_is_program_chip(spec):
    ref, net = _net(spec, ("programming",)), _net(spec, ("programming",))
    wires = RefreshedIRDrop(4)
    for seed in (1, 2, 3):
        hn.program_chip(ref, seed)
        wires.program(net, seed)
        assert _same(_g(net), _g(ref))
    assert wires.refreshes == 0


def test_attenuated_chip_against_the_nodal_solver(spec):
    """A chip between refreshes (a new 5 % programming-variation draw) against Kirchhoff's
    equations on its own conductances: within 1 % of the largest column current, where
    ignoring the wires errs by more than 5 %."""
    net = _net(spec)
    wires = RefreshedIRDrop(2)
    wires.program(net, 11)  # refresh chip
    wires.program(net, 12)  # attenuated chip
    assert wires.refreshes == 1
    _, _, pre = hn.draw_chips(net, [12])  # the same draws: this chip before the wires
    name = "conv2"
    xb = net.synapses[name].xbar
    R, C = xb.geom.rows, xb.geom.cols
    g_pre = pre[name][0, 0, 0].double().numpy()  # tile (row block 0, column block 0)
    rows, cols = xb.rb, min(C, xb.ncols)
    g_att = xb.g[0, 0, :rows, :cols].double().numpy()  # its used part, attenuated
    d = spec.device
    dg_s = xb.geom.dg_s
    ir = spec.nonideal.ir_drop
    rng = np.random.default_rng(0)
    worst_att = worst_ideal = 0.0
    for frac in (0.2, 1.0):
        x = (rng.random(R) < frac).astype(float)
        x[rows:] = 0.0  # only the layer's rows are driven
        v = x * d.v_read_v
        exact = solve_crossbar(g_pre * dg_s, v, ir.r_row_ohm, ir.r_col_ohm)[:cols]
        att = v[:rows] @ (g_att * dg_s)
        ideal = v @ (g_pre * dg_s)
        scale = np.abs(exact).max()
        worst_att = max(worst_att, np.abs(att - exact).max() / scale)
        worst_ideal = max(worst_ideal, np.abs(ideal[:cols] - exact).max() / scale)
    assert worst_att < 0.01, worst_att
    assert worst_ideal > 0.05, worst_ideal


@pytest.mark.parametrize("every", [0, -2, True, 2.5])
def test_bad_refresh_is_refused(every):
    with pytest.raises(CodesignError, match="--ir-refresh"):
        RefreshedIRDrop(every)


@pytest.mark.parametrize("args,expect", [
    (["--retrain", "--ir-refresh", "0"], "--ir-refresh 0: expected an integer >= 1"),
    (["--ir-refresh", "4"], "--ir-refresh: only used with --retrain"),
])
def test_cli_refuses_a_bad_ir_refresh(tmp_path, args, expect):
    r = CliRunner().invoke(cli, ["map", "models/student_w4u4.pt", "--hw",
                                 "hw_configs/rram_physical_32nm.yaml", "--data", "mnist5k",
                                 "--chips", "1", "--out", str(tmp_path / "o")] + args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and expect in lines[0], r.output
    assert not (tmp_path / "o").exists()
