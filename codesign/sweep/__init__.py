"""Bit-width sweeps (``codesign sweep-bits``): point description, resumable store, executors,
runner, evaluation, results, iso-accuracy.

The design notes (``DESIGN.md``: "sweep.py") describe one module; the code is this package, one
module per concern (imports point one way, top to bottom of this list):

* :mod:`~codesign.sweep.version`: the code version (a digest of the library code that computes
  a point, docstrings and comments ignored), part of every key; pure Python;
* :mod:`~codesign.sweep.point`: :class:`SweepPoint` (frozen; every option that changes a result,
  retraining options, teacher and npz data contents and the code version included, hashed into
  its key; stored with paths relative to the sweep folder), bit lists, the grid and its
  manifest, the cached file hash; pure Python;
* :mod:`~codesign.sweep.store`: one atomic JSON per finished point, the manifest, the
  computations log;
* :mod:`~codesign.sweep.executors`: serial / local process pool (fork server preloading
  :mod:`~codesign.sweep.warm`, one torch thread per worker) / Dask behind
  :class:`concurrent.futures.Executor`;
* :mod:`~codesign.sweep.runner`: the resumable job runner, several job groups through one window
  (the grid and its FP reference; also used by the distillation study);
* :mod:`~codesign.sweep.evaluate`: one point's evaluation on a worker (PTQ, optional closed-loop
  retraining through :func:`codesign.loop.close_loop`, ideal or simulated-chip accuracy, cost;
  torch, imported there only);
* :mod:`~codesign.sweep.results`: ``results.csv`` with Pareto flags, Pareto figures;
* :mod:`~codesign.sweep.isoacc`: the FP reference point, the cheapest point at iso-accuracy, the
  ratio table (also behind ``codesign compare``);
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
