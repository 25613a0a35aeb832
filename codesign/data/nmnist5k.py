"""``nmnist5k``: event-stream version of mnist5k synthesised by saccade DVS simulation.

Every mnist5k image is moved along N-MNIST's three-saccade triangle and turned into binary ON/OFF
frames by :func:`codesign.data.events.saccade_events` (see there for the log-intensity contrast
model and the defaults). Options: ``threshold``, ``amplitude``, ``substeps``, ``eps``,
``noise_rate``, ``noise_seed``; all are recorded in ``meta["params"]`` together with the measured
event density ``meta["density"]`` (fraction of nonzero entries, ON and OFF separately).

All 5,000 samples are synthesised once per ``(T, params)`` and cached in-process (as ``uint8``);
the split is then taken with the same stratified indices as mnist5k, so for a given
``split_seed`` sample ``i`` of ``nmnist5k`` is the event version of sample ``i`` of ``mnist5k``.
"""

from __future__ import annotations

import functools

import numpy as np

from codesign.data.events import SaccadeParams, saccade_events
from codesign.data.mnist5k import SOURCE, mnist5k_arrays
from codesign.data.split import DataSplit, event_density, make_split


@functools.lru_cache(maxsize=4)
def nmnist5k_frames(T: int, params: SaccadeParams) -> np.ndarray:
    """Read-only ``uint8 (5000, T, 2, 28, 28)`` event frames for all mnist5k images."""
    x, _ = mnist5k_arrays()
    frames = saccade_events(x, T, **params.as_dict())
    frames.setflags(write=False)
    return frames


def load_nmnist5k(
    *,
    split_seed: int,
    test_fraction: float,
    T: int,
    threshold: float = SaccadeParams.threshold,
    amplitude: float = SaccadeParams.amplitude,
    substeps: int = SaccadeParams.substeps,
    eps: float = SaccadeParams.eps,
    noise_rate: float = SaccadeParams.noise_rate,
    noise_seed: int = SaccadeParams.noise_seed,
) -> DataSplit:
    """Stratified split of nmnist5k as binary ``(N, T, 2, 28, 28)`` ON/OFF frames."""
    params = SaccadeParams(threshold, amplitude, substeps, eps, noise_rate, noise_seed).validate()
    frames = nmnist5k_frames(T, params)
    _, y = mnist5k_arrays()
    return make_split(
        "nmnist5k",
        frames,
        y,
        kind="events",
        split_seed=split_seed,
        test_fraction=test_fraction,
        num_classes=10,
        meta={
            "source": f"saccade DVS synthesis of {SOURCE}",
            "T": T,
            "params": params.as_dict(),
            "density": event_density(frames),
        },
    )
