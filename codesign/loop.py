"""The closed loop: when the hardware costs accuracy, retrain the student through the hardware.

:func:`close_loop` does, for a quantized student checkpoint, a hardware spec and a data set:

1. **Round 0**: the student's hardware accuracy on the *selection* split (a stratified,
   seeded validation split carved out of the training set; never trained on, never the test
   split) as the mean over ``chips`` simulated chips (:func:`codesign.sim.accuracy.simulate`).
   The reference is the teacher's (ideal, its own forward) accuracy on the same samples, or a
   given ``target`` (percent). The student has *recovered* when
   ``hardware >= reference - tolerance`` (points).
2. While it has not recovered and the budget (epochs, or minutes of wall time) is not spent:
   one round = one epoch of :func:`codesign.train.loop.fit` with the distillation loss of
   :func:`codesign.train.distill.make_distill_loss` (default logit KD + MD-SNN membrane
   distillation; ``methods="ce"`` is plain cross-entropy), the teacher loaded through the
   recipe's teacher-split policy (:func:`codesign.train.recipe.load_teacher`). With
   ``hardware=True`` the student's forward runs through the crossbar simulator: before every
   training batch the current weights are re-programmed as integer codes onto a *fresh* chip
   instance (its own seed: programming variation, stuck-at cells, drift, IR drop and read
   noise drawn afresh) and every synapse's product comes from that chip
   (:class:`codesign.sim.backend.CrossbarBackend`: the value is the hardware product, the
   gradient that of the ideal fake-quantized product, i.e. straight-through the ADC and the
   weight quantizers). The batch norm is frozen at its running statistics while training
   through the hardware, so that the programmed codes are exactly the weights whose gradient
   is taken. Each round restarts Adam and a cosine schedule over its one epoch (warm restarts).
   After each round the hardware accuracy on the selection split is measured again on the
   same selection chips; the best round (round 0 included) is kept as a checkpoint, written
   atomically each time it improves, so an interrupted loop keeps it.
3. **Held out**: the original and the best student are evaluated on the data's *test* split
   on ``eval_chips`` chips whose seeds training and selection never used (checked, recorded).
   If the best student is worse there than the original, the result says so
   (``regressed: true`` with a message); it is never reported silently.

Seeds: ``seed`` spawns three independent roots (``numpy.random.SeedSequence``): the selection
chips, the stream of per-batch training chips, and the held-out chips; all are recorded.
Every round is appended to ``rounds.jsonl`` in the output folder as it finishes (the file is
rewritten atomically, so a reader never sees a half line). Accuracies are percent, energies pJ.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from codesign.errors import CodesignError
from codesign.io import atomic_write_json, atomic_write_text, relative_path
from codesign.sim import network as hn
from codesign.sim.accuracy import check_chips, simulate
from codesign.sim.backend import CrossbarBackend, attach, detach
from codesign.sim.crossbar import CrossbarLayer
from codesign.sim.wire_refresh import RefreshedIRDrop, check_refresh
from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
from codesign.snn.layers import Synapse
from codesign.snn.model import SpikingNet
from codesign.train.distill import make_distill_loss, parse_methods
from codesign.train.loop import MAX_SEED, TrainConfig, ce_loss, fit, stratified_holdout
from codesign.train.recipe import DISTILL_DEFAULTS, load_teacher, seed_everything

#: Files :func:`close_loop` writes into its output folder.
LOOP_FILES = ("rounds.jsonl", "retrained.pt", "loop.json", "before_after.csv",
              "retrain_rounds.png")
DEFAULT_BUDGET_EPOCHS = 2


@dataclass
class LoopConfig:
    """Settings of :func:`close_loop` (all recorded in ``loop.json``)."""

    tolerance: float = 1.0
    """Points below the reference still counted as recovered (>= 0)."""
    target: Optional[float] = None
    """Reference accuracy in percent (default: the teacher's on the selection split)."""
    budget_epochs: Optional[int] = None
    budget_min: Optional[float] = None
    methods: str = "logit,md"
    """Distillation methods (``logit``, ``md``, ``temporal``, comma-separated) or ``ce``."""
    hardware: bool = True
    """Train through the simulated crossbars (``False``: ideal quantized forward)."""
    chips: int = 3
    eval_chips: int = 5
    nonideal: str = "all"
    adc_bits: Optional[int] = None
    seed: int = 0
    lr: float = 5e-4
    batch_size: int = 64
    val_fraction: float = 0.1
    train_samples: Optional[int] = None
    """Train on this many samples of the training part (seeded draw; ``None``: all of it)."""
    val_samples: Optional[int] = None
    """Selection samples (``None``: the whole selection split)."""
    test_samples: Optional[int] = None
    """Held-out test samples (``None``: the whole test split)."""
    alpha: float = DISTILL_DEFAULTS["alpha"]
    beta: float = DISTILL_DEFAULTS["beta"]
    tau: float = DISTILL_DEFAULTS["tau"]
    energy_samples: int = 64
    ir_refresh: int = 1
    """Training chips per exact IR-drop transfer; the chips between reuse its per-cell
    attenuation (:mod:`codesign.sim.wire_refresh`; 1: every training chip exact). Selection
    and held-out chips are always exact."""

    def validate(self) -> None:
        """Refuse settings that cannot run; each message names the option."""
        if not (isinstance(self.tolerance, (int, float)) and math.isfinite(self.tolerance)
                and self.tolerance >= 0):
            raise CodesignError(f"--tolerance {self.tolerance}: expected a number of points >= 0")
        if self.target is not None and not (math.isfinite(self.target)
                                            and 0 < self.target <= 100):
            raise CodesignError(f"--target {self.target}: expected an accuracy in (0, 100] %")
        if self.budget_epochs is not None and self.budget_min is not None:
            raise CodesignError("--budget-epochs and --budget-min: give one budget, not both")
        if self.budget_epochs is not None and (isinstance(self.budget_epochs, bool)
                                               or self.budget_epochs < 1):
            raise CodesignError(f"--budget-epochs {self.budget_epochs}: expected an integer >= 1")
        if self.budget_min is not None and not (math.isfinite(self.budget_min)
                                                and self.budget_min > 0):
            raise CodesignError(f"--budget-min {self.budget_min}: expected minutes > 0")
        check_chips(self.chips)
        check_chips(self.eval_chips)
        check_refresh(self.ir_refresh)
        if isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise CodesignError(f"--seed {self.seed}: expected an integer 0..{MAX_SEED}")
        if self.methods != "ce":
            parse_methods(self.methods)
        for name in ("train_samples", "val_samples", "test_samples"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise CodesignError(f"{name} {v}: expected a positive integer")

    def epochs_allowed(self) -> int:
        if self.budget_epochs is not None:
            return int(self.budget_epochs)
        if self.budget_min is not None:
            return 1_000_000  # bounded by the wall-time budget
        return DEFAULT_BUDGET_EPOCHS


@dataclass
class LoopResult:
    """What :func:`close_loop` measured (percent accuracies; JSON-safe via :meth:`to_dict`)."""

    rounds: list[dict[str, Any]]
    reference: float
    reference_kind: str
    recovered: bool
    best_round: int
    before: dict[str, Any]
    after: dict[str, Any]
    regressed: bool
    message: str
    seeds: dict[str, Any]
    config: dict[str, Any]
    checkpoint: Optional[str]
    stop_reason: str
    energy_pj: dict[str, Optional[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- hardware-aware training: a fresh chip before every batch ---------------------------------


class ChipPerBatch:
    """Forward pre-hook of the student: in training mode, program the current weights onto a
    new chip instance (seed drawn from ``rng``) and route every synapse through it; in eval
    mode, the ideal product. Synapses are kept in eval mode (frozen batch norm) while training.
    """

    def __init__(self, model: SpikingNet, hwnet: hn.HardwareNet, rng: np.random.Generator,
                 ir_refresh: int = 1) -> None:
        self.model = model
        self.hwnet = hwnet
        self.rng = rng
        self.wires = RefreshedIRDrop(ir_refresh)
        """Programs the chips: the exact IR drop on every ``ir_refresh``-th chip, its
        attenuation on the chips between (:mod:`codesign.sim.wire_refresh`)."""
        self.seeds: list[int] = []
        self.calibrated = hn.adc_range(hwnet.spec) == "calibrated"
        self.layers = dict(model.layers.items())

    def refresh_codes(self) -> None:
        """Re-derive every layer's integer codes, bias and step from the current weights."""
        for name, info in self.hwnet.synapses.items():
            syn = self.layers[name]
            assert isinstance(syn, Synapse) and syn.wbits is not None
            w_int, b_int, step = hn.integer_codes(syn)
            old = info.xbar
            xb = CrossbarLayer(name, w_int, syn.wbits, old.geom, old.adc, conv=old.conv,
                               adc_range=old.adc_range)
            if self.calibrated:
                xb.full_scale = old.full_scale
            info.xbar, info.bias_int, info.step = xb, b_int, step

    def __call__(self, module: torch.nn.Module, args: Any) -> None:
        if not module.training:
            detach(self.model)
            return
        for _, syn in self.model.synapses():
            syn.eval()  # frozen BN: the codes programmed are the weights differentiated
        self.refresh_codes()
        chip_seed = int(self.rng.integers(0, 2 ** 63 - 1))
        self.seeds.append(chip_seed)
        gen = self.wires.program(self.hwnet, chip_seed)
        attach(self.model, CrossbarBackend(self.hwnet, gen))


# --- helpers -----------------------------------------------------------------------------------


def _input_shape(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(x.shape[2:]) if x.dim() == 5 else tuple(x.shape[1:])


@torch.no_grad()
def _ideal_accuracy(model: SpikingNet, x: torch.Tensor, y: torch.Tensor, batch: int = 250
                    ) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += int((model(x[i:i + batch]).mean(0).argmax(-1) == y[i:i + batch]).sum())
    return 100.0 * correct / max(1, x.shape[0])


def check_teacher(path: Union[str, Path], data: Any, split_seed: int,
                  student: SpikingNet) -> tuple[SpikingNet, dict]:
    """Load the teacher (split policy of the recipe) and check it fits the data and student:
    same input shape and number of classes, and a checkpoint file at all."""
    p = Path(path)
    if not p.is_file():
        raise CodesignError(f"--teacher {path}: no such checkpoint file")
    teacher, meta = load_teacher(p, data, split_seed, "teacher")
    c, h, _ = data.input_shape
    want = {"in_channels": c, "image_size": h, "num_classes": data.num_classes}
    for key, value in want.items():
        got = teacher.spec.get(key)
        if got != value:
            raise CodesignError(f"--teacher {path}: {key} is {got}, data {data.name} needs "
                                f"{value}")
    return teacher, meta


def default_teacher(meta: dict, origin: str) -> str:
    """The teacher recorded in a student's metadata: its distillation teacher, else the
    checkpoint it was fine-tuned from (``init``). A relative path that names no file from the
    working folder but one beside the checkpoint ``origin`` (a retrained checkpoint's, written
    relative to its report folder) is taken from there."""
    dist = meta.get("distillation") or {}
    found = None
    if isinstance(dist, dict) and dist.get("teacher"):
        found = str(dist["teacher"])
    elif meta.get("init"):
        found = str(meta["init"])
    if found is not None:
        # a retrained checkpoint records its paths relative to its own folder (close_loop)
        beside = Path(origin).parent / found
        if not Path(found).is_absolute() and not Path(found).is_file() and beside.is_file():
            return str(beside)
        return found
    raise CodesignError(f"{origin}: records no teacher (meta.distillation.teacher or "
                        "meta.init); give --teacher FP.pt")


def _write_rounds(out: Path, rounds: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rounds)
    atomic_write_text(out / "rounds.jsonl", text)


# --- the loop ----------------------------------------------------------------------------------


def close_loop(student_path: Union[str, Path], spec: Any, data: Any, out: Union[str, Path],
               cfg: LoopConfig, *, teacher_path: Optional[Union[str, Path]] = None,
               split_seed: Optional[int] = None,
               log: Optional[Callable[[str], None]] = None) -> LoopResult:
    """Run the closed loop (module docstring) and write its files into the folder ``out``.

    ``spec``: a :class:`~codesign.hw.spec.HardwareSpec`; ``data``: a
    :class:`~codesign.data.DataSplit` of the student's data set and split.
    """
    cfg.validate()
    say = log or (lambda _s: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    student, s_meta = load_checkpoint(student_path)
    split_seed = int(split_seed if split_seed is not None else s_meta.get("split_seed", 0))
    if teacher_path is None:
        teacher_path = default_teacher(s_meta, str(student_path))
    teacher, t_meta = check_teacher(teacher_path, data, split_seed, student)
    if cfg.methods != "ce":
        make_distill_loss(teacher, student, **_loss_kwargs(cfg))  # validate before any work
    roots = hn.chip_seeds(cfg.seed, 3)
    seeds: dict[str, Any] = {"seed": cfg.seed, "selection_root": roots[0],
                             "training_root": roots[1], "heldout_root": roots[2]}
    tr_idx, val_idx = stratified_holdout(data.y_train, cfg.val_fraction, cfg.seed)
    if cfg.train_samples is not None and cfg.train_samples < len(tr_idx):
        pick = np.random.default_rng(roots[1]).permutation(len(tr_idx))[: cfg.train_samples]
        tr_idx = np.sort(tr_idx[pick])
    x_tr, y_tr = data.x_train[tr_idx], data.y_train[tr_idx]
    x_val, y_val = data.x_train[val_idx], data.y_train[val_idx]
    shape = _input_shape(data.x_train)

    def hw_eval(model: SpikingNet, x: torch.Tensor, y: torch.Tensor, root: int, chips: int,
                samples: Optional[int]) -> dict[str, Any]:
        r = simulate(model, spec, x, y, chips=chips, nonideal=cfg.nonideal,
                     adc_bits=cfg.adc_bits, seed=int(root), samples=samples)
        lo, hi = r["hardware"]["ci95"]
        return {"hardware": r["hardware"]["mean"], "ci95": [lo, hi],
                "per_chip": r["hardware"]["per_chip"], "ideal_quantized": r["ideal_quantized"],
                "chip_seeds": r["chip_seeds"], "samples": r["samples"],
                "nonideal": r["nonideal"], "adc_bits": r["adc_bits"]}

    start = time.perf_counter()
    if cfg.target is not None:
        reference, ref_kind = float(cfg.target), "target"
    else:
        reference, ref_kind = _ideal_accuracy(teacher, x_val, y_val), "teacher (selection split)"
    r0 = hw_eval(student, x_val, y_val, roots[0], cfg.chips, cfg.val_samples)
    seeds["selection_chips"] = r0["chip_seeds"]
    rounds: list[dict[str, Any]] = []

    def record(rnd: int, ev: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        row = {"round": rnd, "selection_hardware": ev["hardware"],
               "selection_ci95": ev["ci95"], "selection_ideal_quantized": ev["ideal_quantized"],
               "reference": reference, "gap": reference - ev["hardware"],
               "recovered": ev["hardware"] >= reference - cfg.tolerance,
               "elapsed_s": round(time.perf_counter() - start, 2), **extra}
        rounds.append(row)
        _write_rounds(out, rounds)
        say(f"closed loop: round {rnd}: hardware {ev['hardware']:.2f} % on the selection split "
            f"(reference {reference:.2f} %, tolerance {cfg.tolerance} points)")
        return row

    ckpt = out / "retrained.pt"

    def rel(path: Union[str, Path]) -> str:
        """A path as the loop's files record it: relative to the report folder ``out``."""
        return relative_path(path, out)

    base_meta = {k: v for k, v in s_meta.items() if k != "codesign_version"}
    if base_meta.get("init"):
        init = Path(str(base_meta["init"]))
        if init.is_absolute() or init.is_file():
            base_meta["init"] = rel(init)
    best = (r0["hardware"], 0, {k: v.clone() for k, v in student.state_dict().items()})

    def save_best() -> None:
        meta = {**base_meta, "closed_loop": {"round": best[1], "selection_hardware": best[0],
                                             "teacher": rel(teacher_path),
                                             "from": rel(student_path), "seeds": seeds,
                                             "config": asdict(cfg)}}
        save_checkpoint(ckpt, student, meta)

    # the checkpoint is written before the round is logged: a logged best round is on disk
    save_best()
    record(0, r0, {"trained": False, "best_round": 0})
    stop = "recovered" if rounds[0]["recovered"] else ""
    epochs = cfg.epochs_allowed()
    rnd = 0
    chip_seeds_used: list[int] = []
    last_dur = 0.0
    while not stop:
        if rnd >= epochs:
            stop = "budget (epochs) spent"
            break
        if cfg.budget_min is not None:
            spent = (time.perf_counter() - start) / 60.0
            if spent + last_dur / 60.0 > cfg.budget_min:
                stop = "budget (minutes) spent"
                break
        rnd += 1
        t0 = time.perf_counter()
        tcfg = TrainConfig(epochs=1, batch_size=cfg.batch_size, lr=cfg.lr,
                           seed=(cfg.seed + rnd) % (MAX_SEED + 1), val_fraction=0.0,
                           device="cpu")
        seed_everything(tcfg.seed)
        if cfg.methods == "ce":
            loss_fn, extra_params = ce_loss("mean"), []
        else:
            dl = make_distill_loss(teacher, student, **_loss_kwargs(cfg))
            loss_fn, extra_params = dl, list(dl.head.parameters())
        handle = None
        hook: Optional[ChipPerBatch] = None
        if cfg.hardware:
            hwnet = hn.build(student, spec, shape, nonideal=cfg.nonideal,
                             adc_bits=cfg.adc_bits, seed=roots[1])
            if hn.adc_range(spec) == "calibrated":
                hn.calibrate_adc(hwnet, x_tr[:64])
            rng = np.random.default_rng(np.random.SeedSequence([roots[1], rnd]))
            hook = ChipPerBatch(student, hwnet, rng, cfg.ir_refresh)
            handle = student.register_forward_pre_hook(hook)
        try:
            # the selection split stands in for fit's test split: the real test split stays
            # unseen until the held-out evaluation
            fit(student, x_tr, y_tr, x_val, y_val, tcfg, loss_fn=loss_fn,
                extra_params=extra_params, progress=False, label=f"closed loop round {rnd}")
        finally:
            if handle is not None:
                handle.remove()
            detach(student)
            student.eval()
        if hook is not None:
            chip_seeds_used.extend(hook.seeds)
        ev = hw_eval(student, x_val, y_val, roots[0], cfg.chips, cfg.val_samples)
        last_dur = time.perf_counter() - t0
        if ev["hardware"] > best[0]:
            best = (ev["hardware"], rnd, {k: v.clone() for k, v in student.state_dict().items()})
            save_best()
        row = record(rnd, ev, {"trained": True, "train_chips": len(hook.seeds) if hook else 0,
                               "train_exact_ir_chips": hook.wires.refreshes if hook else 0,
                               "round_s": round(last_dur, 2), "best_round": best[1]})
        if row["recovered"]:
            stop = "recovered"
    student.load_state_dict(best[2])
    student.eval()
    # held-out chips on the test split: the original against the best
    original, _ = load_checkpoint(student_path)
    before = hw_eval(original, data.x_test, data.y_test, roots[2], cfg.eval_chips,
                     cfg.test_samples)
    after = hw_eval(student, data.x_test, data.y_test, roots[2], cfg.eval_chips,
                    cfg.test_samples)
    held = set(before["chip_seeds"])
    overlap = len(held & (set(chip_seeds_used) | set(seeds["selection_chips"])))
    if overlap:
        raise CodesignError("closed loop: a held-out chip seed was used in training or selection")
    seeds.update(heldout_chips=before["chip_seeds"], training_chips=len(chip_seeds_used),
                 heldout_overlap=overlap)
    regressed, message = held_out_verdict(before["hardware"], after["hardware"], best[1])
    energy = {"before": _energy(student_path, spec, data, cfg),
              "after": _energy(ckpt, spec, data, cfg) if best[1] else None}
    if energy["after"] is None:
        energy["after"] = energy["before"]
    result = LoopResult(rounds=rounds, reference=reference, reference_kind=ref_kind,
                        recovered=bool(rounds[best[1]]["recovered"]), best_round=best[1],
                        before=before, after=after, regressed=regressed, message=message,
                        seeds=seeds, config={**asdict(cfg), "teacher": rel(teacher_path),
                                             "teacher_test_accuracy":
                                                 t_meta.get("test_accuracy"),
                                             "student": rel(student_path),
                                             "split_seed": split_seed},
                        checkpoint=rel(ckpt), stop_reason=stop, energy_pj=energy)
    write_loop_files(result, out)
    say(f"closed loop: {message} (stopped: {stop}; best round {best[1]})")
    return result


def held_out_verdict(before: float, after: float, best_round: int) -> tuple[bool, str]:
    """``(regressed, message)`` for held-out hardware accuracies (percent) of the original
    (``before``) and the kept student (``after``, from ``best_round``; 0 = the original).
    ``regressed`` is ``after < before``, always stated in the message when true."""
    regressed = after < before
    delta = after - before
    if regressed:
        message = (f"REGRESSED: on held-out chips the kept student is {-delta:.2f} points "
                   f"WORSE than the original ({after:.2f} % vs {before:.2f} %)")
    elif best_round == 0:
        message = (f"no retrained round beat the original on the selection chips; the original "
                   f"student is kept (held-out chips: {before:.2f} %)")
    else:
        message = f"held-out chips: {before:.2f} % -> {after:.2f} % ({delta:+.2f} points)"
    return regressed, message


def _loss_kwargs(cfg: LoopConfig) -> dict[str, Any]:
    return {"methods": parse_methods(cfg.methods), "alpha": cfg.alpha, "beta": cfg.beta,
            "tau": cfg.tau}


def _energy(path: Union[str, Path], spec: Any, data: Any, cfg: LoopConfig) -> Optional[float]:
    """Total inference energy (pJ) of a checkpoint, activity measured on the test split."""
    from codesign.mapflow import map_model

    res = map_model(path, spec, data=data, samples=cfg.energy_samples, seed=cfg.seed,
                    adc_bits=cfg.adc_bits)
    e = res.summary.get("energy_pj")
    return None if e is None else float(e)


# --- report files -------------------------------------------------------------------------------


def before_after_rows(res: LoopResult) -> list[dict[str, Any]]:
    """The before/after table: held-out hardware accuracy (percent, 95 % interval), ideal
    quantized accuracy and energy (pJ) of the original and the retrained student."""
    rows = []
    for what, ev in (("before", res.before), ("after", res.after)):
        rows.append({"model": what, "hardware_accuracy": ev["hardware"],
                     "ci95_lo": ev["ci95"][0], "ci95_hi": ev["ci95"][1],
                     "ideal_quantized_accuracy": ev["ideal_quantized"],
                     "energy_pj": res.energy_pj.get(what), "chips": len(ev["per_chip"]),
                     "samples": ev["samples"]})
    return rows


def write_loop_files(res: LoopResult, out: Path) -> None:
    """``loop.json``, ``before_after.csv`` and ``retrain_rounds.png`` (atomic writes)."""
    import pandas as pd

    from codesign.io import atomic_write_via

    atomic_write_json(out / "loop.json", res.to_dict())
    df = pd.DataFrame(before_after_rows(res))
    atomic_write_text(out / "before_after.csv", df.to_csv(index=False))
    fig = rounds_figure(res)
    atomic_write_via(out / "retrain_rounds.png",
                     lambda p: fig.savefig(p, dpi=110, format="png"))


def rounds_figure(res: LoopResult) -> Any:
    """Left: selection-split hardware accuracy per round with the reference band; right:
    energy (uJ) before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [2, 1]})
    r = [row["round"] for row in res.rounds]
    acc = [row["selection_hardware"] for row in res.rounds]
    lo = [row["selection_ci95"][0] for row in res.rounds]
    hi = [row["selection_ci95"][1] for row in res.rounds]
    a.fill_between(r, lo, hi, alpha=0.2, color="C0")
    a.plot(r, acc, "o-", color="C0", label="hardware (selection chips)")
    a.axhline(res.reference, color="k", lw=1, label=f"reference ({res.reference_kind})")
    tol = float(res.config.get("tolerance", 0.0))
    a.axhline(res.reference - tol, color="k", lw=1, ls="--", label=f"reference - {tol:g}")
    a.set_xlabel("round (0: before retraining)")
    a.set_ylabel("accuracy (%)")
    a.set_xticks(r)
    a.legend(fontsize=7, loc="lower right")
    e = [res.energy_pj.get("before"), res.energy_pj.get("after")]
    b.bar(["before", "after"], [(v or 0.0) * 1e-6 for v in e], color=["C7", "C2"])
    b.set_ylabel("energy per inference (uJ)")
    fig.suptitle(f"closed loop: held-out {res.before['hardware']:.1f} % -> "
                 f"{res.after['hardware']:.1f} %" + ("  (REGRESSED)" if res.regressed else ""),
                 fontsize=9)
    fig.tight_layout()
    return fig


# --- entry point of ``codesign map --retrain`` --------------------------------------------------


@dataclass
class LoopSetup:
    """Everything :func:`close_loop` needs, validated before any work is done."""

    student: Path
    spec: Any
    data: Any
    teacher: Path
    split_seed: int


def load_loop_data(model: SpikingNet, data_name: str, split_seed: int) -> Any:
    """The data split the student was trained on (as ``codesign map --chips`` loads it)."""
    from codesign.data import load_dataset

    size = int(model.spec.get("image_size", 0))
    extra: dict[str, Any] = {"upsample": size} if data_name == "digits" and size not in (0, 8) \
        else {}
    return load_dataset(data_name, split_seed=split_seed, T=int(model.T), **extra)


def prepare(student_path: Union[str, Path], hw: Any, data_name: Optional[str],
            cfg: LoopConfig, *, teacher: Optional[Union[str, Path]] = None,
            split_seed: Optional[int] = None) -> LoopSetup:
    """Validate a closed-loop request (one :class:`CodesignError` line on bad input): the
    settings, a quantized student checkpoint the simulator can run, the data, and a teacher
    checkpoint trained on the same data and split with the data's input shape and classes."""
    from codesign.mapflow import load_hw

    cfg.validate()
    if data_name is None:
        raise CodesignError("--retrain: needs --data (the student is retrained on its training "
                            "split and scored on its test split)")
    p = Path(student_path)
    if p.suffix != ".pt":
        raise CodesignError(f"{student_path}: --retrain needs a quantized codesign checkpoint "
                            "(.pt), not a workload or NIR file")
    student, meta = load_checkpoint(p)
    used = int(split_seed if split_seed is not None else meta.get("split_seed", 0))
    spec = load_hw(hw)
    data = load_loop_data(student, data_name, used)
    hn.build(student, spec, _input_shape(data.x_train), nonideal=cfg.nonideal,
             adc_bits=cfg.adc_bits)  # refuses a float layer or an unsupported one
    t_path = Path(teacher) if teacher is not None else Path(default_teacher(meta, str(p)))
    t_net, _ = check_teacher(t_path, data, used, student)
    if cfg.methods != "ce":
        make_distill_loss(t_net, student, **_loss_kwargs(cfg))
    return LoopSetup(p, spec, data, t_path, used)


def run(setup: LoopSetup, out: Union[str, Path], cfg: LoopConfig,
        log: Optional[Callable[[str], None]] = None) -> LoopResult:
    """:func:`close_loop` on a validated :class:`LoopSetup`."""
    return close_loop(setup.student, setup.spec, setup.data, out, cfg, teacher_path=setup.teacher,
                      split_seed=setup.split_seed, log=log)


def table_text(res: LoopResult) -> str:
    """The printed before/after table (held-out chips, test split)."""
    how = "through the hardware" if res.config["hardware"] else "ideal forward"
    lines = [f"closed loop ({res.config['methods']}, {how}): {len(res.rounds) - 1} round(s), "
             f"stopped: {res.stop_reason}; best round {res.best_round}",
             f"{'':8s} {'hardware %':>11s} {'95 % interval':>17s} {'ideal quant. %':>15s} "
             f"{'energy uJ':>10s}"]
    for row in before_after_rows(res):
        e = row["energy_pj"]
        lines.append(f"{row['model']:8s} {row['hardware_accuracy']:11.2f} "
                     f"{row['ci95_lo']:8.2f}-{row['ci95_hi']:<8.2f} "
                     f"{row['ideal_quantized_accuracy']:15.2f} "
                     f"{(e or 0.0) * 1e-6:10.4g}")
    lines.append(f"held-out: {res.after['samples']} test samples on {len(res.after['per_chip'])} "
                 "chips never used in training or selection; " + res.message)
    return "\n".join(lines)
