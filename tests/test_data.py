"""Tests for codesign.data: real mnist5k / digits, synthesised nmnist5k, user npz files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from codesign.data import DATASETS, DataSplit, load_dataset
from codesign.data.events import saccade_events, saccade_path
from codesign.data.mnist5k import mnist5k_arrays
from codesign.errors import CodesignError

# Measured with the defaults (threshold 0.25, amplitude 1.5 px, 8 sub-steps/saccade, eps 0.1),
# T=4: ON 14.4 %, OFF 14.0 % of entries are nonzero. The band below leaves room for tuning.
DENSITY_BAND = (0.05, 0.25)


@pytest.fixture(scope="module")
def mnist() -> DataSplit:
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def nmnist() -> DataSplit:
    return load_dataset("nmnist5k", T=4)


def _class_counts(y: torch.Tensor) -> list[int]:
    return torch.bincount(y, minlength=10).tolist()


# --------------------------------------------------------------------------------- mnist5k


def test_mnist5k_shapes_stratified_and_scaled(mnist: DataSplit) -> None:
    assert DATASETS == ("mnist5k", "digits", "nmnist5k")
    assert mnist.name == "mnist5k" and mnist.kind == "static" and mnist.num_classes == 10
    assert mnist.x_train.shape == (4000, 1, 28, 28) and mnist.x_test.shape == (1000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert mnist.input_shape == (1, 28, 28)
    assert _class_counts(mnist.y_train) == [400] * 10
    assert _class_counts(mnist.y_test) == [100] * 10
    for x in (mnist.x_train, mnist.x_test):
        assert x.min().item() == 0.0 and x.max().item() == 1.0
    # real digits: mostly black background, ~19 % lit pixels
    lit = (mnist.x_train > 0).float().mean().item()
    assert 0.1 < lit < 0.3
    assert mnist.meta["sizes"] == {"train": 4000, "test": 1000}
    json.dumps(mnist.meta)


def test_mnist5k_split_reproducible_per_seed(mnist: DataSplit) -> None:
    again = load_dataset("mnist5k", split_seed=0)
    assert torch.equal(again.x_train, mnist.x_train) and torch.equal(again.y_test, mnist.y_test)
    other = load_dataset("mnist5k", split_seed=1)
    assert not torch.equal(other.x_train, mnist.x_train)
    assert _class_counts(other.y_test) == [100] * 10
    # train and test are disjoint and together hold the whole set
    x, _ = mnist5k_arrays()
    everything = torch.cat([mnist.x_train, mnist.x_test]).flatten(1)
    assert torch.allclose(everything.sum(0), torch.from_numpy(x / 255.0).float().flatten(1).sum(0))


def test_mnist5k_other_fraction() -> None:
    split = load_dataset("mnist5k", test_fraction=0.5, split_seed=3)
    assert len(split.y_train) == 2500 and _class_counts(split.y_test) == [250] * 10


def test_mnist5k_disk_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CODESIGN_CACHE_DIR", str(tmp_path))
    build = mnist5k_arrays.__wrapped__  # bypass the in-process cache
    x1, y1 = build()
    (cached,) = list(tmp_path.glob("mnist5k-*.npy"))
    assert not list(tmp_path.glob("*.tmp"))
    x2, y2 = build()  # read back from the .npy
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    cached.write_bytes(b"garbage")  # a corrupt cache is rebuilt, not trusted
    x3, _ = build()
    assert np.array_equal(x1, x3) and np.load(cached).shape == (5000, 785)


# ---------------------------------------------------------------------------------- digits


def test_digits_native_and_upsampled() -> None:
    d = load_dataset("digits")
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_test.shape == (360, 1, 8, 8)
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert d.x_train.min().item() == 0.0 and d.x_train.max().item() == 1.0
    assert sorted(_class_counts(d.y_test))[0] >= 35  # stratified: ~36 per class
    up = load_dataset("digits", upsample=28)
    assert up.x_train.shape == (1437, 1, 28, 28) and up.input_shape == (1, 28, 28)
    assert torch.equal(up.y_train, d.y_train)  # same split, only resized
    assert 0.0 <= up.x_train.min().item() and up.x_train.max().item() <= 1.0
    # bilinear resize preserves the mean brightness closely
    assert abs(up.x_train.mean().item() - d.x_train.mean().item()) < 0.02
    with pytest.raises(CodesignError, match="upsample"):
        load_dataset("digits", upsample=4)


# -------------------------------------------------------------------------------- nmnist5k


def test_nmnist5k_events(nmnist: DataSplit, mnist: DataSplit) -> None:
    assert nmnist.kind == "events" and nmnist.num_classes == 10
    assert nmnist.x_train.shape == (4000, 4, 2, 28, 28)
    assert nmnist.x_test.shape == (1000, 4, 2, 28, 28)
    assert nmnist.input_shape == (2, 28, 28)
    assert nmnist.x_train.dtype == torch.float32
    assert set(torch.unique(nmnist.x_train).tolist()) == {0.0, 1.0}
    assert torch.equal(nmnist.y_train, mnist.y_train)  # same split as mnist5k
    on, off = nmnist.x_train[:, :, 0], nmnist.x_train[:, :, 1]
    assert on.sum() > 0 and off.sum() > 0
    # every sample produces events of both polarities, in every time bin
    assert (on.sum((2, 3)) > 0).all() and (off.sum((2, 3)) > 0).all()
    density = nmnist.meta["density"]
    lo, hi = DENSITY_BAND
    assert lo < density["on"] < hi and lo < density["off"] < hi
    assert density["on"] == pytest.approx(
        (on.mean().item() * 4000 + nmnist.x_test[:, :, 0].mean().item() * 1000) / 5000, rel=1e-4
    )
    assert nmnist.meta["T"] == 4 and nmnist.meta["params"]["threshold"] == 0.25
    json.dumps(nmnist.meta)


def test_nmnist5k_deterministic_and_T(nmnist: DataSplit) -> None:
    x, _ = mnist5k_arrays()
    again = saccade_events(x, 4)  # fresh synthesis, not the cached frames
    full = np.concatenate([nmnist.x_train.numpy(), nmnist.x_test.numpy()])
    per_sample = np.sort(again.reshape(5000, -1).sum(1))
    assert np.array_equal(per_sample, np.sort(full.reshape(5000, -1).sum(1)))
    assert np.array_equal(saccade_events(x[:50], 4), again[:50])
    t8 = saccade_events(x[:50], 8)
    assert t8.shape == (50, 8, 2, 28, 28)
    # coarser bins are the OR of finer ones (bin edges align: 24 sub-steps)
    assert np.array_equal(t8.reshape(50, 4, 2, 2, 28, 28).max(2), again[:50])


def test_saccade_physics() -> None:
    path = saccade_path(1.5, 8)
    assert path.shape == (25, 2) and np.allclose(path[0], 0) and np.allclose(path[-1], 0)
    assert np.allclose(path[8], [1.5, 1.5]) and np.allclose(path[16], [1.5, -1.5])
    # a bright vertical bar; the first saccade moves the image right (+x) and down (+y):
    img = np.zeros((1, 28, 28), np.float32)
    img[0, 4:24, 12:16] = 1.0
    ev = saccade_events(img, T=3)[0, :, :, 8:20]  # bins = the three saccades; rows mid-bar
    on_cols = np.nonzero(ev[0, 0].any(0))[0]
    off_cols = np.nonzero(ev[0, 1].any(0))[0]
    assert on_cols.min() >= 15 and off_cols.max() <= 13  # ON at leading edge, OFF at trailing
    # second saccade moves left by 3 px: ON on the left of OFF
    assert np.nonzero(ev[1, 0].any(0))[0].max() < np.nonzero(ev[1, 1].any(0))[0].min()
    # third saccade moves right again: ON on the right of OFF
    assert np.nonzero(ev[2, 0].any(0))[0].min() > np.nonzero(ev[2, 1].any(0))[0].max()
    # no motion or no contrast -> no events; sensor noise is seeded
    assert saccade_events(img, 4, amplitude=0.0).sum() == 0
    flat = saccade_events(np.full((2, 28, 28), 0.5, np.float32), 4)
    assert flat[..., 3:-3, 3:-3].sum() == 0 and flat.sum() > 0  # only the frame edges move
    noisy = saccade_events(img, 4, amplitude=0.0, noise_rate=0.05, noise_seed=7)
    assert noisy.sum() > 0
    assert np.array_equal(noisy, saccade_events(img, 4, amplitude=0.0, noise_rate=0.05,
                                                noise_seed=7))
    with pytest.raises(CodesignError, match="T"):
        saccade_events(img, 25)  # more bins than the 24 sub-steps


def test_nmnist5k_options() -> None:
    with pytest.raises(CodesignError, match="threshold"):
        load_dataset("nmnist5k", threshold=0)
    with pytest.raises(CodesignError, match="unknown option.*valid options: threshold"):
        load_dataset("nmnist5k", treshold=0.2)


# ------------------------------------------------------------------------------------- npz


def test_npz_static_roundtrip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(60, 12, 10), dtype=np.uint8)
    y = np.repeat(np.arange(3), 20)
    path = tmp_path / "static.npz"
    np.savez(path, x=x, y=y)
    d = load_dataset(f"npz:{path}", split_seed=1, test_fraction=0.25)
    assert d.name == f"npz:{path}" and d.kind == "static" and d.num_classes == 3
    assert d.x_train.shape == (45, 1, 12, 10) and d.input_shape == (1, 12, 10)
    assert _class_counts(d.y_test)[:3] == [5, 5, 5]
    # values are x / 255, row by row
    by_sum = {float(v): i for i, v in enumerate(x.reshape(60, -1).sum(1))}
    first = d.x_train[0].numpy()
    assert np.allclose(first[0], x[by_sum[float(np.rint(first.sum() * 255))]] / 255.0)

    pre = tmp_path / "presplit.npz"
    xf = rng.random((8, 3, 5, 5)).astype(np.float32)
    np.savez(pre, x_train=xf, y_train=np.arange(8) % 4, x_test=xf[:2], y_test=np.array([0, 3]))
    d2 = load_dataset(f"npz:{pre}")
    assert torch.equal(d2.x_train, torch.from_numpy(xf)) and d2.num_classes == 4
    assert d2.meta["split"] == "file" and d2.input_shape == (3, 5, 5)


def test_npz_events_roundtrip(tmp_path) -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((40, 5, 2, 6, 6)) < 0.1).astype(np.uint8)
    y = np.arange(40) % 2
    path = tmp_path / "events.npz"
    np.savez_compressed(path, x=x, y=y)
    d = load_dataset(f"npz:{path}", test_fraction=0.5)
    assert d.kind == "events" and d.input_shape == (2, 6, 6) and d.meta["T"] == 5
    assert d.x_train.shape == (20, 5, 2, 6, 6)
    assert set(torch.unique(d.x_train).tolist()) <= {0.0, 1.0}  # uint8 events not /255
    assert d.meta["density"]["on"] == pytest.approx(x[:, :, 0].mean())


def _write(tmp_path, name: str, **arrays) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    ("arrays", "needles"),
    [
        ({"x": np.zeros((4, 8, 8))}, ["'x_train'", "expected arrays"]),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.zeros(4, int),
          "x_test": np.zeros((2, 8, 8))}, ["'y_test'"]),
        ({"x": np.zeros((4, 8, 8)), "y": np.zeros(5, int)}, ["'y'", "5 labels", "4 samples"]),
        ({"x": np.zeros((4, 64)), "y": np.zeros(4, int)}, ["'x'", "(4, 64)", "(N, T, 2, H, W)"]),
        ({"x": np.zeros((4, 3, 3, 8, 8)), "y": np.zeros(4, int)}, ["'x'", "(N, T, 2, H, W)"]),
        ({"x": np.zeros((4, 8, 8)), "y": np.zeros(4)}, ["'y'", "float64", "integer"]),
        ({"x": np.full((4, 8, 8), 3.0), "y": np.zeros(4, int)}, ["'x'", "[0, 1]"]),
        ({"x": np.full((4, 2, 2, 8, 8), 2), "y": np.zeros(4, int)}, ["'x'", "binary"]),
        ({"x": np.zeros((4, 8, 8)), "y": np.zeros((4, 1), int)}, ["'y'", "1-D"]),
        ({"x": np.zeros((4, 8, 8)), "y": np.array([0, 1, -1, 0])}, ["'y'", "negative"]),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.zeros(4, int),
          "x_test": np.zeros((2, 7, 7)), "y_test": np.zeros(2, int)}, ["'x_test'", "same shape"]),
    ],
)
def test_npz_bad_inputs(tmp_path, arrays, needles) -> None:
    path = _write(tmp_path, "bad.npz", **arrays)
    with pytest.raises(CodesignError) as err:
        load_dataset(f"npz:{path}")
    message = str(err.value)
    assert path in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_npz_bad_files(tmp_path) -> None:
    missing = tmp_path / "nope.npz"
    with pytest.raises(CodesignError, match="nope.npz: file not found"):
        load_dataset(f"npz:{missing}")
    not_zip = tmp_path / "text.npz"
    not_zip.write_text("hello")
    with pytest.raises(CodesignError, match="text.npz: cannot read"):
        load_dataset(f"npz:{not_zip}")
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(CodesignError, match="single.npy: holds a single array"):
        load_dataset(f"npz:{npy}")
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, int))
    with pytest.raises(CodesignError, match="obj.npz"):
        load_dataset(f"npz:{pickled}")
    tiny = _write(tmp_path, "tiny.npz", x=np.zeros((3, 4, 4)), y=np.array([0, 1, 2]))
    with pytest.raises(CodesignError, match="tiny.npz.*stratified"):
        load_dataset(f"npz:{tiny}")


# -------------------------------------------------------------------------- bad arguments


def test_bad_arguments() -> None:
    with pytest.raises(CodesignError, match="mnist5k, digits, nmnist5k") as err:
        load_dataset("cifar10")
    assert "cifar10" in str(err.value)
    for frac in (0, 1, 1.5, -0.1, "0.2"):
        with pytest.raises(CodesignError, match="test_fraction"):
            load_dataset("digits", test_fraction=frac)
    for T in (0, -3, 2.5):
        with pytest.raises(CodesignError, match="T"):
            load_dataset("nmnist5k", T=T)
    with pytest.raises(CodesignError, match="split_seed"):
        load_dataset("digits", split_seed=-1)
    with pytest.raises(CodesignError, match="mnist5k: unknown option.*upsample"):
        load_dataset("mnist5k", upsample=28)
    assert issubclass(CodesignError, ValueError)
