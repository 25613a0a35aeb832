"""Shared click option types."""

from __future__ import annotations

from typing import Any, Optional

import click

from codesign.errors import CodesignError
from codesign.params import check_bits


def bits_option(value: Optional[int], name: str, minimum: int = 1) -> Optional[int]:
    """Validate a bit-width flag; ``None`` (not given) passes through."""
    if value is None:
        return None
    return check_bits(value, f"--{name} {value}", "", nullable=False, minimum=minimum)


def positive(value: Optional[int], name: str) -> Optional[int]:
    if value is not None and value <= 0:
        raise CodesignError(f"--{name} {value}: expected a positive integer")
    return value


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def common_train_options(f):
    """Options shared by ``train`` and commands that retrain."""
    for opt in reversed([
        click.option("--T", "T", type=int, default=None, help="Time steps (default: spec, 4)."),
        click.option("--wbits", type=int, default=None, help="Hidden-layer weight bits (1..16)."),
        click.option("--ubits", type=int, default=None, help="Membrane storage bits (2..16)."),
        click.option("--first-bits", type=int, default=None,
                     help="First layer weight bits (default 8 when --wbits is set)."),
        click.option("--last-bits", type=int, default=None,
                     help="Readout weight bits (default 8 when --wbits is set)."),
        click.option("--per-channel/--per-layer", default=None,
                     help="Weight step per output channel or per layer."),
    ]):
        f = opt(f)
    return f


def quant_overrides(wbits, ubits, first_bits, last_bits, per_channel) -> dict[str, Any]:
    q = drop_none({
        "wbits": bits_option(wbits, "wbits"), "ubits": bits_option(ubits, "ubits", 2),
        "first_bits": bits_option(first_bits, "first-bits"),
        "last_bits": bits_option(last_bits, "last-bits"), "per_channel": per_channel,
    })
    return {"quant": q} if q else {}


def parse_click_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise CodesignError(f"--{name} {value!r}: expected one of {', '.join(choices)}")
    return value


__all__ = ["bits_option", "positive", "drop_none", "common_train_options",
           "quant_overrides", "parse_click_choice", "click"]
