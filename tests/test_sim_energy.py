"""Energy from the hardware run itself (codesign.sim.record, codesign.mapflow), against oracles.

* Ideal crossbars (every non-ideality off, lossless ADC): the activity the simulated chip
  records equals, per layer and step, the activity of an independent exact integer copy of the
  quantized network (``integer_reference`` of tests/test_sim_network.py, a float64 forward of
  the checkpoint's own layers), with the hidden layers' inputs max-pooled by numpy; so the cost
  model's energy from either is the same number.
* A tiny hand-set network on sklearn digits with 4-row crossbars: the active rows and all-zero
  reads of every row-block read, counted by numpy from the spikes and the pixel codes, equal
  the simulator's read counts and the cost model's row-block activity.
* Stuck-on cells on offset-mapped columns only ever raise a weight (a cell's code goes up to
  the top level and every slice has a positive digital weight), and the first layer's inputs
  (pixels) are non-negative, so the first layer's currents grow and its neurons fire more:
  the drift is positive.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_sim_network import integer_reference

from codesign.data import load_dataset
from codesign.errors import CodesignError
from codesign.graph.from_model import graph_from_model
from codesign.hw import map_network
from codesign.hw.activity import row_block_activity
from codesign.hw.mapping import map_layer
from codesign.hw.spec import load_spec, preset_path
from codesign.hw.topology import layer as graph_layer
from codesign.mapflow import map_model
from codesign.sim.accuracy import simulate
from codesign.sim.record import SimRecorder
from codesign.snn.zoo import build_model

N_IMAGES = 12


@pytest.fixture(scope="module")
def mnist(mnist_test):
    x, y = mnist_test
    return x[:N_IMAGES], y[:N_IMAGES]


def _pool2(a: np.ndarray) -> np.ndarray:
    """2x2 max pool (stride 2, an odd last row / column dropped) of ``(T, B, C, H, W)`` bool
    spikes, by reshaping."""
    t, b, c, h, w = a.shape
    a = a[..., : h // 2 * 2, : w // 2 * 2]
    return a.reshape(t, b, c, h // 2, 2, w // 2, 2).max(axis=(4, 6))


def test_ideal_chip_records_the_exact_quantized_activity_and_energy(student, mnist):
    x, y = mnist
    spec = load_spec(preset_path("rram_physical_32nm")).with_overrides(adc_bits=9)
    rec = SimRecorder(keep=N_IMAGES)
    simulate(student, spec, x, y, chips=1, nonideal="none", adc_bits=9, recorder=rec)
    sim = rec.activity(student)

    ref = integer_reference(student)
    ref.set_record(True)
    with torch.no_grad():
        ref(torch.round(x.double() * 255.0))
    spikes = {k: v.bool().numpy() for k, v in ref.spikes().items()}
    ideal = dict(spikes)
    ideal["conv1"] = np.broadcast_to(x.numpy()[None], (student.T,) + tuple(x.shape)).copy()
    ideal["conv2"] = _pool2(spikes["lif1"])
    ideal["conv3"] = _pool2(spikes["lif2"])
    ideal["fc1"] = _pool2(spikes["lif3"]).reshape(student.T, N_IMAGES, -1)
    ideal["fc_out"] = spikes["lif_fc1"]
    assert set(sim) == set(ideal)
    for name, a in ideal.items():
        assert sim[name].shape == a.shape, name
        assert np.array_equal(sim[name], a), name  # every layer, every step, every sample
    # the recorder's per-step sums over all rows against the reference's spike counts
    for name, s in spikes.items():
        per_step = s.reshape(student.T, N_IMAGES, -1).sum(axis=(1, 2)) / N_IMAGES
        assert np.array_equal(rec.spikes_per_step()[name], per_step), name
    assert sum(int(s.sum()) for s in spikes.values()) > 5_000

    graph = graph_from_model(student)
    r_sim = map_network(graph, spec, activity=sim)
    r_ideal = map_network(graph, spec, activity=ideal)
    assert r_sim.summary["energy_pj"] == r_ideal.summary["energy_pj"]
    assert r_sim.layers["energy_pj"].tolist() == r_ideal.layers["energy_pj"].tolist()
    assert r_sim.per_step["energy_pj"].tolist() == r_ideal.per_step["energy_pj"].tolist()


def test_map_costs_the_simulated_run_and_says_so(student):
    """End to end: ``--chips`` costs the chips' activity; with ideal crossbars it equals the ideal
    network's, and the drift is exactly zero; ``samples`` bounds the rows kept."""
    spec = load_spec(preset_path("rram_physical_32nm"))
    res = map_model(student, spec, data="mnist5k", samples=6, seed=1, adc_bits=9,
                    hardware={"chips": 2, "nonideal": "none", "samples": 10})
    s = res.summary
    assert s["inputs"]["activity"] == "simulated"
    assert s["inputs"]["samples"] == 6 and s["inputs"]["activity_rows_seen"] == 10
    assert s["mode"] == "activity" and s["batch"] == 6
    assert s["energy_pj"] == s["energy_ideal_activity_pj"] and s["energy_change"] == 0.0
    rows = s["accuracy"]["firing_rate"]
    assert [r["layer"] for r in rows] == ["lif1", "lif2", "lif3", "lif_fc1"]
    assert all(r["drift"] == 0.0 and r["ratio"] == 1.0 for r in rows)
    assert all(0.0 < r["hardware_rate_all"] < 1.0 for r in rows)
    syn = res.layers[res.layers["layer"] != "fc_out"]
    assert (syn["firing_rate_drift"] == 0.0).all()
    assert (res.layers["energy_pj"] == res.layers["energy_ideal_activity_pj"]).all()
    # the simulator reads every row block of every output position at every step (conv2:
    # 14 x 14 positions x ceil(288 / 128) blocks x T = 4), the static conv1 once per sample
    reads = s["accuracy"]["reads_per_sample"]
    assert reads["conv2"]["reads_per_sample"] == 14 * 14 * 3 * 4
    assert reads["conv1"]["reads_per_sample"] == 28 * 28 * 1 * 8  # 8 bit-serial planes


