"""Training / inference throughput of ``vgg-small`` in codesign, snnTorch and SpikingJelly (CPU).

Run::

    python tests/bench/bench_train.py [--quick] [--threads 1,2] [--rounds R] [--batches N]

The same architecture (conv3x3 1->32 + BN + LIF, maxpool2, conv 32->64 + BN + LIF, maxpool2,
conv 64->64 + BN + LIF, maxpool2, flatten, fc 576->256 + LIF, fc 256->10 readout; T = 4, direct
encoding, LIF beta = 0.5, theta = 1, subtract reset, atan surrogate alpha = 2) is trained with
the same step (cross-entropy on the mean logits over T, ``zero_grad``, ``backward``, Adam) on the
same mnist5k batches of 64 images in:

(a) codesign       ``build_model("vgg-small")`` (time folded into the batch, fused LIF);
(b) snnTorch       ``snn.Leaky(beta=0.5, threshold=1.0, spike_grad=surrogate.atan(alpha=2),
                   reset_mechanism="subtract", reset_delay=False)`` with the explicit Python
                   loop over T of the snnTorch tutorials (conv/BN/pool/linear called per step);
                   ``reset_delay=False`` is the setting equal to our LIF (the default ``True``
                   subtracts the threshold one step late; it is timed too, as "snnTorch
                   (default reset_delay)", and the ratio is taken against the fastest peer);
(c) SpikingJelly   2.0.0 multi-step: ``layer.Conv2d/BatchNorm2d/MaxPool2d/Flatten/Linear`` +
                   ``neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=None,
                   surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")``,
                   ``functional.set_step_mode(net, "m")``, ``functional.reset_net`` per batch.
                   SJ 2.0.0 has no ``backend=`` argument any more: on CPU, LIFNode dispatches to
                   its registered op ``torch.ops.sj_lif`` (pure-torch fused forward and a
                   hand-written BPTT backward, ``spikingjelly/_ops/lif/cpu.py``); cupy is not
                   involved. H = V - V/tau + X = 0.5 V + X, i.e. beta = 1 - 1/tau = 0.5.

Equivalence is checked first (same parameter count; weights copied from codesign into both peers;
eval-mode logits and spikes equal; train-mode logits and all gradients equal for SpikingJelly).
Known, documented differences that do not change the cost: snnTorch fires on ``H > theta``
(ours and SJ on ``H >= theta``), detaches the reset from the graph, and a per-step BatchNorm call
normalises with the statistics of each step (B images) instead of the T*B folded batch, so
snnTorch train-mode outputs/gradients are not bit-comparable (eval mode is).

Dependency workaround: importing spikingjelly 2.0.0 fails with ``No module named 'loguru'``
(``spikingjelly/logger.py``). Install the one small pure-python module without dependencies::

    .venv/bin/pip install --no-deps "loguru==0.7.3"

Nothing else is needed (torchvision/torchaudio/tensorboard are not imported by the
``activation_based`` neuron/layer/functional modules used here; never install torchvision from
PyPI, it would not match this torch).

Timing: warm-up, then ``--rounds`` interleaved rounds (the contender order rotates every round);
each round times ``--batches`` training steps per contender with ``time.perf_counter`` (wall)
and ``time.process_time`` (CPU time of this process: less sensitive to other jobs taking the
cores, though not to their use of caches and memory bandwidth; with several threads it also
counts spinning). The table gives the median samples/s over rounds and the ratio codesign /
fastest peer, with the ratio also computed per round (the median of per-round ratios is less
sensitive to load drifting between rounds). Inference (``eval()``, ``torch.no_grad()``) is
timed the same way.
The report is written atomically to ``reports/bench/train_throughput.md``.

Quantized training step (``--quant``)::

    python tests/bench/bench_train.py --quant [--threads 2] [--rounds R] [--batches N]

times, in the same run, on the same batches and with the same interleaving, the codesign
float step (``models/teacher_fp.pt``) against the W4/U4 step (``models/student_w4u4.pt``:
LSQ weights, BN folded with batch statistics, 4-bit integer membrane; first conv and readout
at 8 bits) with the fused quantized LIF, and the same W4/U4 model with every LIF running the
per-step autograd
reference (``LIF.reference_forward``, the implementation before the fused one), and the W4/U4
model with BN frozen (``freeze_batchnorm``: fold with the running statistics, one convolution
per layer; the ``--freeze-bn-after`` option, an approximation of the batch-statistics fold).
It first checks that fused and reference W4/U4 give the same train-mode logits and gradients,
and that the BN-frozen train-mode logits equal the eval-mode ones, profiles one
step of each model (``torch.profiler``, top operators by self CPU time) and writes
``reports/bench/train_quant.md``. The hardware-aware step (the closed loop's training step
through the crossbar simulator with non-idealities on, :func:`_hardware_aware`) is timed in the
same rounds against the same float step (goal: at most 2.5x), and so is the same step with the
training-time IR drop of ``--ir-refresh`` (:func:`_hw_refresh_name`: the exact transfer on one
training chip per round, its attenuation on the others, so that every round holds exactly one
refresh and its median is the amortised cost of a refresh every ``--batches`` chips).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codesign.allocator import keep_freed_memory  # noqa: E402
from codesign.data import load_dataset  # noqa: E402
from codesign.io import atomic_write_text  # noqa: E402
from codesign.snn.zoo import build_model  # noqa: E402

BATCH = 64
T = 4
REPORT = ROOT / "reports" / "bench" / "train_throughput.md"
REPORT_QUANT = ROOT / "reports" / "bench" / "train_quant.md"
QUANT = {"wbits": 4, "ubits": 4}
TEACHER, STUDENT = "teacher_fp.pt", "student_w4u4.pt"  # shipped vgg-small checkpoints


# --------------------------------------------------------------------------------- peers
def build_snntorch(reset_delay: bool = False) -> nn.Module:
    import snntorch as snn
    from snntorch import surrogate

    def leaky() -> nn.Module:
        return snn.Leaky(beta=0.5, threshold=1.0, spike_grad=surrogate.atan(alpha=2),
                         reset_mechanism="subtract", reset_delay=reset_delay)

    class SnnTorchVGG(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(32)
            self.lif1 = leaky()
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(64)
            self.lif2 = leaky()
            self.conv3 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(64)
            self.lif3 = leaky()
            self.fc1 = nn.Linear(576, 256)
            self.lif4 = leaky()
            self.fc_out = nn.Linear(256, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mem1 = self.lif1.init_leaky()
            mem2 = self.lif2.init_leaky()
            mem3 = self.lif3.init_leaky()
            mem4 = self.lif4.init_leaky()
            out = []
            for _ in range(T):  # direct encoding: the same image at every step
                spk1, mem1 = self.lif1(self.bn1(self.conv1(x)), mem1)
                h = F.max_pool2d(spk1, 2)
                spk2, mem2 = self.lif2(self.bn2(self.conv2(h)), mem2)
                h = F.max_pool2d(spk2, 2)
                spk3, mem3 = self.lif3(self.bn3(self.conv3(h)), mem3)
                h = F.max_pool2d(spk3, 2).flatten(1)
                spk4, mem4 = self.lif4(self.fc1(h), mem4)
                out.append(self.fc_out(spk4))
            return torch.stack(out)  # (T, B, 10)

    return SnnTorchVGG()


def build_spikingjelly() -> nn.Module:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif() -> nn.Module:
        return neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=None,
                              surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")

    net = nn.Sequential(
        layer.Conv2d(1, 32, 3, padding=1, bias=False), layer.BatchNorm2d(32), lif(),
        layer.MaxPool2d(2),
        layer.Conv2d(32, 64, 3, padding=1, bias=False), layer.BatchNorm2d(64), lif(),
        layer.MaxPool2d(2),
        layer.Conv2d(64, 64, 3, padding=1, bias=False), layer.BatchNorm2d(64), lif(),
        layer.MaxPool2d(2),
        layer.Flatten(),
        layer.Linear(576, 256), lif(),
        layer.Linear(256, 10),
    )
    functional.set_step_mode(net, "m")

    class SJVGG(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            functional.reset_net(self.net)
            x_seq = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)  # direct encoding, as in SJ tutorials
            return self.net(x_seq)  # (T, B, 10)

    return SJVGG()


# ------------------------------------------------------------------------ equivalence
def _codesign_tensors(cs: nn.Module) -> list[torch.Tensor]:
    """codesign parameters and BN buffers in the peers' order (conv, bn..., fc)."""
    L = cs.layers
    out: list[torch.Tensor] = []
    for i in (1, 2, 3):
        syn = L[f"conv{i}"]
        out += [syn.op.weight, syn.bn.weight, syn.bn.bias, syn.bn.running_mean,
                syn.bn.running_var]
    out += [L["fc1"].op.weight, L["fc1"].op.bias, L["fc_out"].op.weight, L["fc_out"].op.bias]
    return out


