"""Technology-node scaling: ONE table of energy, area and delay factors per CMOS node.

A component constant characterised at node ``a`` (its ``ref_node`` in the spec) is used at the
spec's node ``b`` multiplied by ``factor(b) / factor(a)``, per quantity:

* **area** -- Stillmaker & Baas 2017, "Scaling equations for the accurate prediction of CMOS
  device performance from 180 nm to 7 nm", Integration 58:74-81, doi:10.1016/j.vlsi.2017.02.002:
  their area scaling factors from 45 nm (the same table ships in Accelergy ``hwcomponents``,
  ``scaling/techscaling.py``).
* **energy** -- the same paper's fitted energy-per-operation polynomials
  ``a*Vdd^2 + b*Vdd + c`` evaluated at one supply, ``Vdd = 0.8 V`` (as ``hwcomponents`` does by
  default), relative to 45 nm; i.e. iso-voltage scaling. Real designs at older nodes run at a
  higher Vdd and would scale more steeply.
* **delay** -- *approximate* FO4-delay trend, relative to 45 nm, shaped after the same paper's
  delay scaling (roughly proportional to the node down to 45 nm, flattening below). Accurate to
  perhaps +-25 %; used only to move a digital latency given at one node to another.

All factors are approximate (a fit to predictive models, not silicon of any one foundry). Nodes
between table entries are interpolated linearly in log(factor) against log(node), which is how
22 nm (not a Stillmaker-Baas node) is obtained from 32 nm and 20 nm. Nodes outside 7-130 nm are
refused. Emerging-device arrays (RRAM cell read energy from ``V^2 G t``) do not scale with the
CMOS node and are never passed through this table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from codesign.errors import CodesignError

#: Nodes of the table (nm), largest first.
NODES_NM: tuple[float, ...] = (130, 90, 65, 45, 32, 20, 16, 14, 10, 7)

#: Area relative to 45 nm (Stillmaker & Baas 2017; hwcomponents AREA_SCALING row 45 nm).
AREA_FACTOR: tuple[float, ...] = (6.4, 2.8, 1.5, 1.0, 0.46, 0.21, 0.19, 0.17, 0.1, 0.059)

#: Energy per operation relative to 45 nm at Vdd = 0.8 V (Stillmaker & Baas 2017 polynomials).
ENERGY_FACTOR: tuple[float, ...] = (
    3.068, 1.897, 1.241, 1.0, 0.659, 0.221, 0.174, 0.139, 0.118, 0.094
)

#: Gate delay relative to 45 nm -- approximate trend (see module docstring).
DELAY_FACTOR: tuple[float, ...] = (2.6, 1.75, 1.3, 1.0, 0.8, 0.57, 0.51, 0.49, 0.43, 0.38)

_TABLES = {"area": AREA_FACTOR, "energy": ENERGY_FACTOR, "delay": DELAY_FACTOR}


def factor(quantity: str, node_nm: float) -> float:
    """Factor of ``quantity`` ('area' | 'energy' | 'delay') at ``node_nm``, relative to 45 nm."""
    if quantity not in _TABLES:
        raise CodesignError(f"tech scaling: quantity must be one of {sorted(_TABLES)}")
    node = float(node_nm)
    if not NODES_NM[-1] <= node <= NODES_NM[0]:
        raise CodesignError(
            f"technology node {node:g} nm is outside the scaling table "
            f"({NODES_NM[-1]}-{NODES_NM[0]} nm)"
        )
    xs = np.log(np.asarray(NODES_NM[::-1], dtype=float))
    ys = np.log(np.asarray(_TABLES[quantity][::-1], dtype=float))
    return float(math.exp(np.interp(math.log(node), xs, ys)))


def scale(quantity: str, value: float, from_nm: float, to_nm: float) -> float:
    """``value`` characterised at ``from_nm`` moved to ``to_nm``."""
    if from_nm == to_nm:
        return float(value)
    return float(value) * factor(quantity, to_nm) / factor(quantity, from_nm)


def scaling_table(nodes_nm=(130, 90, 65, 45, 32, 22, 14, 7)) -> pd.DataFrame:
    """Factors at ``nodes_nm`` relative to 45 nm (for documentation and reports)."""
    return pd.DataFrame(
        {
            "node_nm": list(nodes_nm),
            "energy": [factor("energy", n) for n in nodes_nm],
            "area": [factor("area", n) for n in nodes_nm],
            "delay": [factor("delay", n) for n in nodes_nm],
        }
    )
