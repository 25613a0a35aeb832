"""Parameters: ONE strict YAML loader and ONE validation engine for every input codesign reads.

Every value from every source (CLI flags, hardware / workload / model-spec YAML, NIR metadata,
checkpoints, npz files) is checked by the functions of this module, so a bit-width, a size, a
boolean or a number means the same thing and is refused the same way wherever it comes from.
Every refusal is one :class:`~codesign.errors.CodesignError` naming the file (or the flag), the
key path and what was expected.

The YAML loader (:func:`load_yaml`)
-----------------------------------
``load_yaml(path)`` reads a file and refuses, each with the file, the key path (and the line
where YAML gives one):

* files larger than :data:`MAX_YAML_BYTES`, bytes that are not UTF-8, NUL bytes (binary files);
* invalid YAML; anchors/aliases (``&a`` / ``*a``: no codesign file needs them and they let a few
  lines expand into gigabytes);
* duplicate keys in a mapping (the line of the second one is named; YAML's "last one wins" is
  how 37,301 crossbars became 1,460 in issue 9);
* nesting deeper than :data:`MAX_YAML_DEPTH` mappings/lists (no ``RecursionError``);
* mapping keys that are not text;
* integers whose magnitude exceeds :data:`MAX_YAML_INT` (``2**63 - 1``; ``10**400`` cannot be
  a float and overflows every count);
* non-finite numbers (``.inf``, ``.nan``): no codesign key takes one;
* a top level that is not a mapping (an empty file included).

Floats may be written ``1e-3`` (YAML 1.2) as well as ``1.0e-3``.

The declarative engine (used by :mod:`codesign.hw.spec`)
---------------------------------------------------------
Frozen dataclasses whose fields are declared with :func:`qty` (a physical constant with a unit
and a source), :func:`integer`, :func:`bits`, :func:`real`, :func:`choice`, :func:`flag`,
:func:`text` and :func:`section`; :func:`load_section` validates a parsed mapping against such a
class (unknown keys with the closest valid key suggested, missing keys, types, bounds, units).

The procedural checks (used by workloads, model specs, NIR, checkpoints, npz, CLI flags)
---------------------------------------------------------------------------------------
:class:`Checker` bundles the same checks for code that walks a structure by hand:
``checker.pos_int(v, "layers[3].conv")`` and friends. The module-level functions
:func:`check_bits`, :func:`check_int`, :func:`check_real` and :func:`check_bool` are the same
checks for one value.

Documented limits (sizes are bounded *before* anything is allocated)
--------------------------------------------------------------------
See the ``MAX_*`` constants below: bit-widths :data:`BITS_MIN`..:data:`BITS_MAX`, time steps
<= :data:`MAX_T`, channels / features per layer <= :data:`MAX_CHANNELS`, image side <=
:data:`MAX_IMAGE_SIZE`, classes <= :data:`MAX_CLASSES`, neurons of one layer <=
:data:`MAX_LAYER_NEURONS`, neurons x time steps of a whole network <= :data:`MAX_ACTIVATIONS`,
parameters <= :data:`MAX_PARAMS`, declared counts <= :data:`MAX_COUNT`, dimensionless reals
and physical constants <= :data:`MAX_QUANTITY` (in their canonical unit).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import field, fields
from typing import Any, NoReturn, Optional

import yaml

from codesign.errors import CodesignError

# ----------------------------------------------------------------------------- limits

BITS_MIN = 1
"""Smallest bit-width of weights, membranes, ADCs, inputs (bits)."""
BITS_MAX = 16
"""Largest *quantized* bit-width anywhere (bits); floating point is written ``null``."""
MAX_T = 10_000
"""Most time steps per inference."""
MAX_CHANNELS = 65_536
"""Most channels of a conv layer / features of a linear layer."""
MAX_IMAGE_SIZE = 4_096
"""Largest input height or width (pixels)."""
MAX_CLASSES = 10_000
"""Most output classes of a readout (and largest label + 1 in an npz data set)."""
MAX_LAYER_NEURONS = 2 ** 26
"""Most output elements (C x H x W) of one layer (67 M)."""
MAX_ACTIVATIONS = 2 ** 31
"""Most neuron-steps of a whole network: sum of layer outputs x T (2.1 G)."""
MAX_PARAMS = 2 ** 28
"""Most weights of a network built in memory (268 M, 1 GiB in float32)."""
MAX_COUNT = 2 ** 31 - 1
"""Largest value of a declared count without its own upper bound (units per tile, flit bits,
mux, ...): ``2**31 - 1``; a ``1e300`` count overflowed the area and EDAP to inf."""
MAX_QUANTITY = 1e12
"""Largest magnitude of a physical constant in its canonical unit (1e12 pJ = 1 J, 1e12 um2 =
1 m2, 1e12 ns = 1000 s): anything larger is a typo and would overflow the network totals
(``1e300`` pJ gave an infinite EDAP)."""
MAX_YAML_BYTES = 16 * 2 ** 20
"""Largest YAML file read (bytes)."""
MAX_YAML_DEPTH = 32
"""Deepest nesting of mappings and lists in a YAML file."""
MAX_YAML_INT = 2 ** 63 - 1
"""Largest integer magnitude in a YAML file."""

_REQUIRED = dataclasses.MISSING
REQUIRED = _REQUIRED
DEFAULT_SOURCE = "codesign default"

# ----------------------------------------------------------------------------- small helpers


def suggest(key: str, options: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or ``""``."""
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def join(prefix: str, key: str) -> str:
    """Key path ``prefix.key`` (just ``key`` at the top)."""
    return f"{prefix}.{key}" if prefix else key


