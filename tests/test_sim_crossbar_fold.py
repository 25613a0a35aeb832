"""The fast simulator (chips folded into the batch, all-inactive reads gated) against
the slow code it replaced and against a dense loop-based reference of the read datapath.

1. Without read noise every random draw happens at programming, in the order of the code before
   the speed-up; its per-chip predictions and spike counts on 40 mnist5k test images and two
   chips (``chip_seeds(7, 2)``, every other non-ideality on) were recorded from that code
   (commit 2471df5, ``program_chip`` + ``predict`` one chip at a time) and are pinned here.
2. With read noise the draws changed: each chip reads its normals in sequence from one stream,
   ``torch.randn(N, generator=gen)`` after programming (:class:`Stream` here; the simulator's
   tape draws it ahead in chunks), ``active reads x columns`` values per read call, rows in
   (row block, read) order, columns slice-major (value ``j Cout + o`` of a row is the noise of
   slice ``j`` of output ``o``), and none for all-inactive reads (whose noise is zero: it
   scales with the drive). :func:`reference_chip` recomputes one chip densely from the
   docstring equations -- ``F.unfold`` patches, every read of every block (inactive ones too),
   ``I = x G + sigma g_on sqrt(sum x^2) z``, the ADC transfer function, ``g_off`` removal,
   rounding, shift-add with weights ``+-L^j`` -- sharing only the programmed conductances (and
   the generator's state after programming), the integer LIF and that draw order with the
   simulator. It puts the conductances on the read grid itself (:func:`_grid`, the equation of
   :mod:`codesign.sim.table_read`), so its float64 currents are exact and equal the simulator's.
3. Item 1's pins predate that grid (each conductance moved by at most ``2^-24`` of its column
   sum). Without read noise a few currents then cross an ADC step the other way, so the pins
   hold to within 5 10^-4 of each spike count and one prediction in 40 per chip (measured:
   0-17 spikes of 23,000-540,000, predictions 0 and 1 of 40); the same two chips are checked
   exactly against the dense reference instead.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.sim import network as hn
from codesign.snn.checkpoint import load_checkpoint
from codesign.snn.encoding import encode
from codesign.snn.layers import Synapse
from codesign.snn.neuron import LIF

NO_READ_NOISE = ("programming", "stuck_at", "drift", "ir_drop", "adc")

# recorded from the code before the speed-up (module docstring, item 1)
PINNED = [
    ([5, 5, 5, 1, 5, 5, 5, 7, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 1, 5, 1, 1, 5, 5, 7, 7, 5, 5, 5, 5,
      5, 5, 5, 6, 5, 5, 5, 5, 5, 0],
     {"lif1": 538410, "lif2": 391440, "lif3": 137400, "lif_fc1": 23322}),
    ([2, 3, 2, 3, 5, 5, 5, 0, 3, 5, 3, 3, 5, 7, 7, 6, 3, 3, 5, 3, 7, 1, 3, 3, 1, 1, 7, 3, 1, 1,
      5, 2, 7, 3, 5, 1, 7, 5, 6, 5],
     {"lif1": 522977, "lif2": 419539, "lif3": 116777, "lif_fc1": 21020}),
]


@pytest.fixture(scope="module")
def setup():
    model, _ = load_checkpoint("models/student_w4u4.pt")
    # the IR-drop model the pinned numbers were recorded with
    spec = load_spec(preset_path("rram_physical_32nm")).with_overrides(
        {"nonideal.ir_drop.model": "first_order"})
    d = load_dataset("mnist5k", split_seed=0, test_fraction=0.2)
    return model.eval(), spec, d.x_test[:40]


def test_folded_chips_reproduce_the_previous_code_without_read_noise(setup):
    model, spec, x = setup
    net = hn.build(model, spec, (1, 28, 28), nonideal=NO_READ_NOISE)
    gens = hn.program_chips(net, hn.chip_seeds(7, 2))
    pred = hn.predict_chips(net, x, gens, batch=20, count=True)
    for c, (p, counts) in enumerate(PINNED):
        # module docstring, item 3
        assert sum(a != b for a, b in zip(pred[c].tolist(), p, strict=True)) <= 1
        got = {k: int(v[c][0]) for k, v in net.chip_counts.items()}
        assert got.keys() == counts.keys()
        for k, n in counts.items():
            assert abs(got[k] - n) <= 5e-4 * n, (c, k, got[k], n)


def test_folded_chips_without_read_noise_match_the_dense_reference(setup):
    model, spec, x = setup
    net = hn.build(model, spec, (1, 28, 28), nonideal=NO_READ_NOISE)
    seeds = hn.chip_seeds(7, 2)
    pred = hn.predict_chips(net, x, hn.program_chips(net, seeds), batch=20, count=True)
    for c, s in enumerate(seeds):
        one = hn.build(model, spec, (1, 28, 28), nonideal=NO_READ_NOISE)
        gen = hn.program_chip(one, s)
        assert gen is not None
        ref_pred, ref_counts = reference_chip(one, 0, x, gen)
        assert {k: int(v[c][0]) for k, v in net.chip_counts.items()} == ref_counts
        assert pred[c].tolist() == ref_pred


def test_one_chip_at_a_time_equals_folded(setup):
    """Folding is only a batching: chip 1 alone gives what it gives beside chip 0 (same
    batches: the read noise is drawn per read call)."""
    model, spec, x = setup
    net = hn.build(model, spec, (1, 28, 28), nonideal="all")
    seeds = hn.chip_seeds(3, 2)
    both = hn.predict_chips(net, x[:8], hn.program_chips(net, seeds), batch=8)
    alone = hn.predict(net, x[:8], hn.program_chip(net, seeds[1]), batch=8)
    assert torch.equal(both[1], alone)
    assert not torch.equal(both[0], both[1])  # the chips differ (the test can fail)


def _digital_weights(cpw: int, levels: int) -> torch.Tensor:
    n = cpw // 2  # differential: n magnitude slices on the positive, then the negative column
    return torch.tensor([levels ** j for j in range(n)] + [-(levels ** j) for j in range(n)],
                        dtype=torch.float64)


class Stream:
    """``torch.randn(N, generator=gen)`` read in sequence, drawn 4096 values at a time (torch
    draws normals in blocks of 16, so the concatenation is the one long draw)."""

    def __init__(self, gen: torch.Generator) -> None:
        self.gen, self.buf = gen, torch.empty(0)

    def take(self, n: int) -> torch.Tensor:
        while self.buf.numel() < n:
            self.buf = torch.cat([self.buf, torch.randn(4096, generator=self.gen)])
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _grid(g: torch.Tensor) -> torch.Tensor:
    """Each row block ``g[b]`` ``(rows, cols)`` rounded to multiples of ``2^e``, ``e =
    ceil(log2(its largest column sum)) - 23``."""
    out = torch.empty_like(g)
    for b in range(g.shape[0]):
        e = math.ceil(math.log2(float(g[b].abs().sum(0).max()))) - 23
        out[b] = torch.round(g[b] / 2.0 ** e) * 2.0 ** e
    return out


def _dense_read(xb, g: torch.Tensor, inp: torch.Tensor, gen: Stream, sigma: float,
                g_off: float, max_code: int) -> torch.Tensor:
    """Every read of every block of one binary input ``inp`` ``(N, ...)``: ``(N L, Cout)``."""
    if xb.conv is not None:
        cols = F.unfold(inp, xb.conv["kernel"], padding=xb.conv["padding"],
                        stride=xb.conv["stride"]).transpose(1, 2).reshape(-1, xb.k)
    else:
        cols = inp.reshape(inp.shape[0], -1)
    M = cols.shape[0]
    cols = F.pad(cols, (0, xb.nb * xb.rb - xb.k)).reshape(M, xb.nb, xb.rb)
    n = cols.sum(-1)  # (M, nb) active rows
    cur = torch.einsum("mbr,brc->mbc", cols.double(), _grid(g).double()).float()
    active = (n > 0).t()  # (nb, M): noise rows in (block, read) order
    z = gen.take(int(active.sum()) * xb.ncols).reshape(-1, xb.cpw, xb.cout)
    z = z.transpose(1, 2).reshape(-1, xb.ncols)  # slice-major -> physical column o cpw + j
    noise = torch.zeros(xb.nb, M, xb.ncols)
    noise[active] = z
    cur = cur + noise.transpose(0, 1) * (sigma * torch.sqrt(n)).unsqueeze(-1)
    lsb = (xb.block_rows * xb.geom.g_on / max_code).reshape(1, xb.nb, 1)  # array range
    code = torch.clamp(torch.round(cur * (1.0 / lsb)), 0, max_code)
    m = torch.round(code * lsb - (n * g_off).unsqueeze(-1)).double()
    w = _digital_weights(xb.cpw, xb.geom.levels)
    return (m.reshape(M, xb.nb, xb.cout, xb.cpw) * w).sum(dim=(-1, 1)).float()


def reference_chip(net, c: int, x: torch.Tensor, gen: torch.Generator) -> tuple[list, dict]:
    """Predictions and spike counts of chip ``c`` (module docstring, item 2), dense."""
    model = net.model
    T = model.T
    sigma = net.spec.nonideal.read_noise.sigma * net.synapses["conv1"].xbar.geom.g_on \
        if "read_noise" in net.names else 0.0
    stream = Stream(gen)
    h = encode(x, model.encoding, T)
    first, counts, y = True, {}, None
    for name, layer in model.layers.items():
        if isinstance(layer, Synapse):
            xb = net.synapses[name].xbar
            geo = xb.geom
            if first:  # bit-serial 8-bit codes of the static image, read once per sample
                q = torch.round(h[0] * 255).to(torch.int64)
                y = sum(_dense_read(xb, xb.g[c], ((q >> b) & 1).float(), stream, sigma,
                                    geo.g_off, net.adc.max_code) * 2 ** b for b in range(8))
                denom, static = 255, True
            else:
                y = _dense_read(xb, xb.g[c], h.flatten(0, 1), stream, sigma, geo.g_off,
                                net.adc.max_code)
                denom, static = 1, False
            B = x.shape[0] * (1 if static else T)
            if xb.conv is not None:
                hh, ww = xb.conv["out_hw"]
                y = y.reshape(B, hh * ww, xb.cout).transpose(1, 2).reshape(B, xb.cout, hh, ww)
            pend = (y, denom, net.synapses[name].bias_int, static)
            step = net.synapses[name].step
            first = False
        elif isinstance(layer, LIF):
            y, denom, bias, static = pend
            h = hn.lif_int(layer, y, denom, bias, T, static)
            counts[name] = int(h.sum())
        else:
            h = layer(h)
    y, denom, bias, _ = pend
    logits = ((y.double() / denom + bias.double()) * step.double()).reshape(T, x.shape[0], -1)
    return logits.mean(0).argmax(-1).tolist(), counts


def test_read_noise_matches_the_dense_reference(setup):
    model, spec, x = setup
    x = x[:6]
    net = hn.build(model, spec, (1, 28, 28), nonideal="all")
    assert net.adc.offset_lsb == 0 and net.adc.gain_error == 0  # the reference's ADC
    seeds = hn.chip_seeds(11, 2)
    pred = hn.predict_chips(net, x, hn.program_chips(net, seeds), batch=6, count=True)
    for c, s in enumerate(seeds):
        one = hn.build(model, spec, (1, 28, 28), nonideal="all")
        gen = hn.program_chip(one, s)  # chip c's conductances, its generator after programming
        assert gen is not None
        ref_pred, ref_counts = reference_chip(one, 0, x, gen)
        assert {k: int(v[c][0]) for k, v in net.chip_counts.items()} == ref_counts
        assert pred[c].tolist() == ref_pred


def test_exact_ir_drop_of_one_chip_alone_equals_it_beside_another(setup):
    """Programming sweeps the exact IR-drop transfer of every tile of every layer and chip in
    one batch (``program_chips``); a chip's read conductances must not depend on what else is
    in that batch: chip 1 alone, bit for bit, is chip 1 programmed beside chip 0."""
    model, spec, _ = setup
    spec = spec.with_overrides({"nonideal.ir_drop.model": "transfer"})
    net = hn.build(model, spec, (1, 28, 28), nonideal=("ir_drop", "programming"))
    seeds = hn.chip_seeds(11, 2)
    hn.program_chips(net, seeds)
    both = {name: info.xbar.g[1].clone() for name, info in net.synapses.items()}
    hn.program_chip(net, seeds[1])
    for name, info in net.synapses.items():
        assert torch.equal(info.xbar.g[0], both[name]), name
    hn.program_chip(net, seeds[0])
    assert not torch.equal(net.synapses["fc1"].xbar.g[0], both["fc1"])  # chips differ
