"""MD-SNN in the paper's setting (issue 11): same architecture, QAT from the FP teacher.

The student is the teacher's own architecture (vgg-small), initialised from the FP teacher
checkpoint (``prepare_model(init=teacher)``: weights and BN statistics copied, quantizer steps
from :meth:`codesign.snn.model.SpikingNet.calibrate_quantizers`), quantized at W4/U4, W3/U3 or
W2/U2 (first conv and readout 8 bit) and fine-tuned briefly with CE only, logit KD, membrane
distillation (MD), logit KD + MD, or MD on fewer LIF layers (ablation), for 3 seeds.
References: the FP teacher and the quantized student without fine-tuning (post-training
quantization, PTQ).

Resumable on the library's runner (:func:`codesign.sweep.run_jobs`), as ``run_study.py``:
each run's record is ``results_md_paper/<name>-<hash>.json``, written atomically; a rerun
skips finished runs. ``--report`` rebuilds ``md_paper_setting.md`` and its figure only.

    .venv/bin/python reports/distillation/run_md_paper.py --workers 2 --budget-min 30
    .venv/bin/python reports/distillation/run_md_paper.py --report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_study import T as STUDY_T  # noqa: E402
from run_study import _data, _mean_std, _paired, _select, _stats, key  # noqa: E402

RESULTS = HERE / "results_md_paper"
WORK = HERE / "work"  # the nmnist5k teacher checkpoint (scratch, not results)
REPO = HERE.parent.parent

T = 4
assert T == STUDY_T, "run_study._data loads its data at the study's T"
N_TRAIN = 1200  # first N images of the stratified training split (10 % held out); test: all
EPOCHS = 1
BATCH = 32
LR = 5e-4  # fine-tuning from the teacher: 1/2 of the teacher's lr
TEACHER = "vgg-small"
TEACHER_CKPT = {"mnist5k": "models/teacher_fp.pt"}  # nmnist5k: trained here (teacher_job)
BITS = {"W4U4": {"wbits": 4, "ubits": 4}, "W2U2": {"wbits": 2, "ubits": 2},
        "W3U3": {"wbits": 3, "ubits": 3}}
KD = {"alpha": 0.5, "tau": 4.0}
BETA = 0.5  # as the from-scratch study (README.md), for comparability
METHODS: dict[str, dict[str, Any]] = {
    "ce": {"methods": None},
    "logit": {"methods": "logit", **KD},
    "md": {"methods": "md", "beta": BETA},
    "logit+md": {"methods": "logit,md", **KD, "beta": BETA},
    "md last1": {"methods": "md", "beta": BETA, "md_layers": ["lif_fc1"]},
    "md last2": {"methods": "md", "beta": BETA, "md_layers": ["lif3", "lif_fc1"]},
}
MAIN, ABLATION = ("ce", "logit", "md", "logit+md"), ("md last1", "md last2")
# Extra cells (brief H4): mnist5k W2/U2 was unresolved after 1 epoch (seeds scatter by 7-16
# points from a 30.8 % PTQ start), and on nmnist5k W2/U2 MD was below CE on every seed after
# 1 epoch; the same runs with 3 epochs, a separate table per data set.
LONG_DATASETS, LONG_BITS, LONG_EPOCHS = ("mnist5k", "nmnist5k"), "W2U2", 3
LONG_METHODS = ("ce", "md", "logit+md")


def job(kind: str, dataset: str, seed: int, epochs: int = EPOCHS, **cfg: Any) -> dict:
    return {"study": "md-paper", "kind": kind, "dataset": dataset, "seed": seed, "T": T,
            "n_train": N_TRAIN, "epochs": epochs, "batch": BATCH, "lr": LR, **cfg}


def teacher_job(ds: str) -> dict:
    if ds in TEACHER_CKPT:
        return job("teacher", ds, 0, checkpoint=TEACHER_CKPT[ds])
    return job("teacher", ds, 0, model=TEACHER, epochs=4, lr=2e-3)  # small budget


def student_job(ds: str, seed: int, bits: str, method: str, epochs: int = EPOCHS) -> dict:
    return job("student", ds, seed, epochs, bits=bits, quant=BITS[bits], method=method,
               **METHODS[method])


def grid(seeds: list[int]) -> list[dict]:
    """Priority order (issue 11, brief H4): mnist5k W4/U4 and W2/U2 main methods, the
    fewer-layers ablation, W3/U3, then nmnist5k in the same order; last the extra
    ``LONG_EPOCHS``-epoch cells (``LONG_DATASETS`` at ``LONG_BITS``, ``LONG_METHODS``)."""
    jobs: list[dict] = []
    for ds in ("mnist5k", "nmnist5k"):
        jobs.append(teacher_job(ds))
        jobs += [job("ptq", ds, 0, bits=b, quant=BITS[b]) for b in BITS]
        for bits in ("W4U4", "W2U2"):
            jobs += [student_job(ds, s, bits, m) for s in seeds for m in MAIN]
        for bits in ("W4U4", "W2U2"):
            jobs += [student_job(ds, s, bits, m) for s in seeds for m in ABLATION]
        jobs += [student_job(ds, s, "W3U3", m) for s in seeds for m in MAIN + ABLATION]
    jobs += [student_job(ds, s, LONG_BITS, m, LONG_EPOCHS)
             for ds in LONG_DATASETS for s in seeds for m in LONG_METHODS]
    return jobs


def result_path(cfg: dict) -> Path:
    label = "-".join(str(cfg.get(k)) for k in ("kind", "dataset", "bits", "method", "seed")
                     if cfg.get(k) is not None).replace("+", "_").replace(" ", "_")
    if cfg["kind"] == "student" and cfg["epochs"] != EPOCHS:
        label += f"-{cfg['epochs']}ep"
    return RESULTS / f"{label}-{key(cfg)}.json"


def teacher_path(ds: str) -> Path:
    cfg = teacher_job(ds)
    if "checkpoint" in cfg:
        return REPO / cfg["checkpoint"]
    return WORK / f"md-paper-teacher-{ds}-{key(cfg)}.pt"


def deps(cfg: dict) -> list[dict]:
    return [] if cfg["kind"] == "teacher" else [teacher_job(cfg["dataset"])]


def run(cfg: dict) -> dict:
    """One configuration; returns its record (the runner stores it)."""
    import torch

    torch.set_num_threads(1)
    from codesign.snn.checkpoint import load_checkpoint, save_checkpoint
    from codesign.train.distill import make_distill_loss
    from codesign.train.loop import TrainConfig, evaluate, fit
    from codesign.train.recipe import prepare_model, seed_everything

    data = _data(cfg["dataset"])
    n = cfg["n_train"]
    xs = (data.x_train[:n], data.y_train[:n], data.x_test, data.y_test)
    start = time.perf_counter()
    seed_everything(cfg["seed"])
    tcfg = TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch"], lr=cfg["lr"],
                       seed=cfg["seed"], device="cpu",
                       bn_one_conv=bool(cfg.get("bn_one_conv", False)))  # reports/bn-fold
    out: dict[str, Any] = {"config": cfg, "key": key(cfg)}
    if cfg["kind"] == "teacher":
        if "checkpoint" in cfg:
            net, meta = load_checkpoint(REPO / cfg["checkpoint"])
            out["train_config"] = meta.get("train_config")
        else:
            net = prepare_model(cfg["model"], data, T=cfg["T"])
            res = fit(net, *xs, tcfg, progress=False)
            save_checkpoint(teacher_path(cfg["dataset"]), net,
                            {"dataset": data.name, "split_seed": 0,
                             "test_accuracy": res.test_accuracy})
        out["test_accuracy"] = evaluate(net, data.x_test, data.y_test)
    else:
        net = prepare_model(None, data, init=teacher_path(cfg["dataset"]), quant=cfg["quant"])
        codes = {name: float((syn.wq.integer(syn.folded()[0]) != 0).float().mean())
                 for name, syn in net.synapses() if syn.wq.enabled}
        out["nonzero_codes_at_init"] = codes
        if cfg["kind"] == "ptq":
            out["test_accuracy"] = evaluate(net, data.x_test, data.y_test)
        else:
            loss_fn, extra = None, None
            if cfg.get("methods"):
                teacher, _ = load_checkpoint(teacher_path(cfg["dataset"]))
                kw = {k: cfg[k] for k in ("alpha", "beta", "tau", "md_layers") if k in cfg}
                loss_fn = make_distill_loss(teacher, net, cfg["methods"], **kw)
                extra = list(loss_fn.head.parameters())
            res = fit(net, *xs, tcfg, loss_fn=loss_fn, extra_params=extra, progress=False)
            out.update(test_accuracy=res.test_accuracy, val_accuracy=res.best_val_accuracy,
                       best_epoch=res.best_epoch, history=res.history,
                       distill_settings=loss_fn.settings.to_dict() if loss_fn else None)
    out["seconds"] = round(time.perf_counter() - start, 1)
    out["params"] = net.n_params()
    return out


def _describe(cfg: dict, rec: dict) -> str:
    return (f"{result_path(cfg).name}: acc {100 * rec['test_accuracy']:.1f} % in "
            f"{rec['seconds']:.0f} s")


def run_all(seeds: list[int], workers: int, budget_min: float) -> None:
    """The grid on the library's runner; nothing new is submitted after ``budget_min``."""
    from codesign.sweep import JobSpec, ResultStore, open_executor, run_jobs

    spec = JobSpec(evaluate=run, key=key, record=lambda cfg, rec, seconds: rec,
                   name=lambda cfg: result_path(cfg).name, describe=_describe,
                   ready=lambda cfg: all(result_path(d).exists() for d in deps(cfg)))
    store = ResultStore(RESULTS, subdir=None, log=False)
    with open_executor(workers) as backend:
        rep = run_jobs(grid(seeds), spec, store, backend, label="md-paper",
                       deadline_s=60 * budget_min, stop_on_error=False)
    for k, err in rep.failed:
        print(f"FAILED {k}: {err}", flush=True)


