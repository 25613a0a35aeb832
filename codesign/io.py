"""Atomic file output: one helper for every file codesign writes.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_write_json` /
  :func:`atomic_write_via` write a single file through a temporary file in the *same folder*
  (so the final ``os.replace`` is a same-filesystem rename, atomic on POSIX and Windows), after
  ``fsync`` of the data; the folder is fsynced after the rename where the OS allows it. If the
  writer raises, the temporary file is removed and the target is left exactly as it was (absent
  or the previous version): never a partial file.
* :func:`publish_dir` is a context manager that yields a temporary sibling folder; the caller
  writes a whole report into it, and on normal exit the folder is published under ``out_dir`` by
  a rename. A previous report already at ``out_dir`` is moved aside, the new one renamed in, and
  the old one deleted (two renames: a reader sees the old report or the new one, never a mix).
  If the body raises, the temporary folder is deleted and ``out_dir`` is untouched.
* :func:`check_out_dir` / :func:`check_out_file` let a CLI refuse an unusable ``--out`` *before*
  doing any work: a path that is a file, lies under a file, or whose nearest existing folder is
  not writable; a folder that holds something other than a previous report.

JSON: :func:`to_json_safe` turns numpy scalars/arrays, tuples and paths into plain JSON types.
Non-finite floats (NaN, +inf, -inf) are *not* valid JSON; they are mapped to ``null`` by default
(``nonfinite="null"``, the convention of ``summary.json``: "no finite value") or refused with
:class:`~codesign.errors.CodesignError` (``nonfinite="refuse"``). The dump always uses
``allow_nan=False``, so a non-finite value can never reach the file as the non-standard ``NaN``.

Paths that reports record (sweep point records, the closed loop's ``loop.json``):
:func:`relative_path`, relative to the report folder, so a copied folder still resolves.

Errors from the file system (no space left, permission denied, a file in the way) are raised as
:class:`CodesignError` naming the path, so the CLI prints one line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union

from codesign.errors import CodesignError

PathLike = Union[str, os.PathLike]

#: Name of the marker file that :func:`publish_dir` puts in every published folder; a folder
#: holding it is "a previous report" and may be replaced as a whole.
REPORT_MARKER = ".codesign-report"


# --------------------------------------------------------------------------- single files

def _fsync_dir(folder: Path) -> None:
    """fsync a folder so a rename inside it is durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CodesignError(
            f"{path}: cannot create the folder {parent} ({exc.strerror or exc.__class__.__name__})"
        ) from None
    return parent


