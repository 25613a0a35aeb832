"""Reproduction study of the distillation methods of codesign.train.distill (issue #4).

Questions (mnist5k and nmnist5k, T = 4):

* Q1 quantized student from scratch: CE only, + logit KD, + MD, + logit KD + MD, at W4/U4 and
  at the harsher W3/U3; references: the FP teacher and an FP student trained with CE.
* Q2 temporal-wise KD vs standard (mean-logit) KD: test accuracy with the first 1..T steps.
* Q3 multi-stage (teacher -> assistant -> student) vs direct distillation.

Resumable: the grid runs on the library's resumable runner (:func:`codesign.sweep.run_jobs`,
the one behind ``codesign sweep-bits``): every run's record is written as
``results/<name>-<hash>.json`` atomically by the driver, keyed by a hash of its configuration;
a rerun skips finished runs. ``--report`` only rebuilds README.md and figures.

    .venv/bin/python reports/distillation/run_study.py --workers 2
    .venv/bin/python reports/distillation/run_study.py --report
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE / "work"  # teacher / assistant checkpoints (not results)

DATASETS = ("mnist5k", "nmnist5k")
T = 4
N_TRAIN = 1200  # first N images of the stratified training split (test split: all 1,000)
EPOCHS = 4
BATCH = 32
LR_STUDENT = 3e-3
LR_TEACHER = 2e-3
TEACHER, ASSISTANT, STUDENT = "vgg-small", "vgg-mid", "vgg-tiny"
BITS = {"W4U4": {"wbits": 4, "ubits": 4}, "W3U3": {"wbits": 3, "ubits": 3}}
KD = {"alpha": 0.5, "tau": 4.0}
MD = {"beta": 0.5}
TEMPORAL = {"alpha": 0.5, "gamma": 0.5, "tau": 4.0, "no_correct": "skip"}
Q1_METHODS = {"ce": None, "logit": "logit", "md": "md", "logit+md": "logit,md"}
# Added after seed 0 showed the beta=0.5 membrane term at ~1.6x CE at initialisation
# (../shared/research/kd_algorithms.md 2.3 suggests 0.1-1x): the same runs with beta=0.1.
MD_ABLATION = {"md b=0.1": "md", "logit+md b=0.1": "logit,md"}
BETA_ABLATION = 0.1


# ------------------------------------------------------------------------------- the grid


def job(kind: str, dataset: str, seed: int, **cfg: Any) -> dict:
    return {"kind": kind, "dataset": dataset, "seed": seed, "T": T, "n_train": N_TRAIN,
            "epochs": EPOCHS, "batch": BATCH, **cfg}


def teacher_job(ds: str) -> dict:
    return job("teacher", ds, 0, model=TEACHER, quant=None, lr=LR_TEACHER)


def assistant_job(ds: str) -> dict:
    return job("assistant", ds, 0, model=ASSISTANT, quant=None, lr=LR_STUDENT,
               methods="logit", **KD)


def _q1(ds: str, seed: int, bits: str, name: str) -> dict:
    methods = {**Q1_METHODS, **MD_ABLATION}[name]
    extra: dict[str, Any] = {}
    if methods and "logit" in methods:
        extra.update(KD)
    if methods and "md" in methods:
        extra.update(MD)
    if name in MD_ABLATION:
        extra["beta"] = BETA_ABLATION
    return job("student", ds, seed, model=STUDENT, quant=BITS[bits], bits=bits, method=name,
               methods=methods, lr=LR_STUDENT, **extra)


def grid(seeds: list[int]) -> list[dict]:
    """All runs in priority order, so that a run cut short by the time budget loses the least:
    teachers and assistants; then seed by seed the W4/U4 runs of Q1, Q2 and Q3 and the FP
    reference; then W3/U3 CE and logit+MD; the beta=0.1 membrane ablation at W4/U4; W3/U3
    logit and MD alone; the beta=0.1 ablation at W3/U3."""
    jobs = [teacher_job(ds) for ds in DATASETS] + [assistant_job(ds) for ds in DATASETS]
    for seed in seeds:
        for ds in DATASETS:
            jobs += [_q1(ds, seed, "W4U4", name) for name in Q1_METHODS]
            jobs.append(job("student", ds, seed, model=STUDENT, quant=BITS["W4U4"], bits="W4U4",
                            method="temporal", methods="temporal", lr=LR_STUDENT, **TEMPORAL))
            jobs.append(job("multistage", ds, seed, model=STUDENT, quant=BITS["W4U4"],
                            bits="W4U4", method="logit via assistant", methods="logit",
                            lr=LR_STUDENT, **KD))
            jobs.append(job("student", ds, seed, model=STUDENT, quant=None, bits="FP",
                            method="ce", methods=None, lr=LR_STUDENT))
    later = [("W3U3", ("ce", "logit+md")), ("W4U4", tuple(MD_ABLATION)), ("W3U3", ("logit", "md")),
             ("W3U3", tuple(MD_ABLATION))]
    for bits, names in later:
        for seed in seeds:
            for ds in DATASETS:
                jobs += [_q1(ds, seed, bits, name) for name in names]
    return jobs


def key(cfg: dict) -> str:
    return hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def result_path(cfg: dict) -> Path:
    label = "-".join(str(cfg.get(k)) for k in ("kind", "dataset", "bits", "method", "seed")
                     if cfg.get(k) is not None).replace("+", "_").replace(" ", "_")
    return RESULTS / f"{label}-{key(cfg)}.json"


def ckpt_path(cfg: dict) -> Path:
    return WORK / f"{cfg['kind']}-{cfg['dataset']}-{key(cfg)}.pt"


def deps(cfg: dict) -> list[dict]:
    if cfg["kind"] == "teacher":
        return []
    if cfg["kind"] == "multistage":
        return [teacher_job(cfg["dataset"]), assistant_job(cfg["dataset"])]
    if cfg["kind"] == "student" and cfg.get("methods") is None:
        return []
    return [teacher_job(cfg["dataset"])]


# ---------------------------------------------------------------------------------- a run


@lru_cache(maxsize=2)
def _data(name: str):
    from codesign.data import load_dataset

    return load_dataset(name, split_seed=0, T=T)


def run(cfg: dict) -> dict:
    """Train one configuration; returns its record (the runner stores it)."""
    import torch

    torch.set_num_threads(1)
    from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
    from codesign.train.distill import make_distill_loss
    from codesign.train.loop import TrainConfig, evaluate, fit
    from codesign.train.recipe import prepare_model

    data = _data(cfg["dataset"])
    n = cfg["n_train"]
    xs = (data.x_train[:n], data.y_train[:n], data.x_test, data.y_test)
    torch.manual_seed(cfg["seed"])
    net = prepare_model(cfg["model"], data, T=cfg["T"], quant=cfg["quant"])
    tcfg = TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch"], lr=cfg["lr"],
                       seed=cfg["seed"], device="cpu")
    start = time.perf_counter()
    loss_fn, extra, source_acc = None, None, None
    if cfg.get("methods"):
        src_cfg = assistant_job(cfg["dataset"]) if cfg["kind"] == "multistage" else \
            teacher_job(cfg["dataset"])
        source, meta = load_checkpoint(ckpt_path(src_cfg))
        source_acc = meta.get("test_accuracy")
        kw = {k: cfg[k] for k in ("alpha", "beta", "gamma", "tau", "no_correct") if k in cfg}
        loss_fn = make_distill_loss(source, net, cfg["methods"], **kw)
        extra = list(loss_fn.head.parameters())
    res = fit(net, *xs, tcfg, loss_fn=loss_fn, extra_params=extra, progress=False)
    by_steps = [evaluate(net, data.x_test, data.y_test, steps=k) for k in range(1, cfg["T"] + 1)]
    seconds = time.perf_counter() - start
    if cfg["kind"] in ("teacher", "assistant"):
        save_checkpoint(ckpt_path(cfg), net, {"dataset": data.name, "split_seed": 0,
                                              "test_accuracy": res.test_accuracy})
    out = {"config": cfg, "key": key(cfg), "test_accuracy": res.test_accuracy,
           "accuracy_by_steps": by_steps, "val_accuracy": res.best_val_accuracy,
           "best_epoch": res.best_epoch, "seconds": round(seconds, 1),
           "params": net.n_params(), "source_test_accuracy": source_acc,
           "distill_settings": loss_fn.settings.to_dict() if loss_fn else None,
           "history": res.history}
    return out


def _describe(cfg: dict, rec: dict) -> str:
    return (f"{result_path(cfg).name}: acc {100 * rec['test_accuracy']:.1f} % in "
            f"{rec['seconds']:.0f} s")


def run_all(seeds: list[int], workers: int, budget_min: float) -> None:
    """Run the grid with ``workers`` processes (1: serial, in this process) on the library's
    runner; submit nothing new after ``budget_min``; a failed run is reported and retried by the
    next invocation."""
    from codesign.sweep import JobSpec, ResultStore, open_executor, run_jobs

    spec = JobSpec(evaluate=run, key=key, record=lambda cfg, rec, seconds: rec,
                   name=lambda cfg: result_path(cfg).name, describe=_describe,
                   ready=lambda cfg: all(result_path(d).exists() for d in deps(cfg)))
    store = ResultStore(RESULTS, subdir=None, log=False)
    with open_executor(workers) as backend:
        report = run_jobs(grid(seeds), spec, store, backend, label="study",
                          deadline_s=60 * budget_min, stop_on_error=False)
    for k, err in report.failed:
        print(f"FAILED {k}: {err}", flush=True)


# -------------------------------------------------------------------------------- report


def load_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def _arr(values: list[float]):
    import numpy as np

    return 100 * np.asarray(values, dtype=float)


def _stats(values: list[float]) -> str:
    """``mean ± std (n=..)`` in percent (sample std, ddof=1)."""
    if not values:
        return "n/a"
    a = _arr(values)
    if len(a) == 1:
        return f"{a[0]:.1f} (n=1)"
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f} (n={len(a)})"


def _select(results: list[dict], **where: Any) -> list[dict]:
    return [r for r in results if all(r["config"].get(k) == v for k, v in where.items())]


def _acc(rs: list[dict], step: int | None = None) -> list[float]:
    return [r["test_accuracy"] if step is None else r["accuracy_by_steps"][step] for r in rs]


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), 0.0
    a = _arr(values)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _paired(a: list[dict], b: list[dict], step: int | None = None) -> str:
    """Paired (same seed) difference ``a - b`` in points: mean ± std, n, wins."""
    by_seed = {r["config"]["seed"]: r for r in b}
    diffs = [(x["test_accuracy"] if step is None else x["accuracy_by_steps"][step])
             - (by_seed[x["config"]["seed"]]["test_accuracy"] if step is None
                else by_seed[x["config"]["seed"]]["accuracy_by_steps"][step])
             for x in a if x["config"]["seed"] in by_seed]
    if not diffs:
        return "n/a"
    d = _arr(diffs)
    sd = d.std(ddof=1) if len(d) > 1 else 0.0
    return f"{d.mean():+.1f} ± {sd:.1f} ({int((d > 0).sum())}/{len(d)} seeds > 0)"


FINDINGS_START, FINDINGS_END = "<!-- findings -->", "<!-- /findings -->"


def _kept_findings(readme: Path) -> str:
    if readme.exists():
        text = readme.read_text()
        if FINDINGS_START in text and FINDINGS_END in text:
            return text[text.index(FINDINGS_START):text.index(FINDINGS_END) + len(FINDINGS_END)]
    return f"{FINDINGS_START}\n(to be written after the runs)\n{FINDINGS_END}"


def _setup_lines(results: list[dict]) -> list[str]:
    mtimes = sorted(p.stat().st_mtime for p in RESULTS.glob("*.json"))
    wall = (mtimes[-1] - mtimes[0]) / 60 if len(mtimes) > 1 else 0.0
    summed = sum(r["seconds"] for r in results) / 60
    return [
        f"* Data: `mnist5k` (static, direct encoding) and `nmnist5k` (synthetic saccade events, "
        f"2x28x28, T={T}), split seed 0. Training uses the first {N_TRAIN} images of the "
        f"stratified training split (10 % of them held out for model selection); the test "
        f"split is all 1,000 test images.",
        f"* Teacher: {TEACHER} (float), trained once per data set with CE ({EPOCHS} epochs, "
        f"Adam lr {LR_TEACHER}) and **shared by all seeds**. Assistant (Q3): {ASSISTANT} "
        f"(float) distilled from the teacher with logit KD, also once per data set.",
        f"* Students: {STUDENT} trained **from scratch** ({EPOCHS} epochs, batch {BATCH}, Adam "
        f"lr {LR_STUDENT}, cosine schedule, 2-px shift augmentation on mnist5k), quantized "
        f"W4/U4 or W3/U3 (hidden weights / membrane registers; first conv and readout 8 bit, "
        f"per-layer LSQ steps shared by weights and membrane, MINT-style), or float (FP).",
        f"* KD: alpha={KD['alpha']}, tau={KD['tau']}, CE weight 1, CE on mean logits. MD: "
        f"beta={MD['beta']}, all four LIF layers (lif1, lif2, lif3, lif_fc1) with weight 1, "
        f"MSE on H/theta, every step, learned 1x1 connectors (student channels -> teacher "
        f"channels); ablation rows `b=0.1` use beta={BETA_ABLATION}. Temporal-wise KD: "
        f"per-step CE + alpha={TEMPORAL['alpha']} per-step KL to "
        f"the teacher's mean logits + gamma={TEMPORAL['gamma']} self-distillation toward the "
        f"mean of correct steps (samples with no correct step skipped), tau={TEMPORAL['tau']}.",
        "* Seeds 0, 1, 2 change the student's initialisation, the shuffling and augmentation "
        "(and the validation hold-out); the split and the teacher are fixed. Tables give "
        "mean ± sample std over seeds in %; paired differences compare runs of the same seed.",
        f"* {len(results)} runs; summed run time {summed:.0f} min; first to last result "
        f"{wall:.0f} min wall on 2 shared CPU cores (2 worker processes, 1 thread each, "
        f"next to other jobs).",
    ]


def report() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = load_results()
    readme = HERE / "README.md"
    q1: list[str] = []
    q2: list[str] = []
    q3: list[str] = []
    fig1, axes1 = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    fig2, axes2 = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    fig3, axes3 = plt.subplots(1, 2, figsize=(8, 3.8), sharey=True)
    for i, ds in enumerate(DATASETS):
        teacher = _select(results, kind="teacher", dataset=ds)
        t_acc = _stats(_acc(teacher))
        t_params = teacher[0]["params"] if teacher else "?"
        st = _select(results, kind="student", dataset=ds)
        s_params = st[0]["params"] if st else "?"
        fp = _select(st, bits="FP")
        q1 += [f"\n**{ds}**: teacher {TEACHER} ({t_params} params) {t_acc}; "
               f"FP {STUDENT} ({s_params} params) with CE {_stats(_acc(fp))}\n",
               "| student | " + " | ".join(BITS) + " | " + " | ".join(
                   f"{b}: paired diff. vs CE (points)" for b in BITS) + " |",
               "|---|" + "---|" * (2 * len(BITS))]
        for name in [*Q1_METHODS, *MD_ABLATION]:
            cells = [_stats(_acc(_select(st, bits=b, method=name))) for b in BITS]
            cells += ["" if name == "ce" else
                      _paired(_select(st, bits=b, method=name), _select(st, bits=b, method="ce"))
                      for b in BITS]
            q1.append(f"| {name} | " + " | ".join(cells) + " |")
        ax = axes1[i]
        names = [*Q1_METHODS, *MD_ABLATION]
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            ms = [_mean_std(_acc(_select(st, bits=b, method=name))) for b in BITS]
            off = (j - (len(names) - 1) / 2) * width
            ax.bar([k + off for k in range(len(BITS))], [m for m, _ in ms],
                   width, yerr=[sd for _, sd in ms], label=name, capsize=3)
        if teacher:
            ax.axhline(100 * teacher[0]["test_accuracy"], color="k", ls="--", lw=1,
                       label="FP teacher")
        if fp:
            ax.axhline(_mean_std(_acc(fp))[0], color="gray", ls=":", lw=1,
                       label=f"FP {STUDENT} (CE)")
        ax.set_xticks(range(len(BITS)), list(BITS))
        ax.set_title(f"{ds}: quantized {STUDENT} from scratch")
        ax.set_ylabel("test accuracy (%)")
        # Q2
        ce, std_kd, tw = (_select(st, bits="W4U4", method=m) for m in ("ce", "logit", "temporal"))
        q2 += [f"\n**{ds}** ({STUDENT} W4/U4 trained at T={T}, evaluated with the first k "
               "steps)\n",
               "| training | " + " | ".join(f"k={k}" for k in range(1, T + 1)) + " |",
               "|---|" + "---|" * T]
        ax = axes2[i]
        for label, rs in (("CE only", ce), ("standard KD", std_kd), ("temporal-wise KD", tw)):
            q2.append(f"| {label} | " + " | ".join(_stats(_acc(rs, k)) for k in range(T)) + " |")
            if rs:
                ms = [_mean_std(_acc(rs, k)) for k in range(T)]
                ax.errorbar(range(1, T + 1), [m for m, _ in ms], yerr=[sd for _, sd in ms],
                            marker="o", capsize=3, label=label)
        q2.append("| temporal - standard (paired) | " + " | ".join(
            _paired(tw, std_kd, k) for k in range(T)) + " |")
        ax.set_xticks(range(1, T + 1))
        ax.set_xlabel("inference steps k")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(ds)
        # Q3
        assistant = _select(results, kind="assistant", dataset=ds)
        ms_runs = _select(results, kind="multistage", dataset=ds)
        a_params = assistant[0]["params"] if assistant else "?"
        q3 += [f"\n**{ds}**: {TEACHER} ({t_params}) -> {ASSISTANT} ({a_params}) -> {STUDENT} "
               f"({s_params} params, W4/U4), logit KD at each stage\n",
               "| route | test accuracy (%) |", "|---|---|",
               f"| teacher {TEACHER} (FP, CE) | {t_acc} |",
               f"| assistant {ASSISTANT} (FP, KD from teacher) | "
               f"{_stats(_acc(assistant))} |",
               f"| student, CE only | {_stats(_acc(ce))} |",
               f"| student, direct KD from the teacher | {_stats(_acc(std_kd))} |",
               f"| student, multi-stage KD via the assistant | {_stats(_acc(ms_runs))} |",
               f"| multi-stage - direct (paired) | {_paired(ms_runs, std_kd)} |"]
        ax = axes3[i]
        bars = [("CE only", ce), ("direct KD", std_kd), ("multi-stage KD", ms_runs)]
        ms = [_mean_std(_acc(rs)) for _, rs in bars]
        ax.bar(range(3), [m for m, _ in ms], yerr=[sd for _, sd in ms], capsize=3,
               color=["gray", "tab:blue", "tab:orange"])
        ax.set_xticks(range(3), [b for b, _ in bars])
        ax.set_title(f"{ds}: {STUDENT} W4/U4")
        ax.set_ylabel("test accuracy (%)")
    axes1[0].legend(fontsize=7, loc="lower left")
    axes2[0].legend(fontsize=8)
    lo = [ax.get_ylim()[0] for ax in axes3]
    for ax in axes3:
        ax.set_ylim(max(0.0, min(lo)), None)
    figs = {"q1": (fig1, "q1_quantized_student.png"), "q2": (fig2, "q2_temporal_steps.png"),
            "q3": (fig3, "q3_multistage.png")}
    for fig, name in figs.values():
        fig.tight_layout()
        fig.savefig(HERE / name, dpi=110)
    text = [
        "# Distillation study: logit KD, membrane distillation, temporal-wise KD, multi-stage",
        "",
        "Generated by `reports/distillation/run_study.py` (tables, figures, setup); the "
        "findings section is written by hand and kept when the report is rebuilt.",
        "",
        "## Commands",
        "",
        "```",
        ".venv/bin/python reports/distillation/run_study.py --workers 2 --budget-min 34  "
        "# resumable",
        ".venv/bin/python reports/distillation/run_study.py --report   "
        "# rebuild README and figures",
        "```",
        "",
        "Each run writes `results/<name>-<config hash>.json` atomically; a rerun skips finished "
        "runs. Teacher and assistant checkpoints go to `work/` (scratch, not results).",
        "",
        "## Setup",
        "",
        *_setup_lines(results),
        "",
        "## Findings",
        "",
        _kept_findings(readme),
        "",
        "## Q1: quantized student from scratch, CE vs logit KD vs MD vs both",
        *q1,
        "",
        f"![Q1]({figs['q1'][1]})",
        "",
        "## Q2: temporal-wise KD vs standard KD, accuracy with the first k steps",
        *q2,
        "",
        f"![Q2]({figs['q2'][1]})",
        "",
        "## Q3: multi-stage (teacher -> assistant -> student) vs direct distillation",
        *q3,
        "",
        f"![Q3]({figs['q3'][1]})",
        "",
    ]
    readme.write_text("\n".join(text) + "\n")
    print(readme.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--budget-min", type=float, default=36.0,
                    help="start no new run after this many minutes")
    ap.add_argument("--report", action="store_true", help="only rebuild tables and figures")
    args = ap.parse_args()
    if not args.report:
        run_all([int(s) for s in args.seeds.split(",")], args.workers, args.budget_min)
    report()


if __name__ == "__main__":
    main()
