"""Map a network onto a hardware spec and cost it, from whatever the user has.

This is the library behind ``codesign map``: it sits above ``graph``, ``snn``, ``data``, ``sim``
and ``hw`` and below the CLI.

>>> result = map_model("models/teacher_fp.pt", "hw_configs/rram_physical_32nm.yaml",
...                    data="mnist5k", samples=64)          # doctest: +SKIP
>>> result.layers, result.summary                           # doctest: +SKIP

Inputs (:func:`load_source`)
    * a codesign checkpoint (``.pt``/``.pth``): lowered with
      :func:`~codesign.graph.from_model.graph_from_model`; with ``data`` its activity is measured
      on the data's **test split** (the checkpoint's ``split_seed`` unless given, so the samples
      were not trained on) by :func:`~codesign.sim.activity.measure_activity`;
    * a workload (``.yaml``/``.yml``, see :mod:`codesign.graph.workload`): architecture only,
      dense cost. A YAML file is classified by content: a workload has ``layers``; a hardware
      spec (``crossbar``, ``adc``, ``device``, ...) or a zoo model spec (``arch``) given as the
      model is refused with a message saying what it is;
    * a NIR file (``.nir``): :func:`~codesign.graph.nir_io.read_nir` with ``dt_s``, ``reset``
      and ``T`` where the file does not say;
    * in Python also a :class:`~codesign.snn.model.SpikingNet` or a graph (``networkx.DiGraph``).

Without ``data`` (or with ``dense=True``) every crossbar row is assumed active at every step
(an upper bound). ``wbits``/``ubits`` force every layer's weight / membrane precision in the cost
model; ``adc_bits`` overrides the spec's ADC resolution.

With ``hardware`` (``codesign map --chips N``) the energy and latency come from the hardware run
itself: the simulated chips' spikes (:mod:`codesign.sim.record`: a uniform reservoir of
``samples`` (sample, chip) rows over every chip and test sample run) are the activity the cost
model charges, and ``summary["inputs"]["activity"]`` says ``simulated`` (``measured``: the
ideal network's activity on data; ``dense``: none). The same rows' inputs through the ideal
quantized network (:func:`ideal_activity`: exact integer datapath, lossless ADC) are costed too:
``summary["energy_ideal_activity_pj"]``, ``energy_change`` and per layer
``energy_ideal_activity_pj``, ``output_spike_rate_ideal``, ``firing_rate_drift`` and
``firing_rate_ratio`` in ``layers``, so the effect of the non-idealities on energy shows; the
simulator's own read counts per sample (``sim_reads``, ``sim_zero_reads``, ``sim_active_rows``)
sit next to the cost model's. ``summary["accuracy"]["firing_rate"]`` (``firing_rate_drift.csv``)
holds each LIF layer's rate on the same rows, ideal and simulated, with ``drift`` and ``ratio``,
and the rate over every chip and sample of the run (:func:`_drift_rows`).

The :class:`~codesign.hw.MapResult`'s ``summary`` gains an ``inputs`` entry recording the model
path and kind, the spec file, data set, split, sample count, seed and sample indices, the
overrides and the library versions.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import networkx as nx
import numpy as np
import torch

from codesign import __version__
from codesign.errors import CodesignError
from codesign.graph.build import RESETS, validate_graph
from codesign.graph.from_model import graph_from_model
from codesign.hw import HardwareSpec, MapResult, load_spec, map_network, preset_path
from codesign.hw.mapping import MAPPING_MODES
from codesign.params import load_yaml
from codesign.sim.activity import DEFAULT_MAX_SAMPLES, Activity, measure_activity
from codesign.snn.model import SpikingNet

CHECKPOINT_EXTS = (".pt", ".pth")
WORKLOAD_EXTS = (".yaml", ".yml")
NIR_EXTS = (".nir",)
HW_KEYS = ("technology", "device", "crossbar", "adc", "mux", "hierarchy", "precision", "clock",
           "interconnect", "buffers", "membrane", "neuron", "digital", "input")
DataArg = Union[str, Any, torch.Tensor, np.ndarray, None]


@dataclass
class Source:
    """A network ready to map: its graph, the torch model when there is one, provenance."""

    graph: nx.DiGraph
    kind: str
    """``checkpoint``, ``workload``, ``nir``, ``model`` (a SpikingNet) or ``graph``."""
    path: Optional[str] = None
    model: Optional[SpikingNet] = None
    meta: dict[str, Any] = field(default_factory=dict)
    """Checkpoint metadata (dataset, split_seed, test_accuracy, ...)."""


# ----------------------------------------------------------------------------- classification


def yaml_kind(path: Union[str, Path]) -> str:
    """``workload``, ``hardware``, ``model_spec`` or ``unknown``, from the file's top-level keys.

    Unreadable or non-mapping files are ``unknown`` (the real loader then says why)."""
    try:
        raw = load_yaml(path)  # the one strict loader (bad bytes, depth, duplicates refused)
    except CodesignError:
        return "unknown"
    if not isinstance(raw, dict):
        return "unknown"
    if "layers" in raw:
        return "workload"
    if any(k in raw for k in HW_KEYS):
        return "hardware"
    if "arch" in raw:
        return "model_spec"
    return "unknown"


def _check_nir_opts(kind: str, path: str, dt_s, reset, T) -> None:
    given = [n for n, v in (("dt", dt_s), ("reset", reset), ("T", T)) if v is not None]
    if given and kind != "nir":
        flags = ", ".join(f"--{g}" for g in given)
        raise CodesignError(f"{path}: {flags} appl{'ies' if len(given) == 1 else 'y'} to .nir "
                            f"files only; a {kind} carries its own")
    if dt_s is not None and (isinstance(dt_s, bool) or not isinstance(dt_s, (int, float))
                             or not dt_s > 0):
        raise CodesignError(f"--dt {dt_s!r}: expected a positive time step in seconds")
    if reset is not None and reset not in RESETS:
        raise CodesignError(f"--reset {reset!r}: expected one of {', '.join(RESETS)}")
    if T is not None and (isinstance(T, bool) or not isinstance(T, int) or T < 1):
        raise CodesignError(f"--T {T!r}: expected a positive number of time steps")


def load_source(
    model: Union[str, os.PathLike, SpikingNet, nx.DiGraph],
    *,
    dt_s: Optional[float] = None,
    reset: Optional[str] = None,
    T: Optional[int] = None,
) -> Source:
    """Resolve ``model`` (path or object) into a :class:`Source`; see the module docstring."""
    if isinstance(model, SpikingNet):
        _check_nir_opts("model", "model", dt_s, reset, T)
        return Source(graph_from_model(model), "model", model=model)
    if isinstance(model, nx.DiGraph):
        _check_nir_opts("graph", "graph", dt_s, reset, T)
        validate_graph(model)
        return Source(model, "graph")
    if not isinstance(model, (str, os.PathLike)):
        raise CodesignError(f"model: expected a path, a SpikingNet or a graph, got "
                            f"{type(model).__name__}")
    path = Path(model)
    where = str(path)
    if not path.is_file():
        raise CodesignError(f"{where}: no such model file (expected a checkpoint .pt, a workload "
                            ".yaml or a .nir file)")
    ext = path.suffix.lower()
    if ext in CHECKPOINT_EXTS:
        _check_nir_opts("checkpoint", where, dt_s, reset, T)
        from codesign.snn.checkpoint import load_checkpoint

        net, meta = load_checkpoint(path)
        graph = graph_from_model(net, name=str(net.spec.get("name") or path.stem))
        return Source(graph, "checkpoint", path=where, model=net, meta=meta)
    if ext in WORKLOAD_EXTS:
        kind = yaml_kind(path)
        if kind == "hardware":
            raise CodesignError(f"{where}: is a hardware spec, not a model; pass it with --hw "
                                "and give a checkpoint (.pt), a workload (.yaml with layers:) "
                                "or a .nir file as MODEL")
        if kind == "model_spec":
            raise CodesignError(f"{where}: is a zoo model spec (arch: ...) without weights or "
                                "layer list; train it into a checkpoint with `codesign train`, "
                                "or describe it as a workload (layers: [...])")
        _check_nir_opts("workload", where, dt_s, reset, T)
        from codesign.graph.workload import load_workload

        return Source(load_workload(path), "workload", path=where)
    if ext in NIR_EXTS:
        _check_nir_opts("nir", where, dt_s, reset, T)
        from codesign.graph.nir_io import read_nir

        return Source(read_nir(path, dt_s=dt_s, reset=reset, T=T), "nir", path=where)
    raise CodesignError(f"{where}: unknown model file extension {path.suffix or '(none)'!r}; "
                        "expected .pt/.pth (codesign checkpoint), .yaml/.yml (workload) or .nir")


def load_hw(hw: Union[str, os.PathLike, HardwareSpec]) -> HardwareSpec:
    """A :class:`HardwareSpec` from a spec object, a YAML path or a preset name
    (``spikesim_rram_65nm``, ...); a workload YAML given here is refused by name."""
    if isinstance(hw, HardwareSpec):
        return hw
    if not isinstance(hw, (str, os.PathLike)):
        raise CodesignError(f"--hw: expected a hardware spec path, got {type(hw).__name__}")
    p = os.fspath(hw)
    if not os.path.isfile(p) and os.sep not in p and os.path.isfile(preset_path(p)):
        p = preset_path(p)
    if os.path.isfile(p) and yaml_kind(p) == "workload":
        raise CodesignError(f"{p}: is a workload (it has layers:), not a hardware spec; give it "
                            "as MODEL and a hw_configs/*.yaml file as --hw")
    return load_spec(p)


# ----------------------------------------------------------------------------- data


def _data_name(data: DataArg) -> Optional[str]:
    if data is None:
        return None
    if isinstance(data, str):
        return data
    name = getattr(data, "name", None)
    return str(name) if name is not None else "array"


def load_test_inputs(data: DataArg, model: SpikingNet, *, split_seed: int = 0) -> torch.Tensor:
    """The inputs to measure activity on: a data set name -> its test split (for ``digits``
    upsampled to the model's image size), a :class:`~codesign.data.DataSplit` -> ``x_test``, a
    tensor or array -> itself."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return torch.as_tensor(data)
    if isinstance(data, str):
        from codesign.data import load_dataset

        options: dict[str, Any] = {}
        size = int(model.spec.get("image_size", 0))
        if data == "digits" and size not in (0, 8):
            options["upsample"] = size
        data = load_dataset(data, split_seed=split_seed, T=int(model.T), **options)
    x = getattr(data, "x_test", None)
    if not isinstance(x, torch.Tensor):
        raise CodesignError(f"data: expected a data set name, a DataSplit or an array, got "
                            f"{type(data).__name__}")
    return x


def _versions() -> dict[str, str]:
    import networkx
    import nir
    import pandas

    return {"codesign": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "pandas": pandas.__version__,
            "networkx": networkx.__version__, "nir": getattr(nir, "__version__", "?")}


# ----------------------------------------------------------------------------- the flow


def map_model(
    model: Union[str, os.PathLike, SpikingNet, nx.DiGraph],
    hw: Union[str, os.PathLike, HardwareSpec],
    *,
    data: DataArg = None,
    samples: Optional[int] = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    split_seed: Optional[int] = None,
    dense: bool = False,
    mapping: str = "im2col",
    wbits: Optional[int] = None,
    ubits: Optional[int] = None,
    adc_bits: Optional[int] = None,
    duplication: Union[int, dict[str, int]] = 1,
    dt_s: Optional[float] = None,
    reset: Optional[str] = None,
    T: Optional[int] = None,
    batch_size: int = 32,
    activity: Optional[dict[str, np.ndarray]] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    static_input_once: bool = True,
    hardware: Optional[dict[str, Any]] = None,
) -> MapResult:
    """Map ``model`` onto ``hw`` and cost it (see the module docstring).

    ``data``: a data set name (``mnist5k``, ``digits``, ``nmnist5k``, ``npz:PATH``), a
    ``DataSplit`` or an input array; needs a torch model (checkpoint or SpikingNet) unless
    ``activity`` is given directly. ``samples`` test samples (``None``: all) are drawn with
    ``seed``. ``dense=True`` ignores ``data``. Returns the hardware model's
    :class:`~codesign.hw.MapResult` with ``summary["inputs"]`` added. ``progress(done, total)``
    is called after every batch of the activity measurement (samples run, samples in all).
    ``static_input_once``: a static input (direct encoding) is read on the crossbars once per
    inference (see :func:`codesign.hw.map_network`).
    ``hardware``: simulate the accuracy on the spec's crossbars (:func:`codesign.sim.accuracy.
    simulate` keyword arguments: ``chips``, ``nonideal``, ``ablate``, ``samples``, ``progress``)
    on the data's whole test split; the result goes to ``summary["accuracy"]``.
    """
    if mapping not in MAPPING_MODES:
        raise CodesignError(f"mapping: expected one of {', '.join(MAPPING_MODES)}, got "
                            f"{mapping!r}")
    src = load_source(model, dt_s=dt_s, reset=reset, T=T)
    spec = load_hw(hw)
    if adc_bits is not None:
        spec = spec.with_overrides(adc_bits=adc_bits)
    act_meta: dict[str, Any] = {}
    split_used = None
    sim: Optional[dict[str, Any]] = None
    if hardware is not None:  # validated and run first: its chips' activity is what we cost
        keep = DEFAULT_MAX_SAMPLES if samples is None else int(samples)
        sim = _hardware_accuracy(src, spec, data, split_seed, seed, dense, hardware,
                                 keep=keep, batch_size=batch_size)
        split_used = sim["split_seed"]
        activity, act_meta = sim["activity"], sim["meta"]
    if dense:
        activity = None
    elif activity is None and data is not None:
        if src.model is None:
            raise CodesignError(f"{src.path or src.kind}: --data needs a torch model (a "
                                f"codesign checkpoint .pt); a {src.kind} has no weights to run, "
                                "so it is costed dense")
        split_used = int(split_seed if split_seed is not None else src.meta.get("split_seed", 0))
        x = load_test_inputs(data, src.model, split_seed=split_used)
        activity = measure_activity(src.model, x, batch_size=batch_size, max_samples=samples,
                                    seed=seed, progress=progress)
        act_meta = activity.meta if isinstance(activity, Activity) else {}
    costing = {"mapping": mapping, "duplication": duplication, "wbits": wbits, "ubits": ubits,
               "static_input_once": static_input_once}
    result = map_network(src.graph, spec, activity=activity, **costing)
    kind = "dense" if activity is None else ("simulated" if sim is not None else "measured")
    result.summary["inputs"] = {
        "model": src.path,
        "model_kind": src.kind,
        "model_name": src.graph.graph.get("name"),
        "trained_on": src.meta.get("dataset"),
        "test_accuracy": src.meta.get("test_accuracy"),
        "hw": spec.file,
        "activity": kind,
        "data": None if activity is None else _data_name(data),
        "split": "test" if split_used is not None else None,
        "split_seed": split_used,
        "samples": act_meta.get("samples"),
        "seed": act_meta.get("seed", seed) if activity is not None else None,
        "sample_indices": act_meta.get("indices"),
        "activity_seconds": act_meta.get("seconds"),
        "activity_rows_seen": act_meta.get("rows_seen"),
        "mapping": mapping,
        "overrides": {"wbits": wbits, "ubits": ubits, "adc_bits": adc_bits},
        "nir": ({"dt_s": src.graph.graph.get("dt_s"), "reset": reset, "T": src.graph.graph["T"]}
                if src.kind == "nir" else None),
        "versions": _versions(),
    }
    if sim is not None:
        result.summary["accuracy"] = sim["accuracy"]
        ideal = map_network(src.graph, spec, activity=sim["ideal_activity"], **costing)
        _compare_with_ideal(result, ideal, sim)
    return result


def _hardware_accuracy(src: Any, spec: HardwareSpec, data: DataArg, split_seed: Optional[int],
                       seed: int, dense: bool, options: dict[str, Any], *, keep: int,
                       batch_size: int = 32) -> dict[str, Any]:
    """The checkpoint on simulated chips (:func:`codesign.sim.accuracy.simulate`) with a
    :class:`~codesign.sim.record.SimRecorder` on the main run: ``accuracy`` (the summary's
    entry, its ``firing_rate`` rows from every chip), ``activity`` (the chips' spikes on at most
    ``keep`` rows: the cost model's input), ``ideal_activity`` (:func:`ideal_activity` on the
    same rows' inputs), ``meta`` and ``split_seed``."""
    from codesign.data import DataSplit, load_dataset
    from codesign.sim.accuracy import simulate
    from codesign.sim.record import SimRecorder

    if src.model is None or data is None or dense:
        raise CodesignError(f"{src.path or src.kind}: --chips needs a quantized checkpoint and "
                            "--data (the accuracy is measured on the data's test split)")
    split = data
    used = None
    if isinstance(data, str):
        size = int(src.model.spec.get("image_size", 0))
        extra: dict[str, Any] = {"upsample": size} if data == "digits" and size not in (0, 8) \
            else {}
        used = int(split_seed if split_seed is not None else src.meta.get("split_seed", 0))
        split = load_dataset(data, split_seed=used, T=int(src.model.T), **extra)
    if not isinstance(split, DataSplit):
        raise CodesignError("--chips: expected a data set name or a DataSplit (labels needed)")
    rec = SimRecorder(keep=keep, seed=seed)
    t0 = time.perf_counter()
    acc = simulate(src.model, spec, split.x_test, split.y_test, seed=seed, recorder=rec,
                   **options)
    seconds = time.perf_counter() - t0
    if rec.seen == 0:
        raise CodesignError("--chips: the simulated network has no LIF layer to record")
    acc["reads_per_sample"] = rec.read_stats()
    acc["recorded"] = {"rows": rec.seen, "kept_rows": rec.kept_rows, "reservoir_seed": rec.seed,
                       "spikes_per_step": {k: [float(v) for v in a]
                                           for k, a in rec.spikes_per_step().items()}}
    activity = Activity(rec.activity(src.model), {
        "samples": rec.kept_rows, "seed": int(seed), "indices": None,
        "seconds": round(seconds, 3), "rows_seen": rec.seen,
        "what": "simulated chips' spikes (codesign.sim.record, reservoir of rows over every "
                "chip and sample)"})
    ideal = ideal_activity(src.model, spec, rec.inputs(), int(acc["lossless_adc_bits"]), seed)
    _drift_rows(acc, rec, activity, ideal)
    return {"accuracy": acc, "activity": activity, "ideal_activity": ideal,
            "meta": activity.meta, "split_seed": used}


def ideal_activity(model: SpikingNet, spec: HardwareSpec, x: torch.Tensor, lossless_bits: int,
                   seed: int = 0) -> Activity:
    """The ideal quantized network's activity on inputs ``x`` (``map_network`` format): one
    chip of ``spec`` with every non-ideality off and a lossless ADC (``lossless_bits``, at most
    16), i.e. the network's exact integer datapath (:mod:`codesign.sim.network`), recorded
    like the hardware run. (The float forward that ``measure_activity`` hooks decides
    half-integer ties of the membrane by float32 rounding error; this one does not, so with
    ideal crossbars the hardware run's activity equals it exactly.)"""
    from codesign.sim.accuracy import simulate
    from codesign.sim.record import SimRecorder

    rec = SimRecorder(keep=int(x.shape[0]), seed=seed)
    simulate(model, spec, x, torch.zeros(x.shape[0], dtype=torch.long), chips=1,
             nonideal="none", adc_bits=min(16, max(1, int(lossless_bits))), seed=seed,
             recorder=rec)
    return Activity(rec.activity(model), {"samples": rec.kept_rows, "seed": int(seed),
                                          "what": "ideal quantized network (exact integer "
                                                  "datapath, lossless ADC)"})


def _drift_rows(acc: dict[str, Any], rec: Any, sim_act: Activity, ideal_act: Activity) -> None:
    """``acc["firing_rate"]``, one row per LIF layer: ``ideal_rate`` (the ideal quantized
    network, :func:`ideal_activity`) and ``hardware_rate`` (the chips) on the same recorded
    (sample, chip) rows, ``drift`` = hardware - ideal and ``ratio`` = hardware / ideal (paired:
    exactly 0 and 1 with ideal crossbars); ``hardware_rate_all`` over every chip and sample of
    the run (the recorder's sums); ``ideal_rate_float_forward`` and
    ``hardware_rate_first_chip``, what :func:`~codesign.sim.accuracy.simulate` reports (the
    checkpoint's float forward, whose float32 rounding decides membrane ties, and chip 0)."""
    hw_all = rec.rates()
    before = {r["layer"]: r for r in acc.get("firing_rate") or []}
    rows = []
    for k in rec.order:
        hw, ideal = float(np.mean(sim_act[k])), float(np.mean(ideal_act[k]))
        old = before.get(k, {})
        rows.append({"layer": k, "ideal_rate": ideal, "hardware_rate": hw,
                     "drift": hw - ideal, "ratio": hw / ideal if ideal else None,
                     "hardware_rate_all": hw_all.get(k),
                     "ideal_rate_float_forward": old.get("ideal_rate"),
                     "hardware_rate_first_chip": old.get("hardware_rate")})
    acc["firing_rate"] = rows


def _compare_with_ideal(result: MapResult, ideal: MapResult, sim: dict[str, Any]) -> None:
    """Put the ideal-activity costs next to the simulated ones (in place): summary
    ``energy_ideal_activity_pj`` / ``latency_ideal_activity_ns`` and ``energy_change`` (relative),
    and per synaptic row of ``layers`` ``energy_ideal_activity_pj``,
    ``output_spike_rate_ideal`` (the same rows' inputs through the ideal network,
    :func:`ideal_activity`),
    ``firing_rate_drift`` / ``firing_rate_ratio`` (simulated against it) and the simulator's own
    crossbar counts per sample (``sim_reads``, ``sim_zero_reads``, ``sim_active_rows``)."""
    s, si = result.summary, ideal.summary
    s["energy_ideal_activity_pj"] = float(si["energy_pj"])
    s["latency_ideal_activity_ns"] = float(si["latency_ns"])
    s["energy_change"] = (float(s["energy_pj"]) / float(si["energy_pj"]) - 1.0
                          if si["energy_pj"] else None)
    lay, lay_i = result.layers, ideal.layers.set_index("layer")
    lay["energy_ideal_activity_pj"] = lay["layer"].map(lay_i["energy_pj"])
    if "output_spike_rate" in lay:
        lay["output_spike_rate_ideal"] = lay["layer"].map(lay_i["output_spike_rate"])
        lay["firing_rate_drift"] = lay["output_spike_rate"] - lay["output_spike_rate_ideal"]
        lay["firing_rate_ratio"] = lay["output_spike_rate"] / lay["output_spike_rate_ideal"]
    reads = sim["accuracy"].get("reads_per_sample") or {}
    for col, key in (("sim_reads", "reads_per_sample"), ("sim_zero_reads", "zero_reads_per_sample"),
                     ("sim_active_rows", "active_rows_per_sample")):
        lay[col] = lay["layer"].map({k: v[key] for k, v in reads.items()})