# -------------------------------------------------------------------------------- report

FINDINGS_START, FINDINGS_END = "<!-- findings -->", "<!-- /findings -->"


def _kept_findings(path: Path) -> str:
    if path.exists():
        text = path.read_text()
        if FINDINGS_START in text and FINDINGS_END in text:
            return text[text.index(FINDINGS_START):text.index(FINDINGS_END) + len(FINDINGS_END)]
    return f"{FINDINGS_START}\n(to be written after the runs)\n{FINDINGS_END}"


def _long_table(results: list[dict], seeds: list[int], ds: str
                ) -> tuple[list[str], list[str]]:
    """Markdown rows of the extra ``LONG_EPOCHS``-epoch cell on ``ds`` and its missing runs:
    accuracy after 1 and ``LONG_EPOCHS`` epochs, paired (same seed) against CE at
    ``LONG_EPOCHS`` epochs and against the same method at 1 epoch."""
    sel = dict(kind="student", dataset=ds, bits=LONG_BITS)
    one = _select(results, epochs=EPOCHS, **sel)
    long = _select(results, epochs=LONG_EPOCHS, **sel)
    ptq = _select(results, kind="ptq", dataset=ds, bits=LONG_BITS)
    n = LONG_EPOCHS
    lines = [f"| student | {EPOCHS} epoch | {n} epochs | {n} epochs: paired vs CE (points) "
             f"| {n} vs {EPOCHS} epoch, same method (points) | best-val epoch |",
             "|---|---|---|---|---|---|",
             f"| PTQ (no fine-tuning) | {_stats([r['test_accuracy'] for r in ptq])} | | | | |"]
    missing = []
    for name in LONG_METHODS:
        a1, an = _select(one, method=name), _select(long, method=name)
        vs_ce = "" if name == "ce" else _paired(an, _select(long, method="ce"))
        best = ", ".join(str(r.get("best_epoch", "?"))
                         for r in sorted(an, key=lambda r: r["config"]["seed"]))
        lines.append(f"| {name} | {_stats([r['test_accuracy'] for r in a1])} | "
                     f"{_stats([r['test_accuracy'] for r in an])} | {vs_ce} | "
                     f"{_paired(an, a1)} | {best} |")
        got = {r["config"]["seed"] for r in an}
        if len(got) < len(seeds):
            missing.append(f"{ds} {LONG_BITS} {name}, {n} epochs "
                           f"(seeds run: {sorted(got) or 'none'})")
    return lines, missing


