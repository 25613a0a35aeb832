"""Bit-width sweeps: point description, resumable store, executors, runner, results.

* :mod:`~codesign.sweep.point`: :class:`SweepPoint` (frozen, hashed into its key), bit lists,
  the grid and its manifest;
* :mod:`~codesign.sweep.store`: one atomic JSON per finished point, the computations log;
* :mod:`~codesign.sweep.executors`: serial / local process pool / Dask behind
  :class:`concurrent.futures.Executor`;
* :mod:`~codesign.sweep.runner`: the resumable job runner (also used by the distillation study);
* :mod:`~codesign.sweep.evaluate`: one point's evaluation (PTQ, accuracy, cost; torch);
* :mod:`~codesign.sweep.results`: ``results.csv`` with Pareto flags, Pareto figures;
* :mod:`~codesign.sweep.driver`: :func:`sweep_bits`, all of the above end to end.

Importing this package does not import torch.
"""

from codesign.sweep.driver import SweepRun, sweep_bits
from codesign.sweep.executors import Backend, SerialExecutor, open_executor
from codesign.sweep.point import SweepPoint, make_points, manifest_for, parse_bits
from codesign.sweep.runner import JobSpec, RunReport, run_jobs
from codesign.sweep.store import ResultStore

__all__ = ["Backend", "JobSpec", "ResultStore", "RunReport", "SerialExecutor", "SweepPoint",
           "SweepRun", "make_points", "manifest_for", "open_executor",
           "parse_bits", "run_jobs", "sweep_bits"]
