"""One fleet job: `compress-export run job.yaml --out FOLDER` in a process of its own (the same code path and the same
bundle as a single run), which dies with the worker that started it, so a killed or cancelled worker never leaves a
run writing behind the retry. It computes under the machine's shared hold and measures alone (util/measure_lock)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ..errors import EXIT_EXPORT_FAILED
from ..runtimes.machine import NODE_ENV
from ..util.measure_lock import HELD_FD_ENV, hold_shared
from .job_state import RECIPE, clear_debris, read_record, write_record

# Linux: the run is killed with its parent (prctl PR_SET_PDEATHSIG), even when the parent is killed with SIGKILL.
DIE_WITH_PARENT = """
import ctypes, os, signal, sys
parent = int(sys.argv[1])
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(137)
os.execv(sys.argv[2], sys.argv[2:])
"""


def run_job(spec: dict) -> dict:
    """`spec`: folder, key, model, recipe, stats_cache (or None), threads (the driver's OMP_NUM_THREADS or None).
    Returns the job's record."""
    folder = Path(spec["folder"])
    previous = read_record(folder)
    attempts = previous.get("attempts", 0) + 1 if previous.get("key") == spec["key"] and \
        previous.get("state") == "running" else 1
    clear_debris(folder)
    (folder / "summary.json").unlink(missing_ok=True)  # the bundles this attempt wrote are read from it
    record = {"model": spec["model"], "recipe": spec["recipe"], "key": spec["key"], "state": "running",
              "attempts": attempts, "pid": os.getpid(), "host": platform.node(), "node": _node_id(),
              "started": time.time()}
    write_record(folder, record)
    command = [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), sys.executable, "-m", "compress_export",
               "run", str(folder / RECIPE), "--out", str(folder), "--quiet"]
    if spec.get("stats_cache"):
        command += ["--stats-cache", spec["stats_cache"]]
    held = hold_shared()  # from before the run's first import to after its exit: all of it is compute
    try:
        done = subprocess.run(command, env={**_environment(spec), HELD_FD_ENV: str(held)}, pass_fds=(held,),
                              capture_output=True, text=True)
    finally:
        os.close(held)
    record.update(state="done", exit_code=done.returncode, seconds=round(time.time() - record["started"], 3))
    summary = _summary(folder)
    record["bundles"] = [Path(entry["bundle"]).name for entry in summary.get("targets", []) if entry.get("bundle")]
    if done.returncode not in (0, 1):
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        record["error"] = lines[-1] if lines else f"the run ended with exit code {done.returncode}"
        if done.returncode < 0:  # killed by a signal (the out-of-memory killer, a user), not by our error boundary
            record.update(exit_code=EXIT_EXPORT_FAILED, error=f"the run was killed by signal {-done.returncode}")
    write_record(folder, record)
    return record


def _environment(spec: dict) -> dict:
    """The driver's thread setting, not the worker's (Ray sets OMP_NUM_THREADS=1 in its workers, which would time
    torch artifacts on one thread), and the cluster node it runs on."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = spec["threads"]
    node = _node_id()
    env[NODE_ENV] = f"{platform.node()} (ray node {node[:12]})" if node else platform.node()
    return env


def _summary(folder: Path) -> dict:
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # outside a Ray worker there is no node
        return ""


def failed_record(spec: dict, error: str, code: int = EXIT_EXPORT_FAILED) -> dict:
    """The record of a job that never completed (its worker lost past every retry, or the fleet cancelled)."""
    folder = Path(spec["folder"])
    clear_debris(folder)
    record = {**read_record(folder), "model": spec["model"], "recipe": spec["recipe"], "key": spec["key"],
              "state": "failed", "exit_code": code, "error": error, "bundles": []}
    write_record(folder, record)
    return record