def _tiny_net():
    """1 -> 2 channel 3x3 conv, 128 -> 5 -> 3 linear, hand-set weights (no random draw)."""
    m = build_model({"arch": "vgg", "in_channels": 1, "image_size": 8, "num_classes": 3,
                     "T": 3, "encoding": "direct", "channels": [2], "fc": [5],
                     "quant": {"wbits": 4, "ubits": 4}, "batch_norm": False})
    with torch.no_grad():
        w = m.layers["conv1"].op.weight
        w[0] = 0.25
        w[1] = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) * 0.5
        f = m.layers["fc1"].op
        k = torch.arange(f.weight.numel(), dtype=torch.float32).reshape(f.weight.shape)
        f.weight.copy_(torch.cos(k * 0.7) * 0.3)
        f.bias.fill_(0.1)
        o = m.layers["fc_out"].op
        k = torch.arange(o.weight.numel(), dtype=torch.float32).reshape(o.weight.shape)
        o.weight.copy_(torch.sin(k))
        o.bias.zero_()
    m.calibrate_quantizers()
    return m.eval()


@pytest.fixture(scope="module")
def digits():
    d = load_dataset("digits", split_seed=0)
    return d.x_test[:6], d.y_test[:6]


def _blocks(drive: np.ndarray, rows: int) -> np.ndarray:
    """Active rows of every row block: ``drive`` ``(..., K)`` 0/1 -> ``(..., ceil(K / rows))``."""
    k = drive.shape[-1]
    nb = -(-k // rows)
    pad = np.zeros(drive.shape[:-1] + (nb * rows - k,), dtype=np.int64)
    return np.concatenate([drive.astype(np.int64), pad], -1).reshape(
        drive.shape[:-1] + (nb, rows)).sum(-1)


def test_read_counts_by_hand_on_a_tiny_net(digits):
    x, y = digits
    rows = 4
    spec = load_spec(preset_path("rram_physical_32nm")).with_overrides(rows=rows, adc_bits=9)
    model = _tiny_net()
    rec = SimRecorder(keep=6)
    simulate(model, spec, x, y, chips=1, nonideal="none", adc_bits=9, recorder=rec)
    act = rec.activity(model)
    stats = rec.read_stats()
    T, B = model.T, x.shape[0]

    # conv1: pixel codes round(255 x), 8 bit-serial planes, im2col rows (c, i, j) of each 3x3
    # patch (zero padding 1), read once per sample (the static input)
    q = np.rint(x.numpy()[:, 0] * 255).astype(np.int64)                       # (B, 8, 8)
    qp = np.pad(q, ((0, 0), (1, 1), (1, 1)))
    patches = np.stack([qp[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)], -1)
    planes = np.stack([(patches >> b) & 1 for b in range(8)])                # (8, B, 8, 8, 9)
    act1 = _blocks(planes, rows)                                             # 3 blocks
    assert act1.shape[-1] == 3
    assert stats["conv1"]["reads"] == act1.size == 8 * B * 64 * 3
    assert stats["conv1"]["zero_reads"] == int((act1 == 0).sum()) > 0
    assert stats["conv1"]["active_rows"] == int(act1.sum())

    # fc1 (128 spike rows in 32 blocks) and fc_out (5 rows: blocks of 4 and 1), every step
    for name, k in (("fc1", 128), ("fc_out", 5)):
        s = act[name].reshape(T, B, k)
        a = _blocks(s, rows)                                                 # (T, B, nb)
        assert stats[name]["reads"] == a.size
        assert stats[name]["zero_reads"] == int((a == 0).sum())
        assert stats[name]["active_rows"] == int(a.sum()) > 0
    assert stats["fc1"]["zero_reads"] > 0 and stats["fc_out"]["zero_reads"] > 0

    # the cost model's row-block activity of the recorded inputs counts the same reads
    graph = graph_from_model(model)
    for name, analog in (("conv1", True), ("fc1", False), ("fc_out", False)):
        lay = graph_layer(graph, name)
        m = map_layer(lay, spec, name=name)
        ba = row_block_activity(act[name], lay, m, analog=analog, scheme="bit_serial", bits=8)
        nonzero = stats[name]["reads"] - stats[name]["zero_reads"]
        if analog:  # the static input: read once by the chip, the same counts at every step
            assert np.allclose(ba.active_rows * B, stats[name]["active_rows"])
            assert np.allclose(ba.reads_nonzero * B, nonzero)
        else:
            assert np.isclose(ba.active_rows.sum() * B, stats[name]["active_rows"])
            assert np.isclose(ba.reads_nonzero.sum() * B, nonzero)


def test_stuck_on_offset_cells_raise_first_layer_firing(digits):
    """Module docstring: the first layer's rate grows with the stuck-on rate (3 chips each)."""
    x, y = digits
    model = _tiny_net()
    rates = []
    for on_rate in (0.0, 0.05, 0.3):
        spec = load_spec(preset_path("rram_physical_32nm")).with_overrides(
            {"nonideal.stuck_at.on_rate": on_rate, "nonideal.stuck_at.off_rate": 0.0},
            signed="offset")
        rec = SimRecorder(keep=6)
        simulate(model, spec, x, y, chips=3, nonideal="stuck_at", adc_bits=12, seed=0,
                 recorder=rec)
        rates.append(rec.rates()["lif1"])
    # measured 0.325, 0.488, 0.674 (seed 0); each step must raise it by at least 0.05
    assert rates[1] > rates[0] + 0.05 and rates[2] > rates[1] + 0.05


def test_recorder_refuses_bad_input():
    with pytest.raises(CodesignError, match="keep"):
        SimRecorder(keep=0)
    rec = SimRecorder(keep=2)
    with pytest.raises(CodesignError, match="multiple"):
        rec.lif("lif1", torch.zeros(2, 5, 3), torch.zeros(2, 1))
    with pytest.raises(CodesignError, match="nothing recorded"):
        SimRecorder().inputs()


def test_reservoir_keeps_a_uniform_sample_of_rows():
    """Algorithm R: after N rows each row is kept with probability keep / N (binomial check
    over 400 seeded runs of 10 calls of 5 rows: rows 0..49, keep 10)."""
    hits = np.zeros(50)
    for seed in range(400):
        rec = SimRecorder(keep=10, seed=seed)
        for c in range(10):
            rows = torch.arange(5, dtype=torch.float32) + 5 * c
            s = torch.ones(1, 5, 1)
            rec.lif("a", s, rows[:, None])
        kept = rec.inputs()[:, 0].numpy().astype(int)
        assert len(set(kept.tolist())) == 10
        hits[kept] += 1
    p = hits / 400
    # each row: 400 Bernoulli(0.2) draws, sd = 0.02; 5 sd bound on every one of 50 rows
    assert np.all(np.abs(p - 0.2) < 0.1)
    assert rec.rows["a"] == 50 and rec.spikes_per_step()["a"][0] == 1.0


def test_row_counts_are_exact_spike_counts():
    """float32 row sums of 0/1 spikes equal an integer count, in the float32 and the fallback
    (non-float32) paths."""
    from codesign.sim.record import row_counts

    gen = torch.Generator().manual_seed(0)
    s = (torch.rand((6, 200_003), generator=gen) < 0.3).to(torch.float32)
    want = s.to(torch.int64).sum(-1).to(torch.float64)
    assert torch.equal(row_counts(s), want)
    assert torch.equal(row_counts(s.to(torch.float64)), want)
    assert row_counts(s).dtype == torch.float64
