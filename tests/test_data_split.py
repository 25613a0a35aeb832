"""The stratified split against scikit-learn's ``train_test_split``, index by index."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from codesign.data.split import stratified_indices
from codesign.errors import CodesignError

CASES = [
    (np.repeat(np.arange(10), 500), 0.2),  # mnist5k's 500 per class
    (np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]), 0.2),  # digits
    (np.array([0] * 7 + [1] * 5 + [2] * 3 + [3] * 2), 0.3),  # uneven, remainder ties
    (np.array(list("abcabcabcaab")), 0.5),  # string labels, not sorted
    (np.array([3, 1, 3, 1, 2, 2, 2, 1, 3, 3, 1, 2, 2]), 0.41),
]


@pytest.mark.parametrize("y,fraction", CASES)
@pytest.mark.parametrize("seed", [0, 1, 7, 12345, 2**32 - 1])
def test_same_indices_as_sklearn(y: np.ndarray, fraction: float, seed: int) -> None:
    rng = np.random.default_rng(seed % 1000)
    y = rng.permutation(y)  # classes interleaved, not in blocks
    want_train, want_test = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y,
                                             random_state=seed, shuffle=True)
    train, test = stratified_indices(y, split_seed=seed, test_fraction=fraction)
    np.testing.assert_array_equal(train, want_train)
    np.testing.assert_array_equal(test, want_test)


@pytest.mark.parametrize("y,fraction", [
    (np.array([0, 0, 0, 1]), 0.5),  # a class of one member
    (np.array([0, 0, 1, 1, 2, 2]), 0.2),  # 2 test samples for 3 classes
    (np.array([0, 0, 1, 1]), 0.999),  # empty train set
])
def test_impossible_split_is_a_clear_error(y: np.ndarray, fraction: float) -> None:
    with pytest.raises(ValueError):  # sklearn refuses these too
        train_test_split(np.arange(len(y)), test_size=fraction, stratify=y, random_state=0)
    with pytest.raises(CodesignError, match="toy: cannot make a stratified split"):
        stratified_indices(y, split_seed=0, test_fraction=fraction, what="toy")
