"""Pareto mask against a brute-force pairwise check written independently of the code."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.pareto import dominates, pareto_mask


def brute_force(values: np.ndarray, senses: tuple[str, ...]) -> np.ndarray:
    """Literal definition, one pair at a time in plain Python: i is on the front unless some j
    is no worse everywhere and strictly better somewhere; NaN rows are off the front."""
    rows = [list(map(float, r)) for r in np.atleast_2d(values)]
    out = []
    for i, a in enumerate(rows):
        if any(np.isnan(a)):
            out.append(False)
            continue
        beaten = False
        for j, b in enumerate(rows):
            if i == j or any(np.isnan(b)):
                continue
            no_worse = all((bk >= ak) if s == "max" else (bk <= ak)
                           for ak, bk, s in zip(a, b, senses, strict=True))
            better = any((bk > ak) if s == "max" else (bk < ak)
                         for ak, bk, s in zip(a, b, senses, strict=True))
            if no_worse and better:
                beaten = True
                break
        out.append(not beaten)
    return np.array(out, dtype=bool)


def test_hand_solved_front():
    # (accuracy, EDAP): max, min
    pts = np.array([[0.90, 10.0],   # front: cheapest
                    [0.95, 20.0],   # front
                    [0.95, 20.0],   # duplicate of a front point: also on the front
                    [0.94, 20.0],   # tied EDAP, lower accuracy: dominated
                    [0.99, 50.0],   # front: most accurate
                    [0.90, 12.0],   # tied accuracy, costlier: dominated
                    [0.50, 60.0]])  # dominated by everything
    got = pareto_mask(pts, ("max", "min"))
    assert got.tolist() == [True, True, True, False, True, False, False]


def test_senses_flip_the_front():
    pts = np.array([[1.0, 1.0], [2.0, 2.0]])
    assert pareto_mask(pts, ("max", "max")).tolist() == [False, True]
    assert pareto_mask(pts, ("min", "min")).tolist() == [True, False]
    assert pareto_mask(pts, ("max", "min")).tolist() == [True, True]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [1, 2, 3])
def test_random_points_match_brute_force(seed, m):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(int(rng.integers(1, 60)), m))
    senses = tuple(rng.choice(["max", "min"], size=m))
    np.testing.assert_array_equal(pareto_mask(pts, senses, block=7), brute_force(pts, senses))


@pytest.mark.parametrize("seed", range(8))
def test_tie_heavy_points_with_duplicates_and_nan_match_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    pts = rng.integers(0, 3, size=(40, 3)).astype(float)  # 27 distinct values: many ties
    pts = np.vstack([pts, pts[:10]])                       # exact duplicates
    pts[rng.integers(0, len(pts), size=3), rng.integers(0, 3, size=3)] = np.nan
    senses = ("max", "min", "min")
    mask = pareto_mask(pts, senses, block=5)
    np.testing.assert_array_equal(mask, brute_force(pts, senses))
    # every copy of a front point is on the front
    for i in np.flatnonzero(mask):
        same = np.flatnonzero((pts == pts[i]).all(axis=1))
        assert mask[same].all()


def test_all_identical_and_empty():
    assert pareto_mask(np.ones((5, 2)), ("max", "min")).all()
    assert pareto_mask(np.zeros((0, 2)), ("max", "min")).shape == (0,)


def test_dominates_and_bad_senses():
    assert dominates([0.9, 1.0], [0.8, 1.0], ("max", "min"))
    assert not dominates([0.9, 1.0], [0.9, 1.0], ("max", "min"))
    assert not dominates([0.9, 2.0], [0.8, 1.0], ("max", "min"))
    with pytest.raises(ValueError, match="senses"):
        pareto_mask(np.ones((2, 2)), ("max", "up"))
    with pytest.raises(ValueError, match="sense"):
        pareto_mask(np.ones((2, 2)), ("max",))
