"""Evaluate one sweep point: post-training quantization, ideal-quantized accuracy, cost.

:func:`evaluate_point` is the one function a worker runs; when the crossbar simulator and the
closed loop land, the accuracy step becomes "simulate on ``chips`` non-ideal chips" and a
retraining step goes before it, behind the same signature.

Steps for a point (all on the CPU, one torch thread, deterministic):

1. **Post-training quantization.** The checkpoint's network is rebuilt with the point's
   ``wbits`` (hidden layers; first conv / readout at ``first_bits`` / ``last_bits``, 8 bits by
   default) and ``ubits`` (membrane register); every weight and batch-norm statistic is copied
   and every LSQ step is re-initialised for the new grid as LSQ prescribes,
   ``s = 2 mean|w| / sqrt(Q)`` with ``Q = 2^(b-1) - 1`` on the BN-folded weights (at least
   ``theta / (2^(ubits-1) - 1)`` so the threshold fits the membrane register), by
   :func:`codesign.train.recipe.prepare_model`. No retraining.
2. **Accuracy.** Without ``nonideal`` (``accuracy_kind = "ideal_quantized"``): top-1 accuracy
   of the fake-quantized network (integer weight and membrane grids, ideal arithmetic) on
   ``samples`` test samples drawn with ``seed`` (all when ``None``), with a 95 % Wilson score
   interval over those samples (binomial: the only randomness an ideal evaluation has is which
   test samples were drawn). With ``nonideal`` (``accuracy_kind = "hardware"``): the mean
   accuracy over ``chips`` simulated chips of the spec's crossbars at the point's ADC bits
   (:func:`codesign.sim.accuracy.simulate`, same samples, chip seeds from ``seed``), with its
   Student-t 95 % interval over chips (degenerate for one chip); ``accuracy_ideal`` keeps the
   ideal quantized accuracy on the same samples.
3. **Cost.** Spike activity measured on ``activity_samples`` test samples (seed ``seed``) by
   :func:`codesign.sim.activity.measure_activity`, then :func:`codesign.mapflow.map_model` of
   *that same quantized network* with the point's ``adc_bits``: each layer is costed at its own
   bits, read from the network (hidden layers ``wbits``, first conv and readout
   ``first_bits``/``last_bits``, every membrane ``ubits``), so the cost is that of the network
   whose accuracy was scored (forcing ``wbits`` on every layer would charge a W2 first conv
   that the scored network does not have).
   The firing rate is spikes / (neurons x steps x samples) over every LIF layer. Without
   ``nonideal`` the activity is the ideal quantized network's (``cost_activity =
   "ideal_quantized"``). With ``nonideal`` the point is costed by the same call as
   ``codesign map --chips``: :func:`codesign.mapflow.map_model` with ``hardware`` runs the
   chips (the accuracy of step 2 is that run's) and charges *their* spikes, a uniform
   reservoir of ``activity_samples`` (sample, chip) rows (:mod:`codesign.sim.record`;
   ``cost_activity = "simulated"``, ``firing_rate`` the chips' rate,
   ``energy_ideal_activity_pj`` the ideal network's activity on the same rows);
   ``firing_rate_ideal`` is always the ideal quantized network's rate.

The model and hardware files are re-hashed first, and the worker's code version
(:mod:`codesign.sweep.version`) compared with the point's: a worker that sees different bytes
or runs other code than the driver planned with refuses the point (:class:`CodesignError`)
instead of storing a wrong result.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Optional

from codesign.errors import CodesignError
from codesign.sweep.point import SweepPoint, file_sha256_cached, npz_path
from codesign.sweep.version import check_code_version
from codesign.threads import intra_op_threads

ACCURACY_KIND = "ideal_quantized"
Z95 = 1.959963984540054
"""Two-sided 95 % standard normal quantile."""


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``correct / n`` (fractions in [0, 1]):

    ``(p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``."""
    if n <= 0:
        return float("nan"), float("nan")
    p = correct / n
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom)


@lru_cache(maxsize=4)
def _dataset(name: str, split_seed: int, T: int, upsample: int):
    from codesign.data import load_dataset

    options = {"upsample": upsample} if upsample else {}
    return load_dataset(name, split_seed=split_seed, T=T, **options)


@lru_cache(maxsize=8)
def _spec(path: str, sha256: str):
    """The hardware spec of ``path`` parsed once per worker (``sha256``: its checked bytes, so
    a rewritten file is parsed again); parsing the YAML was ~9 % of a point's time."""
    from codesign.mapflow import load_hw

    return load_hw(path)


def point_spec(point: SweepPoint) -> Any:
    """The point's :class:`~codesign.hw.spec.HardwareSpec` (cached per worker)."""
    return _spec(point.hw, point.hw_sha256)


