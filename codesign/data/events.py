r"""Saccade DVS synthesis: turn static images into ON/OFF event frames the way N-MNIST was made.

N-MNIST (Orchard et al., 2015) was recorded by pointing a DVS/ATIS camera at MNIST digits on a
monitor and moving the *sensor* through three fast saccades along a triangle. A still image
produces no events; only the motion does. This module reproduces the process in numpy:

1. **Motion.** The image is translated along the closed triangle (in pixels, ``(dx, dy)``)
   ``(0, 0) -> (+a, +a) -> (-a, +a) -> (0, 0)`` with amplitude ``a`` (default 1.5 px), each of
   the three straight saccades sampled at ``substeps`` equal sub-steps (default 8, so
   ``K = 3 * substeps`` time samples after the start). Sub-pixel shifts use bilinear
   interpolation with a black (zero) background outside the image.
2. **Pixel model.** Each pixel sees the log intensity :math:`L = \log(I + \epsilon)` with
   :math:`I \in [0, 1]` and a dark level :math:`\epsilon` (default 0.1; it bounds the contrast a
   black pixel can report and keeps the log finite). Each pixel keeps a reference level
   :math:`R`, initialised to its log intensity at rest (the sensor is adapted to the still
   image). At every sub-step, with :math:`D = L - R` and contrast threshold :math:`C`
   (default 0.25, i.e. ~28 % brightness change):

   * :math:`D \ge C`  -> ON event(s), :math:`D \le -C` -> OFF event(s);
   * the pixel emits :math:`n = \lfloor |D| / C \rfloor` events and resets its reference by
     whole thresholds, :math:`R \leftarrow R + \operatorname{sign}(D)\, n C`, so afterwards
     :math:`|L - R| < C` (the standard DVS contrast model, without refractory period).
3. **Binning.** The ``K`` sub-steps are split into ``T`` consecutive, equal-length bins
   (sub-step ``k = 1..K`` goes to bin ``floor((k - 1) T / K)``); a frame entry is 1 when that
   pixel emitted at least one event of that polarity in that bin, so frames are binary
   ``(N, T, 2, H, W)`` with channel 0 = ON, channel 1 = OFF.

Optional sensor noise: with ``noise_rate > 0`` every pixel also fires a spurious event of random
polarity with that probability per sub-step (drawn from ``numpy.random.default_rng(noise_seed)``,
so still deterministic). The default is noise-free and uses no randomness at all.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

from codesign.errors import CodesignError


@dataclass(frozen=True)
class SaccadeParams:
    """Parameters of :func:`saccade_events` (all recorded in ``DataSplit.meta``)."""

    threshold: float = 0.25
    """Contrast threshold ``C`` on log intensity (ON and OFF alike)."""
    amplitude: float = 1.5
    """Saccade amplitude ``a`` in pixels: triangle vertices at ``(+a, +a)`` and ``(-a, +a)``."""
    substeps: int = 8
    """Time samples per saccade (``K = 3 * substeps`` in all)."""
    eps: float = 0.1
    """Dark level added before the log: ``L = log(I + eps)``."""
    noise_rate: float = 0.0
    """Probability per pixel and sub-step of a spurious event of random polarity."""
    noise_seed: int = 0
    """Seed of the noise generator (used only when ``noise_rate > 0``)."""

    def validate(self) -> SaccadeParams:
        """Raise :class:`CodesignError` naming the first bad parameter."""
        checks = [
            ("threshold", self.threshold > 0, "a number > 0"),
            ("amplitude", 0 <= self.amplitude <= 8, "a number of pixels in [0, 8]"),
            ("substeps", isinstance(self.substeps, numbers.Integral) and self.substeps >= 1,
             "an integer >= 1"),
            ("eps", self.eps > 0, "a number > 0"),
            ("noise_rate", 0 <= self.noise_rate <= 1, "a probability in [0, 1]"),
            ("noise_seed", isinstance(self.noise_seed, numbers.Integral) and self.noise_seed >= 0,
             "an integer >= 0"),
        ]
        for key, ok, expected in checks:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok:
                raise CodesignError(f"nmnist5k: {key}: expected {expected}, got {value!r}")
        return self

    def as_dict(self) -> dict[str, float | int]:
        """JSON-serialisable copy of the parameters (plain Python numbers)."""
        return {k: (int(v) if k in ("substeps", "noise_seed") else float(v))
                for k, v in asdict(self).items()}


def saccade_path(amplitude: float, substeps: int) -> np.ndarray:
    """Offsets ``(dy, dx)`` of shape ``(3 * substeps + 1, 2)``, starting and ending at 0.

    Vertices in ``(dx, dy)`` pixels: ``(0, 0) -> (+a, +a) -> (-a, +a) -> (0, 0)``; each leg is
    sampled at ``substeps`` equally spaced points after its start.
    """
    a = float(amplitude)
    vertices = np.array([[0.0, 0.0], [a, a], [a, -a], [0.0, 0.0]])  # (dy, dx)
    points = [vertices[:1]]
    frac = np.arange(1, substeps + 1, dtype=np.float64)[:, None] / substeps
    for start, end in zip(vertices[:-1], vertices[1:], strict=True):
        points.append(start + frac * (end - start))
    return np.concatenate(points)


def shift_bilinear(images: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Translate ``(N, H, W)`` images by ``(dy, dx)`` pixels, bilinear, zero background.

    ``out[y, x] = I(y - dy, x - dx)`` with ``I`` bilinearly interpolated and 0 outside.
    """
    n, h, w = images.shape
    iy, ix = math.floor(dy), math.floor(dx)
    fy, fx = np.float32(dy - iy), np.float32(dx - ix)
    pad = max(abs(iy), abs(ix)) + 2
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=np.float32)
    padded[:, pad : pad + h, pad : pad + w] = images

    def shifted(ay: int, ax: int) -> np.ndarray:  # out[y, x] = I[y - ay, x - ax]
        return padded[:, pad - ay : pad - ay + h, pad - ax : pad - ax + w]

    one = np.float32(1.0)
    out = (one - fy) * (one - fx) * shifted(iy, ix)
    if fx:
        out += (one - fy) * fx * shifted(iy, ix + 1)
    if fy:
        out += fy * (one - fx) * shifted(iy + 1, ix)
        if fx:
            out += fy * fx * shifted(iy + 1, ix + 1)
    return out


