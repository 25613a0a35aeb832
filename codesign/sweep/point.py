"""One point of a bit-width sweep: every option that changes its result, hashed into its key.

A :class:`SweepPoint` is frozen. Its **key** is the SHA-256 of the canonical JSON (sorted keys,
no whitespace, ASCII) of :meth:`SweepPoint.identity`: every field except the two file *paths*,
which are replaced by the SHA-256 of the files' contents (``model_sha256``, ``hw_sha256``). The
key is therefore stable across processes, machines and working directories, changes when any
result-changing option or either file's content changes, and does not change when the same
files are reached by another path.

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

MAX_BITS = 16
EVALUATOR_VERSION = 3
"""Bumped when :func:`codesign.sweep.evaluate.evaluate_point` changes what it computes
(2: each layer costed at the quantized network's own bits, not ``wbits`` forced on all;
3: hardware accuracy on simulated chips when ``nonideal`` is set)."""
PATH_FIELDS = ("model", "hw")


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
    """Fine-tune at the point's bits through the closed loop (not built yet: must be False)."""
    evaluator: int = EVALUATOR_VERSION

    def identity(self) -> dict[str, Any]:
        """The fields that define the result: all but the file paths (their hashes stay)."""
        d = asdict(self)
        for f in PATH_FIELDS:
            d.pop(f)
        return d

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
    msha, hsha = file_sha256(mpath), file_sha256(hpath)
    if common.get("retrain"):
        raise CodesignError("sweep: --retrain is not available yet (the closed loop is being "
                            "built)")
    chips = common.get("chips", 1)
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise CodesignError(f"--chips {chips!r}: expected a positive integer")
    if chips > 1 and common.get("nonideal") is None:
        raise CodesignError(f"--chips {chips}: several chips differ only by their non-ideality "
                            "draws; give --nonideal (all, or names) too")
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
    return {"format": "codesign-sweep", "version": 1, "shared": shared,
            "wbits": sorted({p.wbits for p in points}),
            "ubits": sorted({p.ubits for p in points}),
            "adc_bits": sorted({p.adc_bits for p in points}, key=lambda v: (v is None, v or 0)),
            "keys": sorted(p.key for p in points)}
