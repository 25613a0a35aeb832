"""``digits``: scikit-learn's 1,797 8x8 handwritten digits (UCI optdigits), 10 classes.

Pixels are counts 0..16 (each 8x8 cell summarises a 4x4 block of a 32x32 bitmap) and are scaled
to ``[0, 1]`` by dividing by 16.

Option ``upsample`` is the output side length in pixels: ``1`` (the default) or ``8`` keeps the
native 8x8 images; ``upsample=28`` resizes every image to 28x28 with bilinear interpolation
(``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``) so the same models
as for 28x28 MNIST apply. Bilinear weights are convex, so values stay in ``[0, 1]``.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from codesign.data.split import DataSplit, make_split
from codesign.errors import CodesignError

NATIVE_SIDE = 8


def resize_bilinear(images: np.ndarray, side: int) -> np.ndarray:
    """Resize ``(N, C, H, W)`` float images to ``(N, C, side, side)`` bilinearly."""
    out = torch.nn.functional.interpolate(
        torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
        size=(side, side),
        mode="bilinear",
        align_corners=False,
    )
    return out.clamp_(0.0, 1.0).numpy()


def load_digits_split(*, split_seed: int, test_fraction: float, upsample: int = 1) -> DataSplit:
    """Stratified split of sklearn digits as static ``(N, 1, S, S)`` images in ``[0, 1]``."""
    if (
        isinstance(upsample, bool)
        or not isinstance(upsample, numbers.Integral)
        or not (upsample == 1 or upsample >= NATIVE_SIDE)
    ):
        raise CodesignError(
            f"digits: upsample: expected 1 (native 8x8) or an output side length >= 8 "
            f"(e.g. 28), got {upsample!r}"
        )
    from sklearn.datasets import load_digits  # deferred import

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None]
    side = NATIVE_SIDE if upsample == 1 else int(upsample)
    if side != NATIVE_SIDE:
        images = resize_bilinear(images, side)
    return make_split(
        "digits",
        images,
        np.asarray(bunch.target, dtype=np.int64),
        kind="static",
        split_seed=split_seed,
        test_fraction=test_fraction,
        num_classes=10,
        meta={
            "source": "sklearn.datasets.load_digits",
            "pixel_scale": "0..16 / 16",
            "upsample": int(upsample),
            "side": side,
        },
    )
