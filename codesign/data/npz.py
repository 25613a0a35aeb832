"""User data sets from an ``.npz`` file: ``load_dataset("npz:/path/to/file.npz")``.

On-disk format (write it with ``numpy.savez`` / ``numpy.savez_compressed``):

* either four arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (the file's own split; the
  ``split_seed``/``test_fraction`` options are then ignored),
* or two arrays ``x``, ``y``, split stratified with ``split_seed`` and ``test_fraction``.

``x`` arrays are one of

* static images ``(N, H, W)`` (a channel axis is added) or ``(N, C, H, W)``: ``uint8`` or any
  integer type with values ``0..255`` (divided by 255), ``bool``, or float already in ``[0, 1]``;
* event frames ``(N, T, 2, H, W)`` (channel 0 = ON, 1 = OFF), any numeric or bool type with
  values in ``{0, 1}`` (binarise counts first, e.g. ``(counts > 0)``).

``y`` arrays are 1-D integer labels ``0..K-1`` (one per sample), ``K = max label + 1 <=
MAX_CLASSES`` (10000, :mod:`codesign.params`: no million-class readout from one stray label);
with a file split every test label must also occur among the training labels. Image sides are
at most ``MAX_IMAGE_SIZE`` (4096), channels at most ``MAX_CHANNELS``, event steps at most
``MAX_T`` (10000). Object
arrays are refused (files are read with ``allow_pickle=False``). Every problem raises
:class:`~codesign.errors.CodesignError` naming the file, the key and what was expected.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from codesign import params
from codesign.data.split import DataSplit, from_arrays, make_split
from codesign.errors import CodesignError

PREFIX = "npz:"
SPLIT_KEYS: tuple[str, ...] = ("x_train", "y_train", "x_test", "y_test")
WHOLE_KEYS: tuple[str, ...] = ("x", "y")
_EXPECTED_KEYS = "arrays x_train, y_train, x_test, y_test (or x, y to split with split_seed)"
_EXPECTED_X = (
    "static images (N, H, W) or (N, C, H, W), or event frames (N, T, 2, H, W)"
)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CodesignError(f"{path}: file not found (expected an .npz with {_EXPECTED_KEYS})")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CodesignError(
            f"{path}: cannot read as .npz ({exc}); expected an .npz archive with {_EXPECTED_KEYS}"
        ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CodesignError(
            f"{path}: holds a single array, expected an .npz archive with {_EXPECTED_KEYS}"
        )
    try:
        return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CodesignError(
            f"{path}: cannot read an array ({exc}); expected numeric arrays, no pickled objects"
        ) from None
    finally:
        data.close()


def _inputs(path: Path, key: str, x: np.ndarray) -> tuple[np.ndarray, str]:
    """Validate and scale one ``x`` array; return ``(float32 array, kind)``."""
    where = f"{path}: array '{key}'"
    if x.ndim not in (3, 4, 5) or (x.ndim == 5 and x.shape[2] != 2):
        raise CodesignError(f"{where} has shape {x.shape}; expected {_EXPECTED_X}")
    if x.shape[0] == 0:
        raise CodesignError(f"{where} has no samples (shape {x.shape})")
    h, w = x.shape[-2:]
    c = x.shape[1] if x.ndim == 4 else 1
    if (max(h, w) > params.MAX_IMAGE_SIZE or c > params.MAX_CHANNELS
            or (x.ndim == 5 and x.shape[1] > params.MAX_T)):
        raise CodesignError(
            f"{where} has shape {x.shape}; expected image sides <= {params.MAX_IMAGE_SIZE}, "
            f"channels <= {params.MAX_CHANNELS} and time steps <= {params.MAX_T}"
        )
    if x.dtype.kind not in "biuf":
        raise CodesignError(f"{where} has dtype {x.dtype}; expected numbers (uint8, float, bool)")
    if x.ndim == 5:
        if not np.isin(x, (0, 1)).all():
            raise CodesignError(
                f"{where}: event frames must be binary {{0, 1}}, found values "
                f"{np.unique(x)[:5].tolist()}...; binarise counts first, e.g. (x > 0)"
            )
        return x.astype(np.float32), "events"
    if x.ndim == 3:
        x = x[:, None]
    if x.dtype.kind in "iu":
        if x.min() < 0 or x.max() > 255:
            raise CodesignError(
                f"{where}: integer images must lie in 0..255, found {x.min()}..{x.max()}"
            )
        return x.astype(np.float32) / np.float32(255.0), "static"
    if x.dtype.kind == "f" and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise CodesignError(
            f"{where}: float images must be finite and in [0, 1], found "
            f"{np.nanmin(x)}..{np.nanmax(x)} (uint8 0..255 is scaled automatically)"
        )
    return x.astype(np.float32), "static"


def _labels(path: Path, key: str, y: np.ndarray, x_key: str, n: int) -> np.ndarray:
    """Validate one ``y`` array against its ``x`` (``n`` samples); return int64 labels."""
    where = f"{path}: array '{key}'"
    if y.dtype.kind not in "iu":
        raise CodesignError(
            f"{where} has dtype {y.dtype}; expected integer class labels 0..K-1"
        )
    if y.ndim != 1:
        raise CodesignError(f"{where} has shape {y.shape}; expected 1-D labels (N,)")
    if len(y) != n:
        raise CodesignError(
            f"{where} has {len(y)} labels but '{x_key}' has {n} samples; expected one label "
            "per sample"
        )
    if len(y) and y.min() < 0:
        raise CodesignError(f"{where} has negative label {y.min()}; expected labels 0..K-1")
    if len(y) and y.max() >= params.MAX_CLASSES:
        raise CodesignError(
            f"{where} has label {y.max()}; expected labels 0..{params.MAX_CLASSES - 1} "
            f"(at most {params.MAX_CLASSES} classes)"
        )
    return y.astype(np.int64)


def load_npz(spec: str, *, split_seed: int, test_fraction: float) -> DataSplit:
    """Load ``npz:<path>`` (see the module docstring for the format)."""
    raw = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    if not raw.strip():
        raise CodesignError(f"{spec!r}: expected npz:<path to an .npz file>")
    name = f"{PREFIX}{raw}"
    path = Path(raw).expanduser()
    arrays = _read_npz(path)
    found = ", ".join(sorted(arrays)) or "none"
    meta: dict[str, Any] = {"source": str(path.resolve())}

    if any(k in arrays for k in SPLIT_KEYS) or not all(k in arrays for k in WHOLE_KEYS):
        for k in SPLIT_KEYS:
            if k not in arrays:
                raise CodesignError(
                    f"{path}: missing array '{k}'; expected {_EXPECTED_KEYS}; found: {found}"
                )
        x_train, kind = _inputs(path, "x_train", arrays["x_train"])
        x_test, kind_test = _inputs(path, "x_test", arrays["x_test"])
        if kind_test != kind or x_test.shape[1:] != x_train.shape[1:]:
            raise CodesignError(
                f"{path}: array 'x_test' has per-sample shape {x_test.shape[1:]} but 'x_train' "
                f"has {x_train.shape[1:]}; expected the same shape"
            )
        y_train = _labels(path, "y_train", arrays["y_train"], "x_train", len(x_train))
        y_test = _labels(path, "y_test", arrays["y_test"], "x_test", len(x_test))
        unseen = np.setdiff1d(np.unique(y_test), np.unique(y_train))
        if unseen.size:
            raise CodesignError(
                f"{path}: array 'y_test' has label(s) {unseen[:5].tolist()} that never occur in "
                "'y_train'; expected test labels among the training classes"
            )
        n_total = len(y_train) + len(y_test)
        meta.update(split="file", split_seed=None, test_fraction=len(y_test) / n_total)
        return from_arrays(
            name,
            x_train, y_train, x_test, y_test, kind=kind, meta=meta,
        )

    x, kind = _inputs(path, "x", arrays["x"])
    y = _labels(path, "y", arrays["y"], "x", len(x))
    meta.update(split="stratified")
    num_classes = int(y.max()) + 1
    return make_split(
        name, x, y, kind=kind, split_seed=split_seed, test_fraction=test_fraction,
        num_classes=num_classes, meta=meta,
    )
