"""A quantized codesign SNN run on simulated crossbar chips: integer datapath, exact when ideal.

Every synaptic layer is a :class:`~codesign.sim.crossbar.CrossbarLayer` built from the integer
codes the checkpoint deploys (``w_int = round(clamp(W'/s, -Q, Q))``, BN folded; bias
``b_int = round(b'/s)``, :mod:`codesign.snn.layers`). The neuron is the integer datapath of
:mod:`codesign.snn.neuron` on the membrane grid ``s`` of the feeding layer, evaluated exactly:

    H = round(beta U + y / D + b_int)      (round half to even, exact rational arithmetic)
    S = [H >= theta_int];  U = clamp(H - theta_int S, lo, hi)   (zero reset: U = H (1 - S))

with ``y / D`` the crossbar product (``D = 2^bits - 1`` for the first layer's analog input
codes, 1 for spikes) and ``lo, hi`` the ``ubits`` register range. ``H`` is computed exactly for
a dyadic ``beta`` (``beta 2^k`` an integer, e.g. 0.5); other ``beta`` are rounded in float64.
The readout's logits are ``(y / D + b_int) s``, averaged over the ``T`` steps.

Why exact, and not the float forward: the float32 quantized network evaluates the same integer
equations with rounding errors of a few ulp, so wherever ``beta U + I`` lands exactly on a
half-integer (common: ``beta = 1/2`` and an odd ``U``), its ``round`` is decided by that error;
float32 and float64 runs of the shipped student disagree on 0.1-1 % of the spikes (measured in
``tests/test_sim_network.py``). The integer datapath is what the hardware computes.

A static first layer (direct encoding: the same image at every step) is read once per sample and
its product reused at every step (the hardware computes it once).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from codesign.errors import CodesignError
from codesign.hw.nonideal import NAMES, check_nonideal
from codesign.hw.nonideal import select as select_nonideal
from codesign.hw.spec import HardwareSpec
from codesign.sim.adc import ADC, lossless_bits
from codesign.sim.crossbar import CrossbarLayer, Geometry, Models, wire_tiles
from codesign.sim.noise_tape import core_for_draws
from codesign.sim.nonideal import Drift, IRDropFast, ProgrammingVariation, ReadNoise, StuckAt
from codesign.sim.record import observe_lif, row_counts
from codesign.snn.encoding import encode, is_spike_tensor
from codesign.snn.layers import BIAS_BITS, Flatten, Pool, Synapse
from codesign.snn.model import SpikingNet
from codesign.snn.neuron import LIF
from codesign.snn.quant import membrane_range

DEFAULT_BATCH = 50


def geometry(spec: HardwareSpec) -> Geometry:
    d, xb = spec.device, spec.crossbar
    levels = int(d.levels_per_cell)
    dg = (d.g_on_us - d.g_off_us) / (levels - 1)
    return Geometry(rows=int(xb.rows), cols=int(xb.cols), levels=levels, signed=xb.signed,
                    g_on=d.g_on_us / dg, g_off=d.g_off_us / dg, dg_s=dg * 1e-6)


def build_models(spec: HardwareSpec, names: tuple[str, ...]) -> Models:
    """The non-ideality models of ``names`` with the spec's parameters."""
    ni = spec.nonideal
    geom = geometry(spec)
    m = Models()
    if not names:
        return m
    assert ni is not None
    if "programming" in names:
        m.programming = ProgrammingVariation(ni.programming)  # type: ignore[arg-type]
    if "stuck_at" in names:
        m.stuck_at = StuckAt(ni.stuck_at)  # type: ignore[arg-type]
    if "drift" in names:
        m.drift = Drift(ni.drift)  # type: ignore[arg-type]
    if "read_noise" in names:
        m.read_noise = ReadNoise(ni.read_noise, geom.g_on)  # type: ignore[arg-type]
    if "ir_drop" in names:
        m.ir_drop = IRDropFast(ni.ir_drop, geom.dg_s)  # type: ignore[arg-type]
    return m


