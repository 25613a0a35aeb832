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


def assert_same_results(out: Path, reference: bytes) -> None:
    """``out/results.csv`` is ``reference`` byte for byte; where the keys (the last column)
    differ because other engineers' edits of ``codesign/`` changed the code version between
    the two sweeps (this checkout is shared), everything but the keys is."""
    got = (out / "results.csv").read_bytes()
    if got == reference:
        return
    strip = [[ln.rsplit(b",", 1)[0] for ln in blob.splitlines()] for blob in (got, reference)]
    assert strip[0] == strip[1], "results differ (beyond the keys)"


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
    assert_same_results(out, reference)
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
    assert_same_results(out, reference)
    keys = [e["key"] for e in ResultStore(out).computations()]
    assert len(keys) == N_POINTS == len(set(keys))


# ------------------------------------------------------------------------------ local pool


def test_local_pool_sweep_matches_serial(tmp_path, reference):
    """The default local pool (fork server) gives the serial results; two workers computed
    points, and only the driver wrote the store."""
    out = tmp_path / "pool"
    sweep(out, "--workers", "2")
    assert_same_results(out, reference)
    recs = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert len({r["run"]["pid_worker"] for r in recs}) == 2
    assert len({e["pid"] for e in ResultStore(out).computations()}) == 1


POOL_AFTER_THREADS = '''
import os, sys, torch
from codesign.sweep.executors import open_executor, start_method

def conv(seed):
    g = torch.Generator().manual_seed(seed)
    x, w = torch.randn(8, 3, 32, 32, generator=g), torch.randn(16, 3, 3, 3, generator=g)
    return torch.nn.functional.conv2d(x, w).double().sum().item(), torch.get_num_threads(), \\
        os.getpid()

if __name__ == "__main__":
    torch.set_num_threads(2)
    want = [conv(s)[0] for s in range(4)]  # the parent runs parallel torch ops first
    with open_executor(2) as backend:
        futs = [backend.executor.submit(conv, s) for s in range(4)]
        got = [f.result(timeout=120) for f in futs]
    assert [g[0] for g in got] == want, (got, want)
    assert {g[1] for g in got} == {1}, got  # one torch thread per worker
    assert os.getpid() not in {g[2] for g in got}
    print(start_method(), backend.description, flush=True)
'''


def test_pool_after_the_parent_used_torch_threads(tmp_path):
    """A driver that ran multi-threaded torch operations (e.g. a serial sweep) then opens the
    pool: its workers (forked from the fork server, not from the driver) run torch without
    hanging and compute what the parent computes, on one thread each."""
    script = tmp_path / "pool_after_threads.py"
    script.write_text(POOL_AFTER_THREADS)
    proc = subprocess.run([sys.executable, "-P", str(script)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] == "forkserver" and "2 workers" in proc.stdout