def _peer_tensors(name: str, m: nn.Module) -> list[torch.Tensor]:
    if name.startswith("snntorch"):
        convs = [(m.conv1, m.bn1), (m.conv2, m.bn2), (m.conv3, m.bn3)]
        fcs = [m.fc1, m.fc_out]
    else:
        seq = m.net
        convs = [(seq[0], seq[1]), (seq[4], seq[5]), (seq[8], seq[9])]
        fcs = [seq[13], seq[15]]
    out: list[torch.Tensor] = []
    for conv, bn in convs:
        out += [conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var]
    for fc in fcs:
        out += [fc.weight, fc.bias]
    return out


@torch.no_grad()
def copy_weights(cs: nn.Module, name: str, peer: nn.Module) -> None:
    for src, dst in zip(_codesign_tensors(cs), _peer_tensors(name, peer), strict=True):
        assert src.shape == dst.shape, (name, src.shape, dst.shape)
        dst.copy_(src)


def _lif_spikes(name: str, m: nn.Module, xb: torch.Tensor) -> list[torch.Tensor]:
    """Spikes of every LIF layer in eval mode (codesign records them; SJ via forward hooks)."""
    m.eval()
    if name == "codesign":
        m.set_record(True)
        with torch.no_grad():
            m(xb)
        out = [s.detach() for s in m.spikes().values()]
        m.set_record(False)
        return out
    out = []
    hooks = [mod.register_forward_hook(lambda _m, _i, o: out.append(o.detach()))
             for mod in m.net if type(mod).__name__ == "LIFNode"]
    with torch.no_grad():
        m(xb)
    for h in hooks:
        h.remove()
    return out