def report(seeds: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    out = HERE / "md_paper_setting.md"
    names = [*MAIN, *ABLATION]
    lines: list[str] = []
    missing: list[str] = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, ds in enumerate(("mnist5k", "nmnist5k")):
        teacher = _select(results, kind="teacher", dataset=ds)
        t_acc = _stats([r["test_accuracy"] for r in teacher])
        lines += [f"\n### {ds}\n", f"FP teacher {TEACHER}: {t_acc}"
                  + (f" ({teacher[0]['params']} params)" if teacher else ""), "",
                  "| student | " + " | ".join(BITS) + " | " + " | ".join(
                      f"{b}: paired vs CE (points)" for b in BITS) + " |",
                  "|---|" + "---|" * (2 * len(BITS))]
        ptq = {b: _select(results, kind="ptq", dataset=ds, bits=b) for b in BITS}
        lines.append("| PTQ (no fine-tuning) | " + " | ".join(
            _stats([r["test_accuracy"] for r in ptq[b]]) for b in BITS) + " |" + " |" * len(BITS))
        st = _select(results, kind="student", dataset=ds, epochs=EPOCHS)
        for name in names:
            cells = [_stats([r["test_accuracy"] for r in _select(st, bits=b, method=name)])
                     for b in BITS]
            cells += ["" if name == "ce" else _paired(_select(st, bits=b, method=name),
                                                      _select(st, bits=b, method="ce"))
                      for b in BITS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
            for b in BITS:
                got = {r["config"]["seed"] for r in _select(st, bits=b, method=name)}
                if len(got) < len(seeds):
                    missing.append(f"{ds} {b} {name} (seeds run: {sorted(got) or 'none'})")
        ax = axes[i]
        width = 0.8 / (len(names) + 1)
        for j, name in enumerate(["PTQ", *names]):
            runs = {b: ptq[b] if name == "PTQ" else _select(st, bits=b, method=name)
                    for b in BITS}
            ms = [_mean_std([r["test_accuracy"] for r in runs[b]]) for b in BITS]
            off = (j - len(names) / 2) * width
            ax.bar([k + off for k in range(len(BITS))], [m for m, _ in ms], width,
                   yerr=[sd for _, sd in ms], label=name, capsize=2)
        if teacher:
            ax.axhline(100 * teacher[0]["test_accuracy"], color="k", ls="--", lw=1,
                       label="FP teacher")
        ax.set_xticks(range(len(BITS)), list(BITS))
        ax.set_title(f"{ds}: {TEACHER} QAT from the FP teacher")
        ax.set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(HERE / "md_paper_setting.png", dpi=110)
    long_lines: list[str] = []
    for ds in LONG_DATASETS:
        rows, long_missing = _long_table(results, seeds, ds)
        missing += long_missing
        long_lines += [f"### Extra cell: {ds} {LONG_BITS}, {LONG_EPOCHS} epochs of fine-tuning",
                       "", *rows, ""]
    mtimes = sorted(p.stat().st_mtime for p in RESULTS.glob("*.json"))
    wall = (mtimes[-1] - mtimes[0]) / 60 if len(mtimes) > 1 else 0.0
    summed = sum(r["seconds"] for r in results) / 60
    text = [
        "# MD-SNN in the paper's setting: same architecture, QAT from the FP teacher (issue 11)",
        "",
        "Generated by `reports/distillation/run_md_paper.py` (tables, figure, setup); the "
        "findings section is written by hand and kept when the report is rebuilt.",
        "",
        "## Commands",
        "",
        "```",
        ".venv/bin/python reports/distillation/run_md_paper.py --workers 2 --budget-min 85"
        "  # resumable: rerun until nothing is left",
        ".venv/bin/python reports/distillation/run_md_paper.py --report  # tables and figure",
        "```",
        "",
        "## Setup",
        "",
        f"* Data: mnist5k / nmnist5k, split seed 0, T={T}; fine-tuning on the first {N_TRAIN} "
        "training images (10 % held out for model selection), test on all 1,000 test images.",
        f"* Teacher: {TEACHER} float; mnist5k: the shipped `models/teacher_fp.pt` (20 epochs, "
        "all training images); nmnist5k: trained here (4 epochs, lr 0.002, on the same first "
        f"{N_TRAIN} training images as the students: a weaker teacher than mnist5k's).",
        f"* Student: the same {TEACHER}, initialised from the teacher (weights, BN statistics; "
        "steps from `calibrate_quantizers`), hidden weights / membrane at W4/U4, W3/U3 or W2/U2 "
        f"(first conv and readout 8 bit, shared per-layer step, MINT-style); fine-tuned {EPOCHS} "
        f"epoch(s), batch {BATCH}, Adam lr {LR}, 2-px shift augmentation on mnist5k.",
        f"* KD: alpha={KD['alpha']}, tau={KD['tau']}; MD: beta={BETA}, MSE on H/theta, every "
        "step, all four LIF layers (no connectors: same widths); ablation `md last1` = lif_fc1 "
        "only, `md last2` = lif3 + lif_fc1. CE weight 1 throughout.",
        f"* Extra cells: {' and '.join(LONG_DATASETS)} {LONG_BITS} fine-tuned {LONG_EPOCHS} "
        f"epochs (otherwise the same runs) for {', '.join(LONG_METHODS)}; own tables below, "
        "not in the figure.",
        "* PTQ: the quantized student right after initialisation, no training (seed-free). "
        "Seeds 0-2 change shuffling, augmentation and the validation hold-out; teacher and "
        "split are fixed. Mean ± sample std over seeds in %; paired = same seed.",
        f"* {len(results)} records; summed run time {summed:.0f} min; first to last result "
        f"{wall:.0f} min wall (2 worker processes, 1 thread each, on 2 CPU cores shared with "
        "other engineers' jobs).",
        "",
        "## Findings",
        "",
        _kept_findings(out),
        "",
        "## Results",
        *lines,
        "",
        "![accuracy](md_paper_setting.png)",
        "",
        *long_lines,
        "## Cells not run (time budget)",
        "",
        *([f"* {m}" for m in missing] or ["* none"]),
        "",
    ]
    out.write_text("\n".join(text) + "\n")
    print(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--budget-min", type=float, default=30.0,
                    help="start no new run after this many minutes")
    ap.add_argument("--report", action="store_true", help="only rebuild the report")
    ap.add_argument("--one", help="run one grid entry by index (timing) and print it")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.one is not None:
        cfg = grid(seeds)[int(args.one)]
        rec = run(cfg)
        print(_describe(cfg, rec), json.dumps(rec.get("nonzero_codes_at_init")))
        return
    if not args.report:
        run_all(seeds, args.workers, args.budget_min)
    report(seeds)


if __name__ == "__main__":
    main()
