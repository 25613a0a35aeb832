"""Imported by the process pool's fork server before any worker forks (see
:mod:`codesign.sweep.executors`): torch, the modules a point's evaluation imports, and this
process's code version (:func:`codesign.sweep.version.code_version`, ~0.4 s of parsing).

Every worker forked from the server starts with all of it in memory instead of importing torch
and the library itself (~2 s of a core each on these machines). Nothing here runs a torch
operation or starts a thread: the server stays single-threaded, so forking it is safe (a
process that has run a parallel torch operation is not: its OpenMP pool does not survive a
fork). Importing this module has no other effect.
"""

from __future__ import annotations

import torch  # noqa: F401 - imported for the forked workers

import codesign.mapflow  # noqa: F401
import codesign.sim.accuracy  # noqa: F401
import codesign.sim.activity  # noqa: F401
import codesign.snn.checkpoint  # noqa: F401
import codesign.sweep.driver  # noqa: F401
import codesign.sweep.evaluate  # noqa: F401
import codesign.sweep.isoacc  # noqa: F401
import codesign.train.loop  # noqa: F401
import codesign.train.recipe  # noqa: F401
from codesign.data import load_dataset  # noqa: F401
from codesign.sweep.version import code_version

code_version()