def _check_files(point: SweepPoint) -> None:
    check_code_version(point.code_version)
    files = [("model", point.model, point.model_sha256), ("hw", point.hw, point.hw_sha256)]
    if point.retrain and point.teacher is not None:
        files.append(("teacher", point.teacher, point.teacher_sha256))
    npz = npz_path(point.data)
    if npz is not None and point.data_sha256 is not None:
        files.append(("npz data", str(npz), point.data_sha256))
    for what, path, want in files:
        if file_sha256_cached(path) != want:
            raise CodesignError(f"{path}: the {what} file changed since the sweep was planned "
                                f"(sha256 differs); start the sweep again")


def evaluate_point(point: SweepPoint) -> dict[str, Any]:
    """The result of one point (see the module docstring): a dict of JSON values."""

    _check_files(point)
    return single_threaded(_evaluate, point)


def single_threaded(fn: Any, point: SweepPoint) -> dict[str, Any]:
    """``fn(point)`` with torch on one thread (workers of a pool share the cores), restored
    afterwards."""
    with intra_op_threads(1):
        return fn(point)


def point_data(point: SweepPoint) -> tuple[dict[str, Any], Any]:
    """The checkpoint's spec and the point's data split (digits upsampled to the model's
    image size, as ``codesign map`` does)."""
    from codesign.snn.checkpoint import read_checkpoint

    spec = read_checkpoint(point.model)["spec"]
    size = int(spec.get("image_size", 0))
    upsample = size if point.data == "digits" and size not in (0, 8) else 0
    return spec, _dataset(point.data, point.split_seed, int(spec["T"]), upsample)


def _quant(point: SweepPoint) -> dict[str, Any]:
    quant: dict[str, Any] = {"wbits": point.wbits, "ubits": point.ubits}
    if point.first_bits is not None:
        quant["first_bits"] = point.first_bits
    if point.last_bits is not None:
        quant["last_bits"] = point.last_bits
    return quant