def short_repr(v: Any, limit: int = 60) -> str:
    """``repr(v)`` cut to ``limit`` characters (a 400-digit integer stays one readable line)."""
    try:
        r = repr(v)
    except ValueError:  # int too large for str() under Python's digit limit
        r = f"<integer of about {int(v.bit_length() * 0.30103)} digits>"
    r = r.replace("\n", " ")
    return r if len(r) <= limit else r[: limit - 3] + "..."


def bounds_text(m: Mapping[str, Any]) -> str:
    """``"> 0 and <= 16"`` from a field's ``gt``/``ge``/``le`` metadata."""
    def fmt(v: float) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{v:g}"

    parts = []
    if m.get("gt") is not None:
        parts.append(f"> {fmt(m['gt'])}")
    if m.get("ge") is not None:
        parts.append(f">= {fmt(m['ge'])}")
    if m.get("le") is not None:
        parts.append(f"<= {fmt(m['le'])}")
    return " and ".join(parts)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _in_bounds(v: float, gt: Optional[float], ge: Optional[float], le: Optional[float]) -> bool:
    try:
        fv = float(v)
    except OverflowError:
        return False
    return (math.isfinite(fv) and (gt is None or fv > gt) and (ge is None or fv >= ge)
            and (le is None or fv <= le))


def _fail(where: str, key: str, what: str) -> NoReturn:
    parts = [p for p in (where, key) if p]
    raise CodesignError(": ".join(parts + [what]))


# ----------------------------------------------------------------------------- single values


def check_int(v: Any, where: str, key: str, *, ge: Optional[int] = None,
              le: Optional[int] = None, nullable: bool = False,
              what: Optional[str] = None) -> Optional[int]:
    """An integer (not a bool; a float only when integral) within ``[ge, le]``; ``None`` only
    when ``nullable``."""
    if v is None and nullable:
        return None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) <= 2 ** 53:
        v = int(v)  # 4.0 -> 4; not 1e300 (beyond exact float integers)
    rng = bounds_text({"ge": ge, "le": le})
    desc = what or f"an integer{(' ' + rng) if rng else ''}{' or null' if nullable else ''}"
    if not _is_int(v) or not _in_bounds(v, None, ge, le):
        _fail(where, key, f"expected {desc}, got {short_repr(v)}")
    return int(v)


