"""Training recipes: build the network for a data set, then train or distil it.

:func:`run_recipe` is the one orchestration that ``codesign train``, the closed loop and the
sweep call: seed, build (from a preset/spec or a checkpoint), train with cross-entropy or
distil from a teacher (directly, from an assistant, or multi-stage), and describe the result
for the checkpoint. :func:`distill_plan` validates the distillation settings and
:func:`load_teacher` enforces the teacher-split policy.

Quantization-aware fine-tuning starts from a floating-point checkpoint (``init``): the
architecture, T and neuron come from it, the new bit-widths from the caller; every weight and
batch-norm statistic is copied and the quantizer steps are LSQ-initialised from the copied
(BN-folded) weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from codesign.data import DataSplit
from codesign.errors import CodesignError
from codesign.snn.checkpoint import STEP_KEYS, load_checkpoint, read_checkpoint
from codesign.snn.model import SpikingNet
from codesign.snn.zoo import build_model
from codesign.train.distill import check_compatible, distill, multi_stage_distill, parse_methods
from codesign.train.loop import MAX_SEED, TrainConfig, TrainResult, fit


def data_overrides(data: DataSplit) -> dict[str, Any]:
    """Spec entries that the data fixes: input channels, image size, classes, encoding."""
    c, h, w = data.input_shape
    if h != w:
        raise CodesignError(f"data {data.name}: non-square inputs {h}x{w} are not supported")
    out: dict[str, Any] = {"in_channels": c, "image_size": h, "num_classes": data.num_classes}
    if data.kind == "events":
        out["encoding"] = "events"
    return out


def prepare_model(model: Union[str, dict, Path, None], data: DataSplit, *,
                  init: Optional[Union[str, Path]] = None, **overrides: Any) -> SpikingNet:
    """Network for ``data``: from ``model`` (preset, YAML or spec) or from checkpoint ``init``.

    ``overrides`` are spec entries (``T``, ``encoding``, ``neuron``, ``quant`` dicts); ``None``
    values are ignored.
    """
    fixed = data_overrides(data)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if init is None:
        if model is None:
            raise CodesignError("train: give --model or --init")
        net = build_model(model, **fixed, **overrides)
        _check_events_T(net, data)
        return net
    blob = read_checkpoint(init)
    spec = dict(blob["spec"])
    if model is not None and isinstance(model, str) and spec.get("name") not in (None, model):
        raise CodesignError(
            f"{init}: checkpoint holds model {spec.get('name')!r}, not --model {model!r}"
        )
    for key in ("in_channels", "image_size", "num_classes"):
        if spec[key] != fixed[key]:
            raise CodesignError(
                f"{init}: checkpoint expects {key}={spec[key]}, data {data.name} has {fixed[key]}"
            )
    net = build_model(spec, **overrides)
    _copy_weights(net, blob["state_dict"], str(init))
    net.calibrate_quantizers()
    _check_events_T(net, data)
    return net


def _check_events_T(net: SpikingNet, data: DataSplit) -> None:
    if data.kind == "events" and data.x_train.shape[1] < net.T:
        raise CodesignError(
            f"--T {net.T}: data {data.name} has only {data.x_train.shape[1]} frames per sample"
        )


def _copy_weights(net: SpikingNet, state: dict[str, torch.Tensor], origin: str) -> None:
    """Copy every tensor of ``state`` that the new network has; quantizer steps may be new."""
    own = net.state_dict()
    for k, v in own.items():
        if k not in state:
            if k.endswith(STEP_KEYS):
                continue
            raise CodesignError(f"{origin}: checkpoint lacks tensor {k!r} that the model needs")
        if tuple(state[k].shape) != tuple(v.shape):
            if k.endswith("wq.scale"):
                continue
            raise CodesignError(
                f"{origin}: tensor {k!r} has shape {tuple(state[k].shape)}, "
                f"expected {tuple(v.shape)}"
            )
        own[k] = state[k]
    net.load_state_dict(own)


# --- training orchestration: one recipe for the CLI, the closed loop and the sweep -----------

DISTILL_DEFAULTS: dict[str, float] = {"alpha": 0.5, "beta": 1.0, "gamma": 0.5, "tau": 4.0}


def seed_everything(seed: int) -> None:
    """Seed every generator a network build or a training run draws from (torch on the CPU
    and every CUDA device, numpy's legacy global generator, Python's ``random``), so that the
    same seed gives the same initial weights, connectors and batches, bit for bit on the same
    machine and library versions. On CUDA, cuDNN is also told to pick deterministic kernels
    (no autotuning); a few other CUDA kernels stay non-deterministic, so bit-identical runs are
    guaranteed (and tested) on the CPU."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise CodesignError(f"--seed {seed}: expected an integer 0..{MAX_SEED}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CUDA generators too
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