def atomic_write_via(path: PathLike, write: Callable[[str], None]) -> Path:
    """Write ``path`` atomically with ``write(tmp_path)`` (for writers that take a path:
    ``torch.save``, ``DataFrame.to_csv``, ``Figure.savefig``).

    ``write`` receives the name of a temporary file in the same folder; after it returns the file
    is fsynced and renamed over ``path``. If ``write`` raises, the temporary file is removed, the
    exception propagates and ``path`` is unchanged. OS errors become :class:`CodesignError`.
    Returns ``path`` as a :class:`Path`.
    """
    target = Path(path)
    if target.is_dir():
        raise CodesignError(f"{target}: is a folder; expected a file path to write")
    parent = _ensure_parent(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise CodesignError(
            f"{target}: cannot write in {parent} ({exc.strerror or exc.__class__.__name__})"
        ) from None
    os.close(fd)
    try:
        os.chmod(tmp, _umask_mode(0o666))
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise CodesignError(
            f"{target}: write failed ({exc.strerror or exc.__class__.__name__})"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(parent)
    return target


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write_bytes needs bytes, got {type(data).__name__}")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write_via(path, write)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (encoded with ``encoding``, default UTF-8)."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text needs str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def to_json_safe(obj: Any, nonfinite: Literal["null", "refuse"] = "null",
                 _where: str = "$") -> Any:
    """A copy of ``obj`` made only of JSON types (dict with str keys, list, str, int, float,
    bool, None).

    numpy scalars become Python numbers, numpy arrays and tuples/sets become lists, paths become
    strings, mapping keys are converted with ``str``. A non-finite float (NaN, +-inf, also inside
    numpy) becomes ``None`` when ``nonfinite="null"`` and raises :class:`CodesignError` naming its
    key path (e.g. ``$.layers[3].energy_pj``) when ``nonfinite="refuse"``. Any other object is
    refused with ``TypeError`` (no silent ``str()`` of unknown objects).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        if nonfinite == "refuse":
            raise CodesignError(f"{_where}: non-finite number {obj!r}; expected a finite number")
        return None
    try:  # numpy without importing it at module level (hw/ stays light)
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if np is not None:
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return to_json_safe(float(obj), nonfinite, _where)
        if isinstance(obj, np.ndarray):
            return to_json_safe(obj.tolist(), nonfinite, _where)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_json_safe(v, nonfinite, f"{_where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_json_safe(v, nonfinite, f"{_where}[{i}]") for i, v in enumerate(items)]
    raise TypeError(f"{_where}: {type(obj).__name__} is not JSON serialisable")


def atomic_write_json(path: PathLike, obj: Any, nonfinite: Literal["null", "refuse"] = "null",
                      indent: int = 2) -> Path:
    """Write ``obj`` as UTF-8 JSON (trailing newline) atomically.

    The object goes through :func:`to_json_safe` first: NaN/inf become ``null`` (default) or are
    refused (``nonfinite="refuse"``); the dump uses ``allow_nan=False`` as a second guard.
    """
    clean = to_json_safe(obj, nonfinite)
    text = json.dumps(clean, indent=indent, allow_nan=False, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


# --------------------------------------------------------------------------- output folders

def _umask_mode(base: int) -> int:
    """``base`` (0o666 for files, 0o777 for folders) less the process umask: the mode a plain
    ``open``/``mkdir`` would give, which ``mkstemp``/``mkdtemp`` (0o600/0o700) do not."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _writable(folder: Path) -> bool:
    """Whether a file can really be created in ``folder``: a probe file made and removed (not
    ``os.access``, which says yes to root on a read-only mount or under a sandbox)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".codesign-probe-")
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return True


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _is_previous_report(folder: Path, names: Iterable[str] | None) -> bool:
    """True when ``folder`` may be replaced: empty, holds :data:`REPORT_MARKER`, or holds only
    regular files whose names are among ``names`` (the files the caller writes)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    if not entries or (folder / REPORT_MARKER).is_file():
        return True
    if names is None:
        return False
    allowed = set(names) | {REPORT_MARKER}
    return all(e.is_file() and not e.is_symlink() and e.name in allowed for e in entries)


def check_out_dir(path: PathLike, names: Iterable[str] | None = None) -> Path:
    """Refuse an output folder that cannot be published, before any work is done.

    Refused with :class:`CodesignError` (one line naming the path): ``path`` is an existing
    file (or a symlink to one); a part of ``path`` is a file (the folder would lie under a
    file); the nearest existing ancestor is not a writable, searchable folder (the temporary
    sibling could not be made); ``path`` is an existing folder that is not a previous report
    (see :func:`_is_previous_report`; ``names`` lists the files the report will hold) or is not
    writable. Returns the absolute path.
    """
    out = Path(os.path.abspath(os.fspath(path)))
    if out.exists() and not out.is_dir():
        raise CodesignError(
            f"{path}: --out exists and is a file; expected a folder (or a new path)"
        )
    anchor = _nearest_existing(out)
    if not anchor.is_dir():
        raise CodesignError(
            f"{path}: --out lies under {anchor}, which is a file; expected a path under a folder"
        )
    if anchor == out:
        parent = out.parent
        if not _writable(parent):
            raise CodesignError(f"{path}: --out: folder {parent} is not writable")
        if not _writable(out):
            raise CodesignError(f"{path}: --out folder is not writable")
        if not _is_previous_report(out, names):
            raise CodesignError(
                f"{path}: --out is a folder holding other files (not a previous codesign report); "
                "expected a new path, an empty folder or a previous report"
            )
    elif not _writable(anchor):
        raise CodesignError(f"{path}: --out: folder {anchor} is not writable")
    return out


def check_out_file(path: PathLike, force: bool = False) -> Path:
    """Refuse an output *file* before any work: a folder at ``path``, a file among its parents,
    an unwritable nearest folder, or (unless ``force``) an existing file. Returns the absolute
    path."""
    out = Path(os.path.abspath(os.fspath(path)))
    if out.is_dir():
        raise CodesignError(f"{path}: is a folder; expected a file path")
    if out.exists() and not force:
        raise CodesignError(f"{path}: exists; pass --force to overwrite it")
    anchor = _nearest_existing(out.parent)
    if not anchor.is_dir():
        raise CodesignError(f"{path}: lies under {anchor}, which is a file; expected a folder")
    if not _writable(anchor):
        raise CodesignError(f"{path}: folder {anchor} is not writable")
    return out


@contextlib.contextmanager
def publish_dir(out_dir: PathLike, names: Iterable[str] | None = None) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``out_dir``; on normal exit publish it as ``out_dir``.

    ``out_dir`` is checked with :func:`check_out_dir` first (before the body runs). The
    published folder gets a :data:`REPORT_MARKER` file so that a later run may replace it. If
    ``out_dir`` already holds a previous report, it is renamed aside, the new folder renamed in
    (restoring the old one if that fails) and the old one removed. If the body raises, the
    temporary folder is removed and ``out_dir`` is left as it was.
    """
    names = None if names is None else list(names)
    out = check_out_dir(out_dir, names)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    except OSError as exc:
        raise CodesignError(
            f"{out_dir}: cannot create a folder in {out.parent} ({exc.strerror})"
        ) from None
    try:
        os.chmod(tmp, _umask_mode(0o777))
        yield tmp
        atomic_write_text(tmp / REPORT_MARKER, "written by codesign; this folder is replaced "
                          "as a whole by the next report written here\n")
        for f in tmp.iterdir():
            if f.is_file():
                _fsync_file(os.fspath(f))
        _fsync_dir(tmp)
        out = check_out_dir(out_dir, names)  # unchanged since the start?
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.rmdir(old)
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except OSError:
                os.rename(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
        _fsync_dir(out.parent)
    except OSError as exc:
        raise CodesignError(
            f"{out_dir}: could not publish the report ({exc.strerror or exc.__class__.__name__})"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def relative_path(path: Union[str, os.PathLike], base: Union[str, os.PathLike]) -> str:
    """``path`` relative to the folder ``base`` (both resolved; ``..`` where needed), POSIX
    separators; the absolute path where no relative one exists (another drive)."""
    p, b = Path(path).resolve(), Path(base).resolve()
    try:
        return Path(os.path.relpath(p, b)).as_posix()
    except ValueError:  # pragma: no cover - Windows, another drive
        return p.as_posix()
