"""Input encodings: how a static image or an event stream becomes T steps of input.

* ``direct``: the analog image drives the first layer at every step, ``x[t] = x``.
* ``rate``:   Poisson (Bernoulli per step) spikes with probability equal to the pixel
              intensity in [0, 1], ``x[t] ~ Bernoulli(x)``; draws use the torch generator state
              (seeded by the caller).
* ``events``: the data already holds binary frames ``(B, T, C, H, W)``; they are transposed to
              ``(T, B, C, H, W)`` and truncated to the first ``T`` steps.
"""

from __future__ import annotations

import torch

from codesign.errors import CodesignError

ENCODINGS = ("direct", "rate", "events")


def is_spike_tensor(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is 0 or 1 (binary spikes, one row-drive plane); anything
    else is an analog or multi-level signal."""
    return bool(((t == 0) | (t == 1)).all())


def encode(x: torch.Tensor, encoding: str, steps: int) -> torch.Tensor:
    """Return the ``(T, B, ...)`` input sequence for a batch ``x``."""
    if encoding == "direct":
        return x.unsqueeze(0).expand((steps,) + tuple(x.shape))
    if encoding == "rate":
        probs = x.clamp(0.0, 1.0).unsqueeze(0).expand((steps,) + tuple(x.shape))
        return torch.bernoulli(probs)
    if encoding == "events":
        if x.dim() < 3 or x.shape[1] < steps:
            raise CodesignError(
                f"encoding events: input of shape {tuple(x.shape)} has fewer than T={steps} frames"
            )
        return x[:, :steps].transpose(0, 1)
    raise CodesignError(f"encoding: {encoding!r} is not known; expected one of {ENCODINGS}")
