"""Hardware accuracy: Monte-Carlo chips of the simulated crossbars against the ideal quantized net.

:func:`simulate` draws ``chips`` independent chip instances (per-chip seeds from
``numpy.random.SeedSequence(seed)``, recorded), runs the test samples on each, and reports the
accuracy mean with a Student-t 95 % interval over chips, the ideal quantized network's accuracy
(the checkpoint's own forward on the same samples), per-layer firing rates of both and their
drift, and what the cost model charges per layer (reads, all-zero reads, active rows). With
``ablate`` it adds one row per non-ideality alone (``accuracy_drop`` in points against the ideal
quantized network) and accuracy against ADC bits. All numbers are percent unless named
otherwise; the result is JSON-safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import torch

from codesign.errors import CodesignError
from codesign.hw.nonideal import select as select_nonideal
from codesign.hw.spec import HardwareSpec
from codesign.sim import network as hn
from codesign.sim.activity import select_samples
from codesign.snn.model import SpikingNet

MAX_CHIPS = 10_000


def check_chips(chips: Any) -> int:
    if isinstance(chips, bool) or not isinstance(chips, (int, np.integer)) or \
            not 1 <= int(chips) <= MAX_CHIPS:
        raise CodesignError(f"--chips {chips!r}: expected an integer 1..{MAX_CHIPS}")
    return int(chips)


def _ci(values: list[float]) -> tuple[float, float]:
    """95 % interval of the mean accuracy, clipped to the possible 0..100 %."""
    lo, hi = hn.ci95(values)
    return max(0.0, lo), min(100.0, hi)


def _rates(counts: dict[str, list[float]]) -> dict[str, float]:
    return {k: float(v[0] / v[1]) for k, v in counts.items() if v[1]}


@torch.no_grad()
def ideal_run(model: SpikingNet, x: torch.Tensor, y: torch.Tensor, batch: int
              ) -> tuple[float, dict[str, float]]:
    """Accuracy (%) and per-layer firing rates of the checkpoint's own (float) forward."""
    model.eval()
    model.set_record(True)
    correct = 0
    counts: dict[str, list[float]] = {}
    for i in range(0, x.shape[0], batch):
        out = model(x[i:i + batch])
        correct += int((out.mean(0).argmax(-1) == y[i:i + batch]).sum())
        for k, s in model.spikes().items():
            c = counts.setdefault(k, [0.0, 0.0])
            c[0] += float(s.sum())
            c[1] += float(s.numel())
    model.set_record(False)
    return 100.0 * correct / max(1, x.shape[0]), _rates(counts)


def chip_run(net: hn.HardwareNet, x: torch.Tensor, y: torch.Tensor, chip_seed: Optional[int],
             batch: int) -> tuple[float, dict[str, float]]:
    """Accuracy (%) and firing rates of one chip instance."""
    gen = hn.program_chip(net, chip_seed)
    net.counts = {}
    pred = hn.predict(net, x, gen, batch=batch, count=True)
    return 100.0 * float((pred == y).float().mean()), _rates(net.counts)