def check_real(v: Any, where: str, key: str, *, gt: Optional[float] = None,
               ge: Optional[float] = None, le: Optional[float] = None,
               nullable: bool = False, what: Optional[str] = None) -> Optional[float]:
    """A finite number (not a bool) within the bounds; ``None`` only when ``nullable``."""
    if v is None and nullable:
        return None
    rng = bounds_text({"gt": gt, "ge": ge, "le": le})
    desc = what or f"a finite number{(' ' + rng) if rng else ''}"
    if not _is_number(v) or not _in_bounds(v, gt, ge, le):
        _fail(where, key, f"expected {desc}, got {short_repr(v)}")
    return float(v)


def check_bits(v: Any, where: str, key: str, *, nullable: bool = True,
               minimum: int = BITS_MIN) -> Optional[int]:
    """A bit-width: an integer ``minimum..BITS_MAX`` (16), or ``None`` (floating point) when
    ``nullable``."""
    return check_int(v, where, key, ge=minimum, le=BITS_MAX, nullable=nullable,
                     what=f"a bit-width, an integer {minimum}..{BITS_MAX}"
                          + (" or null for floating point" if nullable else ""))


def check_bool(v: Any, where: str, key: str) -> bool:
    """A real boolean: ``true``/``false`` (``"no"``, ``0``, ``"false"`` are refused)."""
    if not isinstance(v, bool):
        _fail(where, key, f"expected true or false, got {short_repr(v)}")
    return v


def check_choice(v: Any, where: str, key: str, options: tuple[str, ...]) -> str:
    """One of ``options`` (with the closest suggested)."""
    if not isinstance(v, str) or v not in options:
        _fail(where, key, f"expected one of {', '.join(map(str, options))}, got {short_repr(v)}"
              + (suggest(v, list(options)) if isinstance(v, str) else ""))
    return v


def check_text(v: Any, where: str, key: str, *, nonempty: bool = False) -> str:
    """A string (non-empty when asked)."""
    if not isinstance(v, str) or (nonempty and not v):
        _fail(where, key, f"expected {'non-empty ' if nonempty else ''}text, got {short_repr(v)}")
    return v


def check_size(count: int, limit: int, where: str, key: str, what: str) -> int:
    """Refuse a size above a documented limit before anything of that size is allocated."""
    if count > limit:
        _fail(where, key, f"{what} = {count:,} exceeds the limit of {limit:,}")
    return count


