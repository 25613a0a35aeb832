"""Reproduction study of the distillation methods of codesign.train.distill (issue #4).

Questions (mnist5k and nmnist5k, T = 4):

* Q1 quantized student from scratch: CE only, + logit KD, + MD, + logit KD + MD, at W4/U4 and
  at the harsher W3/U3; references: the FP teacher and an FP student trained with CE.
* Q2 temporal-wise KD vs standard (mean-logit) KD: test accuracy with the first 1..T steps.
* Q3 multi-stage (teacher -> assistant -> student) vs direct distillation.

Resumable: every run writes ``results/<name>-<hash>.json`` atomically, keyed by a hash of its
configuration; a rerun skips finished runs. ``--report`` only rebuilds README.md and figures.

    .venv/bin/python reports/distillation/run_study.py --workers 2
    .venv/bin/python reports/distillation/run_study.py --report
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE / "work"  # teacher / assistant checkpoints (not results)

DATASETS = ("mnist5k", "nmnist5k")
T = 4
N_TRAIN = 1500  # first N images of the stratified training split (test split: all 1,000)
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


# ------------------------------------------------------------------------------- the grid


def job(kind: str, dataset: str, seed: int, **cfg: Any) -> dict:
    return {"kind": kind, "dataset": dataset, "seed": seed, "T": T, "n_train": N_TRAIN,
            "epochs": EPOCHS, "batch": BATCH, **cfg}


def teacher_job(ds: str) -> dict:
    return job("teacher", ds, 0, model=TEACHER, quant=None, lr=LR_TEACHER)


def assistant_job(ds: str) -> dict:
    return job("assistant", ds, 0, model=ASSISTANT, quant=None, lr=LR_STUDENT,
               methods="logit", **KD)


def grid(seeds: list[int]) -> list[dict]:
    """All runs in priority order: teachers, assistants, then seed by seed every question."""
    jobs = [teacher_job(ds) for ds in DATASETS] + [assistant_job(ds) for ds in DATASETS]
    for seed in seeds:
        for ds in DATASETS:
            for bits, q in BITS.items():
                for name, methods in Q1_METHODS.items():
                    extra: dict[str, Any] = {}
                    if methods and "logit" in methods:
                        extra.update(KD)
                    if methods and "md" in methods:
                        extra.update(MD)
                    jobs.append(job("student", ds, seed, model=STUDENT, quant=q, bits=bits,
                                    method=name, methods=methods, lr=LR_STUDENT, **extra))
            jobs.append(job("student", ds, seed, model=STUDENT, quant=BITS["W4U4"], bits="W4U4",
                            method="temporal", methods="temporal", lr=LR_STUDENT, **TEMPORAL))
            jobs.append(job("multistage", ds, seed, model=STUDENT, quant=BITS["W4U4"],
                            bits="W4U4", method="logit via assistant", methods="logit",
                            lr=LR_STUDENT, **KD))
            jobs.append(job("student", ds, seed, model=STUDENT, quant=None, bits="FP",
                            method="ce", methods=None, lr=LR_STUDENT))
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
    if cfg["kind"] == "student" and cfg["methods"] is None:
        return []
    return [teacher_job(cfg["dataset"])]


def write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=1)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------- a run


@lru_cache(maxsize=2)
def _data(name: str):
    from codesign.data import load_dataset

    return load_dataset(name, split_seed=0, T=T)


def run(cfg: dict) -> str:
    """Train one configuration and write its JSON; returns the result path."""
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
    if cfg["methods"]:
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
    path = result_path(cfg)
    write_json_atomic(path, out)
    return str(path)


def run_all(seeds: list[int], workers: int) -> None:
    todo = [c for c in grid(seeds) if not result_path(c).exists()]
    print(f"{len(todo)} run(s) to do", file=sys.stderr, flush=True)
    running: dict[Future, dict] = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        while todo or running:
            for cfg in list(todo):
                if len(running) >= workers:
                    break
                if all(result_path(d).exists() for d in deps(cfg)):
                    todo.remove(cfg)
                    running[pool.submit(run, cfg)] = cfg
            if not running:
                raise SystemExit("no runnable job: a dependency failed")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                cfg = running.pop(fut)
                try:
                    path = fut.result()
                    r = json.loads(Path(path).read_text())
                    print(f"[{time.perf_counter() - t0:6.0f} s] {Path(path).name}: "
                          f"acc {100 * r['test_accuracy']:.1f} % in {r['seconds']:.0f} s",
                          file=sys.stderr, flush=True)
                except Exception as exc:  # keep the sweep going; the run is retried next time
                    print(f"FAILED {cfg}: {exc!r}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------- report


def load_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def _stats(values: list[float]) -> str:
    import numpy as np

    if not values:
        return "n/a"
    a = 100 * np.asarray(values)
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    return f"{a.mean():.1f} ± {sd:.1f} (n={len(a)})"


def _select(results: list[dict], **where: Any) -> list[dict]:
    return [r for r in results if all(r["config"].get(k) == v for k, v in where.items())]


def _mean_std(rs: list[dict], field: str = "test_accuracy", idx: int | None = None):
    import numpy as np

    vals = [r[field] if idx is None else r[field][idx] for r in rs]
    if not vals:
        return float("nan"), 0.0
    a = 100 * np.asarray(vals)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def report() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = load_results()
    lines: list[str] = []
    fig_q1, axes1 = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    fig_q2, axes2 = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    fig_q3, axes3 = plt.subplots(1, 2, figsize=(8, 3.8), sharey=True)
    q1, q2, q3 = [], [], []
    for i, ds in enumerate(DATASETS):
        teacher = _select(results, kind="teacher", dataset=ds)
        t_acc = _stats([r["test_accuracy"] for r in teacher])
        t_params = teacher[0]["params"] if teacher else "?"
        s_any = _select(results, kind="student", dataset=ds)
        s_params = s_any[0]["params"] if s_any else "?"
        fp = _select(results, kind="student", dataset=ds, bits="FP")
        q1 += [f"\n**{ds}** (teacher {TEACHER}, {t_params} params, 1 run: {t_acc}; student "
               f"{STUDENT}, {s_params} params; FP {STUDENT} with CE: "
               f"{_stats([r['test_accuracy'] for r in fp])})\n",
               "| student method | " + " | ".join(BITS) + " |", "|---|" + "---|" * len(BITS)]
        for name in Q1_METHODS:
            row = [_stats([r["test_accuracy"] for r in _select(s_any, bits=b, method=name)])
                   for b in BITS]
            q1.append(f"| {name} | " + " | ".join(row) + " |")
        ax = axes1[i]
        width = 0.2
        for j, name in enumerate(Q1_METHODS):
            ms = [_mean_std(_select(s_any, bits=b, method=name)) for b in BITS]
            ax.bar([k + (j - 1.5) * width for k in range(len(BITS))], [m for m, _ in ms],
                   width, yerr=[s for _, s in ms], label=name, capsize=3)
        if teacher:
            ax.axhline(100 * teacher[0]["test_accuracy"], color="k", ls="--", lw=1,
                       label="FP teacher")
        if fp:
            ax.axhline(_mean_std(fp)[0], color="gray", ls=":", lw=1, label=f"FP {STUDENT}")
        ax.set_xticks(range(len(BITS)), list(BITS))
        ax.set_title(ds)
        ax.set_ylabel("test accuracy (%)")
        # Q2
        std_kd = _select(s_any, bits="W4U4", method="logit")
        tw = _select(s_any, bits="W4U4", method="temporal")
        ce = _select(s_any, bits="W4U4", method="ce")
        q2 += [f"\n**{ds}** ({STUDENT} W4/U4, trained at T={T})\n",
               "| training | " + " | ".join(f"{k} step{'s' if k > 1 else ''}"
                                           for k in range(1, T + 1)) + " |",
               "|---|" + "---|" * T]
        ax = axes2[i]
        for label, rs in (("CE only", ce), ("standard KD", std_kd), ("temporal-wise KD", tw)):
            q2.append(f"| {label} | " + " | ".join(
                _stats([r["accuracy_by_steps"][k] for r in rs]) for k in range(T)) + " |")
            if rs:
                ms = [_mean_std(rs, "accuracy_by_steps", k) for k in range(T)]
                ax.errorbar(range(1, T + 1), [m for m, _ in ms], yerr=[s for _, s in ms],
                            marker="o", capsize=3, label=label)
        ax.set_xticks(range(1, T + 1))
        ax.set_xlabel("inference steps")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(ds)
        # Q3
        assistant = _select(results, kind="assistant", dataset=ds)
        ms_runs = _select(results, kind="multistage", dataset=ds)
        a_params = assistant[0]["params"] if assistant else "?"
        q3 += [f"\n**{ds}** ({TEACHER} {t_params} -> {ASSISTANT} {a_params} -> {STUDENT} "
               f"{s_params} params, student W4/U4)\n",
               "| route | test accuracy |", "|---|---|",
               f"| teacher ({TEACHER}, FP) | {t_acc} |",
               f"| assistant ({ASSISTANT}, FP, KD from teacher) | "
               f"{_stats([r['test_accuracy'] for r in assistant])} |",
               f"| student, CE only | {_stats([r['test_accuracy'] for r in ce])} |",
               f"| student, direct KD from teacher | "
               f"{_stats([r['test_accuracy'] for r in std_kd])} |",
               f"| student, multi-stage KD via assistant | "
               f"{_stats([r['test_accuracy'] for r in ms_runs])} |"]
        ax = axes3[i]
        bars = [("CE", ce), ("direct KD", std_kd), ("multi-stage", ms_runs)]
        ms = [_mean_std(rs) for _, rs in bars]
        ax.bar(range(3), [m for m, _ in ms], yerr=[s for _, s in ms], capsize=3,
               color=["gray", "tab:blue", "tab:orange"])
        ax.set_xticks(range(3), [b for b, _ in bars])
        ax.set_title(ds)
        ax.set_ylabel("test accuracy (%)")
    axes1[0].legend(fontsize=7, loc="lower left")
    axes2[0].legend(fontsize=8)
    for fig, name in ((fig_q1, "q1_quantized_student.png"), (fig_q2, "q2_temporal_steps.png"),
                      (fig_q3, "q3_multistage.png")):
        fig.tight_layout()
        fig.savefig(HERE / name, dpi=120)
    secs = sum(r["seconds"] for r in results)
    lines += [f"<!-- generated by run_study.py --report from {len(results)} runs, "
              f"{secs / 60:.0f} min of summed run time -->"]
    (HERE / "tables.md").write_text("\n".join(
        ["## Q1", *q1, "", "## Q2", *q2, "", "## Q3", *q3, "", *lines]) + "\n")
    print((HERE / "tables.md").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--report", action="store_true", help="only rebuild tables and figures")
    args = ap.parse_args()
    if not args.report:
        run_all([int(s) for s in args.seeds.split(",")], args.workers)
    report()


if __name__ == "__main__":
    main()
