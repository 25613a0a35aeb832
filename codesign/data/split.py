"""The :class:`DataSplit` container and the stratified train/test split shared by all loaders."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from codesign.errors import CodesignError

KINDS: tuple[str, ...] = ("static", "events")


@dataclass
class DataSplit:
    """A labelled train/test split.

    Tensors are ``float32`` inputs and ``int64`` labels:

    * ``kind == "static"``: ``x`` is ``(N, C, H, W)`` with values in ``[0, 1]``;
    * ``kind == "events"``: ``x`` is ``(N, T, 2, H, W)`` binary ``{0, 1}``, channel 0 = ON,
      channel 1 = OFF.

    ``input_shape`` is the per-step input shape without batch and time axes, e.g.
    ``(1, 28, 28)`` or ``(2, 28, 28)``. ``meta`` is JSON-serialisable (seed, fraction, source,
    sizes, and for events ``T``, the synthesis parameters and the measured density).
    """

    name: str
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    kind: str
    num_classes: int
    input_shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def T(self) -> int | None:
        """Number of time bins for event data, ``None`` for static data."""
        return int(self.x_train.shape[1]) if self.kind == "events" else None


def check_split_options(split_seed: Any, test_fraction: Any) -> tuple[int, float]:
    """Validate the split options shared by every dataset; return them normalised."""
    if isinstance(split_seed, bool) or not isinstance(split_seed, numbers.Integral):
        raise CodesignError(f"split_seed: expected a non-negative integer, got {split_seed!r}")
    if not 0 <= int(split_seed) < 2**32:
        raise CodesignError(f"split_seed: expected an integer in [0, 2**32), got {split_seed}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise CodesignError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    frac = float(test_fraction)
    if not 0.0 < frac < 1.0:
        raise CodesignError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    return int(split_seed), frac


def stratified_indices(
    y: np.ndarray, *, split_seed: int, test_fraction: float, what: str = "dataset"
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``(train_idx, test_idx)`` for labels ``y``.

    Uses ``sklearn.model_selection.train_test_split(..., stratify=y, random_state=split_seed)``
    so the indices are reproducible for a seed and every class keeps its proportion in both
    parts (5,000 MNIST images with 500 per class -> 4,000/1,000 with 400/100 per class).
    """
    from sklearn.model_selection import train_test_split  # deferred: ~1 s import

    idx = np.arange(len(y))
    try:
        train_idx, test_idx = train_test_split(
            idx, test_size=test_fraction, stratify=y, random_state=split_seed, shuffle=True
        )
    except ValueError as exc:
        raise CodesignError(
            f"{what}: cannot make a stratified split with test_fraction={test_fraction} "
            f"({len(y)} samples, {len(np.unique(y))} classes): {exc}"
        ) from None
    return np.asarray(train_idx), np.asarray(test_idx)


def make_split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    kind: str,
    split_seed: int,
    test_fraction: float,
    num_classes: int | None = None,
    meta: dict[str, Any] | None = None,
) -> DataSplit:
    """Split arrays ``x`` (already scaled: float in [0, 1] or binary) and ``y`` stratified.

    Fancy indexing copies, so the returned tensors never alias a cached array.
    """
    train_idx, test_idx = stratified_indices(
        y, split_seed=split_seed, test_fraction=test_fraction, what=name
    )
    return from_arrays(
        name,
        x[train_idx],
        y[train_idx],
        x[test_idx],
        y[test_idx],
        kind=kind,
        num_classes=num_classes,
        meta={"split_seed": split_seed, "test_fraction": test_fraction, **(meta or {})},
    )


def from_arrays(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    kind: str,
    num_classes: int | None = None,
    meta: dict[str, Any] | None = None,
) -> DataSplit:
    """Build a :class:`DataSplit` from already split numpy arrays (float32 / int64 tensors)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
    xe = torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y_train, dtype=np.int64))
    ye = torch.from_numpy(np.ascontiguousarray(y_test, dtype=np.int64))
    if num_classes is None:
        num_classes = int(max(yt.max().item() if len(yt) else -1,
                              ye.max().item() if len(ye) else -1)) + 1
    input_shape = tuple(int(s) for s in (xt.shape[2:] if kind == "events" else xt.shape[1:]))
    full_meta: dict[str, Any] = dict(meta or {})
    full_meta.setdefault("sizes", {"train": int(len(yt)), "test": int(len(ye))})
    if kind == "events":
        full_meta.setdefault("T", int(xt.shape[1]))
        full_meta.setdefault("density", event_density(x_train, x_test))
    return DataSplit(
        name=name,
        x_train=xt,
        y_train=yt,
        x_test=xe,
        y_test=ye,
        kind=kind,
        num_classes=int(num_classes),
        input_shape=input_shape,
        meta=full_meta,
    )


def event_density(*frames: np.ndarray) -> dict[str, float]:
    """Fraction of nonzero entries of ``(N, T, 2, H, W)`` frames: ON, OFF and both channels.

    Several arrays (e.g. train and test) are pooled as if concatenated along ``N``.
    """
    on = off = per_channel = 0
    for f in frames:
        f = np.asarray(f)
        on += int(np.count_nonzero(f[:, :, 0]))
        off += int(np.count_nonzero(f[:, :, 1]))
        per_channel += f[:, :, 0].size
    if per_channel == 0:
        return {"on": 0.0, "off": 0.0, "total": 0.0}
    return {
        "on": on / per_channel,
        "off": off / per_channel,
        "total": (on + off) / (2 * per_channel),
    }