def make_adc(spec: HardwareSpec, names: tuple[str, ...], bits: Optional[int]) -> ADC:
    b = int(spec.adc.bits if bits is None else bits)
    ni = spec.nonideal.adc if spec.nonideal is not None else None
    if "adc" in names and ni is not None:
        return ADC(bits=b, full_scale=1.0, offset_lsb=ni.offset_lsb, gain_error=ni.gain_error)
    return ADC(bits=b, full_scale=1.0)


def adc_range(spec: HardwareSpec) -> str:
    ni = spec.nonideal
    return ni.adc.range if ni is not None and ni.adc is not None else "array"


@dataclass
class SynInfo:
    """Integer parameters of one synaptic layer."""

    name: str
    xbar: CrossbarLayer
    bias_int: Optional[torch.Tensor]
    step: torch.Tensor
    """Weight (and membrane) step ``s``, ``(C,)`` or ``(1,)``."""


@dataclass
class HardwareNet:
    """The simulated network: layers in forward order, and what they record."""

    model: SpikingNet
    spec: HardwareSpec
    synapses: dict[str, SynInfo]
    names: tuple[str, ...]
    adc: ADC
    seed: int
    spikes: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    """Recorded spikes per neuron layer (``record=True``), one ``(T, B, ...)`` per batch."""
    counts: dict[str, list[float]] = field(default_factory=dict)
    """``[spikes, neuron-steps]`` per neuron layer (``count=True``), all chips."""
    chip_counts: dict[str, list[list[float]]] = field(default_factory=dict)
    """``[spikes, neuron-steps]`` per neuron layer and chip (``count=True``)."""

    def layers(self) -> Iterator[tuple[str, Any]]:
        yield from self.model.layers.items()


def _conv_params(syn: Synapse, x_shape: tuple[int, ...]) -> dict:
    conv = syn.op
    k = conv.kernel_size
    st = conv.stride
    pd = conv.padding
    h = (x_shape[-2] + 2 * pd[0] - k[0]) // st[0] + 1
    w = (x_shape[-1] + 2 * pd[1] - k[1]) // st[1] + 1
    return {"kernel": k, "stride": st, "padding": pd, "out_hw": (h, w)}


@torch.no_grad()
def integer_codes(syn: Synapse) -> tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """``(w_int (Cout, K), b_int (Cout,) or None, step)`` of a quantized synapse (eval mode)."""
    if not syn.wq.enabled:
        raise CodesignError("hardware simulation: a floating-point synaptic layer has no integer "
                            "codes; simulate a quantized checkpoint (wbits on every layer)")
    w, b = syn.folded()
    w_int = syn.wq.integer(w).reshape(w.shape[0], -1)
    step = syn.weight_step().detach()
    b_int = None
    if b is not None:
        lim = 2 ** (BIAS_BITS - 1) - 1
        b_int = torch.round(torch.clamp(b / step, -lim, lim)).detach()
    return w_int, b_int, step