@dataclass
class DistillPlan:
    """A validated distillation set-up: the teacher checkpoint, the keyword arguments of
    :func:`codesign.train.distill.make_distill_loss`, and the optional assistant (an already
    trained checkpoint, or a preset/spec to train from the teacher first: multi-stage)."""

    teacher: Path
    loss_kwargs: dict[str, Any]
    assistant: Optional[Path] = None
    assistant_model: Optional[Union[str, dict, Path]] = None


def distill_plan(teacher: Optional[Union[str, Path]], methods: Optional[str] = None,
                 loss: str = "mean", *, assistant: Optional[Union[str, Path]] = None,
                 assistant_model: Optional[Union[str, dict, Path]] = None,
                 alpha: Optional[float] = None, beta: Optional[float] = None,
                 gamma: Optional[float] = None, tau: Optional[float] = None,
                 md_layers: Optional[str] = None, md_distance: Optional[str] = None
                 ) -> Optional[DistillPlan]:
    """Validated distillation plan, or ``None`` without a teacher.

    Distillation settings given without a teacher are refused (they would silently do
    nothing); unset weights take :data:`DISTILL_DEFAULTS`; ``methods`` defaults to ``logit``;
    ``loss`` (the CE mode) is passed on except with ``temporal``, which always uses per-step CE.
    """
    given = {"alpha": alpha, "beta": beta, "gamma": gamma, "tau": tau, "md_layers": md_layers,
             "md_distance": md_distance}
    if teacher is None:
        used = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        used += ["--distill"] if methods is not None else []
        used += ["--assistant"] if assistant is not None else []
        used += ["--assistant-model"] if assistant_model is not None else []
        if used:
            raise CodesignError(f"{', '.join(used)} need --teacher PATH")
        return None
    if assistant is not None and assistant_model is not None:
        raise CodesignError("give --assistant PATH or --assistant-model NAME, not both")
    kw: dict[str, Any] = {"methods": parse_methods(methods or "logit")}
    for key, default in DISTILL_DEFAULTS.items():
        kw[key] = default if given[key] is None else given[key]
    if md_layers is not None:
        kw["md_layers"] = [n.strip() for n in md_layers.split(",") if n.strip()]
    if md_distance is not None:
        kw["md_distance"] = md_distance
    if "temporal" not in kw["methods"]:
        kw["ce_mode"] = loss
    return DistillPlan(Path(teacher), kw, Path(assistant) if assistant is not None else None,
                       assistant_model)


def load_teacher(path: Union[str, Path], data: DataSplit, split_seed: int,
                 what: str = "teacher") -> tuple[SpikingNet, dict]:
    """Load a teacher (or assistant) checkpoint, enforcing the teacher-split policy: a teacher
    trained on other data, or on another split of the same data, is refused, because its soft
    labels would carry what it learnt from this split's test images into the student."""
    net, meta = load_checkpoint(path)
    ds, ss = meta.get("dataset"), meta.get("split_seed")
    if ds is not None and ds != data.name:
        raise CodesignError(f"--{what} {path}: trained on {ds}, not on {data.name}")
    if ss is not None and ss != split_seed:
        raise CodesignError(
            f"--{what} {path}: trained with --split-seed {ss}, not {split_seed}; its soft labels "
            "would leak this split's test images"
        )
    return net, meta


@dataclass
class RecipeOutcome:
    """What :func:`run_recipe` trained: the network (best-validation weights), the result,
    the checkpoint metadata block, and for multi-stage the trained assistant and its metadata
    (to be saved at the ``assistant_path`` recorded in ``meta``)."""

    net: SpikingNet
    result: TrainResult
    meta: dict[str, Any]
    assistant: Optional[tuple[SpikingNet, dict[str, Any]]] = None


