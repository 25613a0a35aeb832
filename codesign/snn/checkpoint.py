"""One-file checkpoints: spec, weights, quantization, T, neuron parameters and metadata.

A checkpoint is a ``torch.save`` of a plain dict (loaded with ``weights_only=True``)::

    {"format": "codesign-checkpoint", "version": 1,
     "spec": {...},              # the full model spec (arch, T, neuron, quant, ...)
     "state_dict": {...},        # tensors
     "meta": {...}}              # dataset, split_seed, test_accuracy, command, codesign_version

Loading needs nothing else: the spec rebuilds the network, the state dict fills it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from codesign import __version__, params
from codesign.errors import CodesignError
from codesign.io import atomic_write_via
from codesign.snn.model import SpikingNet
from codesign.snn.zoo import build_model

FORMAT = "codesign-checkpoint"
VERSION = 1
#: Metadata read back by ``info``, ``map --data`` and the training recipes, with the type each
#: must have when present (other ``meta`` keys are free-form records).
META_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "split_seed": (int,), "test_accuracy": (int, float),
    "command": (str,), "codesign_version": (str,),
}


def atomic_torch_save(obj: Any, path: Union[str, Path]) -> None:
    """Write ``obj`` to ``path`` with ``torch.save`` through :func:`codesign.io.atomic_write_via`
    (temporary file in the same folder, fsync, atomic rename; no partial file on failure)."""
    atomic_write_via(path, lambda tmp: torch.save(obj, tmp))


STEP_KEYS = ("wq.scale", "own_scale")
"""State-dict keys of quantizer step parameters (``|s|`` is the step: ``WeightQuant.step``,
the neuron's own membrane step)."""


def save_checkpoint(path: Union[str, Path], model: SpikingNet, meta: dict) -> None:
    """Save ``model`` with its spec and ``meta`` (the codesign version is added).

    A quantizer step is stored as its magnitude: the quantizers use ``|s|`` (LSQ's step
    parameter may cross zero in training, the function does not change sign), and the loader
    refuses a step that is not positive, so the raw parameter is stored canonically."""
    state = {k: (v.detach().abs() if k.endswith(STEP_KEYS) else v.detach()).cpu()
             for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "version": VERSION, "spec": model.spec, "state_dict": state,
            "meta": {**meta, "codesign_version": __version__}}
    atomic_torch_save(blob, path)


def read_checkpoint(path: Union[str, Path]) -> dict:
    """The raw checkpoint dict, validated; bad files raise :class:`CodesignError`."""
    path = Path(path)
    if not path.is_file():
        raise CodesignError(f"{path}: checkpoint file not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CodesignError(
            f"{path}: not a readable codesign checkpoint ({exc.__class__.__name__})"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CodesignError(f"{path}: not a codesign checkpoint (missing format tag {FORMAT!r})")
    validate_blob(blob, str(path))
    return blob


def validate_blob(blob: dict, origin: str) -> None:
    """Type-check a checkpoint's contents before anything is built from them.

    ``format`` must be :data:`FORMAT`, ``version`` :data:`VERSION`; ``spec`` a mapping (a path
    string is refused, never read as a file); ``meta`` a mapping with text keys; ``state_dict``
    a mapping of text keys to tensors whose floating-point values are all finite, whose
    quantizer steps (keys ending in ``scale``) are > 0 and whose BN ``running_var`` is >= 0.
    The spec's values are checked by :func:`codesign.snn.zoo.resolve_spec` when the model is
    built; dtypes and shapes by :func:`load_state`.
    """
    if blob.get("format") != FORMAT:
        raise CodesignError(f"{origin}: format: expected {FORMAT!r}, got "
                            f"{str(blob.get('format'))[:40]!r}")
    for key in ("version", "spec", "state_dict", "meta"):
        if key not in blob:
            raise CodesignError(f"{origin}: checkpoint lacks the {key!r} entry")
    version = blob["version"]
    if isinstance(version, bool) or version != VERSION:
        raise CodesignError(f"{origin}: version: checkpoint format version {version!r} is not "
                            f"supported; expected {VERSION}")
    for key in ("spec", "meta", "state_dict"):
        v = blob[key]
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise CodesignError(f"{origin}: {key}: expected a mapping with text keys, got "
                                f"{type(v).__name__}")
    meta = blob["meta"]
    for key, types in META_TYPES.items():  # read by info, map --data and the recipes
        v = meta.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, types)):
            names = " or ".join(t.__name__ for t in types)
            raise CodesignError(f"{origin}: meta.{key}: expected {names}, got "
                                f"{type(v).__name__} {v!r:.40}")
    if meta.get("split_seed") is not None:
        params.check_int(meta["split_seed"], origin, "meta.split_seed", ge=0,
                         le=params.MAX_COUNT)
    acc = meta.get("test_accuracy")
    if acc is not None and not (math.isfinite(acc) and 0.0 <= acc <= 1.0):
        raise CodesignError(f"{origin}: meta.test_accuracy: expected a fraction in [0, 1], got "
                            f"{acc}")
    for k, v in blob["state_dict"].items():
        if not isinstance(v, torch.Tensor):
            raise CodesignError(f"{origin}: state_dict.{k}: expected a tensor, got "
                                f"{type(v).__name__}")
        if v.is_floating_point():
            a = _as_numpy(v)  # numpy: single-threaded, cheap for many small tensors
            if not np.isfinite(a).all():
                bad = int((~np.isfinite(a)).sum())
                raise CodesignError(f"{origin}: state_dict.{k}: {bad} non-finite value(s) "
                                    "(NaN/inf); expected finite weights")
            if k.endswith("scale") and a.size and not (a > 0).all():
                raise CodesignError(f"{origin}: state_dict.{k}: quantizer step "
                                    f"{float(a.min()):g}; expected every step > 0")
            if k.endswith("running_var") and a.size and not (a >= 0).all():
                raise CodesignError(f"{origin}: state_dict.{k}: negative variance; expected "
                                    ">= 0")


