"""Binary reads by partial-sum tables (:mod:`codesign.sim.table_read`) against independent
computations: the pattern index against the bits it packs, the table product against a float64
matrix product (exact on the grid), and every read of a network with and without tables."""

from __future__ import annotations

import math

import torch

from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.sim import crossbar as cb
from codesign.sim import network as hn
from codesign.sim.table_read import (
    build_table,
    on_sum_grid,
    table_bytes,
    table_index,
    table_product,
)
from codesign.snn.checkpoint import load_checkpoint


def _conductances(rows: int, cols: int, seed: int) -> torch.Tensor:
    """Cell conductances like a programmed block (units of dG): levels 0..3 above
    g_off = 0.1875 with 5 % lognormal variation."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 4, (rows, cols), generator=gen).to(torch.float32)
    var = torch.exp(0.05 * torch.randn(rows, cols, generator=gen))
    return (0.1875 + codes) * var


def test_index_packs_each_group_of_eight_bits():
    gen = torch.Generator().manual_seed(0)
    drive = (torch.rand(300, 64, generator=gen) < 0.4).to(torch.uint8)
    idx = table_index(drive)
    bits = drive.reshape(300, 8, 8).to(torch.int64)
    expect = (bits * (2 ** torch.arange(8))).sum(-1) + 256 * torch.arange(8)
    assert torch.equal(idx, expect)
    every = ((torch.arange(256).unsqueeze(1) >> torch.arange(8)) & 1).to(torch.uint8)
    assert torch.equal(table_index(every).squeeze(1), torch.arange(256))  # all 256 patterns


def test_grid_moves_cells_by_at_most_half_a_step_and_makes_column_sums_exact():
    g = _conductances(128, 96, 1)
    q = on_sum_grid(g.unsqueeze(0))[0]
    e = math.ceil(math.log2(float(g.sum(0).max()))) - 23
    step = 2.0 ** e
    assert float((q - g).abs().max()) <= step / 2
    assert float((q - g).abs().max()) > 0  # the grid does move cells (the test can fail)
    assert torch.equal(q / step, torch.round(q / step))  # integer multiples of the step
    # sums of any subset of a column are exact: float32 in two orders equals float64
    gen = torch.Generator().manual_seed(2)
    drive = (torch.rand(500, 128, generator=gen) < 0.5).to(torch.float32)
    exact = (drive.double() @ q.double()).float()
    assert torch.equal(drive @ q, exact)
    assert torch.equal(drive.flip(1) @ q.flip(0), exact)
    # without the grid the float32 product is not exact (what the grid is for)
    assert not torch.equal(drive @ g, (drive.double() @ g.double()).float())


def test_table_product_is_the_exact_product_on_the_grid():
    for rows, cols, density in ((128, 256, 0.23), (32, 80, 0.6), (64, 512, 0.05)):
        q = on_sum_grid(_conductances(rows, cols, rows).unsqueeze(0))[0]
        gen = torch.Generator().manual_seed(cols)
        drive = (torch.rand(1000, rows, generator=gen) < density).to(torch.uint8)
        got = table_product(drive, build_table(q))
        assert got.dtype == torch.float32 and got.shape == (1000, cols)
        assert torch.equal(got, (drive.double() @ q.double()).float())


def test_every_read_is_the_same_with_and_without_tables(monkeypatch):
    """The shipped student on two programmed chips, every non-ideality but read noise: every
    read of every layer returns what the matrix-product read returns, bit for bit, with every
    table built and with a byte budget that leaves some reads to the matrix product."""
    model, _ = load_checkpoint("models/student_w4u4.pt")
    spec = load_spec(preset_path("rram_physical_32nm")).with_overrides(
        {"nonideal.ir_drop.model": "first_order"})
    x = load_dataset("mnist5k", split_seed=0, test_fraction=0.2).x_test[:6]
    nonideal = ("programming", "stuck_at", "drift", "ir_drop", "adc")
    read, table = cb.CrossbarLayer.read, cb.CrossbarLayer._table
    budget = 3 * table_bytes(128, 256)  # conv2's and conv3's tables on 2 chips: 18.9, 37.7 MB
    runs = {}
    for cols, nbytes in ((cb.TABLE_MAX_COLS, cb.TABLE_BYTES_MAX), (cb.TABLE_MAX_COLS, budget),
                         (0, cb.TABLE_BYTES_MAX)):  # cols 0: every read by matrix product
        outs: list = []
        tabled: dict = {}

        def spy_read(self, *a, outs=outs, **k):
            y = read(self, *a, **k)
            outs.append((self.name, y.clone()))
            return y

        def spy_table(self, *a, tabled=tabled):
            t = table(self, *a)
            tabled.setdefault(self.name, set()).add(t is not None)
            return t

        monkeypatch.setattr(cb, "TABLE_MAX_COLS", cols)
        monkeypatch.setattr(cb, "TABLE_BYTES_MAX", nbytes)
        monkeypatch.setattr(cb.CrossbarLayer, "read", spy_read)
        monkeypatch.setattr(cb.CrossbarLayer, "_table", spy_table)
        net = hn.build(model.eval(), spec, (1, 28, 28), nonideal=nonideal)
        hn.predict_chips(net, x, hn.program_chips(net, hn.chip_seeds(5, 2)), batch=6)
        kept = {s.name: s.xbar._table_bytes for s in net.synapses.values()}
        runs[(cols, nbytes)] = (outs, tabled, kept)
    (with_t, tabled, _), (capped, part, kept), (without, none, _) = runs.values()
    assert {"conv2", "conv3"} <= tabled.keys() and not none  # both paths ran
    assert all(v == {True} for v in tabled.values())  # the default budget holds 2 chips
    # the small budget: conv2 and conv3 built tables up to it, then read by matrix product
    assert part["conv2"] == part["conv3"] == {True, False}
    assert 0 < min(kept["conv2"], kept["conv3"]) and max(kept.values()) <= budget
    assert [n for n, _ in with_t] == [n for n, _ in without] and len(with_t) >= 5
    for other in (capped, without):
        for (name, a), (_, b) in zip(with_t, other, strict=True):
            assert torch.equal(a, b), name
