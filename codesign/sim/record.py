"""What the simulated chips did, recorded for the cost model: spikes per layer and step, reads.

:class:`SimRecorder` is attached to a :class:`~codesign.sim.network.HardwareNet`
(:meth:`SimRecorder.attach`); :func:`observe_lif` is called from ONE place in
:func:`codesign.sim.network.forward` (the LIF branch) with every LIF layer's spikes ``(T, N,
...)`` and the batch input ``x`` ``(B, ...)``. ``N`` is ``B`` (one chip per call) or ``chips *
B`` (chips folded into the batch, chip-major: row ``c B + b`` is sample ``b`` on chip ``c``);
the recorder only sums over rows and keeps rows, so it works with either.

It records, per LIF layer,

* **all rows**: spikes summed per time step over every row (sample x chip) of the run, so
  :meth:`SimRecorder.spikes_per_step` is the mean over chips and samples of the spikes per
  sample and step -- the ``(T,)`` vector the cost model charges for a LIF population
  (:func:`codesign.hw.activity.spike_counts`), and :meth:`SimRecorder.rates` the firing rate;
* **a uniform sample of rows**: the spike tensors of at most ``keep`` rows, chosen by
  reservoir sampling (Vitter's algorithm R; ``numpy.random.default_rng(seed)``): every row of
  the whole run, over all chips and batches, is kept with the same probability ``keep / rows``
  without knowing the number of rows in advance, and memory stays at ``keep`` rows. The same
  rows are kept for every layer of a call (the choice is drawn once per forward call, at its
  first LIF layer), with their input samples. While fewer than ``keep`` rows have been seen,
  every row is kept in order. :meth:`SimRecorder.activity` turns them into the
  ``map_network(..., activity=...)`` dict: every synaptic layer's input ``(T, K, ...)`` (the
  encoded inputs for the first layer, the kept spikes through the model's pool / flatten layers
  for the others) and every LIF layer's output spikes ``(T, K, ...)``, so the cost model
  charges the hardware run's spikes (the row-block reads, all-zero reads and active rows it
  derives from them).

And per synaptic layer the crossbar read counts of the simulated reads
(:class:`~codesign.sim.crossbar.ReadStats`: reads, all-zero reads, active rows), counted from
:meth:`SimRecorder.attach` on (calibration reads before it are excluded) and divided by the rows
seen: :meth:`SimRecorder.read_stats`. Active rows are counted for binary row drives (spikes,
bit-serial planes); a DAC-driven read counts none (``codesign.sim.crossbar``).

Rate encoding: :meth:`SimRecorder.activity` re-encodes the kept inputs, so the first layer's
input spikes are a fresh Bernoulli draw (the same rates), not the draw the chips saw; the LIF
spikes are the chips' own.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from codesign.errors import CodesignError
from codesign.snn.encoding import is_spike_tensor

READ_FIELDS = ("reads", "zero_reads", "active_rows")


class SimRecorder:
    """Spikes and reads of a simulated run (module docstring). ``keep``: rows whose spike
    tensors are kept for the cost model; ``seed``: the reservoir's draw."""

    def __init__(self, keep: int = 64, seed: int = 0) -> None:
        if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 1:
            raise CodesignError(f"SimRecorder: keep: expected a positive integer, got {keep!r}")
        self.keep = int(keep)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self.seen = 0
        """Rows (sample x chip) of the run so far."""
        self.spike_sum: dict[str, np.ndarray] = {}
        """Per LIF layer: spikes per step ``(T,)`` summed over all rows (float64)."""
        self.rows: dict[str, int] = {}
        self.neurons: dict[str, int] = {}
        """Per LIF layer: neurons per row."""
        self.kept: dict[str, np.ndarray] = {}
        """Per LIF layer: ``(T, keep, ...)`` bool spikes of the kept rows."""
        self.kept_x: Optional[np.ndarray] = None
        """``(keep, ...)`` input samples of the kept rows."""
        self._plan: list[tuple[int, int]] = []
        self._call: set[str] = set()
        self._stats0: dict[str, tuple[int, int, int]] = {}
        self.order: list[str] = []
        self._net: Any = None

    # -- wiring

    def attach(self, net: Any) -> None:
        """Record ``net``'s next forward calls; read counts from now on."""
        net.recorder = self
        self._net = net
        self._stats0 = {name: _stats_tuple(info.xbar.stats)
                        for name, info in net.synapses.items()}

    # -- recording

    def _new_call(self, n: int) -> None:
        """Reservoir decisions for the ``n`` rows of one forward call: ``(row, slot)``."""
        plan: dict[int, int] = {}
        for i in range(n):
            s = self.seen + i
            if s < self.keep:
                plan[s] = i
            else:
                j = int(self._rng.integers(0, s + 1))
                if j < self.keep:
                    plan[j] = i  # a later row of the same call may take the slot again
        self.seen += n
        self._plan = sorted(((row, slot) for slot, row in plan.items()), key=lambda p: p[1])

    def lif(self, name: str, spikes: torch.Tensor, x: torch.Tensor) -> None:
        """Record LIF layer ``name``'s spikes ``(T, N, ...)`` on the batch input ``x``."""
        T, n = int(spikes.shape[0]), int(spikes.shape[1])
        b = int(x.shape[0])
        if b < 1 or n % b:
            raise CodesignError(f"SimRecorder: {name}: {n} spike rows for a batch of {b} "
                                "inputs; expected a multiple (chips folded chip-major)")
        if not self._call or name in self._call:
            self._call = set()
            self._new_call(n)
            if self._plan:
                xs = x.detach().cpu()
                if self.kept_x is None:
                    self.kept_x = np.zeros((self.keep,) + tuple(xs.shape[1:]),
                                           dtype=np.float32)
                rows = torch.as_tensor([r % b for r, _ in self._plan])
                slots = [s for _, s in self._plan]
                self.kept_x[slots] = xs[rows].to(torch.float32).numpy()
        self._call.add(name)
        if name not in self.rows:
            self.order.append(name)
            self.rows[name] = 0
            self.spike_sum[name] = np.zeros(T)
            self.neurons[name] = int(np.prod(spikes.shape[2:]))
        per_row = row_counts(spikes.detach().reshape(T * n, -1)).reshape(T, n)
        self.spike_sum[name] += per_row.sum(1).cpu().numpy()
        self.rows[name] += n
        if self._plan:
            if name not in self.kept:
                self.kept[name] = np.zeros((T, self.keep) + tuple(spikes.shape[2:]), dtype=bool)
            rows = torch.as_tensor([r for r, _ in self._plan])
            slots = [s for _, s in self._plan]
            self.kept[name][:, slots] = spikes.detach()[:, rows].to(torch.bool).cpu().numpy()

    # -- results

    @property
    def kept_rows(self) -> int:
        return min(self.seen, self.keep)

    def spikes_per_step(self) -> dict[str, np.ndarray]:
        """Per LIF layer: spikes per sample and step ``(T,)``, mean over every row (chips and
        samples) of the run."""
        return {k: v / max(1, self.rows[k]) for k, v in self.spike_sum.items()}

    def rates(self) -> dict[str, float]:
        """Per LIF layer: firing rate (spikes per neuron and step), mean over every row."""
        return {k: float(v.sum() / (len(v) * self.rows[k] * self.neurons[k]))
                for k, v in self.spike_sum.items() if self.rows[k] and self.neurons[k]}

    def read_stats(self) -> dict[str, dict[str, float]]:
        """Per synaptic layer of the attached net: ``reads``, ``zero_reads``, ``active_rows``
        since :meth:`attach` (totals), the same per row (``*_per_sample``: per sample and chip,
        all steps) and ``active_rows_per_read``."""
        out: dict[str, dict[str, float]] = {}
        if self._net is None:
            return out
        n = max(1, self.seen)
        for name, info in self._net.synapses.items():
            now = _stats_tuple(info.xbar.stats)
            base = self._stats0.get(name, (0, 0, 0))
            d = {f: float(a - b) for f, a, b in zip(READ_FIELDS, now, base, strict=True)}
            row: dict[str, float] = dict(d)
            row.update({f"{f}_per_sample": d[f] / n for f in READ_FIELDS})
            row["active_rows_per_read"] = d["active_rows"] / d["reads"] if d["reads"] else 0.0
            out[name] = row
        return out

    def inputs(self) -> torch.Tensor:
        """The input samples of the kept rows ``(K, ...)``, in slot order."""
        if self.kept_x is None:
            raise CodesignError("SimRecorder: nothing recorded (no forward call reached a LIF)")
        return torch.from_numpy(self.kept_x[: self.kept_rows].copy())

    @torch.no_grad()
    def activity(self, model: Any) -> dict[str, np.ndarray]:
        """The ``map_network(..., activity=...)`` dict of the kept rows (module docstring):
        every synaptic layer's input and every LIF layer's spikes, ``(T, K, ...)``."""
        from codesign.snn.encoding import encode
        from codesign.snn.layers import Synapse
        from codesign.snn.neuron import LIF

        k = self.kept_rows
        h: Optional[torch.Tensor] = encode(self.inputs(), model.encoding, int(model.T))
        out: dict[str, np.ndarray] = {}
        for name, layer in model.layers.items():
            if isinstance(layer, Synapse):
                assert h is not None, f"{name}: no recorded input"
                out[name] = _as_array(h)
                h = None
            elif isinstance(layer, LIF):
                if name not in self.kept:
                    raise CodesignError(f"SimRecorder: LIF layer {name!r} was not recorded")
                spikes = self.kept[name][:, :k]
                out[name] = spikes
                h = torch.from_numpy(spikes).to(torch.float32)
            elif h is not None:
                h = layer(h)
        return out


