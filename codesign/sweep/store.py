"""A resumable result store: one small JSON file per finished job, written atomically.

Layout of a store folder::

    manifest.json        what this sweep is (see :func:`codesign.sweep.point.manifest_for`)
    points/<key>.json    one record per finished job, {"key", "point", "result", "run"}
    computations.jsonl   one line per evaluation the driver received (key, run id, pid, host,
                         time): the audit trail that shows no job was computed twice

A record file appears by an atomic rename of a complete temporary file
(:func:`codesign.io.atomic_write_json`; NaN is stored as ``null``), so a reader (or a
resumed sweep) sees either nothing or the whole record, whatever moment the writer was killed.
The computations line is appended (and flushed to disk) *before* the record is renamed into
place; a kill between the two leaves a line without a record, which the resumed sweep then
computes again (a window of microseconds; the test sweeps tolerate nothing else).

A folder whose manifest differs from the sweep's is refused (:class:`CodesignError`), so two
sweeps are never mixed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional, Union

from codesign.errors import CodesignError
from codesign.io import atomic_write_json

MANIFEST = "manifest.json"
POINTS = "points"
COMPUTATIONS = "computations.jsonl"


def read_json(path: Union[str, Path]) -> Any:
    """Parse a JSON file; an unreadable or corrupt one raises :class:`CodesignError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CodesignError(f"{path}: not a readable JSON file ({exc.__class__.__name__})") \
            from None


class ResultStore:
    """Records keyed by a string, one JSON file each, under ``folder``.

    ``filename(key, record_hint)`` chooses a record's file name (default ``<key>.json`` under
    ``points/``); the distillation study keeps its historical ``<label>-<hash>.json`` names.
    """

    def __init__(self, folder: Union[str, Path], *, subdir: Optional[str] = POINTS,
                 log: bool = True) -> None:
        self.folder = Path(folder)
        self.records = self.folder / subdir if subdir else self.folder
        self.log_path = self.folder / COMPUTATIONS if log else None
        self.run_id = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"

    # ----------------------------------------------------------------------------- manifest

    def bind(self, manifest: dict[str, Any],
             explain: Optional[Callable[[Any, dict[str, Any]], Optional[str]]] = None) -> None:
        """Adopt ``manifest`` for a new or empty folder; refuse a folder holding another sweep.

        ``explain(held, manifest)``: a more specific refusal message for a held manifest that
        differs (``None``: the generic one), e.g.
        :func:`codesign.sweep.point.explain_code_change`."""
        path = self.folder / MANIFEST
        if path.exists():
            held = read_json(path)
            if held != json.loads(json.dumps(manifest)):
                why = explain(held, json.loads(json.dumps(manifest))) if explain else None
                if why is not None:
                    raise CodesignError(f"{self.folder}: {why}")
                diff = sorted(k for k in set(held) | set(manifest)
                              if held.get(k) != manifest.get(k)) if isinstance(held, dict) \
                    else ["(not a mapping)"]
                raise CodesignError(
                    f"{self.folder}: holds a different sweep (manifest.json differs in "
                    f"{', '.join(diff)}); choose another --out or remove that folder")
            return
        if self.records.exists() and any(self.records.glob("*.json")):
            raise CodesignError(f"{self.folder}: holds results but no manifest.json; choose "
                                "another --out")
        if self.folder.exists() and not self.folder.is_dir():
            raise CodesignError(f"{self.folder}: exists and is not a folder")
        atomic_write_json(path, manifest)

    # ------------------------------------------------------------------------------ records

    def path(self, key: str, name: Optional[str] = None) -> Path:
        """The record file of ``key`` (``name`` overrides the file name)."""
        return self.records / (name or f"{key}.json")

    def has(self, key: str, name: Optional[str] = None) -> bool:
        return self.path(key, name).is_file()

    def get(self, key: str, name: Optional[str] = None) -> dict[str, Any]:
        return read_json(self.path(key, name))

    def put(self, key: str, record: dict[str, Any], name: Optional[str] = None) -> Path:
        """Log the computation, then write the record atomically; returns its path."""
        if self.log_path is not None:
            line = json.dumps({"key": key, "run": self.run_id, "pid": os.getpid(),
                               "host": socket.gethostname(), "time_s": time.time()})
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        path = self.path(key, name)
        atomic_write_json(path, record)
        return path

    def all(self) -> Iterator[dict[str, Any]]:
        """Every record in the store, in file-name order."""
        for p in sorted(self.records.glob("*.json")):
            yield read_json(p)

    def computations(self) -> list[dict[str, Any]]:
        """The computations log (one dict per evaluation received), oldest first."""
        if self.log_path is None or not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:  # a line torn by a kill mid-write: not a finished record
                    continue
        return out