def _chips(net: hn.HardwareNet, x: torch.Tensor, y: torch.Tensor, seeds: list[int],
           batch: int, tick: Callable[[], None]) -> tuple[list[float], dict[str, float]]:
    """Per-chip accuracies (%) and the first chip's firing rates. Every chip is programmed at
    once (its own seeded generator, :func:`codesign.sim.network.program_chips`) and the chips
    are read as one batch folded chip-major: the same draws as one chip at a time."""
    deterministic = not any(n in net.names for n in ("programming", "stuck_at", "read_noise"))
    run = seeds[:1] if deterministic else seeds  # every chip is the same: no random draw
    gens = hn.program_chips(net, list(run))
    net.counts, net.chip_counts = {}, {}
    pred = hn.predict_chips(net, x, gens, batch=max(1, batch // len(run)), count=True)
    accs = [100.0 * float((p == y).float().mean()) for p in pred]
    rates = {k: float(v[0][0] / v[0][1]) for k, v in net.chip_counts.items() if v[0][1]}
    if deterministic:
        accs = accs * len(seeds)
    for _ in seeds:
        tick()
    return accs, rates


def simulate(model: SpikingNet, spec: HardwareSpec, x: torch.Tensor, y: torch.Tensor, *,
             chips: int = 1, nonideal: str = "all", adc_bits: Optional[int] = None,
             seed: int = 0, samples: Optional[int] = None, ablate: bool = False,
             batch: int = hn.DEFAULT_BATCH, x_cal: Optional[torch.Tensor] = None,
             progress: Optional[Callable[[str], None]] = None,
             recorder: Optional[Any] = None) -> dict[str, Any]:
    """Accuracy of ``model`` on ``chips`` simulated chips of ``spec`` (module docstring).

    ``x``, ``y``: the test split; ``samples`` limits it (drawn with ``seed``; ``None``: all).
    ``x_cal``: calibration inputs for ``nonideal.adc.range: calibrated`` (default: the first 64
    test samples run). ``progress(text)`` is told about each finished chip. ``recorder``: a
    :class:`codesign.sim.record.SimRecorder` attached to the main run's chips (not the
    ablation's) to record their spikes and reads for the cost model.
    """
    chips = check_chips(chips)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CodesignError(f"--seed {seed!r}: expected a non-negative integer")
    file = spec.file or spec.name
    names = select_nonideal(spec.nonideal, nonideal, file)
    idx = select_samples(int(x.shape[0]), samples, seed)
    xs, ys = x[torch.as_tensor(idx)], y[torch.as_tensor(idx)]
    shape = tuple(xs.shape[1:])
    if xs.dim() == 5:  # event data (N, T, C, H, W)
        shape = tuple(xs.shape[2:])
    seeds = hn.chip_seeds(seed, chips)
    cal = xs[:64] if x_cal is None else x_cal

    def tick(what: str) -> Callable[[], None]:
        def f() -> None:
            if progress is not None:
                progress(what)
        return f

    def build(which: tuple[str, ...], bits: Optional[int]) -> hn.HardwareNet:
        net = hn.build(model, spec, shape, nonideal=which, adc_bits=bits, seed=seed)
        if hn.adc_range(spec) == "calibrated":
            hn.calibrate_adc(net, cal, batch=batch)
        return net

    ideal_acc, ideal_rates = ideal_run(model, xs, ys, batch)
    net = build(names, adc_bits)
    if recorder is not None:
        recorder.attach(net)
    accs, hw_rates = _chips(net, xs, ys, seeds, batch, tick("chip"))
    lo, hi = _ci(accs)
    reads = {name: {"reads": info.xbar.stats.reads, "zero_reads": info.xbar.stats.zero_reads,
                    "active_rows_per_read": (info.xbar.stats.active_rows
                                             / max(1, info.xbar.stats.reads))}
             for name, info in net.synapses.items()}
    drift = [{"layer": k, "ideal_rate": ideal_rates.get(k), "hardware_rate": hw_rates.get(k),
              "drift": (hw_rates[k] - ideal_rates[k]) if k in hw_rates and k in ideal_rates
              else None} for k in ideal_rates]
    out: dict[str, Any] = {
        "ideal_quantized": ideal_acc,
        "hardware": {"mean": float(np.mean(accs)), "ci95": [lo, hi], "chips": chips,
                     "per_chip": accs},
        "nonideal": list(names),
        "adc_bits": int(net.adc.bits),
        "lossless_adc_bits": hn.lossless_adc_bits(net),
        "adc_range": hn.adc_range(spec),
        "samples": int(len(idx)),
        "seed": int(seed),
        "chip_seeds": seeds,
        "firing_rate": drift,
        "reads": reads,
        "method": "integer datapath on simulated crossbars (codesign.sim.network); mean over "
                  "chips with a Student-t 95 % interval",
    }
    if ablate:
        rows = []
        for which in [()] + [(n,) for n in names] + ([names] if len(names) > 1 else []):
            a, _ = _chips(build(which, adc_bits), xs, ys, seeds, batch, tick("ablation"))
            m = float(np.mean(a))
            lo, hi = _ci(a)
            rows.append({"nonideal": "+".join(which) or "none", "accuracy": m,
                         "ci95_lo": lo, "ci95_hi": hi, "accuracy_drop": ideal_acc - m,
                         "chips": chips})
        out["ablation"] = rows
        sweep = []
        top = max(out["lossless_adc_bits"], int(net.adc.bits)) + 1
        for bits in range(max(1, min(3, int(net.adc.bits))), min(16, top) + 1):
            a, _ = _chips(build(names, bits), xs, ys, seeds, batch, tick("adc bits"))
            lo, hi = _ci(a)
            sweep.append({"adc_bits": bits, "accuracy": float(np.mean(a)), "ci95_lo": lo,
                          "ci95_hi": hi, "nonideal": "+".join(names) or "none"})
        out["adc_sweep"] = sweep
    return out