class Checker:
    """The single-value checks bound to one source (a file name, ``--flag`` or ``checkpoint``).

    Messages read ``<where>: <key>: expected <what>, got <value>``.
    """

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, expected: str, got: Any = _REQUIRED) -> NoReturn:
        tail = "" if got is _REQUIRED else f", got {short_repr(got)}"
        _fail(self.where, key, f"expected {expected}{tail}")

    def missing(self, key: str, expected: str) -> NoReturn:
        _fail(self.where, key, f"missing; expected {expected}")

    def keys(self, d: Mapping, allowed: tuple[str, ...], key: str) -> None:
        """Refuse keys of ``d`` not in ``allowed`` (suggesting the closest)."""
        for k in d:
            if k not in allowed:
                _fail(self.where, join(key, str(k)), "unknown key" + suggest(str(k), list(allowed))
                      + f"; expected one of {', '.join(allowed)}")

    def mapping(self, v: Any, key: str, expected: str) -> Mapping:
        if not isinstance(v, Mapping):
            self.fail(key, expected, v)
        return v

    def integer(self, v: Any, key: str, *, ge: Optional[int] = None, le: Optional[int] = None,
                what: Optional[str] = None) -> int:
        return check_int(v, self.where, key, ge=ge, le=le, what=what)  # type: ignore[return-value]

    def pos_int(self, v: Any, key: str, what: str = "a positive integer",
                le: Optional[int] = None) -> int:
        if le is not None:
            what = f"{what} <= {le:,}"
        return check_int(v, self.where, key, ge=1, le=le, what=what)  # type: ignore[return-value]

    def nonneg_int(self, v: Any, key: str, le: Optional[int] = None) -> int:
        return check_int(v, self.where, key, ge=0, le=le)  # type: ignore[return-value]

    def pair(self, v: Any, key: str, low: int, high: int = MAX_IMAGE_SIZE) -> tuple[int, int]:
        """An integer or ``[h, w]`` of integers in ``low..high``."""
        what = f"an integer {low}..{high:,} or a pair [h, w] of them"
        a, b = (v if isinstance(v, list) and len(v) == 2 else (v, v))
        for x in (a, b):
            if not _is_int(x) or not low <= x <= high:
                self.fail(key, what, v)
        return a, b

    def number(self, v: Any, key: str, low: float, high: float, what: str) -> float:
        """A finite number in ``[low, high]``; an infinite ``high`` means :data:`MAX_QUANTITY`
        (``theta: 1e300`` is a typo, not a threshold)."""
        top = high if math.isfinite(high) else MAX_QUANTITY
        if not _is_number(v) or not _in_bounds(v, None, low, top):
            self.fail(key, f"{what}{'' if math.isfinite(high) else f' (at most {top:g})'}", v)
        return float(v)

    def real(self, v: Any, key: str, *, gt: Optional[float] = None, ge: Optional[float] = None,
             le: Optional[float] = None, what: Optional[str] = None) -> float:
        return check_real(v, self.where, key, gt=gt, ge=ge, le=le,  # type: ignore[return-value]
                          what=what)

    def choice(self, v: Any, key: str, options: tuple[str, ...]) -> str:
        return check_choice(v, self.where, key, options)

    def boolean(self, v: Any, key: str) -> bool:
        return check_bool(v, self.where, key)

    def bits(self, v: Any, key: str, minimum: int = BITS_MIN) -> Optional[int]:
        return check_bits(v, self.where, key, minimum=minimum)

    def text(self, v: Any, key: str, nonempty: bool = False) -> str:
        return check_text(v, self.where, key, nonempty=nonempty)

    def size(self, count: int, limit: int, key: str, what: str) -> int:
        return check_size(count, limit, self.where, key, what)


# ----------------------------------------------------------------------------- the YAML loader


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader: duplicate keys refused (with line), depth bounded, no aliases, ``1e-3`` is a
    float (YAML 1.2), integers bounded."""

    _depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
        # The same limit, in the scanner: PyYAML scans ahead over a run of ``[`` / ``{`` (each
        # may start a simple key) at a cost that grows with the nesting, ~0.3 s for 1,000 levels
        # before the composer below sees its 33rd. Flow levels never exceed the composer's depth,
        # so this refuses nothing the composer would accept; it only refuses sooner.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise yaml.scanner.ScannerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (*name) are not supported", ev.start_mark)
        if self.check_event(yaml.MappingStartEvent, yaml.SequenceStartEvent):
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                ev = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", ev.start_mark)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be text", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {short_repr(key)} (first at line {seen[key]})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int:
    digits = str(node.value).replace("_", "").lstrip("+-")
    if len(digits) > 40:  # decide before converting: int('9' * 10**6) is slow
        raise yaml.constructor.ConstructorError(
            None, None, f"integer with {len(digits)} digits is too large (at most "
            f"{MAX_YAML_INT:,} in magnitude)", node.start_mark)
    v = yaml.SafeLoader.construct_yaml_int(loader, node)
    if abs(v) > MAX_YAML_INT:
        raise yaml.constructor.ConstructorError(
            None, None, f"integer {v} is too large (at most {MAX_YAML_INT:,} in magnitude)",
            node.start_mark)
    return v


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _walk(obj: Any, path: str, file: str) -> None:
    """Refuse non-text keys and non-finite numbers anywhere, naming the key path."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                _fail(file, join(path, short_repr(k)), "expected a text key")
            _walk(v, join(path, k), file)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _walk(v, f"{path}[{i}]", file)
    elif isinstance(obj, float) and not math.isfinite(obj):
        _fail(file, path or "top level", f"non-finite number {obj!r}; expected a finite number")


