"""The :class:`DataSplit` container and the stratified train/test split shared by all loaders."""

from __future__ import annotations

import math
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


def _approximate_mode(counts: np.ndarray, n_draws: int, rng: np.random.RandomState
                      ) -> np.ndarray:
    """Samples per class when drawing ``n_draws`` of a population with ``counts`` per class:
    ``floor(counts / sum * n_draws)``, then one more for the classes of largest remainder
    until the total is ``n_draws``, ties among equal remainders broken by
    ``rng.choice(..., replace=False)`` (the approximate hypergeometric mode of scikit-learn's
    ``StratifiedShuffleSplit``, with the same draws)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def stratified_indices(
    y: np.ndarray, *, split_seed: int, test_fraction: float, what: str = "dataset"
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``(train_idx, test_idx)`` for labels ``y``.

    The indices are those of ``sklearn.model_selection.train_test_split(arange(N),
    test_size=test_fraction, stratify=y, random_state=split_seed, shuffle=True)`` (its
    ``StratifiedShuffleSplit`` algorithm with the same ``RandomState`` draws, reimplemented so
    that a data load does not import scikit-learn, ~1-3 s; tested index for index against it):
    ``n_test = ceil(f N)``; per class the train and test counts of :func:`_approximate_mode`;
    each class's members (in index order) permuted, the first ``n_train_i`` to train, the next
    ``n_test_i`` to test; both sets permuted. Every class keeps its proportion in both parts
    (5,000 MNIST images with 500 per class -> 4,000/1,000 with 400/100 per class).
    """
    y = np.asarray(y)
    n = len(y)
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    problem = None
    if n_train == 0:
        problem = "the train set would be empty"
    elif counts.min() < 2:
        problem = f"classes {classes[counts < 2].tolist()} have fewer than 2 members"
    elif min(n_train, n_test) < len(classes):
        problem = (f"{n_train} train and {n_test} test samples for {len(classes)} classes "
                   f"(each part needs one per class)")
    if problem is not None:
        raise CodesignError(
            f"{what}: cannot make a stratified split with test_fraction={test_fraction} "
            f"({n} samples, {len(classes)} classes): {problem}")
    members = np.split(np.argsort(y_idx.reshape(-1), kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(split_seed)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        perm = members[i].take(rng.permutation(counts[i]), mode="clip")
        train.extend(perm[: n_i[i]])
        test.extend(perm[n_i[i]: n_i[i] + t_i[i]])
    return np.asarray(rng.permutation(train)), np.asarray(rng.permutation(test))


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
