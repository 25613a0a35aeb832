"""The crossbar simulator, all non-idealities off and a lossless ADC, against an exact reference.

The reference is the checkpoint's own quantized network (its Synapse and LIF code) evaluated on
an equivalent integer copy in float64, where every value is an exact integer or half-integer:
weights ``w_int`` with step 1, bias ``b_int``, thresholds ``theta_int``; the first layer reads
the pixel codes ``round(255 x)`` with its membrane step set to 255 (so ``I / s = N / 255 +
b_int`` exactly as the checkpoint defines it). The simulator computes the same equations
through bit slices, conductances, an ADC and shift-add: nothing is shared but the codes.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from codesign.data import load_dataset
from codesign.hw.spec import load_spec, preset_path
from codesign.sim import crossbar
from codesign.sim import network as hn
from codesign.snn.checkpoint import load_checkpoint
from codesign.snn.layers import BIAS_BITS

N_SAMPLES = 24


@pytest.fixture(scope="module")
def student():
    model, _ = load_checkpoint("models/student_w4u4.pt")
    return model.eval()


@pytest.fixture(scope="module")
def images():
    d = load_dataset("mnist5k", split_seed=0, test_fraction=0.2)
    return d.x_test[:N_SAMPLES], d.y_test[:N_SAMPLES]


@torch.no_grad()
def integer_reference(model):
    """Float64 copy of ``model`` on the integer grid (module docstring) and its input scale."""
    ref = copy.deepcopy(model).double().eval()
    syns = dict(model.synapses())
    first = True
    feeds = {}
    for name, syn in ref.synapses():
        orig = syns[name]
        w, b = orig.folded()
        w_int = orig.wq.integer(w).double()
        step = orig.weight_step().double()
        denom = 255.0 if first else 1.0
        syn.bn = None
        syn.op.weight.copy_(w_int)
        if b is not None:
            lim = 2 ** (BIAS_BITS - 1) - 1
            b_int = torch.round(torch.clamp(b.double() / step, -lim, lim))
            assert float((b_int * denom).abs().max()) <= lim  # no clipping in the copy
            syn.op.bias = nn.Parameter(b_int * denom)
        syn.wq.scale.fill_(1.0)
        feeds[id(syn)] = (denom, orig)
        first = False
    originals = dict(model.neurons())
    for name, lif in ref.neurons():
        syn = lif._scale_fn.__self__
        denom, _ = feeds[id(syn)]
        theta_int = float(originals[name].threshold_int())  # round(theta / s), clamped
        lif._scale_fn = (lambda d=denom: torch.tensor([d], dtype=torch.float64))
        lif.theta = theta_int * denom
    return ref


def test_integer_reference_keeps_the_thresholds(student):
    ref = integer_reference(student)
    for (_, a), (_, b) in zip(student.neurons(), ref.neurons(), strict=True):
        assert float(a.threshold_int()) == float(b.threshold_int())


@pytest.fixture(params=[False, True], ids=["crossbars", "shortcut"])
def shortcut(request, monkeypatch):
    """Both datapaths: every read through the crossbars, and the exact-integer shortcut that
    ideal chips with a lossless ADC take by default (:meth:`CrossbarLayer.exact_read`)."""
    monkeypatch.setattr(crossbar, "EXACT_SHORTCUT", request.param)
    return request.param


def test_ideal_crossbars_reproduce_the_quantized_network_exactly(student, images, shortcut):
    x, y = images
    spec = load_spec(preset_path("rram_physical_32nm"))
    net = hn.build(student, spec, (1, 28, 28), nonideal="none")
    bits = hn.lossless_adc_bits(net)
    assert bits == 9  # 128 rows x g_on/dG = 408 levels of column current
    net = hn.build(student, spec, (1, 28, 28), nonideal="none", adc_bits=bits)
    hn.program_chip(net, None)
    pred = hn.predict(net, x, None, record=True, batch=12)
    ref = integer_reference(student)
    ref.set_record(True)
    with torch.no_grad():
        logits = ref(torch.round(x.double() * 255.0))
    spikes = ref.spikes()
    assert set(spikes) == set(net.spikes)
    total = 0
    for name, s_ref in spikes.items():
        s_sim = torch.cat(net.spikes[name], dim=1)
        assert torch.equal(s_sim, s_ref.bool()), name
        total += int(s_ref.sum())
    assert total > 10_000  # the comparison covers many spikes
    ref_pred = logits.mean(0).argmax(-1)
    assert torch.equal(pred, ref_pred)
    assert (pred == y).float().mean() > 0.9


def test_one_bit_short_is_not_exact(student, images):
    """The test above can fail: with 8 ADC bits (LSB > one level) spikes change."""
    x, _ = images
    spec = load_spec(preset_path("rram_physical_32nm"))
    net = hn.build(student, spec, (1, 28, 28), nonideal="none", adc_bits=8)
    hn.program_chip(net, None)
    hn.predict(net, x[:8], None, record=True)
    ref = integer_reference(student)
    ref.set_record(True)
    with torch.no_grad():
        ref(torch.round(x[:8].double() * 255.0))
    diff = sum(int((torch.cat(net.spikes[k], 1) != v.bool()).sum())
               for k, v in ref.spikes().items())
    assert diff > 0


def test_float32_network_breaks_ties_by_rounding_noise(student, images):
    """Why the reference is integer: float32 and float64 runs of the checkpoint disagree."""
    x, _ = images
    m64 = copy.deepcopy(student).double()
    student.set_record(True)
    m64.set_record(True)
    with torch.no_grad():
        student(x)
        m64(x.double())
    s32, s64 = student.spikes(), m64.spikes()
    student.set_record(False)
    diff = sum(int((s32[k] != s64[k].float()).sum()) for k in s32)
    assert diff > 0


@pytest.mark.parametrize("overrides,bits", [
    ({"crossbar.signed": "offset"}, 9),  # offset code + digital correction
    ({"input.first_layer": "dac", "input.dac_energy": "0.01 pJ", "input.dac_area": "1 um2"},
     13),  # analog rows: LSB below 1/255 of a level on conv1's 9 rows needs 13 bits
])
def test_offset_columns_and_dac_rows_are_exact_too(student, images, overrides, bits,
                                                   shortcut):
    x, _ = images
    x = x[:8]
    spec = load_spec(preset_path("rram_physical_32nm")).with_overrides(overrides)
    net = hn.build(student, spec, (1, 28, 28), nonideal="none", adc_bits=bits)
    hn.program_chip(net, None)
    hn.predict(net, x, None, record=True)
    ref = integer_reference(student)
    ref.set_record(True)
    with torch.no_grad():
        ref(torch.round(x.double() * 255.0))
    for name, s_ref in ref.spikes().items():
        assert torch.equal(torch.cat(net.spikes[name], 1), s_ref.bool()), name