def _compare(cs: nn.Module, peers: dict[str, nn.Module], xb: torch.Tensor, yb: torch.Tensor,
             tag: str) -> tuple[list[str], dict[str, float]]:
    lines: list[str] = []
    stats: dict[str, float] = {}
    cs.eval()
    with torch.no_grad():
        ref = cs(xb)
    for name, m in peers.items():
        m.eval()
        with torch.no_grad():
            diff = float((m(xb) - ref).abs().max())
        stats[f"logits {name}"] = diff
        lines.append(f"- {tag} eval logits (T, B, 10): codesign vs {name}: max |diff| = "
                     f"{diff:.2e}")
    sj = peers["spikingjelly"]
    a, b = _lif_spikes("codesign", cs, xb), _lif_spikes("spikingjelly", sj, xb)
    mism = sum(int((u.reshape(v.shape) != v).sum()) for u, v in zip(a, b, strict=True))
    stats["spike mismatches"] = mism
    lines.append(f"- {tag} eval spikes, all 4 LIF layers: codesign vs spikingjelly: {mism} "
                 f"mismatches out of {sum(u.numel() for u in a):,} "
                 f"({sum(int(u.sum()) for u in a):,} spikes)")
    # train mode: BN over the T*B folded batch in codesign and SJ -> same logits and gradients
    cs.train()
    sj.train()
    cs.zero_grad()
    sj.zero_grad()
    F.cross_entropy(cs(xb).mean(0), yb).backward()
    F.cross_entropy(sj(xb).mean(0), yb).backward()
    worst = 0.0
    for u, v in zip(_codesign_tensors(cs), _peer_tensors("spikingjelly", sj), strict=True):
        if u.grad is not None:
            worst = max(worst, float((u.grad - v.grad).norm() / (u.grad.norm() + 1e-30)))
    stats["grad"] = worst
    lines.append(f"- {tag} train-mode gradients of all parameters: codesign vs spikingjelly: "
                 f"max relative L2 difference = {worst:.2e}")
    return lines, stats