def build(model: SpikingNet, spec: HardwareSpec, input_shape: tuple[int, ...], *,
          nonideal: str | tuple[str, ...] = "none", adc_bits: Optional[int] = None,
          seed: int = 0) -> HardwareNet:
    """Map every synaptic layer of ``model`` onto the crossbars of ``spec`` (chips unprogrammed).

    ``nonideal``: ``none`` | ``all`` | ``NAME,...`` (or the resolved tuple); ``input_shape`` is
    one sample's shape ``(C, H, W)`` (for the conv output sizes).
    """
    file = spec.file or spec.name
    check_nonideal(spec.nonideal, file)
    names = nonideal if isinstance(nonideal, tuple) else \
        select_nonideal(spec.nonideal, nonideal, file)
    for n in names:
        if n not in NAMES:
            raise CodesignError(f"unknown non-ideality {n!r}; expected one of {NAMES}")
    adc = make_adc(spec, names, adc_bits)
    geom = geometry(spec)
    model = model.eval()
    shapes = _trace_shapes(model, input_shape)
    syns: dict[str, SynInfo] = {}
    for name, layer in model.layers.items():
        if isinstance(layer, Synapse):
            w_int, b_int, step = integer_codes(layer)
            conv = _conv_params(layer, shapes[name]) if layer.kind == "conv" else None
            assert layer.wbits is not None
            xb = CrossbarLayer(name, w_int, layer.wbits, geom, adc, conv=conv,
                               adc_range=adc_range(spec))
            syns[name] = SynInfo(name, xb, b_int, step)
        elif isinstance(layer, LIF):
            if getattr(layer, "reset_timing", "immediate") != "immediate":
                raise CodesignError(f"hardware simulation: neuron {name}: reset_timing "
                                    f"{layer.reset_timing!r} is not simulated; expected "
                                    "immediate")
            if layer.ubits is None:
                raise CodesignError(f"hardware simulation: neuron {name} has a floating-point "
                                    "membrane; simulate a quantized checkpoint (ubits set)")
        elif isinstance(layer, Pool):
            if layer.kind != "max":
                raise CodesignError(f"hardware simulation: {name}: average pooling feeds "
                                    "multi-level values to the next crossbar; only max pooling "
                                    "(an OR of spikes) is simulated")
        elif not isinstance(layer, Flatten):
            raise CodesignError(f"hardware simulation: layer {name} "
                                f"({type(layer).__name__}) is not supported; sequential "
                                "conv/linear, LIF, max-pool and flatten layers are")
    return HardwareNet(model, spec, syns, names, adc, seed)


def _trace_shapes(model: SpikingNet, input_shape: tuple[int, ...]) -> dict[str, tuple]:
    """Per-sample input shape of every layer (one zero sample, one step)."""
    shapes: dict[str, tuple] = {}
    h = torch.zeros((1, 1) + tuple(input_shape))
    with torch.no_grad():
        for name, layer in model.layers.items():
            shapes[name] = tuple(h.shape[2:])
            h = layer(h)
    return shapes


def chip_seeds(seed: int, chips: int) -> list[int]:
    """Independent per-chip seeds drawn from ``seed`` (``numpy.random.SeedSequence``)."""
    ss = np.random.SeedSequence(int(seed))
    return [int(c.generate_state(1, dtype=np.uint64)[0] % (2 ** 63)) for c in ss.spawn(chips)]


def draw_chips(net: HardwareNet, chip_seeds: list[Optional[int]]
               ) -> tuple[list[Optional[torch.Generator]], Models, dict[str, torch.Tensor]]:
    """The random part of programming ``len(chip_seeds)`` chips: ``(generators, models,
    tiles)``, ``tiles[name]`` each layer's cell conductances before the wires, cut into
    crossbar tiles ``(chips, nb, cb, rows, cols)`` (units of ``dG``). Chip ``c`` draws from
    ``torch.Generator().manual_seed(chip_seeds[c])`` layer by layer in forward order; the
    generator returned goes on to draw that chip's read noise."""
    models = build_models(net.spec, net.names)
    gens: list[Optional[torch.Generator]] = []
    per_layer: dict[str, list[torch.Tensor]] = {name: [] for name in net.synapses}
    for chip_seed in chip_seeds:
        gen = None if chip_seed is None else torch.Generator().manual_seed(int(chip_seed))
        for name, info in net.synapses.items():
            per_layer[name].append(info.xbar._program_draws(models, gen))
        gens.append(gen)
    return gens, models, {n: net.synapses[n].xbar.tiles_of(per_layer[n]) for n in net.synapses}


def set_tiles(net: HardwareNet, models: Models, tiles: dict[str, torch.Tensor]) -> None:
    """Hold the wired tiles (:func:`draw_chips`' shape, after the IR drop) as the chips that
    every layer reads."""
    for name, t in tiles.items():
        info = net.synapses[name]
        info.xbar.set_chips(info.xbar.read_conductances(t), models.read_noise)