def run_recipe(model: Union[str, dict, Path, None], data: DataSplit, cfg: TrainConfig, *,
               init: Optional[Union[str, Path]] = None,
               overrides: Optional[dict[str, Any]] = None,
               distill_with: Optional[DistillPlan] = None, split_seed: int = 0,
               assistant_path: Optional[Path] = None, progress: bool = True) -> RecipeOutcome:
    """Build, train (or distil) and describe one network: the whole of ``codesign train``.

    1. every generator is seeded with ``cfg.seed`` *before* the network is built, so the same
       call gives bit-identical weights;
    2. the network comes from ``model`` or checkpoint ``init`` (:func:`prepare_model`, with
       ``overrides``: ``T``, ``encoding``, ``neuron``, ``quant``);
    3. without ``distill_with`` it is trained with cross-entropy (:func:`fit`); with it, it is
       distilled from the teacher (teacher-split policy: :func:`load_teacher`), directly,
       from an already trained assistant, or multi-stage through an assistant built from
       ``distill_with.assistant_model`` with the same ``overrides`` (then ``assistant_path`` is
       where the caller saves it, recorded in the metadata).
    """
    cfg.validate()
    seed_everything(cfg.seed)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    net = prepare_model(model, data, init=init, **overrides)
    name = net.spec.get("name", "model")
    distill_meta: Optional[dict[str, Any]] = None
    assistant_out: Optional[tuple[SpikingNet, dict[str, Any]]] = None
    xs = (data.x_train, data.y_train, data.x_test, data.y_test)
    if distill_with is None:
        result = fit(net, *xs, cfg, progress=progress, label=f"train {name}")
    else:
        plan = distill_with
        t_net, t_meta = load_teacher(plan.teacher, data, split_seed, "teacher")
        check_compatible(t_net, net)
        distill_meta = {"teacher": str(plan.teacher), "teacher_model": t_net.spec.get("name"),
                        "teacher_test_accuracy": t_meta.get("test_accuracy")}
        if plan.assistant_model is not None:
            if assistant_path is None:
                raise CodesignError("multi-stage distillation needs a path for the assistant")
            a_net = prepare_model(plan.assistant_model, data, **overrides_for_assistant(overrides))
            check_compatible(t_net, a_net)
            res = multi_stage_distill(t_net, a_net, net, *xs, cfg, progress=progress,
                                      **plan.loss_kwargs)
            a_meta = {"dataset": data.name, "split_seed": split_seed,
                      "test_accuracy": res.assistant.test_accuracy,
                      "val_accuracy": res.assistant.best_val_accuracy,
                      "train_config": res.assistant.config,
                      "distillation": {**distill_meta, **res.assistant_settings}}
            assistant_out = (a_net, a_meta)
            distill_meta.update(res.student_settings)
            distill_meta["assistant"] = {"path": str(assistant_path),
                                         "model": a_net.spec.get("name"),
                                         "test_accuracy": res.assistant.test_accuracy,
                                         "trained": True}
            result = res.student
        else:
            source = t_net
            if plan.assistant is not None:
                source, a_meta = load_teacher(plan.assistant, data, split_seed, "assistant")
                check_compatible(t_net, source, "assistant")
                distill_meta["assistant"] = {"path": str(plan.assistant),
                                             "model": source.spec.get("name"),
                                             "test_accuracy": a_meta.get("test_accuracy"),
                                             "trained": False}
            result, loss_fn = distill(source, net, *xs, cfg, progress=progress,
                                      label=f"distill {name}", **plan.loss_kwargs)
            distill_meta.update(loss_fn.settings.to_dict())
    meta = {
        "dataset": data.name, "data_meta": data.meta, "split_seed": split_seed,
        "test_accuracy": result.test_accuracy, "val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch, "train_config": result.config,
        "history": result.history, "train_seconds": round(result.seconds, 1),
        "init": str(init) if init else None, "distillation": distill_meta,
    }
    return RecipeOutcome(net, result, meta, assistant_out)


def overrides_for_assistant(overrides: dict[str, Any]) -> dict[str, Any]:
    """The assistant shares the student's T, encoding and neuron, never its bit-widths."""
    return {k: v for k, v in overrides.items() if k in ("T", "encoding", "neuron")}