def _as_numpy(v: torch.Tensor) -> np.ndarray:
    t = v.detach().cpu()
    try:
        return t.numpy()
    except TypeError:  # bfloat16 and other dtypes numpy lacks
        return t.double().numpy()


def load_checkpoint(path: Union[str, Path]) -> tuple[SpikingNet, dict]:
    """Rebuild the model from a checkpoint; returns ``(model in eval mode, meta)``."""
    return model_from_blob(read_checkpoint(path), str(path))


def model_from_blob(blob: dict, origin: str) -> tuple[SpikingNet, dict]:
    """Validate a checkpoint dict (:func:`validate_blob`) and rebuild its model;
    ``origin`` names it in errors. Returns ``(model in eval mode, meta)``."""
    validate_blob(blob, origin)
    try:
        model = build_model(dict(blob["spec"]))  # a mapping (never a path: validate_blob)
    except CodesignError as exc:
        raise CodesignError(f"{origin}: bad spec in checkpoint: {exc}") from None
    load_state(model, blob["state_dict"], origin)
    return model.eval(), dict(blob["meta"])


def load_state(model: SpikingNet, state: dict, origin: str) -> None:
    """Load ``state`` into ``model``, refusing missing, unexpected or mis-shaped tensors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise CodesignError(
            f"{origin}: weights do not fit the model: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise CodesignError(f"{origin}: state_dict.{k}: expected a tensor, got "
                                f"{type(v).__name__}")
        if v.dtype != own[k].dtype:  # a float64 1e300 would become inf in float32
            raise CodesignError(f"{origin}: state_dict.{k}: dtype {v.dtype}; the model expects "
                                f"{own[k].dtype}")
        if tuple(v.shape) != tuple(own[k].shape):
            raise CodesignError(
                f"{origin}: tensor {k!r} has shape {tuple(v.shape)}; the model expects "
                f"{tuple(own[k].shape)}"
            )
    model.load_state_dict(state)