def wire_layers(models: Models, tiles: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The exact wires (:func:`wire_tiles`) of every layer's tiles (:func:`draw_chips`), all
    in one batch."""
    names = list(tiles)
    return dict(zip(names, wire_tiles(models, [tiles[n] for n in names]), strict=True))


def program_chips(net: HardwareNet, chip_seeds: list[Optional[int]]
                  ) -> list[Optional[torch.Generator]]:
    """Program every layer of ``len(chip_seeds)`` chip instances at once (read as one batch by
    :func:`forward`); returns each chip's generator (its read noise). Chip ``c``'s draws are
    exactly those of :func:`program_chip` with its seed (:func:`draw_chips`); the wires are
    deterministic, every tile of every layer and chip in one batch (:func:`wire_layers`)."""
    gens, models, pre = draw_chips(net, chip_seeds)
    set_tiles(net, models, wire_layers(models, pre))
    return gens


def program_chip(net: HardwareNet, chip_seed: Optional[int]) -> Optional[torch.Generator]:
    """Program every layer of one chip instance; returns the chip's generator (read noise)."""
    return program_chips(net, [chip_seed])[0]


def chips_of(net: HardwareNet) -> int:
    """Chips programmed on ``net``."""
    return next(iter(net.synapses.values())).xbar.chips


def _chip_major(h: torch.Tensor, chips: int) -> torch.Tensor:
    """``(T, chips * B, ...)`` (step-major) -> ``(chips * T * B, ...)`` rows, chip-major."""
    if chips == 1:
        return h.flatten(0, 1)
    t = h.shape[0]
    return h.reshape((t, chips, -1) + tuple(h.shape[2:])).transpose(0, 1).flatten(0, 2)


def _step_major(y: torch.Tensor, chips: int, steps: int) -> torch.Tensor:
    """Inverse of :func:`_chip_major`: ``(chips * T * B, ...)`` -> ``(T * chips * B, ...)``."""
    if chips == 1:
        return y
    return y.reshape((chips, steps, -1) + tuple(y.shape[1:])).transpose(0, 1).flatten(0, 2)


def _dyadic(beta: float) -> Optional[int]:
    for k in range(0, 31):
        if float(beta * 2 ** k).is_integer():
            return k
    return None


def lif_int(lif: LIF, y: torch.Tensor, denom: int, bias_int: Optional[torch.Tensor],
            steps: int, static: bool) -> torch.Tensor:
    """Integer LIF over ``steps`` (module docstring). ``y``: ``(T*B, C, ...)`` products (or
    ``(B, ...)`` when ``static``); returns spikes ``(T, B, C, ...)`` (float32 0/1).

    For a dyadic ``beta`` (``beta 2^k`` an integer) the numerator ``n = y_t + D b_int + beta D
    U`` has at most ``k`` fractional bits, so it is held exactly by float32 while ``|n| 2^k <
    2^24`` (float64 otherwise), and ``H = round(n / D)`` (ties to even) is exact: a true
    quotient that is a half-integer is representable, so the correctly rounded division
    returns it and ``round`` breaks the tie to even; any other quotient lies at least ``1 /
    (2^(k+1) D)`` from a half-integer, far beyond the division's rounding error.
    Every step is evaluated in place on one membrane buffer (add, divide, round, compare into
    the output, reset, clamp: no temporaries)."""
    assert lif.ubits is not None
    lo, hi = membrane_range(lif.ubits)
    k = _dyadic(lif.beta)
    if y.numel():
        mn, mx = torch.aminmax(y)
        big = max(-float(mn), float(mx))
    else:
        big = 0.0
    bmax = float(bias_int.abs().max()) if bias_int is not None and bias_int.numel() else 0.0
    bound = (big + denom * (bmax + 2.0 ** lif.ubits)) * 2.0 ** (k if k is not None else 24)
    dt = torch.float32 if bound < 2.0 ** 23 else torch.float64
    y = y.to(dt)
    if not static:
        y = y.reshape((steps, -1) + tuple(y.shape[1:]))
    tail = tuple(y.shape) if static else tuple(y.shape[1:])  # one step: (B, C, ...)
    shape = (1, -1) + (1,) * (len(tail) - 2)
    theta = lif.threshold_int().detach().to(dt)
    theta_s: Optional[float] = float(theta.reshape(())) if theta.numel() == 1 else None
    theta_t = theta.reshape(shape)
    num_b = bias_int.to(dt).reshape(shape) * denom if bias_int is not None else None
    if static and num_b is not None:
        y = y + num_b  # the same input at every step: its bias once
    out = torch.empty((steps,) + tail, dtype=torch.float32)
    u = torch.zeros(tail, dtype=dt)
    for t in range(steps):
        src = y if static else y[t]
        if k is not None:
            if t == 0:
                u.copy_(src)
            else:
                torch.add(src, u, alpha=lif.beta * denom, out=u)  # y_t + beta D U (exact)
            if num_b is not None and not static:
                u.add_(num_b)
            if denom != 1:
                u.div_(denom)
            u.round_()  # ties to even, exact (see above)
        else:  # non-dyadic beta: rounded arithmetic, as documented
            cur = src if (static or num_b is None) else src + num_b
            z = cur / denom + (lif.beta * u if t else 0.0)
            u.copy_(torch.round(z))
        s = out[t]
        torch.ge(u, theta_s if theta_s is not None else theta_t, out=s)
        if lif.reset == "zero":
            u.addcmul_(u, s, value=-1.0)  # H (1 - S)
        elif theta_s is not None:
            u.sub_(s, alpha=theta_s)  # H - theta S
        else:
            u.addcmul_(s, theta_t, value=-1.0)
        u.clamp_(lo, hi)
    return out


@torch.no_grad()
def forward(net: HardwareNet, x: torch.Tensor,
            gen: Optional[torch.Generator] | list[Optional[torch.Generator]], *,
            record: bool = False, count: bool = False, bypass_adc: bool = False
            ) -> torch.Tensor:
    """Logits ``(T, chips * B, K)`` of the programmed chips on the batch ``x`` ``(B, ...)``.

    ``gen``: the chips' generators (:func:`program_chips`; one generator for one chip). The
    chips are folded into the batch, chip-major: row ``c B + b`` is sample ``b`` on chip ``c``.
    The first layer's input is the same for every chip and read by all of them at once. With
    read noise on, the simulation leaves one core to the noise draws
    (:func:`codesign.sim.noise_tape.core_for_draws`)."""
    with core_for_draws("read_noise" in net.names and not bypass_adc):
        return _forward(net, x, gen, record=record, count=count, bypass_adc=bypass_adc)


def _forward(net: HardwareNet, x: torch.Tensor,
             gen: Optional[torch.Generator] | list[Optional[torch.Generator]], *,
             record: bool, count: bool, bypass_adc: bool) -> torch.Tensor:
    model = net.model
    steps = model.T
    gens = list(gen) if isinstance(gen, (list, tuple)) else [gen]
    chips = chips_of(net)
    if len(gens) != chips:
        raise ValueError(f"forward: {len(gens)} generators for {chips} programmed chips")
    h = encode(x, model.encoding, steps)  # (T, B, ...)
    static = steps > 1 and h.stride(0) == 0
    analog = not is_spike_tensor(h)
    pending: Optional[tuple[torch.Tensor, int, SynInfo, bool]] = None
    first = True
    for name, layer in model.layers.items():
        if isinstance(layer, Synapse):
            info = net.synapses[name]
            bits = net.spec.input.bits if (first and analog) else None
            scheme = net.spec.input.first_layer
            if first:  # (T, B, ...): the same input on every chip
                src = h[0] if static else h.flatten(0, 1)
                y, denom = info.xbar.forward_chips(src, shared=True, input_bits=bits,
                                                   scheme=scheme, gens=gens,
                                                   bypass_adc=bypass_adc)
                if not static:
                    y = _step_major(y, chips, steps)
            else:  # (T, chips * B, ...)
                y, denom = info.xbar.forward_chips(_chip_major(h, chips), shared=False,
                                                   input_bits=bits, scheme=scheme, gens=gens,
                                                   bypass_adc=bypass_adc)
                y = _step_major(y, chips, steps)
            pending = (y, denom, info, static)
            first = False
            static = False
        elif isinstance(layer, LIF):
            assert pending is not None
            y, denom, info, was_static = pending
            # h: this LIF layer's spikes (T, chips * B, ...), chip-major within each step
            h = lif_int(layer, y, denom, info.bias_int, steps, was_static)
            if record:
                net.spikes.setdefault(name, []).append(h.to(torch.bool))
            if count:
                per_chip = row_counts(h.reshape(steps * chips, -1)).reshape(steps, chips).sum(0)
                c = net.counts.setdefault(name, [0.0, 0.0])
                c[0] += float(per_chip.sum())
                c[1] += float(h.numel())
                cc = net.chip_counts.setdefault(name, [[0.0, 0.0] for _ in range(chips)])
                for i, v in enumerate(per_chip.tolist()):
                    cc[i][0] += v
                    cc[i][1] += float(h.numel() // chips)
            observe_lif(net, name, h, x)  # codesign.sim.record: spikes for the cost model
            pending = None
        else:
            h = layer(h)
    if pending is None:
        raise CodesignError("hardware simulation: the network must end with a linear readout")
    y, denom, info, was_static = pending
    logits = y.to(torch.float64) / denom
    if info.bias_int is not None:
        logits = logits + info.bias_int.to(torch.float64)
    logits = logits * info.step.to(torch.float64)
    if was_static:
        return logits.unsqueeze(0).expand((steps,) + tuple(logits.shape))
    return logits.reshape((steps, -1) + tuple(logits.shape[1:]))


def calibrate_adc(net: HardwareNet, x: torch.Tensor, batch: int = DEFAULT_BATCH) -> None:
    """``calibrated`` range: full scale per layer and row block = the largest column current of
    the ideal-conductance chip on ``x`` (the calibration batch)."""
    saved = net.names
    net.names = ()
    program_chip(net, None)
    for info in net.synapses.values():
        info.xbar.max_current = None
    for i in range(0, x.shape[0], batch):
        forward(net, x[i:i + batch], None, bypass_adc=True)
    for info in net.synapses.values():
        assert info.xbar.max_current is not None
        info.xbar.calibrate(info.xbar.max_current)
    net.names = saved


def lossless_adc_bits(net: HardwareNet) -> int:
    """ADC bits above which the ideal simulation is exact (the largest block's array range)."""
    return max(lossless_bits(float(i.xbar.full_scale.max())) for i in net.synapses.values())


def predict_chips(net: HardwareNet, x: torch.Tensor, gens: list[Optional[torch.Generator]],
                  *, batch: int = DEFAULT_BATCH, record: bool = False, count: bool = False
                  ) -> torch.Tensor:
    """Predicted classes ``(chips, n)`` (argmax of the mean logits over steps) of every
    programmed chip (:func:`program_chips`) for ``x`` ``(n, ...)``, ``batch`` samples a call."""
    chips = chips_of(net)
    preds = []
    for i in range(0, x.shape[0], batch):
        logits = forward(net, x[i:i + batch], gens, record=record, count=count)
        preds.append(logits.mean(0).argmax(-1).reshape(chips, -1))
    return torch.cat(preds, dim=1)


def predict(net: HardwareNet, x: torch.Tensor, gen: Optional[torch.Generator], *,
            batch: int = DEFAULT_BATCH, record: bool = False, count: bool = False
            ) -> torch.Tensor:
    """Predicted classes (argmax of the mean logits over steps) of one chip for ``x``."""
    return predict_chips(net, x, [gen], batch=batch, record=record, count=count)[0]


def ci95(values: list[float]) -> tuple[float, float]:
    """Student-t 95 % interval of the mean (``(mean, mean)`` for one value)."""
    n = len(values)
    m = float(np.mean(values))
    if n < 2:
        return m, m
    from scipy import stats

    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return m - half, m + half