def parse_yaml(text: str, file: str = "<yaml>") -> dict:
    """Parse YAML ``text`` strictly (see the module docstring); ``file`` names it in errors."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise CodesignError(f"{file}: invalid YAML{at}: {problem}") from None
    except RecursionError:  # pragma: no cover - the depth limit fires first
        raise CodesignError(f"{file}: nested too deeply (limit {MAX_YAML_DEPTH})") from None
    if data is None:
        raise CodesignError(f"{file}: empty file; expected a mapping of keys at the top level")
    if not isinstance(data, dict):
        raise CodesignError(f"{file}: top level: expected a mapping of keys, got "
                            f"{type(data).__name__}")
    _walk(data, "", file)
    return data


def load_yaml(path: str | os.PathLike, what: str = "file") -> dict:
    """Read and parse one YAML input file strictly; ``what`` ("hardware spec", "workload",
    "model spec") words the not-found / unreadable messages."""
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
        if size > MAX_YAML_BYTES:
            raise CodesignError(f"{p}: {what} of {size:,} bytes; expected at most "
                                f"{MAX_YAML_BYTES:,}")
        with open(p, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise CodesignError(f"{p}: cannot read the {what}: no such file") from None
    except IsADirectoryError:
        raise CodesignError(f"{p}: is a folder; expected a {what} (YAML)") from None
    except OSError as e:
        raise CodesignError(f"{p}: cannot read the {what} ({e.strerror})") from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise CodesignError(f"{p}: binary data (NUL byte at offset {nul}); "
                            f"expected a UTF-8 YAML text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise CodesignError(f"{p}: byte {e.start} (line {line}) is not UTF-8; expected a UTF-8 "
                            "YAML text file") from None
    return parse_yaml(text, p)


# ----------------------------------------------------------------------------- field helpers


def _meta(key: str, kind: str, default: Any, **m: Any) -> Any:
    meta = {"key": key, "kind": kind, **m}
    if default is _REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def qty(key: str, dim: str, *, default: Any = _REQUIRED, gt: Optional[float] = None,
        ge: Optional[float] = None, le: Optional[float] = None) -> Any:
    """A physical constant of dimension ``dim`` stored in its canonical unit (needs a source)."""
    return _meta(key, "qty", default, dim=dim, gt=gt, ge=ge, le=le)


def integer(key: str, *, default: Any = _REQUIRED, ge: Optional[int] = None,
            le: Optional[int] = None, nullable: bool = False) -> Any:
    """A count."""
    return _meta(key, "int", default, ge=ge, le=le, nullable=nullable)


def bits(key: str, *, default: Any = _REQUIRED, nullable: bool = False,
         ge: int = BITS_MIN) -> Any:
    """A bit-width, ``ge..BITS_MAX`` (16); ``null`` allowed when ``nullable``."""
    return integer(key, default=default, ge=ge, le=BITS_MAX, nullable=nullable)


def real(key: str, *, default: Any = _REQUIRED, gt: Optional[float] = None,
         ge: Optional[float] = None, le: Optional[float] = None) -> Any:
    """A dimensionless finite real number."""
    return _meta(key, "real", default, gt=gt, ge=ge, le=le)


def choice(key: str, options: tuple[str, ...], *, default: Any = _REQUIRED) -> Any:
    """One of ``options``."""
    return _meta(key, "choice", default, options=options)


def flag(key: str, *, default: Any = _REQUIRED) -> Any:
    """A boolean (a real ``true``/``false``)."""
    return _meta(key, "bool", default)


def text(key: str, *, default: Any = _REQUIRED) -> Any:
    """Free text."""
    return _meta(key, "str", default)


def section(key: str, cls: type, *, required: bool = True) -> Any:
    """A nested section loaded as ``cls``."""
    return _meta(key, "section", _REQUIRED if required else None, cls=cls)


# ----------------------------------------------------------------------------- the engine


class Ctx:
    """Where we are while loading: file name, the ``sources:`` map, collected provenance."""

    def __init__(self, file: str, sources: Optional[Mapping[str, str]] = None):
        self.file = file
        self.sources = dict(sources or {})
        self.found: dict[str, str] = {}

    def fail(self, path: str, what: str) -> NoReturn:
        _fail(self.file, path, what)

    def source_for(self, path: str) -> Optional[str]:
        """The source of ``path`` from the ``sources:`` map (longest matching prefix)."""
        parts = path.split(".")
        for n in range(len(parts), 0, -1):
            s = self.sources.get(".".join(parts[:n]))
            if s:
                return str(s)
        return None


def check_bounds(v: float, m: Mapping[str, Any], path: str, ctx: Ctx, unit: str = "") -> None:
    """Refuse ``v`` outside the field's ``gt``/``ge``/``le`` bounds or not finite."""
    if not _in_bounds(v, m.get("gt"), m.get("ge"), m.get("le")):
        shown = f"{v:g}" if _is_number(v) and abs(v) < 1e300 else short_repr(v)
        ctx.fail(path, f"{shown}{(' ' + unit) if unit else ''} is impossible; expected a finite "
                       f"value {bounds_text(m)}".rstrip())


