"""codesign.allocator: freed tensor buffers are reused instead of faulted in again.

The oracle is the kernel's own count of minor page faults (``getrusage``) against the number
of 4 kB pages the buffers span, in fresh interpreters (the setting is per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from codesign import allocator

glibc = pytest.mark.skipif(not allocator._glibc(), reason="mallopt is glibc's")

# buffers of 40 MB, each written once: above glibc's largest dynamic mmap threshold (32 MB),
# so without the setting every one is a fresh mapping. With it, the first 8 still extended the
# heap here (measured one by one; torch's 64-byte aligned requests are probably a little larger
# than the chunk freed before), then every buffer reused freed pages: 10 are the warm-up
PROBE = """
import json, os, resource, sys
import torch
from codesign.allocator import keep_freed_memory
applied = keep_freed_memory()
n = 10 * 2**20  # float32 values: 40 MB
for _ in range(10):  # the heap's warm-up (above)
    torch.empty(n).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(n).fill_(1.0)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "faults": faults, "pages": 20 * n * 4 // 4096}))
"""


def _probe(**env: str) -> dict:
    full = {k: v for k, v in os.environ.items()
            if k not in allocator.USER_VARIABLES + ("GLIBC_TUNABLES", allocator.OPT_OUT)}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _huge_pages_always() -> bool:
    """Transparent huge pages for every mapping: a fresh 40 MB buffer then faults in 2 MB
    pages, so the fault count no longer equals its 4 kB page count."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


@glibc
def test_freed_buffers_are_reused_not_faulted_in_again() -> None:
    on = _probe()
    off = _probe(**{allocator.OPT_OUT: "0"})
    assert on["applied"] and not off["applied"]
    # without the setting: every page of every buffer is a fresh fault (2 MB pages when the
    # kernel backs every mapping with huge pages)
    pages = off["pages"] // 512 if _huge_pages_always() else off["pages"]
    assert off["faults"] >= 0.9 * pages
    # with it: the 20 buffers reuse freed pages (2 % of slack)
    assert on["faults"] < 0.02 * on["pages"]


@glibc
def test_the_users_own_glibc_settings_win() -> None:
    assert not _probe(MALLOC_TRIM_THRESHOLD_="131072")["applied"]
    assert not _probe(GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")["applied"]
    assert _probe(GLIBC_TUNABLES="glibc.rtld.optional_static_tls=2048")["applied"]


def test_the_cli_and_the_pool_workers_apply_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from codesign.cli.main import cli
    from codesign.sweep import executors

    calls: list[str] = []
    monkeypatch.setattr("codesign.cli.main.keep_freed_memory", lambda: calls.append("cli"))
    monkeypatch.setattr(executors, "keep_freed_memory", lambda: calls.append("worker"))
    result = CliRunner().invoke(cli, ["presets"])
    assert result.exit_code == 0, result.output
    import torch

    threads = torch.get_num_threads()  # the worker initialiser sets one thread: restore it
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    try:
        executors._worker_init()
    finally:
        torch.set_num_threads(threads)
    assert calls == ["cli", "worker"]


@pytest.mark.parametrize("value", ["yes", "false", "", "2"])
def test_a_bad_opt_out_value_is_one_clear_error(value: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from codesign.cli.main import cli

    monkeypatch.setenv(allocator.OPT_OUT, value)
    result = CliRunner().invoke(cli, ["presets"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and allocator.OPT_OUT in lines[0]
    assert "expected 0" in lines[0] and "Traceback" not in result.output
