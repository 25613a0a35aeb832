"""Pareto (non-dominated) sets with explicit senses, in numpy.

A point ``a`` **dominates** ``b`` when it is at least as good in every objective and strictly
better in at least one, "good" following each objective's sense (``"max"`` or ``"min"``)::

    a >= b in every objective (after flipping the sign of "min" objectives)
    and a > b in at least one

The Pareto front is the set of points that no other point dominates.

Ties and duplicates: two identical points do not dominate each other (neither is strictly better
anywhere), so **every copy of a non-dominated point is on the front**; a point tied with a front
point in some objectives and worse in another is dominated. Points with a NaN in any objective
are never on the front and dominate nothing (they are incomparable, e.g. a failed evaluation).

The mask costs ``O(n^2 m)`` for ``n`` points and ``m`` objectives (blocked, so memory stays
``O(block * n * m)``); sweeps have at most a few thousand points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SENSES = ("max", "min")


def _oriented(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """``values`` ``(n, m)`` as floats with every objective turned into "larger is better"."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ValueError(f"pareto: expected an (n, m) array of objectives, got shape {v.shape}")
    if len(senses) != v.shape[1]:
        raise ValueError(f"pareto: {v.shape[1]} objective(s) but {len(senses)} sense(s)")
    bad = [s for s in senses if s not in SENSES]
    if bad:
        raise ValueError(f"pareto: senses must be 'max' or 'min', got {bad}")
    sign = np.array([1.0 if s == "max" else -1.0 for s in senses])
    return v * sign


def pareto_mask(values: np.ndarray, senses: Sequence[str], block: int = 256) -> np.ndarray:
    """Boolean mask ``(n,)``: True where the point is not dominated by any other point.

    ``values``: ``(n, m)`` objectives; ``senses``: ``m`` entries ``"max"``/``"min"``. See the
    module docstring for ties, duplicates and NaN.
    """
    v = _oriented(values, senses)
    n = v.shape[0]
    finite = ~np.isnan(v).any(axis=1)
    mask = finite.copy()
    good = v[finite]
    if good.shape[0] == 0:
        return mask
    idx = np.flatnonzero(finite)
    for start in range(0, len(idx), block):
        chunk = good[start:start + block]                       # (b, m) candidates
        ge = (good[None, :, :] >= chunk[:, None, :]).all(axis=2)  # (b, n): other >= candidate
        gt = (good[None, :, :] > chunk[:, None, :]).any(axis=2)   # other > candidate somewhere
        dominated = (ge & gt).any(axis=1)
        mask[idx[start:start + block]] = ~dominated
    assert mask.shape == (n,)
    return mask


def dominates(a: Sequence[float], b: Sequence[float], senses: Sequence[str]) -> bool:
    """True when point ``a`` dominates point ``b`` (one pair; the definition, for readers)."""
    va, vb = _oriented(np.asarray([a, b], dtype=float), senses)
    if np.isnan(va).any() or np.isnan(vb).any():
        return False
    return bool((va >= vb).all() and (va > vb).any())