def parse_qty(raw: Any, m: Mapping[str, Any], path: str, ctx: Ctx) -> float:
    """A ``{value, unit, source}`` mapping or ``"1.5 pJ"`` text -> the value in the canonical
    unit of ``m["dim"]``, its source recorded in ``ctx.found``."""
    from codesign.hw import units  # lazy: codesign.hw imports this module

    dim = m["dim"]
    accepted = ", ".join(units.units_of(dim))
    source: Optional[str] = None
    if isinstance(raw, Mapping):
        extra = set(raw) - {"value", "unit", "source"}
        if extra:
            k = sorted(map(str, extra))[0]
            ctx.fail(join(path, k), "unknown key" + suggest(k, ["value", "unit", "source"])
                     + "; a quantity has value, unit and source")
        if "value" not in raw:
            ctx.fail(path, "missing 'value'")
        if "unit" not in raw:
            ctx.fail(path, f"missing 'unit'; expected one of {accepted}")
        value, unit, source = raw["value"], raw["unit"], raw.get("source")
        if source is not None and not isinstance(source, str):
            ctx.fail(join(path, "source"), f"expected text, got {short_repr(source)}")
        if not isinstance(unit, str):
            ctx.fail(join(path, "unit"), f"expected one of {accepted}, got {short_repr(unit)}")
    elif isinstance(raw, str):
        parsed = units.split_number_unit(raw)
        if parsed is None:
            ctx.fail(path, f"cannot read {short_repr(raw)}; expected a number and a unit "
                           f"({accepted}), e.g. '1.5 {units.canonical_unit(dim)}'")
        value, unit = parsed  # type: ignore[misc]
    elif _is_number(raw):
        ctx.fail(path, f"{short_repr(raw)} has no unit; expected a {dim} in {accepted}, e.g. "
                       f"{{value: {short_repr(raw)}, unit: {units.canonical_unit(dim)}, "
                       "source: ...}")
    else:
        ctx.fail(path, f"expected a {dim} with a unit ({accepted}), got {short_repr(raw)}")
    if not _is_number(value):
        ctx.fail(path, f"value {short_repr(value)} is not a number")
    if not _in_bounds(value, None, None, None):
        ctx.fail(path, f"value {short_repr(value)} is not a finite number")
    try:
        v = units.convert(value, str(unit), dim)
    except KeyError:
        other = units.dimension_of(str(unit))
        got = f"a unit of {other}" if other else "an unknown unit"
        ctx.fail(path, f"unit {short_repr(unit)} is {got}; expected a {dim} unit: {accepted}")
    except OverflowError:
        ctx.fail(path, f"value {short_repr(value)} overflows in {units.canonical_unit(dim)}")
    source = source or ctx.source_for(path)
    if not source or not str(source).strip():
        ctx.fail(path, "no source; give {value, unit, source} or add "
                       f"'{path}' (or a prefix of it) to the sources: map")
    check_bounds(v, m, path, ctx, units.canonical_unit(dim))
    if abs(v) > MAX_QUANTITY:
        ctx.fail(path, f"{v:g} {units.canonical_unit(dim)} is implausibly large; expected at most "
                       f"{MAX_QUANTITY:g} {units.canonical_unit(dim)}")
    ctx.found[path] = str(source)
    return v