_F32_EXACT = 1 << 24
"""Integers up to ``2^24`` are exact in float32."""


def row_counts(x: torch.Tensor) -> torch.Tensor:
    """Sums of the rows of a 0/1 (spike) tensor ``x`` ``(R, n)``, float64, exact: in float32
    while a row is shorter than ``2^24`` (every partial sum of a row is an integer no larger
    than its length, so exact; ~20x faster than summing in float64 on CPU), else in float64."""
    if x.dtype == torch.float32 and x.shape[-1] < _F32_EXACT:
        return x.sum(-1).to(torch.float64)
    return x.sum(-1, dtype=torch.float64)


def _stats_tuple(st: Any) -> tuple[int, int, int]:
    return tuple(int(getattr(st, f)) for f in READ_FIELDS)  # type: ignore[return-value]


def _as_array(t: torch.Tensor) -> np.ndarray:
    """``bool`` for an all-0/1 tensor (spikes), else ``float32`` (what ``measure_activity``
    stores)."""
    t = t.detach().cpu()
    if is_spike_tensor(t):
        return t.to(torch.bool).numpy().copy()
    return t.to(torch.float32).numpy().copy()


def observe_lif(net: Any, name: str, spikes: torch.Tensor, x: torch.Tensor) -> None:
    """The hook of :func:`codesign.sim.network.forward`: hand a LIF layer's spikes to the
    recorder attached to ``net``, if any (no cost otherwise)."""
    rec = getattr(net, "recorder", None)
    if rec is not None:
        rec.lif(name, spikes, x)