def check_equivalence(x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """Copy codesign's weights into the peers and compare; return report lines.

    The strict check runs in float64, where float rounding cannot flip a spike: it shows that
    the three networks compute the same function (and codesign / SJ the same gradients).
    In float32 (the benchmarked precision) a few membrane potentials within rounding of the
    threshold can fire differently (different summation orders: codesign computes the
    time-invariant first layer once), and the flips cascade; those counts are informational.
    """
    import copy

    torch.manual_seed(0)
    cs = build_model("vgg-small")
    # non-trivial BN running statistics so that the eval comparison exercises them
    with torch.no_grad():
        for _, syn in cs.synapses():
            if syn.bn is not None:
                syn.bn.running_mean.uniform_(-0.1, 0.4)
                syn.bn.running_var.uniform_(0.75, 1.25)
    peers = {"snntorch": build_snntorch(False), "spikingjelly": build_spikingjelly()}
    lines = []
    # float synapses hold a dormant weight-quantizer step (1 scalar each, never used or updated)
    dormant = [syn.wq.scale for _, syn in cs.synapses() if not syn.wq.enabled]
    n_cs = sum(p.numel() for p in cs.parameters()) - sum(p.numel() for p in dormant)
    for name, m in peers.items():
        n = sum(p.numel() for p in m.parameters())
        if n != n_cs:
            raise SystemExit(f"parameter count differs: codesign {n_cs}, {name} {n}")
        copy_weights(cs, name, m)
    lines.append(f"- parameters: {n_cs:,} in all three networks (codesign also holds "
                 f"{len(dormant)} dormant float-mode weight-quantizer step scalars: unused in "
                 "the forward, grad None, skipped by Adam)")
    xb, yb = x[:BATCH], y[:BATCH]

    # snnTorch's spike functions return float32 whatever the input: float64 for SJ only
    cs64 = copy.deepcopy(cs).double()
    peers64 = {"spikingjelly": copy.deepcopy(peers["spikingjelly"]).double()}
    l64, s64 = _compare(cs64, peers64, xb.double(), yb, "float64")
    if s64["logits spikingjelly"] > 1e-9 or s64["spike mismatches"] or s64["grad"] > 1e-9:
        raise SystemExit("float64 codesign / spikingjelly differ: " + "; ".join(l64))
    l32, s32 = _compare(cs, peers, xb, yb, "float32")
    if s32["logits snntorch"] > 1e-3:
        raise SystemExit("float32 eval logits differ: " + "; ".join(l32))
    lines += l64 + l32
    lines.append("- the float32 gradient difference comes from a few membrane potentials within "
                 "float rounding of the threshold firing differently (codesign computes the "
                 "time-invariant first conv + BN once, a different summation order) and the "
                 "flips cascading; the float64 rows show the functions are the same")
    lines.append("- snnTorch in train mode is not comparable value for value by construction "
                 "(per-step BatchNorm statistics over B instead of T*B; reset detached from the "
                 "graph; fires on H > theta): same shapes and the same amount of work")
    return lines


# ---------------------------------------------------------------------------- timing
def make_contenders() -> dict[str, Callable[[], nn.Module]]:
    return {
        "codesign": lambda: build_model("vgg-small"),
        "snnTorch": lambda: build_snntorch(False),
        "snnTorch (default reset_delay)": lambda: build_snntorch(True),
        "SpikingJelly": build_spikingjelly,
    }


def train_runner(model: nn.Module, batches: list) -> Callable[[int], tuple[float, float]]:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(n: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            xb, yb = batches[i % len(batches)]
            loss = F.cross_entropy(model(xb).mean(0), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0, time.process_time() - c0

    return run


def infer_runner(model: nn.Module, batches: list) -> Callable[[int], tuple[float, float]]:
    def run(n: int) -> tuple[float, float]:
        model.eval()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for i in range(n):
                model(batches[i % len(batches)][0]).mean(0).argmax(-1)
        return time.perf_counter() - t0, time.process_time() - c0

    return run


def bench(runners: dict[str, Callable[[int], tuple[float, float]]], rounds: int, n: int,
          warmup: int) -> dict[str, dict[str, list[float]]]:
    """Samples/s per contender and round: ``wall`` (perf_counter) and ``cpu`` (process time)."""
    names = list(runners)
    for name in names:
        runners[name](warmup)
    rates: dict[str, dict[str, list[float]]] = {"wall": {k: [] for k in names},
                                                "cpu": {k: [] for k in names}}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            wall, cpu = runners[name](n)
            rates["wall"][name].append(n * BATCH / wall)
            rates["cpu"][name].append(n * BATCH / cpu)
        print(f"  round {r + 1}/{rounds}: "
              + ", ".join(f"{k} {rates['wall'][k][-1]:.0f}" for k in names), flush=True)
    return rates


def _ratios(rates: dict[str, list[float]]) -> tuple[str, float, list[float]]:
    peers = [k for k in rates if k != "codesign"]
    med = {k: statistics.median(v) for k, v in rates.items()}
    best = max(peers, key=lambda k: med[k])
    per_round = [rates["codesign"][i] / max(rates[k][i] for k in peers)
                 for i in range(len(rates["codesign"]))]
    return best, med["codesign"] / med[best], per_round


def table(rates: dict[str, dict[str, list[float]]]) -> list[str]:
    wall, cpu = rates["wall"], rates["cpu"]
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    lines = ["| contender | median samples/s (wall) | min | max | codesign / this "
             "| median samples/s (CPU time) | codesign / this (CPU time) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for k, v in wall.items():
        r_wall = "1.00" if k == "codesign" else f"{med['codesign'] / med[k]:.2f}x"
        r_cpu = "1.00" if k == "codesign" else f"{med_cpu['codesign'] / med_cpu[k]:.2f}x"
        lines.append(f"| {k} | {med[k]:.1f} | {min(v):.1f} | {max(v):.1f} | {r_wall} "
                     f"| {med_cpu[k]:.1f} | {r_cpu} |")
    lines.append("")
    best, ratio, per_round = _ratios(wall)
    best_c, ratio_c, per_round_c = _ratios(cpu)
    lines.append(f"**codesign / fastest peer ({best}) = {ratio:.2f}x** (ratio of wall-clock "
                 f"medians); median of per-round ratios codesign / max(peers) = "
                 f"{statistics.median(per_round):.2f}x "
                 f"(range {min(per_round):.2f}-{max(per_round):.2f}); "
                 f"on process CPU time: {ratio_c:.2f}x vs {best_c}, per-round median "
                 f"{statistics.median(per_round_c):.2f}x")
    return lines


# ------------------------------------------------------------------ quantized training step
def _use_reference_lif(model: nn.Module) -> nn.Module:
    """Make every LIF of ``model`` run the per-step autograd reference (the unfused path)."""
    from codesign.snn.neuron import LIF

    for mod in model.modules():
        if isinstance(mod, LIF):
            mod.forward = mod.reference_forward  # type: ignore[method-assign]
    return model


def _checkpoint(name: str) -> nn.Module:
    from codesign.snn.checkpoint import load_checkpoint

    return load_checkpoint(ROOT / "models" / name)[0]


def _frozen_bn(model: nn.Module) -> nn.Module:
    from codesign.snn.layers import freeze_batchnorm

    freeze_batchnorm(model)
    return model


FUSED, REF, FROZEN = ("W4/U4 (fused LIF)", "W4/U4 (per-step autograd LIF)",
                      "W4/U4 (fused LIF, BN frozen)")
ONE = "W4/U4 (fused LIF, one-conv BN fold)"
HW_SPEC = "rram_physical_32nm"
HW_NONIDEAL = ("ir_drop", "programming", "read_noise")
HW_SEED = 0
HW = "W4/U4 hardware-aware (crossbar, " + "+".join(HW_NONIDEAL) + ")"


def _hw_refresh_name(every: int) -> str:
    return f"W4/U4 hardware-aware, IR drop exact on 1 chip in {every} (`--ir-refresh {every}`)"


def _one_conv_bn(model: nn.Module) -> nn.Module:
    from codesign.snn.layers import one_conv_batchnorm

    one_conv_batchnorm(model)
    return model


def _hardware_aware(model: nn.Module, calib: torch.Tensor, ir_refresh: int = 1) -> nn.Module:
    """The closed loop's training step (``codesign.loop.ChipPerBatch``): before every forward
    in training mode, the current weights are programmed onto a fresh chip of ``HW_SPEC`` with
    ``HW_NONIDEAL`` (chip seeds drawn from ``HW_SEED``) and every synapse runs through the
    crossbar simulator (``codesign.sim.backend.CrossbarBackend``; gradient straight-through
    the ideal fake-quantized product; synapses in eval mode: BN frozen). ``calib``: the ADC
    calibration batch when the spec's ADC range is ``calibrated``; ``ir_refresh``: training
    chips per exact IR-drop transfer (``codesign.sim.wire_refresh``)."""
    import numpy as np

    from codesign.hw.spec import load_spec, preset_path
    from codesign.loop import ChipPerBatch
    from codesign.sim import network as hn

    spec = load_spec(preset_path(HW_SPEC))
    net = hn.build(model, spec, tuple(calib.shape[1:]), nonideal=HW_NONIDEAL, seed=HW_SEED)
    if hn.adc_range(spec) == "calibrated":
        hn.calibrate_adc(net, calib)
    model.register_forward_pre_hook(ChipPerBatch(model, net, np.random.default_rng(HW_SEED),
                                                 ir_refresh))
    return model


def make_quant_contenders(calib: torch.Tensor | None = None, ir_refresh: int | None = None
                          ) -> dict[str, Callable[[], nn.Module]]:
    """The shipped vgg-small checkpoints: FP teacher and its W4/U4 student (QAT from it).

    Trained weights, not a fresh W4/U4 build: at initialisation the 4-bit fc1 weights of
    ``build_model("vgg-small", quant=QUANT)`` all round to 0 (step 0.143 from the membrane
    calibration vs mean |w| 0.021), so no gradient reaches the convolutions. With ``calib``
    (images), the hardware-aware step (:func:`_hardware_aware`) is a contender too, and with
    ``ir_refresh`` also that step with the IR drop exact on one chip in ``ir_refresh``."""
    return {
        "float": lambda: _checkpoint(TEACHER),
        FUSED: lambda: _checkpoint(STUDENT),
        REF: lambda: _use_reference_lif(_checkpoint(STUDENT)),
        FROZEN: lambda: _frozen_bn(_checkpoint(STUDENT)),
        ONE: lambda: _one_conv_bn(_checkpoint(STUDENT)),
        **({} if calib is None else
           {HW: lambda: _hardware_aware(_checkpoint(STUDENT), calib)}),
        **({} if calib is None or ir_refresh is None else
           {_hw_refresh_name(ir_refresh): lambda: _hardware_aware(_checkpoint(STUDENT), calib,
                                                                  ir_refresh)}),
    }


def check_quant_equivalence(batches: list) -> list[str]:
    """Fused vs reference W4/U4: same weights, train-mode logits and gradients of all params."""
    xb, yb = batches[0]
    out = {}
    for name, make in make_quant_contenders().items():
        if name not in (FUSED, REF):
            continue
        torch.manual_seed(0)
        model = make().train()
        logits = model(xb)
        loss = F.cross_entropy(logits.mean(0), yb)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        out[name] = (logits.detach(), grads)
    (la, ga), (lb, gb) = out.values()
    rel = [float((a - b).norm() / b.norm()) for a, b in zip(ga, gb, strict=True)
           if a is not None and b is not None and float(b.norm()) > 0]
    return [
        f"- train-mode logits (T, B, 10), W4/U4 fused vs per-step autograd LIF: max |diff| = "
        f"{float((la - lb).abs().max()):.2e}",
        f"- gradients of all {len(rel)} parameters with a nonzero gradient: max relative L2 "
        f"difference = {max(rel):.2e} (float32; the fused backward sums in another order)",
        *check_frozen_equivalence(xb),
        *check_one_conv(xb),
    ]


def check_one_conv(xb: torch.Tensor) -> list[str]:
    """One-conv BN fold (PyTorch ConvBn2d's approximate forward) vs the default two-conv
    fold from the same checkpoint: train-mode logits (a different training function at 4
    bits) and eval-mode logits (the deployed function: must be identical)."""
    out = {}
    for name in (FUSED, ONE):
        model = make_quant_contenders()[name]()
        with torch.no_grad():
            ev = model.eval()(xb)
            tr = model.train()(xb)
        out[name] = (tr, ev)
    (ta, ea), (tb, eb) = out[FUSED], out[ONE]
    agree = float((ta.mean(0).argmax(-1) == tb.mean(0).argmax(-1)).double().mean())
    rel = float((ta - tb).norm() / ta.norm())
    return [
        f"- one-conv BN fold vs default two-conv fold, float32, train mode: logits max |diff| = "
        f"{float((ta - tb).abs().max()):.2e} (relative L2 {rel:.2e}; max |logit| "
        f"{float(ta.abs().max()):.1f}), same predicted class for {100 * agree:.1f}% of the "
        f"{len(xb)} images: a different training function",
        f"- one-conv BN fold vs default, eval mode (deployed function): logits max |diff| = "
        f"{float((ea - eb).abs().max()):.2e}, bit-identical: {torch.equal(ea, eb)}",
    ]


def check_frozen_equivalence(xb: torch.Tensor) -> list[str]:
    """BN-frozen W4/U4 in train mode vs the same model in eval mode (the deployed forward),
    in float64 (the same function) and float32 (train mode convolves the time-repeated input
    once, eval mode T times: the sums round differently and a spike can flip)."""
    lines = []
    for dtype in (torch.float64, torch.float32):
        model = make_quant_contenders()[FROZEN]().to(dtype)
        before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
        with torch.no_grad():
            train_logits = model.train()(xb.to(dtype))
            eval_logits = model.eval()(xb.to(dtype))
        after = model.state_dict()
        moved = sum(int(not torch.equal(v, after[k])) for k, v in before.items())
        agree = float((train_logits.mean(0).argmax(-1) == eval_logits.mean(0).argmax(-1))
                      .double().mean())
        lines.append(
            f"- BN frozen, {str(dtype).removeprefix('torch.')}: train-mode vs eval-mode "
            f"(deployed) logits: max |diff| = "
            f"{float((train_logits - eval_logits).abs().max()):.2e}, same predicted class for "
            f"{100 * agree:.1f}% of the {len(xb)} images; running-statistic buffers changed by "
            f"the train-mode pass: {moved} of {len(before)}")
    return lines


def profile_step(model: nn.Module, batches: list, rows: int = 8) -> list[str]:
    """Top operators (self CPU time) of 3 training steps after 1 warm-up step."""
    from torch.profiler import ProfilerActivity, profile

    run = train_runner(model, batches)
    run(1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(3)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    lines = ["| operator | self CPU ms / step | share | calls / step |", "|---|---:|---:|---:|"]
    for e in events[:rows]:
        lines.append(f"| `{e.key}` | {e.self_cpu_time_total / 3e3:.1f} | "
                     f"{100 * e.self_cpu_time_total / total:.0f}% | {e.count / 3:.0f} |")
    lines.append(f"| all operators | {total / 3e3:.1f} | 100% | |")
    return lines


def fault_table(runners: dict[str, Callable[[int], tuple[float, float]]], n: int) -> list[str]:
    """Minor page faults and system CPU time per step (``getrusage`` around ``n`` steps of
    each runner, already warm): the kernel's count of pages touched for the first time."""
    lines = ["| step | minor page faults / step | system CPU ms / step |", "|---|---:|---:|"]
    for name, run in runners.items():
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        run(n)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        lines.append(f"| {name} | {(r1.ru_minflt - r0.ru_minflt) / n:.0f} | "
                     f"{(r1.ru_stime - r0.ru_stime) / n * 1e3:.1f} |")
    return lines


def quant_table(rates: dict[str, list[float]]) -> list[str]:
    med = {k: statistics.median(v) for k, v in rates.items()}
    lines = ["| step | median ms / step | min | max | / float (medians) "
             "| / float (median of per-round ratios) |", "|---|---:|---:|---:|---:|---:|"]
    for k, v in rates.items():
        ms = [1e3 * BATCH / r for r in v]
        per_round = [rates["float"][i] / v[i] for i in range(len(v))]
        lines.append(f"| {k} | {1e3 * BATCH / med[k]:.1f} | {min(ms):.1f} | {max(ms):.1f} | "
                     f"{med['float'] / med[k]:.2f}x | {statistics.median(per_round):.2f}x "
                     f"(range {min(per_round):.2f}-{max(per_round):.2f}) |")
    return lines


def main_quant(args: argparse.Namespace, rounds: int, n: int, warmup: int,
               threads: list[int], batches: list) -> None:
    print("quantized-step equivalence check ...", flush=True)
    torch.set_num_threads(threads[0])
    eq_lines = check_quant_equivalence(batches)
    print("\n".join(eq_lines), flush=True)
    sections: list[str] = []
    result: list[str] = []
    for nt in threads:
        torch.set_num_threads(nt)
        models = {}
        # one refresh chip in every round of n batches: its median is the amortised cost
        for name, make in make_quant_contenders(batches[0][0], ir_refresh=n).items():
            torch.manual_seed(0)
            models[name] = make()
        print(f"training: {rounds} rounds x {n} batches of {BATCH}, {nt} threads", flush=True)
        runners = {k: train_runner(m, batches) for k, m in models.items()}
        train = bench(runners, rounds, n, warmup)
        faults = fault_table(runners, 4)
        wall = train["wall"]
        med = {k: statistics.median(v) for k, v in wall.items()}
        fused, ref = FUSED, REF
        for name, what in ((FUSED, "default, BN folded with batch statistics"),
                           (FROZEN, "BN frozen, `--freeze-bn-after`: an approximation"),
                           (ONE, "one-conv BN fold (`one_conv_batchnorm`): an approximation")):
            ratio = med["float"] / med[name]  # time ratio W4/U4 / float
            per_round = statistics.median(wall["float"][i] / wall[name][i]
                                          for i in range(len(wall[name])))
            if max(ratio, per_round) <= 1.5:
                verdict = "met"
            elif min(ratio, per_round) > 1.5:
                verdict = "not met"
            else:  # the two estimates straddle the goal: too noisy to say
                verdict = "inconclusive (the two estimates straddle 1.5x: load too noisy)"
            result.append(
                f"- {nt} threads, {what}: **W4/U4 step / float step = {ratio:.2f}x** "
                f"(wall-clock medians; median of per-round ratios {per_round:.2f}x); goal "
                f"<= 1.5x: {verdict}.")
        for name, what in ((HW, "every chip's IR drop exact"),
                           (_hw_refresh_name(n), f"IR drop exact on 1 chip in {n}, its "
                            "attenuation on the others (`--ir-refresh`): an approximation")):
            ratio = med["float"] / med[name]
            per_round = statistics.median(wall["float"][i] / wall[name][i]
                                          for i in range(len(wall[name])))
            verdict = "met" if max(ratio, per_round) <= 2.5 else (
                "not met" if min(ratio, per_round) > 2.5 else
                "inconclusive (the two estimates straddle 2.5x: load too noisy)")
            result.append(
                f"- {nt} threads, hardware-aware ({HW_SPEC}, {', '.join(HW_NONIDEAL)}; a fresh "
                f"chip per batch; {what}): **hardware-aware step / float step = "
                f"{ratio:.1f}x** (wall-clock medians; median of per-round ratios "
                f"{per_round:.1f}x); goal <= 2.5x: {verdict}.")
        result.append(
            f"- {nt} threads: per-step autograd LIF (before the fused LIF): "
            f"{med['float'] / med[ref]:.2f}x the float step; the fused LIF makes the W4/U4 "
            f"step {med[fused] / med[ref]:.2f}x faster.")
        sections += [f"## Training step (forward + backward + Adam), "
                     f"torch.set_num_threads({nt})", "",
                     "Wall clock:", "", *quant_table(train["wall"]), "",
                     "Process CPU time:", "", *quant_table(train["cpu"]), "",
                     "Memory traffic to the kernel (4 steps each, after the timed rounds):", "",
                     *faults, ""]
        for name in ("float", FUSED, FROZEN, ONE, HW):
            torch.manual_seed(0)
            prof = profile_step(make_quant_contenders(batches[0][0])[name](), batches,
                                rows=12 if name == HW else 8)
            sections += [f"### Profile: {name}, {nt} threads (3 steps, top operators)", "",
                         *prof, ""]
    load = os.getloadavg()
    cmd = "python " + " ".join(shlex.quote(a) for a in
                               [os.path.relpath(__file__, ROOT)] + sys.argv[1:])
    md = [
        "# Quantized training step: vgg-small float vs W4/U4 (CPU)",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{cmd}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs; python "
        f"{platform.python_version()}; torch {torch.__version__}; "
        f"torch.set_num_threads: {', '.join(map(str, threads))}",
        f"- load average at the end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        "(shared CPUs: absolute times are noisy; the ratios are measured in the same rounds)",
        f"- allocator: {ALLOCATOR[args.allocator_kept]}",
        f"- workload: mnist5k, batch {BATCH}, T={T}, direct encoding; step = forward + "
        "cross-entropy on mean logits + zero_grad + backward + Adam; "
        f"{warmup} warm-up batches, then {rounds} interleaved rounds x {n} batches per "
        "model (order rotated every round); median over rounds",
        f"- models: float = `models/{TEACHER}` (vgg-small FP teacher), W4/U4 = "
        f"`models/{STUDENT}` (vgg-small, wbits 4, ubits 4, first conv and readout at 8 bits, "
        "BN folded with batch statistics in training (the BN-frozen row: with the running "
        "statistics, `freeze_batchnorm`), LSQ steps, membrane step shared with "
        "the feeding layer); goal: W4/U4 step <= 1.5x the float step",
        f"- hardware-aware = the closed loop's step (`codesign.loop.ChipPerBatch`): W4/U4 "
        f"student, before every batch its current integer codes are programmed onto a fresh "
        f"chip of `hw_configs/{HW_SPEC}.yaml` (seeds from {HW_SEED}) with the non-idealities "
        f"{', '.join(HW_NONIDEAL)} at the spec's values (ADC at the spec's bits), every synapse "
        "through the crossbar simulator (`CrossbarBackend`; first layer bit-serial, read once "
        "per image), gradient straight-through the ideal product, BN frozen (synapses in eval "
        "mode); the loss here is the same cross-entropy (the closed loop distils); goal: <= "
        "2.5x the float step",
        "",
        "## Result",
        "",
        *result,
        "",
        "## Equivalence (fused quantized LIF vs per-step autograd reference; BN frozen; "
        "one-conv BN fold)",
        "",
        *eq_lines,
        "",
        *sections,
    ]
    out = args.out if args.out != REPORT else REPORT_QUANT
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(md) + "\n")
    print("\n".join(md))
    print(f"wrote {out}")


ALLOCATOR = {
    True: "freed memory kept for reuse (`codesign.allocator.keep_freed_memory`, as the CLI "
          "runs; `CODESIGN_KEEP_FREED_MEMORY=0` for glibc's defaults)",
    False: "glibc's defaults (`codesign.allocator.keep_freed_memory` off or not applicable)",
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds x 3 batches, 1 warm-up")
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated torch.set_num_threads values, one table set each "
                         "(default 1,2)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--batches", type=int, default=None, help="timed batches per round")
    ap.add_argument("--out", type=Path, default=REPORT)
    ap.add_argument("--quant", action="store_true",
                    help="time float vs W4/U4 codesign steps instead (reports/bench/"
                         "train_quant.md; --threads defaults to 2)")
    args = ap.parse_args()
    args.allocator_kept = keep_freed_memory()  # as the CLI does (codesign.allocator)
    rounds = args.rounds or (3 if args.quick else 7)
    n = args.batches or (3 if args.quick else 8)
    warmup = 1 if args.quick else 3
    if args.quant and "--threads" not in " ".join(sys.argv):
        args.threads = "2"
    threads = [int(v) for v in str(args.threads).split(",") if v.strip()]
    torch.manual_seed(0)

    data = load_dataset("mnist5k")
    x, y = data.x_train, data.y_train
    n_img = BATCH * 16
    batches = [(x[i:i + BATCH].contiguous(), y[i:i + BATCH]) for i in range(0, n_img, BATCH)]
    if args.quant:
        main_quant(args, rounds, n, warmup, threads, batches)
        return

    torch.set_num_threads(threads[0])
    print("equivalence check ...", flush=True)
    eq_lines = check_equivalence(x, y)
    print("\n".join(eq_lines), flush=True)

    sections: list[str] = []
    for nt in threads:
        torch.set_num_threads(nt)
        models = {}
        for name, make in make_contenders().items():
            torch.manual_seed(0)
            models[name] = make()
        print(f"training: {rounds} rounds x {n} batches of {BATCH}, {nt} threads", flush=True)
        train = bench({k: train_runner(m, batches) for k, m in models.items()}, rounds, n,
                      warmup)
        print(f"inference, {nt} threads:", flush=True)
        infer = bench({k: infer_runner(m, batches) for k, m in models.items()}, rounds, n,
                      warmup)
        sections += [
            f"## Training (forward + backward + Adam step), torch.set_num_threads({nt})",
            "",
            *table(train),
            "",
            f"## Inference (eval, no grad), torch.set_num_threads({nt})",
            "",
            *table(infer),
            "",
        ]

    load = os.getloadavg()
    cmd = "python " + " ".join(shlex.quote(a) for a in
                               [os.path.relpath(__file__, ROOT)] + sys.argv[1:])
    md = [
        "# Training throughput: vgg-small, codesign vs snnTorch vs SpikingJelly (CPU)",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{cmd}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs; python "
        f"{platform.python_version()}; torch {torch.__version__}; "
        f"torch.set_num_threads: {', '.join(map(str, threads))} (one table set each)",
        f"- load average at the end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        "(the CPUs are shared with other jobs: absolute numbers are noisy, compare the ratios "
        "measured in the same run)",
        f"- allocator (every contender, one process): {ALLOCATOR[args.allocator_kept]}",
        f"- workload: mnist5k, batch {BATCH}, T={T}, direct encoding; training step = forward + "
        "cross-entropy on mean logits + zero_grad + backward + Adam; "
        f"{warmup} warm-up batches, then {rounds} interleaved rounds x {n} batches per "
        "contender (order rotated every round); median over rounds",
        f"- versions: snntorch {_version('snntorch')}, spikingjelly {_version('spikingjelly')}",
        "",
        "## Equivalence",
        "",
        *eq_lines,
        "",
        *sections,
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, "\n".join(md))
    print("\n".join(md))
    print(f"wrote {args.out}")


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