def unwrap_plain(raw: Any, path: str, ctx: Ctx) -> Any:
    """``{value: 4, source: ...}`` -> ``4`` (recording the source)."""
    if isinstance(raw, Mapping):
        extra = set(raw) - {"value", "source", "unit"}
        if extra or "value" not in raw:
            k = sorted(map(str, extra))[0] if extra else "value"
            ctx.fail(join(path, k), "expected a plain value or {value, source}")
        if raw.get("unit") not in (None, "", "1", "bit", "bits", "count"):
            ctx.fail(path, f"unit {short_repr(raw['unit'])} given to a dimensionless value")
        if "source" in raw and not isinstance(raw["source"], str):
            ctx.fail(join(path, "source"), f"expected text, got {short_repr(raw['source'])}")
        if raw.get("source"):
            ctx.found[path] = str(raw["source"])
        return raw["value"]
    src = ctx.source_for(path)
    if src:
        ctx.found[path] = src
    return raw


def parse_value(raw: Any, f: dataclasses.Field, path: str, ctx: Ctx) -> Any:
    """Validate one raw value against its field declaration."""
    m = f.metadata
    kind = m["kind"]
    if kind == "section":
        if not isinstance(raw, Mapping):
            ctx.fail(path, f"expected a mapping (section), got {type(raw).__name__}")
        return load_section(m["cls"], raw, path, ctx)
    if kind == "qty":
        if raw is None:
            ctx.fail(path, "missing value")
        return parse_qty(raw, m, path, ctx)
    raw = unwrap_plain(raw, path, ctx)
    if kind == "int":
        le = m.get("le")
        return check_int(raw, ctx.file, path, ge=m.get("ge"),
                         le=MAX_COUNT if le is None else le, nullable=bool(m.get("nullable")))
    if kind == "real":
        le = m.get("le")
        v = check_real(raw, ctx.file, path, gt=m.get("gt"), ge=m.get("ge"),
                       le=MAX_QUANTITY if le is None else le)
        if abs(v) > MAX_QUANTITY:  # type: ignore[arg-type]
            ctx.fail(path, f"{v:g} is implausibly large; expected at most {MAX_QUANTITY:g}")
        return v
    if kind == "choice":
        if not isinstance(raw, str) or raw not in m["options"]:
            ctx.fail(path, f"{short_repr(raw)} is not one of {list(m['options'])}"
                     + suggest(str(raw), list(m["options"])))
        return raw
    if kind == "bool":
        return check_bool(raw, ctx.file, path)
    if kind == "str":
        return check_text(raw, ctx.file, path)
    raise AssertionError(kind)  # pragma: no cover


def spec_fields(cls: type) -> list[dataclasses.Field]:
    """The declared (validated) fields of a dataclass, without internal ones."""
    return [f for f in fields(cls) if f.metadata.get("kind") not in (None, "internal")]


def load_section(cls: type, raw: Mapping[str, Any], prefix: str, ctx: Ctx) -> Any:
    """Validate ``raw`` against the declared fields of ``cls`` and build it."""
    fs = spec_fields(cls)
    keys = [f.metadata["key"] for f in fs]
    for k in raw:
        if k not in keys:
            ctx.fail(join(prefix, str(k)), "unknown key" + suggest(str(k), keys)
                     + f"; expected one of {keys}")
    kwargs = {}
    for f in fs:
        key = f.metadata["key"]
        path = join(prefix, key)
        required = f.default is _REQUIRED and f.default_factory is _REQUIRED  # type: ignore
        if key not in raw:
            if required:
                what = "section" if f.metadata["kind"] == "section" else "value"
                ctx.fail(path, f"missing {what}")
            if f.metadata["kind"] == "qty" and f.default is not None:
                ctx.found.setdefault(path, DEFAULT_SOURCE)
            continue
        kwargs[f.name] = parse_value(raw[key], f, path, ctx)
    return cls(**kwargs)