def saccade_events(
    images: np.ndarray,
    T: int,
    *,
    threshold: float = SaccadeParams.threshold,
    amplitude: float = SaccadeParams.amplitude,
    substeps: int = SaccadeParams.substeps,
    eps: float = SaccadeParams.eps,
    noise_rate: float = SaccadeParams.noise_rate,
    noise_seed: int = SaccadeParams.noise_seed,
) -> np.ndarray:
    """Binary ON/OFF event frames ``uint8 (N, T, 2, H, W)`` from images in ``[0, 1]``.

    ``images`` is ``(N, H, W)`` or ``(N, 1, H, W)`` float in ``[0, 1]`` (``uint8`` is divided by
    255). See the module docstring for the motion, the log-intensity contrast model and the
    binning. Deterministic; vectorised over the batch (one numpy pass per sub-step).
    """
    params = SaccadeParams(threshold, amplitude, substeps, eps, noise_rate, noise_seed).validate()
    imgs = np.asarray(images)
    if imgs.ndim == 4 and imgs.shape[1] == 1:
        imgs = imgs[:, 0]
    if imgs.ndim != 3:
        raise CodesignError(f"saccade_events: expected images (N, H, W), got {imgs.shape}")
    if imgs.dtype == np.uint8:
        imgs = imgs.astype(np.float32) / np.float32(255.0)
    imgs = np.ascontiguousarray(imgs, dtype=np.float32)
    steps = 3 * int(params.substeps)
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or not 1 <= T <= steps:
        raise CodesignError(
            f"T: expected an integer in [1, {steps}] (3 saccades x substeps={params.substeps} "
            f"sub-steps), got {T!r}"
        )
    T = int(T)
    n, h, w = imgs.shape
    frames = np.zeros((n, T, 2, h, w), dtype=np.uint8)
    path = saccade_path(params.amplitude, int(params.substeps))
    c = np.float32(params.threshold)
    log_eps = np.float32(params.eps)
    ref = np.log(imgs + log_eps)  # adapted to the still image
    rng = np.random.default_rng(params.noise_seed) if params.noise_rate > 0 else None
    for k in range(1, steps + 1):
        level = np.log(shift_bilinear(imgs, *path[k]) + log_eps)
        diff = level - ref
        count = np.trunc(diff / c)  # signed number of threshold crossings
        ref += count * c
        on, off = count > 0, count < 0
        if rng is not None:
            noise = rng.random(on.shape) < params.noise_rate
            polarity = rng.random(on.shape) < 0.5
            on |= noise & polarity
            off |= noise & ~polarity
        b = (k - 1) * T // steps
        frames[:, b, 0] |= on
        frames[:, b, 1] |= off
    return frames
