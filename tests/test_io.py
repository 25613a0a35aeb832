"""Atomic writes and whole-folder publishing (codesign.io)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from codesign.errors import CodesignError
from codesign.io import (
    REPORT_MARKER,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_write_via,
    check_out_dir,
    check_out_file,
    publish_dir,
    to_json_safe,
)


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_atomic_write_bytes_and_text(tmp_path):
    p = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(p, b"\x00\x01abc")
    assert p.read_bytes() == b"\x00\x01abc"
    atomic_write_text(p, "h\u00e9")
    assert p.read_bytes() == "h\u00e9".encode("utf-8")
    assert _listing(p.parent) == ["a.bin"]  # no temporary left behind


def test_writer_that_raises_leaves_previous_file_and_no_temp(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("old")

    def bad(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write("half a fi")
        raise RuntimeError("disk full mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_via(p, bad)
    assert p.read_text() == "old"
    assert _listing(tmp_path) == ["x.txt"]
    q = tmp_path / "new.txt"
    with pytest.raises(RuntimeError):
        atomic_write_via(q, bad)
    assert not q.exists() and _listing(tmp_path) == ["x.txt"]


def test_write_under_a_file_is_a_codesign_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(CodesignError, match="file"):
        atomic_write_text(f / "x.txt", "a")
    with pytest.raises(CodesignError, match="folder"):
        atomic_write_text(tmp_path, "a")


def test_json_nonfinite_null_or_refused(tmp_path):
    obj = {"a": float("nan"), "b": [1.5, float("inf"), np.float32(-np.inf)], "c": np.int64(7),
           "d": np.array([1, 2]), "e": (True, None), "f": np.bool_(False)}
    p = atomic_write_json(tmp_path / "s.json", obj)
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None, None], "c": 7, "d": [1, 2],
                                "e": [True, None], "f": False}
    with pytest.raises(CodesignError, match=r"\$\.b\[1\]"):
        atomic_write_json(tmp_path / "t.json", {"b": obj["b"]}, nonfinite="refuse")
    assert not (tmp_path / "t.json").exists()
    with pytest.raises(TypeError):
        to_json_safe({"x": object()})
    assert to_json_safe(1e300) == 1e300 and math.isfinite(to_json_safe(1e300))


def test_publish_dir_new_and_replace_as_whole(tmp_path):
    out = tmp_path / "rep"
    with publish_dir(out) as d:
        (d / "a.csv").write_text("1")
        (d / "b.csv").write_text("2")
        assert not out.exists()  # nothing visible until the end
    assert _listing(out) == [REPORT_MARKER, "a.csv", "b.csv"]
    with publish_dir(out) as d:
        (d / "c.csv").write_text("3")
    # the old report is replaced as a whole: a.csv/b.csv are gone, not mixed with c.csv
    assert _listing(out) == [REPORT_MARKER, "c.csv"]
    assert _listing(tmp_path) == ["rep"]  # no temporary or old folder left


def test_publish_dir_body_raises_leaves_old_report(tmp_path):
    out = tmp_path / "rep"
    with publish_dir(out) as d:
        (d / "a.csv").write_text("old")
    with pytest.raises(RuntimeError):
        with publish_dir(out) as d:
            (d / "a.csv").write_text("new, half")
            raise RuntimeError("crash mid report")
    assert (out / "a.csv").read_text() == "old"
    assert _listing(tmp_path) == ["rep"]


def test_publish_dir_obstacles_refused_before_the_body(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    ran = []
    for bad, msg in [(f, "is a file"), (f / "under", "which is a file")]:
        with pytest.raises(CodesignError, match=msg):
            with publish_dir(bad):
                ran.append(bad)
        with pytest.raises(CodesignError, match=msg):
            check_out_dir(bad)
    assert ran == []
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(CodesignError, match="other files"):
        check_out_dir(other)
    assert (other / "thesis.tex").read_text() == "precious"
    # a folder holding only the report's own files is a previous report
    old = tmp_path / "old"
    old.mkdir()
    (old / "summary.json").write_text("{}")
    assert check_out_dir(old, names=["summary.json", "layers.csv"]) == old
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_out_dir(empty) == empty


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_place_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CodesignError, match="not writable"):
            check_out_dir(ro / "rep")
        with pytest.raises(CodesignError, match="not writable"):
            check_out_file(ro / "m.pt")
    finally:
        ro.chmod(0o700)


def test_check_out_file(tmp_path):
    p = tmp_path / "m.pt"
    assert check_out_file(p) == p
    p.write_bytes(b"x")
    with pytest.raises(CodesignError, match="--force"):
        check_out_file(p)
    assert check_out_file(p, force=True) == p
    with pytest.raises(CodesignError, match="which is a file"):
        check_out_file(p / "x.pt")
    with pytest.raises(CodesignError, match="folder"):
        check_out_file(tmp_path)


def test_unwritable_place_refused_before_work(tmp_path, monkeypatch):
    """As root every folder is writable, so stand in for a read-only mount: creating a file in
    one folder fails with EROFS (what ``os.access`` would not see); the check must refuse before
    the body runs."""
    import errno
    import tempfile as _tempfile

    ro = tmp_path / "ro"
    ro.mkdir()
    real = _tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):
        if dir is not None and os.path.abspath(dir) == str(ro):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*a, dir=dir, **k)

    monkeypatch.setattr("codesign.io.tempfile.mkstemp", mkstemp)
    ran = []
    with pytest.raises(CodesignError, match=r"folder .*ro is not writable"):
        with publish_dir(ro / "rep"):
            ran.append(1)
    with pytest.raises(CodesignError, match="not writable"):
        check_out_file(ro / "m.pt")
    assert ran == [] and os.listdir(ro) == []


def test_written_files_follow_umask(tmp_path):
    """mkstemp/mkdtemp make 0600/0700 entries; published files and folders get the mode a plain
    open()/mkdir() would (0666/0777 less the umask)."""
    old = os.umask(0o022)
    try:
        f = atomic_write_text(tmp_path / "a.txt", "x")
        with publish_dir(tmp_path / "rep") as d:
            (d / "b.txt").write_text("y")
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "rep").stat().st_mode & 0o777 == 0o755
