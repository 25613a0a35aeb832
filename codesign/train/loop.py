"""One training loop for every codesign network: float, quantization-aware, distilled.

Mini-batch gradient descent (Adam or SGD with momentum) on a cosine learning-rate schedule.
The loss is pluggable: by default cross-entropy on the mean logits over steps (``"mean"``,
rate decoding) or the mean over steps of the per-step cross-entropy (``"per_step"``, as in
TET/MINT); distillation passes its own :class:`LossFn`. The model selected is the one with the
best accuracy on a validation split carved (stratified, seeded) out of the training set; the
test split is only evaluated, never used for selection. Every random draw (init, shuffling,
augmentation, Poisson encoding) follows ``seed``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Optional, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from codesign.errors import CodesignError
from codesign.snn.layers import freeze_batchnorm, one_conv_batchnorm
from codesign.train.progress import Reporter

LOSS_MODES = ("mean", "per_step")
MAX_EPOCHS = 100_000
MAX_SEED = 2**32 - 1  # numpy's default_rng and torch.manual_seed both accept 0..2**32-1
OPTIMIZERS = ("adam", "sgd")


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit` (all recorded in the checkpoint metadata)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    seed: int = 0
    device: str = "auto"
    loss: str = "mean"
    val_fraction: float = 0.1
    augment_shift_px: int = 2  # applied to static images of 16 px and larger
    eval_batch_size: int = 500
    freeze_bn_after: Optional[int] = None
    """Quantization-aware training: fold BN with the batch statistics for this many epochs,
    then with the frozen running statistics (``codesign.snn.layers.freeze_batchnorm``: one
    convolution per layer instead of two, training forward = deployed forward). ``0``: frozen
    from the first step; ``None`` (default): batch statistics throughout."""
    bn_one_conv: bool = False
    """Quantization-aware training: while BN is not frozen, fold it with the one-convolution
    approximation of PyTorch's ``ConvBn2d`` (``codesign.snn.layers.one_conv_batchnorm``:
    batch statistics of the rescaled quantized product, one convolution per layer) instead of
    the default two-convolution fold (batch statistics of the float product). The eval and
    deployed function is the same; the training function is not (Python API only). Faster
    (one convolution and its backward fewer per layer) but, measured on vgg-small QAT from the
    FP teacher (``reports/bn-fold/``, mnist5k, 3 seeds), 14 points less accurate at W2/U2 and
    within the seed scatter at W4/U4 and W3/U3."""

    def validate(self) -> None:
        """Refuse values that cannot train: each error names the flag and what was expected."""
        if self.epochs <= 0:
            raise CodesignError(f"--epochs {self.epochs}: expected a positive integer")
        if self.epochs > MAX_EPOCHS:
            raise CodesignError(f"--epochs {self.epochs}: expected at most {MAX_EPOCHS}")
        if self.batch_size <= 0:
            raise CodesignError(f"--batch-size {self.batch_size}: expected a positive integer")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise CodesignError(f"--lr {self.lr}: expected a finite learning rate > 0")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise CodesignError(
                f"--weight-decay {self.weight_decay}: expected a finite number >= 0"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise CodesignError(f"momentum {self.momentum}: expected 0 <= momentum < 1")
        if isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise CodesignError(f"--seed {self.seed}: expected an integer 0..{MAX_SEED}")
        if self.optimizer not in OPTIMIZERS:
            raise CodesignError(f"--optimizer {self.optimizer!r}: expected one of {OPTIMIZERS}")
        if self.loss not in LOSS_MODES:
            raise CodesignError(f"--loss {self.loss!r}: expected one of {LOSS_MODES}")
        fba = self.freeze_bn_after
        if fba is not None and (isinstance(fba, bool) or not isinstance(fba, int) or fba < 0):
            raise CodesignError(
                f"--freeze-bn-after {fba}: expected an integer number of epochs >= 0"
            )
        if not isinstance(self.bn_one_conv, bool):
            raise CodesignError(f"bn_one_conv {self.bn_one_conv!r}: expected true or false")
        if not 0.0 <= self.val_fraction < 1.0:
            raise CodesignError(f"val_fraction {self.val_fraction}: expected 0 <= f < 1")


class LossFn(Protocol):
    """``(model, x, y) -> (loss, parts)``: runs the forward pass itself and returns the scalar
    loss with a dict of named float components for logging."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, float]]: ...


