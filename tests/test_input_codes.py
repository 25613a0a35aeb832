"""One definition of the first layer's analog input codes (codesign.hw.input_codes), shared by
the cost model's activity and the simulator's crossbar, against a hand count.

Oracle: mnist5k pixels are bytes ``k / 255``; scaled by 0.5 the driver's code at the fixed full
scale of 1 is ``round_half_even(k / 2)``, computed here in integers from ``k``. The bit planes of
those codes, unrolled into the 3x3 patches of the student's first conv (zero padding 1, one row
block of 9 rows), give every read's active rows by hand. The cost model used to rescale each
batch to its own maximum (``round(x / max x * 255)``), which gives ``k``, not ``k / 2``, here.
"""

from __future__ import annotations

import numpy as np
import pytest

from codesign.graph.from_model import graph_from_model
from codesign.hw.activity import binary_planes, row_block_activity
from codesign.hw.input_codes import input_codes, input_levels
from codesign.hw.mapping import map_layer
from codesign.hw.spec import load_spec, preset_path
from codesign.hw.topology import layer as graph_layer
from codesign.sim.accuracy import simulate
from codesign.sim.record import SimRecorder

N_IMAGES = 3


def _half_even(k: np.ndarray) -> np.ndarray:
    """``round(k / 2)`` with ties to even, in integers."""
    return k // 2 + ((k % 2 == 1) & ((k // 2) % 2 == 1))


@pytest.fixture(scope="module")
def half_images(mnist_test):
    x, y = mnist_test[0][:N_IMAGES], mnist_test[1][:N_IMAGES]
    k = np.rint(x.numpy().astype(np.float64) * 255).astype(np.int64)
    assert np.array_equal((k / 255).astype(np.float32), x.numpy())  # bytes k / 255
    assert k.max() == 255  # the full image reaches full scale; the scaled one only half of it
    xh = x * 0.5
    assert float(xh.max()) == 0.5
    return xh, y, k


def test_codes_are_the_same_in_numpy_and_torch_and_by_hand(half_images):
    xh, _, k = half_images
    hand = _half_even(k)
    assert hand.max() == 128
    np.testing.assert_array_equal(input_codes(xh.numpy(), 8), hand)
    np.testing.assert_array_equal(input_codes(xh, 8).numpy(), hand)
    # saturation above full scale, zero below it; 4 bits: 15 steps
    assert input_levels(4) == 15
    np.testing.assert_array_equal(input_codes(np.array([-0.2, 0.0, 0.5, 1.0, 3.0], np.float32),
                                              4), [0, 0, 8, 15, 15])


def test_dac_row_is_active_only_for_a_non_zero_code():
    x = np.array([0.0, 0.5 / 255 * 0.9, 1.5 / 255, 1.0], np.float32)  # codes 0, 0, 2, 255
    (plane,) = binary_planes(x, analog=True, scheme="dac", bits=8)
    assert plane.tolist() == [False, False, True, True]


def test_half_scale_image_same_reads_in_cost_model_simulator_and_by_hand(half_images, student):
    xh, y, k = half_images
    model = student
    spec = load_spec(preset_path("rram_physical_32nm"))
    rec = SimRecorder(keep=N_IMAGES)
    simulate(model, spec, xh, y, chips=1, nonideal="none", adc_bits=9, recorder=rec)
    stats = rec.read_stats()["conv1"]

    # by hand: codes, 8 planes, 3x3 patches of each plane, one row block of 9 rows
    graph = graph_from_model(model)
    lay = graph_layer(graph, "conv1")
    m = map_layer(lay, spec, name="conv1")
    assert m.row_blocks == 1 and sum(m.block_rows) == 9 and tuple(lay.in_shape) == (1, 28, 28)
    q = np.pad(_half_even(k)[:, 0], ((0, 0), (1, 1), (1, 1)))             # (B, 30, 30)
    planes = np.stack([(q >> b) & 1 for b in range(8)])                   # (8, B, 30, 30)
    active = sum(planes[:, :, i:i + 28, j:j + 28] for i in range(3) for j in range(3))
    assert np.array_equal(planes[7] == 1, q == 128)  # half scale: bit 7 only at the top code
    hand_active = int(active.sum())
    hand_zero = int((active == 0).sum())
    assert stats["reads"] == 8 * N_IMAGES * 28 * 28
    assert stats["active_rows"] == hand_active
    assert stats["zero_reads"] == hand_zero

    # the cost model, on the recorded input (static: the same image at every step)
    x_rec = rec.activity(model)["conv1"]
    assert np.array_equal(x_rec[0], xh.numpy())
    ba = row_block_activity(x_rec, lay, m, analog=True, scheme="bit_serial", bits=8)
    assert ba.planes == 8
    np.testing.assert_allclose(ba.active_rows * N_IMAGES, hand_active)
    np.testing.assert_allclose(ba.reads_nonzero * N_IMAGES, 8 * N_IMAGES * 28 * 28 - hand_zero)
    cost_planes = binary_planes(x_rec[0], analog=True, scheme="bit_serial", bits=8)
    for b in range(8):
        assert np.array_equal(cost_planes[b][:, 0], planes[b][:, 1:29, 1:29].astype(bool)), b


def test_synaptic_ops_count_rows_with_a_non_zero_code(student):
    """At 2 input bits (3 steps) a pixel below 1/6 has code 0: it drives no plane, so it is no
    synaptic op, although the pixel is non-zero. Hand-set input of three pixels, hand count on
    the student's first 3x3 conv."""
    x = np.zeros((1, 1, 1, 28, 28), np.float32)
    x[0, 0, 0, 10, 10] = 0.1   # code round(0.3) = 0
    x[0, 0, 0, 12, 12] = 0.5   # code round(1.5) = 2 (ties to even): plane 1 only
    x[0, 0, 0, 20, 20] = 1.0   # code 3: planes 0 and 1
    graph = graph_from_model(student)
    lay = graph_layer(graph, "conv1")
    m = map_layer(lay, load_spec(preset_path("rram_physical_32nm")), name="conv1")
    ba = row_block_activity(x, lay, m, analog=True, scheme="bit_serial", bits=2)
    # each driven pixel sits in the 3x3 patch of 9 output positions (all inside the image)
    assert ba.sop_rows[0] == 2 * 9
    assert ba.active_rows[0] == (1 + 2) * 9
