"""The exact-integer shortcut of a crossbar read against the crossbar datapath itself.

Where :meth:`CrossbarLayer._exact` holds (ideal chips, no read noise, the ``array`` ADC range
with a lossless converter), a read is computed as the integer product ``x w^T``. Here both paths
read the same inputs on layers of random integer weights, with differential and offset columns,
binary and DAC rows, one drive shared by every chip and one per chip: the outputs and every
count the cost model charges must agree exactly; and the shortcut must not be taken when any of
its conditions fails (checked by the outputs it would change).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codesign.hw import nonideal as p
from codesign.sim import crossbar
from codesign.sim.adc import ADC, lossless_bits
from codesign.sim.crossbar import CrossbarLayer, Geometry, Models
from codesign.sim.nonideal import ProgrammingVariation, ReadNoise

GEOM = Geometry(rows=32, cols=32, levels=4, signed="differential", g_on=3.3, g_off=0.3,
                dg_s=1e-6)


def _layer(signed: str, k: int, cout: int, wbits: int, bits: int, seed: int) -> CrossbarLayer:
    g = torch.Generator().manual_seed(seed)
    lim = 2 ** (wbits - 1)
    w = torch.randint(-lim + 1, lim, (cout, k), generator=g)
    geom = dataclasses.replace(GEOM, signed=signed)
    return CrossbarLayer("fc", w, wbits, geom, ADC(bits=bits, full_scale=1.0))


def _read(layer: CrossbarLayer, rows: torch.Tensor, denom: int, on: bool, monkeypatch
          ) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    monkeypatch.setattr(crossbar, "EXACT_SHORTCUT", on)
    layer.stats = crossbar.ReadStats()
    blocks = torch.nn.functional.pad(rows, (0, layer.nb * layer.rb - layer.k)) \
        if layer.nb > 1 else rows
    blocks = blocks.reshape(rows.shape[0], rows.shape[1], layer.nb, layer.rb)
    n_act, dsq = blocks.sum(-1), (blocks * blocks).sum(-1)
    y = layer.read(rows, n_act, dsq, denom, [None] * layer.chips)
    st = layer.stats
    return y, (st.reads, st.zero_reads, st.active_rows, st.conversions)


@pytest.mark.parametrize("signed", ["differential", "offset"])
@pytest.mark.parametrize("denom", [1, 15])
@pytest.mark.parametrize("shared", [True, False])
def test_shortcut_equals_the_crossbar_datapath(signed, denom, shared, monkeypatch):
    k, cout, chips = 70, 9, 3  # 3 row blocks, the last one partial
    layer = _layer(signed, k, cout, wbits=4, bits=16, seed=1)
    layer.program(Models(), None)
    g = layer.g
    assert g is not None
    layer.set_chips([g[0]] * chips, None)
    gen = torch.Generator().manual_seed(2)
    D = 1 if shared else chips
    if denom == 1:
        rows = (torch.rand(D, 50, k, generator=gen) < 0.3).to(torch.float32)
        rows[:, :5] = 0  # all-inactive reads
        rows[:, 5, :32] = 0  # one block inactive
    else:
        rows = torch.randint(0, denom + 1, (D, 50, k), generator=gen) / denom
    assert layer._exact(denom, False)
    y_fast, st_fast = _read(layer, rows, denom, True, monkeypatch)
    y_xbar, st_xbar = _read(layer, rows, denom, False, monkeypatch)
    assert y_fast.shape == (chips, 50, cout)
    assert torch.equal(y_fast, y_xbar)
    assert st_fast == st_xbar
    assert st_fast[1] > 0 and st_fast[2] > 0 or denom != 1


def test_shortcut_only_where_the_datapath_is_exact(monkeypatch):
    layer = _layer("differential", 70, 9, wbits=4, bits=16, seed=3)
    layer.program(Models(), None)
    assert layer._exact(1, False)
    assert not layer._exact(1, True)  # calibration reads the raw currents
    # the ADC's LSB must stay below one level of the back end's grid 1/denom
    fs = float(layer.full_scale.max())
    just = _layer("differential", 70, 9, wbits=4, bits=lossless_bits(fs), seed=3)
    just.program(Models(), None)
    assert just._exact(1, False) and not just._exact(255, False)
    short = _layer("differential", 70, 9, wbits=4, bits=lossless_bits(fs) - 1, seed=3)
    short.program(Models(), None)
    assert not short._exact(1, False)
    # a varied chip, read noise, an ADC error, a calibrated range: the crossbar path
    varied = _layer("differential", 70, 9, wbits=4, bits=16, seed=3)
    varied.program(Models(programming=ProgrammingVariation(
        p.Programming(sigma=0.05, distribution="normal"))), torch.Generator().manual_seed(0))
    assert not varied._exact(1, False)
    noisy = _layer("differential", 70, 9, wbits=4, bits=16, seed=3)
    noisy.program(Models(), None)
    noisy.read_noise = ReadNoise(p.ReadNoise(sigma=0.01), GEOM.g_on)
    assert not noisy._exact(1, False)
    off = _layer("differential", 70, 9, wbits=4, bits=16, seed=3)
    off.adc = dataclasses.replace(off.adc, offset_lsb=0.3)
    off.program(Models(), None)
    assert not off._exact(1, False)
    cal = _layer("differential", 70, 9, wbits=4, bits=16, seed=3)
    cal.adc_range = "calibrated"
    cal.program(Models(), None)
    assert not cal._exact(1, False)
    monkeypatch.setattr(crossbar, "EXACT_SHORTCUT", False)
    assert not layer._exact(1, False)