def score(net: Any, point: SweepPoint, data: Any,
          sim: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Step 2 of the module docstring: the accuracy columns of ``net`` at ``point``; ``sim``:
    the result of :func:`codesign.sim.accuracy.simulate` already run for this network and
    point (by :func:`codesign.mapflow.map_model`), else it is run here."""
    from codesign.sim.activity import select_samples
    from codesign.train.loop import predict_logits

    idx = select_samples(len(data.y_test), point.samples, point.seed)
    x, y = data.x_test[idx], data.y_test[idx]
    logits = predict_logits(net, x, batch_size=250)
    correct = int((logits.mean(0).argmax(-1) == y).sum())
    n = int(len(y))
    lo, hi = wilson_interval(correct, n)
    acc: dict[str, Any] = {"accuracy_kind": ACCURACY_KIND, "accuracy": correct / n,
                           "accuracy_ci_lo": lo, "accuracy_ci_hi": hi,
                           "accuracy_interval": "wilson95_over_test_samples",
                           "accuracy_ideal": correct / n, "accuracy_samples": n,
                           "correct": correct}
    if point.nonideal is not None:
        if sim is None:
            from codesign.sim.accuracy import simulate

            sim = simulate(net, point_spec(point), data.x_test, data.y_test, chips=point.chips,
                           nonideal=point.nonideal, adc_bits=point.adc_bits, seed=point.seed,
                           samples=point.samples)
        hw = sim["hardware"]
        acc.update({"accuracy_kind": "hardware", "accuracy": hw["mean"] / 100,
                    "accuracy_ci_lo": hw["ci95"][0] / 100, "accuracy_ci_hi": hw["ci95"][1] / 100,
                    "accuracy_interval": "student_t95_over_chips",
                    "accuracy_ideal_sim": sim["ideal_quantized"] / 100,
                    "chips": hw["chips"], "accuracy_per_chip": [a / 100 for a in hw["per_chip"]],
                    "chip_seeds": sim["chip_seeds"], "nonideal_simulated": sim["nonideal"]})
    return acc


def loop_config(point: SweepPoint) -> Any:
    """The :class:`codesign.loop.LoopConfig` of a retrained point (module docstring, 1b)."""
    from codesign.loop import LoopConfig

    return LoopConfig(tolerance=point.retrain_tolerance,
                      budget_epochs=point.retrain_budget_epochs, methods=point.retrain_methods,
                      hardware=point.retrain_hardware, chips=point.chips,
                      eval_chips=point.chips, nonideal=point.nonideal or "none",
                      adc_bits=point.adc_bits, seed=point.seed,
                      train_samples=point.retrain_train_samples,
                      val_samples=point.retrain_val_samples, test_samples=point.samples,
                      energy_samples=point.activity_samples,
                      ir_refresh=point.retrain_ir_refresh)


def retrain(net: Any, point: SweepPoint, data: Any) -> tuple[Any, dict[str, Any]]:
    """Step 1b: ``(kept network, loop summary)`` of the closed loop on the PTQ ``net``."""
    from codesign.loop import close_loop
    from codesign.snn.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint

    folder = point.retrain_dir
    if folder is None:
        raise CodesignError("sweep point: retrain needs its sweep folder (workdir)")
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "loop.json"
    reused = done.is_file() and (folder / "retrained.pt").is_file()
    if not reused:
        meta = {k: v for k, v in read_checkpoint(point.model)["meta"].items()
                if k != "codesign_version"}
        meta.update(init=point.model, split_seed=point.split_seed,
                    ptq={**_quant(point), "sweep_key": point.key})
        save_checkpoint(folder / "student.pt", net, meta)
        close_loop(folder / "student.pt", point_spec(point), data, folder, loop_config(point),
                   teacher_path=point.teacher, split_seed=point.split_seed)
    from codesign.sweep.store import read_json

    res = read_json(done)
    kept, _ = load_checkpoint(folder / "retrained.pt")
    summary = {"retrain_best_round": res["best_round"], "retrain_rounds": len(res["rounds"]) - 1,
               "retrain_recovered": res["recovered"], "retrain_stop": res["stop_reason"],
               "retrain_reference": res["reference"] / 100,
               "retrain_heldout_before": res["before"]["hardware"] / 100,
               "retrain_heldout_after": res["after"]["hardware"] / 100,
               "retrain_regressed": res["regressed"], "retrain_message": res["message"],
               "retrain_resumed": reused,
               "retrain_dir": f"retrain/{point.key}"}
    return kept.eval(), summary


def _evaluate(point: SweepPoint) -> dict[str, Any]:
    import numpy as np
    import torch

    from codesign.mapflow import map_model
    from codesign.sim.activity import SPIKES, measure_activity
    from codesign.train.recipe import prepare_model

    spec, data = point_data(point)
    torch.manual_seed(point.seed)
    net = prepare_model(None, data, init=point.model, quant=_quant(point)).eval()
    extra: dict[str, Any] = {"retrained": bool(point.retrain)}
    if point.retrain:
        before = score(net, point, data)
        net, summary = retrain(net, point, data)
        extra.update(summary, accuracy_before=before["accuracy"],
                     accuracy_ideal_before=before["accuracy_ideal"])
    activity = measure_activity(net, data.x_test, max_samples=point.activity_samples,
                                seed=point.seed)
    spikes = {k: a for k, a in activity.items() if activity.meta["kinds"].get(k) == SPIKES}
    n_sites = float(sum(a.size for a in spikes.values()))
    rate_ideal = (float(sum(int(np.count_nonzero(a)) for a in spikes.values())) / n_sites
                  if n_sites else float("nan"))
    sim = None
    if point.nonideal is None:
        result = map_model(net, point_spec(point), activity=activity, mapping=point.mapping,
                           adc_bits=point.adc_bits)
        rate, cost_activity = rate_ideal, "ideal_quantized"
        act_n = int(activity.meta.get("samples", point.activity_samples))
    else:  # one mechanism with `codesign map --chips`: simulate, cost the chips' spikes
        result = map_model(net, point_spec(point), data=data, samples=point.activity_samples,
                           seed=point.seed, mapping=point.mapping, adc_bits=point.adc_bits,
                           hardware={"chips": point.chips, "nonideal": point.nonideal,
                                     "samples": point.samples})
        sim = result.summary["accuracy"]
        hw_rates = {r["layer"]: r["hardware_rate"] for r in sim.get("firing_rate") or []}
        rate = (sum(hw_rates[k] * a.size for k, a in spikes.items()) / n_sites
                if n_sites and set(spikes) <= set(hw_rates) else float("nan"))
        cost_activity = "simulated"
        act_n = int(result.summary["inputs"]["samples"])  # (sample, chip) rows kept
        extra.update(energy_ideal_activity_pj=float(result.summary["energy_ideal_activity_pj"]),
                     energy_change=result.summary.get("energy_change"))
    acc = score(net, point, data, sim=sim)
    n, correct = acc.pop("accuracy_samples"), acc.pop("correct")
    s = result.summary
    adc_used = result.layers["adc_bits"].dropna()
    syns = [syn for _, syn in net.synapses()]
    return {
        **acc,
        **extra,
        "accuracy_samples": n,
        "correct": correct,
        "adc_bits_used": int(adc_used.max()) if len(adc_used) else None,
        "first_bits": syns[0].wbits,
        "last_bits": syns[-1].wbits,
        "energy_pj": float(s["energy_pj"]),
        "latency_ns": float(s["latency_ns"]),
        "area_um2": float(s["area_um2"]),
        "area_mm2": float(s["area_mm2"]),
        "edap_pj_ns_mm2": float(s["edap_pj_ns_mm2"]),
        "tops_per_w": float(s["tops_per_w"]),
        "tops_per_mm2": float(s["tops_per_mm2"]),
        "firing_rate": rate,
        "firing_rate_ideal": rate_ideal,
        "cost_activity": cost_activity,
        "activity_samples": act_n,
        "crossbars": int(s["crossbars"]),
        "spec_name": s.get("spec_name"),
        "notes": list(s.get("notes", [])),
    }
