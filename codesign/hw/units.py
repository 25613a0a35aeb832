"""Physical units of the hardware spec: parsing, checking and converting to canonical units.

Every physical constant in a ``hw_configs/*.yaml`` file carries a unit. A value is given either
as a mapping ``{value: 2.03084, unit: pJ, source: "..."}`` or as a compact string
``"2.03084 pJ"`` (its source then comes from the file's ``sources:`` map). Each spec field has a
*dimension* (energy, area, time, ...); a unit of another dimension is refused, a compatible one is
converted to the dimension's canonical unit below, which is also the suffix of the field's Python
name (``energy_pj``, ``area_um2``, ``latency_ns``, ``freq_mhz``, ``g_on_us``, ``node_nm``, ...).

Sizes are case-sensitive and stated: ``KB`` (JEDEC) = ``KiB`` = 1024 B = 8192 bit (the canonical
unit); ``kB`` (SI) = 1000 B; ``kb`` = ``kbit`` (SI) = 1000 bit; ``Kibit`` = 1024 bit; ``MB`` =
``MiB`` = 1024 KB. Power (static/leakage) is canonical in mW, so ``mW x ns = pJ``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: dimension -> (canonical unit, {unit: factor to canonical})
DIMENSIONS: dict[str, tuple[str, dict[str, float]]] = {
    "energy": ("pJ", {"aJ": 1e-6, "fJ": 1e-3, "pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9,
                      "J": 1e12}),
    "area": ("um2", {"nm2": 1e-6, "um2": 1.0, "mm2": 1e6, "cm2": 1e8}),
    "time": ("ns", {"ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}),
    "frequency": ("MHz", {"Hz": 1e-6, "kHz": 1e-3, "MHz": 1.0, "GHz": 1e3}),
    "conductance": ("uS", {"nS": 1e-3, "uS": 1.0, "mS": 1e3, "S": 1e6}),
    "voltage": ("V", {"mV": 1e-3, "V": 1.0}),
    "resistance": ("ohm", {"mohm": 1e-3, "ohm": 1.0, "kohm": 1e3, "Mohm": 1e6}),
    "length": ("nm", {"nm": 1.0, "um": 1e3}),
    "size": ("KB", {"bit": 1.0 / 8192, "kbit": 1000.0 / 8192, "kb": 1000.0 / 8192,
                    "Kibit": 1024.0 / 8192, "B": 1.0 / 1024, "kB": 1000.0 / 1024, "KB": 1.0,
                    "KiB": 1.0, "MB": 1024.0, "MiB": 1024.0}),
    "power": ("mW", {"nW": 1e-6, "uW": 1e-3, "mW": 1.0, "W": 1e3}),
    "energy_per_bit": ("pJ/bit", {"aJ/bit": 1e-6, "fJ/bit": 1e-3, "pJ/bit": 1.0,
                                  "nJ/bit": 1e3}),
    "area_per_bit": ("um2/bit", {"nm2/bit": 1e-6, "um2/bit": 1.0}),
}

_SYMBOLS = (("µ", "u"), ("μ", "u"), ("²", "2"), ("**2", "2"), ("^2", "2"), ("bits", "bit"),
            (" ", ""))
_SIZE_ALIASES = {"byte": "B", "bytes": "B"}
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s].*?)?\s*$")


def normalise_unit(unit: str) -> str:
    """Spell a unit the canonical way: ``µm²``/``um^2`` -> ``um2``, ``bytes`` -> ``B``."""
    u = str(unit).strip()
    for a, b in _SYMBOLS:
        u = u.replace(a, b)
    if u.lower() in _SIZE_ALIASES:
        u = _SIZE_ALIASES[u.lower()]
    return u


def units_of(dimension: str) -> list[str]:
    """Units accepted for ``dimension`` (canonical first)."""
    canon, table = DIMENSIONS[dimension]
    return [canon] + [u for u in table if u != canon]


def canonical_unit(dimension: str) -> str:
    """The unit values of ``dimension`` are stored in."""
    return DIMENSIONS[dimension][0]


def dimension_of(unit: str) -> str | None:
    """The dimension a unit belongs to, or ``None`` when unknown."""
    u = normalise_unit(unit)
    for dim, (_, table) in DIMENSIONS.items():
        if u in table:
            return dim
    return None


def convert(value: float, unit: str, dimension: str) -> float:
    """``value`` in ``unit`` expressed in the canonical unit of ``dimension``.

    Raises ``KeyError`` when ``unit`` does not belong to ``dimension`` (callers turn it into a
    :class:`~codesign.errors.CodesignError` that names the file and key).
    """
    _, table = DIMENSIONS[dimension]
    return float(value) * table[normalise_unit(unit)]


def split_number_unit(text: str) -> tuple[float, str] | None:
    """``"2.03 pJ"`` -> ``(2.03, "pJ")``; ``None`` when ``text`` is not a number and a unit."""
    m = _NUMBER_UNIT.match(text)
    if not m or not m.group(2):
        return None
    return float(m.group(1)), m.group(2)


@dataclass(frozen=True)
class Quantity:
    """A value in the canonical unit of its dimension, with its provenance."""

    value: float
    dimension: str
    source: str

    @property
    def unit(self) -> str:
        return canonical_unit(self.dimension)

    def as_dict(self) -> dict:
        """``{value, unit, source}`` as written in a spec file."""
        return {"value": self.value, "unit": self.unit, "source": self.source}
