"""Whole sweeps as a user runs them: killed and resumed, and through a real Dask cluster.

One uninterrupted serial sweep (``codesign sweep-bits --workers 1``) is the reference; every
other way of running the same grid must give a byte-identical ``results.csv``:

* a sweep SIGKILLed mid-run, then run again (and the computations log shows no point computed
  twice);
* a sweep through a Dask scheduler and two workers started here on loopback;
* a sweep during which one of the Dask workers is SIGKILLed (Dask reruns its task elsewhere).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codesign.sweep.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "teacher_fp.pt"
HW = ROOT / "hw_configs" / "sram_neurosim_22nm.yaml"
CLI = [sys.executable, "-c", "from codesign.cli.main import main; main()"]
ARGS = ["sweep-bits", str(MODEL), "--hw", str(HW), "--data", "mnist5k", "--wbits", "2,3,4",
        "--ubits", "4,8", "--adc-bits", "5", "--samples", "60", "--activity-samples", "16",
        "--seed", "1", "--quiet"]
N_POINTS = 6


def sweep(out: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([*CLI, *ARGS, *extra, "--out", str(out)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def n_records(out: Path) -> int:
    return len(list((out / "points").glob("*.json"))) if (out / "points").exists() else 0


def wait_for(cond, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("ref") / "serial"
    sweep(out, "--workers", "1")
    data = (out / "results.csv").read_bytes()
    assert data.count(b"\n") == N_POINTS + 1
    return data


def test_killed_sweep_resumes_to_the_same_results(tmp_path, reference):
    out = tmp_path / "killed"
    proc = subprocess.Popen([*CLI, *ARGS, "--workers", "1", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_for(lambda: n_records(out) >= 2 or proc.poll() is not None, 180, "2 records")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done_at_kill = n_records(out)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= done_at_kill < N_POINTS, "the sweep was not killed mid-run"
    assert not (out / "results.csv").exists()

    again = sweep(out, "--workers", "1")
    assert (out / "results.csv").read_bytes() == reference
    log = ResultStore(out).computations()
    keys = [e["key"] for e in log]
    assert len(keys) == N_POINTS and len(set(keys)) == N_POINTS, "a point was computed twice"
    assert len({e["run"] for e in log}) == 2  # first run and the resumed one
    assert again.returncode == 0


# ------------------------------------------------------------------------------------ Dask


def _start(args: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=fh,
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("distributed")
    d = tmp_path_factory.mktemp("dask")
    sched_file = d / "scheduler.json"
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)], d / "sched.log")]
    try:
        wait_for(sched_file.exists, 60, "the scheduler file")
        for i in range(2):
            procs.append(_start(["distributed.cli.dask_worker", "--scheduler-file",
                                 str(sched_file), "--nthreads", "1", "--no-nanny",
                                 "--no-dashboard", "--memory-limit", "0", "--name", f"w{i}"],
                                d / f"worker{i}.log"))
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout="30s") as c:
            c.wait_for_workers(2, timeout=90)
        yield {"file": sched_file, "address": json.loads(sched_file.read_text())["address"],
               "workers": procs[1:]}
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def test_dask_sweep_matches_serial(tmp_path, reference, cluster):
    out = tmp_path / "dask"
    sweep(out, "--scheduler", cluster["address"])
    assert (out / "results.csv").read_bytes() == reference
    hosts = {e["pid"] for e in ResultStore(out).computations()}
    assert len(hosts) == 1  # the driver alone writes the store


def test_dask_worker_killed_mid_sweep_still_completes(tmp_path, reference, cluster):
    out = tmp_path / "dask-kill"
    proc = subprocess.Popen([*CLI, *ARGS, "--scheduler-file", str(cluster["file"]), "--out",
                             str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    victim = cluster["workers"][0]
    try:
        wait_for(lambda: n_records(out) >= 1 or proc.poll() is not None, 180, "1 record")
        assert n_records(out) < N_POINTS, "the sweep ended before a worker could be killed"
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]
    assert (out / "results.csv").read_bytes() == reference
    keys = [e["key"] for e in ResultStore(out).computations()]
    assert len(keys) == N_POINTS == len(set(keys))
