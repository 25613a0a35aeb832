"""The ``nonideal:`` section of a hardware spec: parameters of the crossbar non-idealities.

Every subsection is optional; one that is present is a non-ideality the functional simulator
(:mod:`codesign.sim`) can switch on (``codesign map --nonideal all|none|NAME,...``; ``all`` means
every subsection present). Example (``hw_configs/rram_physical_32nm.yaml``)::

    nonideal:
      programming: {sigma: {value: 0.05, source: "..."}, distribution: lognormal}
      read_noise:  {sigma: {value: 0.01, source: "..."}}
      stuck_at:    {on_rate: {value: 0.001, source: "..."}, off_rate: {value: 0.001, ...}}
      drift:       {time: {value: 1, unit: "s", ...}, t0: {...}, nu: {value: 0.005, ...}}
      ir_drop:     {r_row: {value: 2.5, unit: ohm, ...}, r_col: {...}}
      adc:         {range: array, offset: {value: 0, ...}, gain_error: {value: 0, ...}}

The physics of each model is in its class in :mod:`codesign.sim.nonideal`. This module holds
only the validated numbers (no torch: ``hw/`` never imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from codesign.errors import CodesignError
from codesign.params import choice, qty, real, section

_FROZEN = {"frozen": True, "kw_only": True}

#: names of the non-idealities, in the order they act on a programmed array
NAMES = ("programming", "stuck_at", "drift", "read_noise", "ir_drop", "adc")


@dataclass(**_FROZEN)
class Programming:
    """Write (programming) variation, drawn once per cell per chip."""

    sigma: float = real("sigma", ge=0)
    """Relative standard deviation of the programmed conductance (dimensionless, >= 0):
    ``normal``: ``G = G0 (1 + sigma z)`` clipped at 0; ``lognormal``: ``G = G0 exp(sigma z)``."""
    distribution: str = choice("distribution", ("normal", "lognormal"), default="normal")
    """Shape of the variation."""


@dataclass(**_FROZEN)
class ReadNoise:
    """Noise on every read (thermal / 1/f / random telegraph), independent per cell and read."""

    sigma: float = real("sigma", ge=0)
    """Standard deviation of a cell's conductance on one read, relative to ``g_on``
    (dimensionless, >= 0)."""


@dataclass(**_FROZEN)
class StuckAt:
    """Cells stuck at the on (LRS, ``g_on``) or off (HRS, ``g_off``) conductance, per chip."""

    on_rate: float = real("on_rate", ge=0, le=1)
    """Fraction of cells stuck at ``g_on`` (0..1)."""
    off_rate: float = real("off_rate", ge=0, le=1)
    """Fraction of cells stuck at ``g_off`` (0..1); ``on_rate + off_rate <= 1``."""


@dataclass(**_FROZEN)
class Drift:
    """Power-law conductance drift after programming: ``G(t) = G(t0) (t / t0)^(-nu)``."""

    time_ns: float = qty("time", "time", gt=0)
    """Time since programming at which the network is read (ns; usually given in s)."""
    t0_ns: float = qty("t0", "time", gt=0)
    """Reference time at which the programmed value holds (ns)."""
    nu: float = real("nu", ge=0)
    """Drift exponent (dimensionless, >= 0)."""


@dataclass(**_FROZEN)
class IRDrop:
    """Wire resistance of the crossbar (the circuit of :mod:`codesign.sim.irdrop`)."""

    r_row_ohm: float = qty("r_row", "resistance", gt=0)
    """Resistance of one row (word-line) segment between neighbouring cells (ohm, > 0)."""
    r_col_ohm: float = qty("r_col", "resistance", gt=0)
    """Resistance of one column (bit-line) segment between neighbouring cells (ohm, > 0)."""
    model: str = choice("model", ("first_order", "transfer"), default="transfer")
    """``transfer`` (default): the exact linear transfer matrix ``I = v @ G_eff`` of each
    crossbar (:func:`codesign.sim.irdrop.transfer_conductance`: direct Kron reduction, no
    iteration, about ``4 R C^3`` flops per crossbar once per programmed chip; float32 rounding
    ~3e-5 of the largest current at 128x128), valid at any wire resistance. ``first_order``:
    a one-step linearisation in the wire resistance (cheap); valid only while ``r G N^2`` is
    small (32x32 at 1.9 / 5.6 ohm: 0.6 % error; 128x128: ~100 %; ``reports/bench/
    sim_irdrop.md``)."""


@dataclass(**_FROZEN)
class ADCNonideal:
    """ADC range and static errors: ``code = clip(round((gain I + offset) / LSB), 0, 2^b - 1)``."""

    range: str = choice("range", ("array", "calibrated"), default="array")
    """Full scale: ``array`` = every row of the block active with every cell at ``g_on``;
    ``calibrated`` = the largest column current seen on the calibration batch."""
    offset_lsb: float = real("offset", default=0.0)
    """Input-referred offset (LSB)."""
    gain_error: float = real("gain_error", default=0.0, gt=-1)
    """Relative gain error (dimensionless): ``gain = 1 + gain_error``."""


@dataclass(**_FROZEN)
class NonIdeal:
    """Parameters of each non-ideality (a missing subsection: that model is not available)."""

    programming: Optional[Programming] = section("programming", Programming, required=False)
    stuck_at: Optional[StuckAt] = section("stuck_at", StuckAt, required=False)
    drift: Optional[Drift] = section("drift", Drift, required=False)
    read_noise: Optional[ReadNoise] = section("read_noise", ReadNoise, required=False)
    ir_drop: Optional[IRDrop] = section("ir_drop", IRDrop, required=False)
    adc: Optional[ADCNonideal] = section("adc", ADCNonideal, required=False)

    def available(self) -> tuple[str, ...]:
        """Names of the subsections present, in :data:`NAMES` order."""
        return tuple(n for n in NAMES if getattr(self, n) is not None)


def check_nonideal(nonideal: Optional[NonIdeal], file: str) -> None:
    """Cross-field checks of the section (one :class:`CodesignError` naming file and key)."""
    if nonideal is None or nonideal.stuck_at is None:
        return
    s = nonideal.stuck_at
    if s.on_rate + s.off_rate > 1.0:
        raise CodesignError(f"{file}: nonideal.stuck_at: on_rate + off_rate = "
                            f"{s.on_rate + s.off_rate:g} exceeds 1; expected rates summing to <= 1")


def select(nonideal: Optional[NonIdeal], which: str, file: str) -> tuple[str, ...]:
    """Resolve ``none`` | ``all`` | ``NAME,...`` against the spec's section.

    Refuses unknown names and names whose subsection the spec does not give.
    """
    text = str(which).strip()
    have = nonideal.available() if nonideal is not None else ()
    if text == "none":
        return ()
    if text == "all":
        return have
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise CodesignError(f"--nonideal {which!r}: expected none, all or names from {NAMES}")
    for n in names:
        if n not in NAMES:
            raise CodesignError(f"--nonideal: unknown non-ideality {n!r}; expected none, all or "
                                f"a comma-separated list of {', '.join(NAMES)}")
        if n not in have:
            raise CodesignError(f"{file}: nonideal.{n}: missing section (needed by --nonideal "
                                f"{n}); the spec gives: {', '.join(have) or 'none'}")
    return tuple(n for n in NAMES if n in names)