def ce_from_logits(logits: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    """Cross-entropy of per-step logits ``(T, B, K)``: on their mean, or averaged over steps."""
    if mode == "per_step":
        t = logits.shape[0]
        return F.cross_entropy(logits.flatten(0, 1), y.repeat(t))
    return F.cross_entropy(logits.mean(0), y)


def ce_loss(mode: str = "mean") -> LossFn:
    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        value = ce_from_logits(model(x), y, mode)
        return value, {"ce": float(value.detach())}

    return loss


@dataclass
class TrainResult:
    best_val_accuracy: float
    best_epoch: int
    test_accuracy: float
    history: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CodesignError(f"--device {name}: CUDA is not available on this machine")
    if name != "cpu" and not name.startswith("cuda"):
        raise CodesignError(f"--device {name!r}: expected auto, cpu or cuda[:N]")
    return torch.device(name)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, steps: Optional[int] = None,
                   batch_size: int = 500, device: Optional[torch.device] = None) -> torch.Tensor:
    """Per-step logits ``(T, N, K)`` for a whole data tensor, in eval mode, batch by batch."""
    was = model.training
    model.eval()
    device = device or next(model.parameters()).device
    outs = [model(x[i:i + batch_size].to(device), steps).cpu()
            for i in range(0, len(x), batch_size)]
    model.train(was)
    return torch.cat(outs, dim=1)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of the mean logits ``(T, N, K)`` over steps, in [0, 1]."""
    return float((logits.mean(0).argmax(-1) == y).float().mean())


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: Optional[int] = None,
             batch_size: int = 500, device: Optional[torch.device] = None) -> float:
    """Top-1 accuracy in [0, 1] with the first ``steps`` steps (all ``T`` when None)."""
    return accuracy(predict_logits(model, x, steps=steps, batch_size=batch_size, device=device), y)


def stratified_holdout(y: torch.Tensor, fraction: float, seed: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` with ``fraction`` of every class held out, seeded."""
    rng = np.random.default_rng(seed)
    labels = y.numpy()
    val: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        val.extend(idx[: int(round(fraction * len(idx)))].tolist())
    val_idx = np.sort(np.array(val, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def random_shift(x: torch.Tensor, max_px: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_px`` pixels (zero fill), the usual MNIST augmentation."""
    if max_px <= 0:
        return x
    b = x.shape[0]
    pad = F.pad(x, (max_px, max_px, max_px, max_px))
    dx = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    h, w = x.shape[-2:]
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (B, H)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (B, W)
    lead = pad.shape[1:-2]
    idx_r = rows.view(b, *([1] * len(lead)), h, 1).expand(b, *lead, h, pad.shape[-1])
    pad = torch.gather(pad, -2, idx_r)
    idx_c = cols.view(b, *([1] * len(lead)), 1, w).expand(b, *lead, h, w)
    return torch.gather(pad, -1, idx_c)


def fit(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
        y_test: torch.Tensor, cfg: TrainConfig, *, loss_fn: Optional[LossFn] = None,
        progress: bool = True, label: str = "train",
        after_epoch: Optional[Callable[[nn.Module, dict], None]] = None,
        extra_params: Optional[Iterable[nn.Parameter]] = None) -> TrainResult:
    """Train ``model`` in place; on return it holds the best-validation weights.

    ``extra_params`` are optimised with the model's (e.g. distillation connectors); they are
    not part of the model and are not restored to their best-validation values.
    """
    cfg.validate()
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    model.to(device)
    loss_fn = loss_fn or ce_loss(cfg.loss)
    tr_idx, val_idx = stratified_holdout(y_train, cfg.val_fraction, cfg.seed)
    x_tr, y_tr = x_train[tr_idx], y_train[tr_idx]
    x_val, y_val = (x_train[val_idx], y_train[val_idx]) if len(val_idx) else (x_test, y_test)
    params = [p for p in model.parameters() if p.requires_grad]
    params += [p for p in (extra_params or []) if p.requires_grad]
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=cfg.lr,
                                                      weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x_tr) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    static = x_tr.dim() == 4
    best = (-1.0, -1, copy.deepcopy(model.state_dict()))
    history: list[dict] = []
    start = time.perf_counter()
    reporter = Reporter(label, cfg.epochs * steps_per_epoch, enabled=progress)
    with reporter:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            if cfg.bn_one_conv:
                one_conv_batchnorm(model)
            if cfg.freeze_bn_after is not None and epoch > cfg.freeze_bn_after:
                freeze_batchnorm(model)
            perm = torch.randperm(len(x_tr), generator=gen)
            sums: dict[str, float] = {}
            for i in range(0, len(perm), cfg.batch_size):
                idx = perm[i:i + cfg.batch_size]
                xb = x_tr[idx]
                if static and cfg.augment_shift_px and xb.shape[-1] >= 16:
                    xb = random_shift(xb, cfg.augment_shift_px, gen)
                xb, yb = xb.to(device), y_tr[idx].to(device)
                loss, parts = loss_fn(model, xb, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
                reporter.advance()
            val_acc = evaluate(model, x_val, y_val, batch_size=cfg.eval_batch_size, device=device)
            row = {"epoch": epoch, "val_accuracy": val_acc,
                   **{k: v / len(x_tr) for k, v in sums.items()}}
            history.append(row)
            reporter.log(f"{label} epoch {epoch}/{cfg.epochs} "
                         + " ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch"))
            if val_acc > best[0]:
                best = (val_acc, epoch, copy.deepcopy(model.state_dict()))
            if after_epoch is not None:
                after_epoch(model, row)
    if cfg.freeze_bn_after is not None:
        freeze_batchnorm(model, False)  # the flag belongs to this run, not to the model
    if cfg.bn_one_conv:
        one_conv_batchnorm(model, False)
    model.load_state_dict(best[2])
    test_acc = evaluate(model, x_test, y_test, batch_size=cfg.eval_batch_size, device=device)
    return TrainResult(best_val_accuracy=best[0], best_epoch=best[1], test_accuracy=test_acc,
                       history=history, config=asdict(cfg),
                       seconds=time.perf_counter() - start)
