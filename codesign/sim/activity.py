"""Measured spike activity of a codesign network on real data, keyed by graph node name.

:func:`measure_activity` runs the model in eval mode (no gradients) on a bounded subset of
samples and records, through forward hooks,

* for every :class:`~codesign.snn.layers.Synapse` (conv / linear): its **input** ``(T, B,
  *in_shape)`` -- binary spikes for hidden layers, the analog (direct-encoded) image for the
  first layer, averaged spikes after an average pool;
* for every :class:`~codesign.snn.neuron.LIF`: its **output spikes** ``(T, B, *shape)``;

under the module names that :func:`codesign.graph.from_model.graph_from_model` gives the nodes
(``conv1``, ``lif1``, ``block1.conv_a``, ``fc_out``, ...). This is the ``activity`` argument of
:func:`codesign.hw.map_network`.

Memory: at most ``max_samples`` samples (default :data:`DEFAULT_MAX_SAMPLES` = 64) are run,
``batch_size`` at a time. A tensor whose values are all 0 or 1 is stored as ``bool`` (1 byte per
element); any other (analog) tensor as ``float32`` (exact for the images and pooled spikes we
record). The total is about ``samples * T * sum(elements per step of every recorded tensor)``
bytes for spikes (x4 for analog ones); :func:`activity_stats` reports it per tensor.

Reproducibility: when the data has more than ``max_samples`` samples, a sorted subset is drawn
with ``numpy.random.default_rng(seed)`` without replacement; rate encoding draws its Bernoulli
spikes from a torch generator seeded with ``seed`` (the global torch RNG is left untouched).
The result's :attr:`Activity.meta` records the seed, the sample indices, T, batch size and what
each tensor is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
import torch

from codesign.errors import CodesignError
from codesign.snn.encoding import is_spike_tensor
from codesign.snn.model import SpikingNet

DEFAULT_MAX_SAMPLES = 64
DEFAULT_BATCH_SIZE = 32
INPUT, SPIKES = "input", "spikes"


class Activity(dict):
    """``dict`` node name -> ``(T, B, ...)`` numpy array, with :attr:`meta` (provenance)."""

    def __init__(self, tensors: Mapping[str, np.ndarray], meta: Optional[dict] = None) -> None:
        super().__init__(tensors)
        self.meta: dict[str, Any] = dict(meta or {})


def select_samples(n: int, max_samples: Optional[int], seed: int = 0) -> np.ndarray:
    """Sorted indices of the samples to run: all ``n`` if ``max_samples`` is ``None`` or
    ``>= n``, else ``max_samples`` drawn without replacement with ``default_rng(seed)``."""
    if max_samples is None or max_samples >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=int(max_samples), replace=False))


def _check_args(model: Any, batch_size: int, max_samples: Optional[int], seed: int) -> None:
    if not isinstance(model, SpikingNet):
        raise CodesignError(f"measure_activity: expected a codesign SpikingNet, got "
                            f"{type(model).__name__}")
    for what, v, allow_none in (("batch_size", batch_size, False),
                                ("max_samples", max_samples, True)):
        if v is None and allow_none:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise CodesignError(f"measure_activity: {what}: expected a positive integer, got "
                                f"{v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CodesignError(f"measure_activity: seed: expected a non-negative integer, got "
                            f"{seed!r}")


def _check_input(model: SpikingNet, x: torch.Tensor) -> None:
    """Refuse data whose per-sample shape does not fit the model."""
    spec = model.spec
    c, s = int(spec["in_channels"]), int(spec["image_size"])
    if model.encoding == "events":
        ok = x.dim() == 5 and tuple(x.shape[2:]) == (c, s, s) and x.shape[1] >= model.T
        want = f"(N, >= {model.T}, {c}, {s}, {s}) event frames"
    else:
        ok = x.dim() == 4 and tuple(x.shape[1:]) == (c, s, s)
        want = f"(N, {c}, {s}, {s}) images"
    if not ok:
        raise CodesignError(f"measure_activity: model {spec.get('name', '?')!r} expects "
                            f"{want}, got data of shape {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise CodesignError("measure_activity: the data has no samples")


class _Recorder:
    """Forward hooks that append each recorded tensor of one batch as numpy."""

    def __init__(self, model: SpikingNet) -> None:
        self.kinds: dict[str, str] = {}
        self.chunks: dict[str, list[np.ndarray]] = {}
        self.handles: list[Any] = []
        for name, syn in model.synapses():
            self._hook(name, syn, INPUT)
        for name, lif in model.neurons():
            self._hook(name, lif, SPIKES)

    def _hook(self, name: str, mod: torch.nn.Module, kind: str) -> None:
        self.kinds[name] = kind
        self.chunks[name] = []

        def hook(_mod, inputs, output, _name=name, _kind=kind):
            t = (inputs[0] if _kind == INPUT else output).detach()
            # LIF outputs are 0/1 by construction (a comparison); inputs are checked
            if _kind == SPIKES or is_spike_tensor(t):
                arr = t.to(device="cpu", dtype=torch.bool).numpy()
            else:
                arr = t.to(device="cpu", dtype=torch.float32).numpy()
            self.chunks[_name].append(arr)

        self.handles.append(mod.register_forward_hook(hook))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def tensors(self) -> dict[str, np.ndarray]:
        """Concatenate the batches along the batch axis (axis 1)."""
        out = {}
        for name, parts in self.chunks.items():
            if not parts:
                continue
            if all(p.dtype == bool for p in parts):
                out[name] = np.concatenate(parts, axis=1)
            else:
                out[name] = np.concatenate([p.astype(np.float32) for p in parts], axis=1)
        return out


def measure_activity(
    model: SpikingNet,
    x: Union[torch.Tensor, np.ndarray],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_samples: Optional[int] = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Activity:
    """Record every synaptic layer's input and every LIF's output spikes on data ``x``.

    ``x``: ``(N, C, H, W)`` static images (or ``(N, T', C, H, W)`` event frames for an
    ``events`` model). At most ``max_samples`` samples are run (``None``: all), chosen with
    ``seed`` (see the module docstring). Returns an :class:`Activity`: node name -> array of
    shape ``(T, B, ...)``, ``bool`` for binary tensors and ``float32`` otherwise, with
    ``meta = {seed, indices, samples, T, batch_size, encoding, kinds, seconds}``.
    The model's training mode is restored afterwards. ``progress(done, total)``, when given,
    is called after every batch with the number of samples run so far and in all.
    """
    _check_args(model, batch_size, max_samples, seed)
    xt = torch.as_tensor(x)
    if not xt.is_floating_point():
        xt = xt.float()
    _check_input(model, xt)
    idx = select_samples(int(xt.shape[0]), max_samples, int(seed))
    device = next(model.parameters()).device
    rec = _Recorder(model)
    was_training = model.training
    t0 = time.perf_counter()
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for lo in range(0, len(idx), batch_size):
                xb = xt[torch.as_tensor(idx[lo:lo + batch_size])].to(device)
                model(xb)
                if progress is not None:
                    progress(min(lo + batch_size, len(idx)), len(idx))
    finally:
        rec.remove()
        model.train(was_training)
    tensors = rec.tensors()
    meta = {
        "seed": int(seed),
        "indices": [int(i) for i in idx],
        "samples": int(len(idx)),
        "T": int(model.T),
        "batch_size": int(batch_size),
        "max_samples": None if max_samples is None else int(max_samples),
        "encoding": model.encoding,
        "kinds": {n: rec.kinds[n] for n in tensors},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return Activity(tensors, meta)


def activity_stats(activity: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per recorded tensor.

    Columns: ``name``, ``kind`` (``input`` of a synaptic layer or LIF ``spikes``, when the
    mapping is an :class:`Activity`), ``shape`` (per sample and step), ``T``, ``samples``,
    ``binary``, ``rate`` (fraction of non-zero elements, mean over steps and samples),
    ``rate_min_step`` / ``rate_max_step`` (the lowest / highest per-step rate),
    ``silent_fraction`` (fraction of (step, sample) pairs whose whole tensor is zero), ``mean``
    (mean value) and ``mbytes`` (memory held).
    """
    kinds = getattr(activity, "meta", {}).get("kinds", {})
    rows = []
    for name, arr in activity.items():
        a = np.asarray(arr)
        if a.ndim < 3:
            raise CodesignError(f"activity[{name!r}]: expected (T, B, ...), got shape {a.shape}")
        T, B = a.shape[:2]
        nz = (a != 0).reshape(T, B, -1)
        per_step = nz.mean(axis=(1, 2))
        rows.append({
            "name": name,
            "kind": kinds.get(name),
            "shape": tuple(int(v) for v in a.shape[2:]),
            "T": int(T),
            "samples": int(B),
            "binary": bool(a.dtype == bool),
            "rate": float(per_step.mean()),
            "rate_min_step": float(per_step.min()),
            "rate_max_step": float(per_step.max()),
            "silent_fraction": float((~nz.any(axis=2)).mean()),
            "mean": float(a.mean(dtype=np.float64)),
            "mbytes": a.nbytes / 1e6,
        })
    return pd.DataFrame(rows)
