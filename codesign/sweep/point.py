"""One point of a bit-width sweep: every option that changes its result, hashed into its key.

A :class:`SweepPoint` is frozen. Its **key** is the SHA-256 of the canonical JSON (sorted keys,
no whitespace, ASCII) of :meth:`SweepPoint.identity`: every field except the file *paths*
(model, hardware spec, teacher, the point's work folder), which are replaced by the SHA-256 of
the files' contents (``model_sha256``, ``hw_sha256``, ``teacher_sha256``); an ``npz:PATH`` data
set is keyed by the SHA-256 of the file's bytes (``data_sha256``), not by its path. The key is
therefore stable across processes, machines and working directories, changes when any
result-changing option or any input file's content changes, and does not change when the same
files are reached by another path.

Options that do not change the result are left out of the identity, so that adding them did
not change the keys of earlier sweeps: the retraining options (``teacher*``, ``retrain_*``)
when ``retrain`` is false, and ``data_sha256`` for the built-in data sets.

The identity also holds ``code_version``, the digest of the library code that computes the
point (:mod:`codesign.sweep.version`): a result computed by other code is never reused under
this code's key. :data:`EVALUATOR_VERSION` stays as the hand-kept, human-readable marker of
what :func:`codesign.sweep.evaluate.evaluate_point` computes.

In memory a point's paths are absolute (a worker anywhere finds the files); the record a
sweep stores (:meth:`SweepPoint.to_record`) holds them relative to the sweep folder, so a
sweep folder and its inputs copied elsewhere together read the same, byte for byte.

File hashes are cached per (resolved path, size, mtime in ns): :func:`file_sha256_cached`.

Pure Python (no torch): the driver, the store and the CLI parse and hash points without loading
a network.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from itertools import product
from pathlib import Path
from typing import Any, Optional, Union

from codesign.errors import CodesignError
from codesign.io import relative_path
from codesign.sweep.version import changed_files
from codesign.sweep.version import code_version as current_code_version

MAX_BITS = 16
EVALUATOR_VERSION = 4
"""Bumped when :func:`codesign.sweep.evaluate.evaluate_point` changes what it computes
(2: each layer costed at the quantized network's own bits, not ``wbits`` forced on all;
3: hardware accuracy on simulated chips when ``nonideal`` is set;
4: with ``nonideal`` energy costed from the simulated chips' spikes, and PTQ after commit
9816965, which no longer rounds whole layers to zero codes at low membrane bits: U3/U4 points
of the mnist5k example went from 11 % / 75 % to 46 % / 94 % under the same key 3)."""
NPZ_PREFIX = "npz:"
"""As :data:`codesign.data.npz.PREFIX` (not imported: that module imports numpy)."""
PATH_FIELDS = ("model", "hw", "teacher", "workdir")
RETRAIN_FIELDS = ("teacher_sha256", "retrain_tolerance", "retrain_budget_epochs",
                  "retrain_methods", "retrain_train_samples", "retrain_val_samples",
                  "retrain_hardware", "retrain_ir_refresh")
"""Fields that only matter when ``retrain`` is true (dropped from the identity otherwise)."""


def file_sha256(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise CodesignError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256_cached(path: Union[str, os.PathLike]) -> str:
    """:func:`file_sha256`, cached per (resolved path, size in bytes, mtime in ns): a file
    rewritten in place gets a new mtime and is hashed again; the same file asked for again
    (every point of a sweep, every point a worker checks) is read once."""
    p = Path(path)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError as exc:
        raise CodesignError(f"{path}: cannot read ({exc.strerror or exc})") from None
    hit = _HASH_CACHE.get(key)
    if hit is None:
        hit = _HASH_CACHE[key] = file_sha256(p)
    return hit


def npz_path(data: str) -> Optional[Path]:
    """The file of an ``npz:PATH`` data set name (``None`` for a built-in data set)."""
    return Path(data[len(NPZ_PREFIX):]) if data.startswith(NPZ_PREFIX) else None


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, no spaces, ASCII only: the same bytes in every process."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def sha256_key(obj: Any) -> str:
    """Hex SHA-256 of :func:`canonical_json` of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class SweepPoint:
    """Everything that changes one sweep point's result.

    Bit-widths are integers (bits); ``adc_bits`` ``None`` keeps the hardware spec's ADC
    resolution. ``samples`` test samples (``None``: the whole test split) are scored for
    accuracy; ``activity_samples`` test samples are run to measure the spike activity the cost
    model charges for; both subsets are drawn with ``seed``.
    """

    model: str
    """Checkpoint path (absolute, so that a worker elsewhere finds it; not part of the key)."""
    model_sha256: str
    hw: str
    """Hardware spec path (absolute; not part of the key)."""
    hw_sha256: str
    data: str
    """Data set name (``mnist5k``, ``digits``, ``nmnist5k``, ``npz:PATH``)."""
    wbits: int
    """Weight bits of the hidden layers (first conv and readout: ``first_bits``/``last_bits``)."""
    ubits: int
    """Membrane-potential register bits."""
    adc_bits: Optional[int] = None
    first_bits: Optional[int] = None
    """First conv's weight bits; ``None``: the zoo's default (8 bits when quantized)."""
    last_bits: Optional[int] = None
    """Readout's weight bits; ``None``: the zoo's default (8 bits when quantized)."""
    split_seed: int = 0
    samples: Optional[int] = None
    activity_samples: int = 64
    seed: int = 0
    mapping: str = "im2col"
    chips: int = 1
    """Simulated chip instances (independent non-ideality draws) when ``nonideal`` is set."""
    nonideal: Optional[str] = None
    """``None``: ideal quantized accuracy. Else the non-idealities simulated on the spec's
    crossbars (``all``, ``none`` or ``NAME,...`` of :mod:`codesign.hw.nonideal`; the string as
    given, so ``all`` follows the spec's ``nonideal:`` section, whose bytes are in
    ``hw_sha256``)."""
    retrain: bool = False
    """Fine-tune the point's post-training-quantized network with distillation through the
    closed loop (:func:`codesign.loop.close_loop`) before scoring and costing it."""
    teacher: Optional[str] = None
    """``retrain``: teacher checkpoint path (absolute; not part of the key)."""
    teacher_sha256: Optional[str] = None
    retrain_tolerance: float = 1.0
    """``retrain``: points below the teacher's selection accuracy counted as recovered."""
    retrain_budget_epochs: int = 2
    """``retrain``: at most this many epochs (one per round). A minutes budget is not offered:
    its result would depend on the machine's speed, which no key can hold."""
    retrain_methods: str = "logit,md"
    """``retrain``: distillation methods (``logit``, ``md``, ``temporal``) or ``ce``."""
    retrain_train_samples: Optional[int] = None
    """``retrain``: training samples per epoch (seeded draw; ``None``: the training part)."""
    retrain_val_samples: Optional[int] = None
    """``retrain``: selection samples (``None``: the whole selection split)."""
    retrain_hardware: bool = True
    """``retrain``: train through the simulated crossbars (needs ``nonideal``); ``False``:
    ideal quantized forward."""
    retrain_ir_refresh: int = 1
    """``retrain``: training chips per exact IR-drop transfer, the chips between wired by its
    per-cell attenuation (:mod:`codesign.sim.wire_refresh`; 1: every training chip exact)."""
    data_sha256: Optional[str] = None
    """SHA-256 of the ``npz:PATH`` file's bytes (``None`` for the built-in data sets)."""
    workdir: Optional[str] = None
    """Folder of the sweep (absolute; not part of the key): a retrained point keeps its
    closed-loop files in ``workdir/retrain/<key>/``."""
    evaluator: int = EVALUATOR_VERSION
    code_version: Optional[str] = None
    """Digest of the code that computes the point (:func:`codesign.sweep.version.code_version`,
    set by :func:`make_points`; ``None`` for a point built by hand); part of the key."""

    def identity(self) -> dict[str, Any]:
        """The fields that define the result: all but the file paths (their hashes stay),
        without the retraining options of a point that is not retrained, ``data_sha256`` of a
        built-in data set, and an npz data set's path (its bytes' hash stays)."""
        d = asdict(self)
        for f in PATH_FIELDS:
            d.pop(f)
        if not self.retrain:
            for f in RETRAIN_FIELDS:
                d.pop(f)
        if self.data_sha256 is None:
            d.pop("data_sha256")
        else:
            d["data"] = "npz"
        return d

    @property
    def retrain_dir(self) -> Optional[Path]:
        """``workdir/retrain/<key>/`` of a retrained point (``None`` otherwise)."""
        if not self.retrain or self.workdir is None:
            return None
        return Path(self.workdir) / "retrain" / self.key

    @property
    def key(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`identity`."""
        return sha256_key(self.identity())

    @property
    def label(self) -> str:
        """Short human label: ``W4U4`` plus ``A5`` when the ADC bits are set."""
        a = f"A{self.adc_bits}" if self.adc_bits is not None else ""
        return f"W{self.wbits}U{self.ubits}{a}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_record(self, base: Union[str, os.PathLike]) -> dict[str, Any]:
        """:meth:`to_dict` with the file paths (``model``, ``hw``, ``teacher``, ``workdir``
        and an ``npz:`` data set's file) relative to the folder ``base`` (POSIX separators):
        what a sweep stores, free of this machine's absolute paths. The key does not depend on
        paths, so ``SweepPoint.from_dict(point.to_record(b)).key == point.key``."""
        d = asdict(self)
        for f in PATH_FIELDS:
            if d[f] is not None:
                d[f] = relative_path(d[f], base)
        npz = npz_path(self.data)
        if npz is not None:
            d["data"] = NPZ_PREFIX + relative_path(npz, base)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepPoint:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise CodesignError(f"sweep point: unknown field(s) {unknown}")
        return cls(**d)


def parse_bits(text: Optional[str], flag: str, minimum: int = 1) -> list[int]:
    """A comma-separated list of bit-widths (``"2,3,4,8"``) as sorted unique integers.

    Refuses (with :class:`CodesignError` naming ``flag``) an empty list, an empty item, a
    non-integer and a value outside ``minimum..16``.
    """
    if text is None or not str(text).strip():
        raise CodesignError(f"--{flag}: empty bit list; expected comma-separated integers "
                            f"{minimum}..{MAX_BITS}, e.g. 2,4,8")
    out: list[int] = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            raise CodesignError(f"--{flag} {text!r}: empty item; expected comma-separated "
                                f"integers {minimum}..{MAX_BITS}, e.g. 2,4,8")
        try:
            v = int(item, 10)
        except ValueError:
            raise CodesignError(f"--{flag} {text!r}: {item!r} is not an integer; expected "
                                f"comma-separated integers {minimum}..{MAX_BITS}") from None
        if not minimum <= v <= MAX_BITS:
            raise CodesignError(f"--{flag} {text!r}: {v} is out of range; expected bit-widths "
                                f"{minimum}..{MAX_BITS}")
        out.append(v)
    return sorted(set(out))


def make_points(model: Union[str, os.PathLike], hw: Union[str, os.PathLike], data: str, *,
                wbits: list[int], ubits: list[int], adc_bits: list[Optional[int]],
                **common: Any) -> list[SweepPoint]:
    """The full grid ``wbits x ubits x adc_bits`` (in that nesting order) of points sharing
    ``common`` options; both files are hashed once."""
    mpath, hpath = Path(model).resolve(), Path(hw).resolve()
    for what, p in (("MODEL", mpath), ("--hw", hpath)):
        if not p.is_file():
            raise CodesignError(f"{what} {p}: file not found")
    msha, hsha = file_sha256_cached(mpath), file_sha256_cached(hpath)
    npz = npz_path(data)
    if npz is not None:
        npz = npz.resolve()
        if not npz.is_file():
            raise CodesignError(f"--data {data}: file not found")
        data = f"{NPZ_PREFIX}{npz}"  # absolute, so that a worker finds it
        common["data_sha256"] = file_sha256_cached(npz)
    if common.get("retrain"):
        teacher = common.get("teacher")
        if teacher is None:
            raise CodesignError("--retrain: needs a teacher checkpoint (--teacher FP.pt)")
        tpath = Path(teacher).resolve()
        if not tpath.is_file():
            raise CodesignError(f"--teacher {teacher}: file not found")
        common["teacher"], common["teacher_sha256"] = str(tpath), file_sha256_cached(tpath)
        if common.get("workdir") is None:
            raise CodesignError("sweep: --retrain needs the sweep folder (workdir)")
        budget = common.get("retrain_budget_epochs", 2)
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise CodesignError(f"--budget-epochs {budget!r}: expected an integer >= 1")
        if common.get("retrain_hardware", True) and common.get("nonideal") is None:
            raise CodesignError("--retrain through the hardware needs --nonideal (all, or "
                                "names); without it the loop trains on the ideal forward")
    else:
        given = [k for k in ("teacher",) + RETRAIN_FIELDS[1:]
                 if common.get(k) not in (None, SweepPoint.__dataclass_fields__[k].default)]
        if given:
            raise CodesignError(f"sweep: {', '.join(given)}: only used with --retrain")
    if common.get("workdir") is not None:
        common["workdir"] = str(Path(common["workdir"]).resolve())
    chips = common.get("chips", 1)
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise CodesignError(f"--chips {chips!r}: expected a positive integer")
    if chips > 1 and common.get("nonideal") is None:
        raise CodesignError(f"--chips {chips}: several chips differ only by their non-ideality "
                            "draws; give --nonideal (all, or names) too")
    common["code_version"] = current_code_version()
    return [SweepPoint(str(mpath), msha, str(hpath), hsha, data, wbits=w, ubits=u,
                       adc_bits=a, **common)
            for w, u, a in product(wbits, ubits, adc_bits)]


def manifest_for(points: list[SweepPoint]) -> dict[str, Any]:
    """What makes a sweep *this* sweep: the sorted point keys and the shared settings.

    Two sweeps with the same manifest compute the same results; the store refuses to mix
    different ones in one folder."""
    if not points:
        raise CodesignError("sweep: the grid is empty")
    shared = points[0].identity()
    for k in ("wbits", "ubits", "adc_bits"):
        shared.pop(k)
    manifest: dict[str, Any] = {
        "format": "codesign-sweep", "version": 2, "shared": shared,
        "wbits": sorted({p.wbits for p in points}),
        "ubits": sorted({p.ubits for p in points}),
        "adc_bits": sorted({p.adc_bits for p in points}, key=lambda v: (v is None, v or 0)),
        "keys": sorted(p.key for p in points)}
    if shared.get("code_version") is not None:
        from codesign.sweep.version import code_record

        code = code_record()
        if code["version"] == shared["code_version"]:  # planned in this process: its files
            manifest["code"] = code
    return manifest


def explain_code_change(held: Any, manifest: dict[str, Any]) -> Optional[str]:
    """The refusal message when a folder holds *this* sweep computed by other code (the
    manifests differ only in the code version and hence the keys), else ``None``.

    Such a folder is refused rather than recomputed in place: its results stay as they are
    (for comparison, or to go back to the old code) and are never mixed with new ones; the
    message names the changed files and how to proceed."""
    if not isinstance(held, dict) or not isinstance(held.get("shared"), dict):
        return None
    ignore = {"code", "keys", "version", "shared"}  # shared: compared below
    if any(held.get(k) != manifest.get(k) for k in (set(held) | set(manifest)) - ignore):
        return None
    old_shared = {k: v for k, v in held["shared"].items() if k != "code_version"}
    new_shared = {k: v for k, v in manifest["shared"].items() if k != "code_version"}
    old_v, new_v = held["shared"].get("code_version"), manifest["shared"].get("code_version")
    if old_shared != new_shared or old_v == new_v:
        return None
    old_files = (held.get("code") or {}).get("files")
    new_files = (manifest.get("code") or {}).get("files") or {}
    if old_files:
        changed = changed_files(old_files, new_files)
        shown = ", ".join(changed[:4]) + (f" (+{len(changed) - 4} more)" if len(changed) > 4
                                          else "")
        what = f"code version {old_v}, this code {new_v}; changed: {shown or '?'}"
    else:
        what = (f"made before code versions were recorded; this code {new_v}" if old_v is None
                else f"code version {old_v}, this code {new_v}")
    return (f"the results were computed by other code ({what}) and are not reused: remove the "
            f"folder to recompute them with this code, or choose another --out")
