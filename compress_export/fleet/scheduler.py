"""The sweep's driver: plans the jobs (finished ones skipped, gate-only recipes re-gated), runs the rest as Ray tasks
(a local Ray by default, a cluster at --address), at most one job per CPU it was given, and hands calibration
statistics from a model's first job to its others. A worker lost mid-job is retried (Ray's retries, bounded); a job
that still fails is listed with its error. Ctrl-C or SIGTERM cancels what runs and leaves finished bundles intact."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..bundle.writer import ensure_writable
from ..cli.recipe_file import resolved_recipe
from ..errors import EXIT_INTERRUPTED, MissingDependencyError, UsageError
from .fleet_file import Fleet, FleetJob, parsed
from .job_runner import failed_record, run_job
from .job_state import finished, job_key, read_record, write_job_recipe, write_record
from .regate import differs_only_in_gates, regate, regate_plan

PROBE_SECONDS = 5
STATISTICS = ".statistics"  # OUT/.statistics/<model>/: calibration statistics shared by a model's jobs


@dataclass(frozen=True)
class SweepSettings:
    out: Path
    address: str | None = None  # None: a local Ray started here; "auto", "ray://host:port": that cluster
    workers: int | None = None  # jobs at once (default: the cluster's CPUs)
    force: bool = False  # rebuild finished jobs
    share: bool = True  # calibration statistics computed once per model
    retries: int = 2  # a lost worker's job runs again at most this many times
    progress: bool = True


@dataclass
class Planned:
    job: FleetJob
    spec: dict
    params: dict
    records: list = field(default_factory=list)


def plan(fleet: Fleet, settings: SweepSettings, command: click.Command) -> list[Planned]:
    planned = []
    threads = os.environ.get("OMP_NUM_THREADS")
    for job in fleet.jobs:
        folder = settings.out / job.model / job.recipe
        key = job_key(job.values)
        spec = {"folder": str(folder), "key": key, "model": job.model, "recipe": job.recipe, "threads": threads,
                "stats_cache": str(settings.out / STATISTICS / job.model) if settings.share else None}
        params = parsed(command, {**job.values, "out": str(folder)}, job.name)
        planned.append(Planned(job, spec, params))
    return planned


def run_sweep(fleet: Fleet, settings: SweepSettings, command: click.Command,
              report: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """The record of every job (job_state.RECORD), in the fleet's order; `report(records)` runs at the end, also
    when the sweep is interrupted (cancelled jobs listed as such)."""
    planned = plan(fleet, settings, command)
    pending = [item for item in planned
               if settings.force or not finished(Path(item.spec["folder"]), item.spec["key"])]
    for item in planned:
        if not any(item is other for other in pending):
            item.records.append({**read_record(Path(item.spec["folder"])), "state": "skipped"})
    driver = _Driver(settings, pending, planned)
    if pending:
        driver.connect()  # a cluster that cannot be joined is refused before OUT is touched
    try:
        ensure_writable(settings.out)
    except UsageError:
        driver.disconnect()
        raise
    try:
        for item in pending:
            write_job_recipe(Path(item.spec["folder"]), item.job.values)
        if pending:
            driver.run()
    finally:
        driver.disconnect()
        records = [_final(item) for item in planned]
        if report is not None:
            report(records)
    return records


def _probe(address: str) -> None:
    """A HOST:PORT nobody listens on fails here in seconds; Ray itself would retry the connection for minutes."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("expected auto, HOST:PORT or ray://HOST:PORT")
    with socket.create_connection((host, int(port)), timeout=PROBE_SECONDS):
        pass


@contextlib.contextmanager
def _silent_stderr():
    """File descriptor 2 to /dev/null: Ray's C++ core logs there directly, not through Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _final(item: Planned) -> dict:
    if item.records:
        return {**item.records[-1], "folder": item.spec["folder"]}
    return {"model": item.job.model, "recipe": item.job.recipe, "folder": item.spec["folder"], "state": "not run",
            "exit_code": EXIT_INTERRUPTED, "error": "the sweep stopped before it ran", "bundles": []}


class _Driver:
    def __init__(self, settings: SweepSettings, pending: list[Planned], planned: list[Planned]):
        self.settings = settings
        self.pending = pending
        self.planned = planned
        self.started_ray = False
        self.started = time.time()

    def connect(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            self._start(ray)

    def disconnect(self) -> None:
        if self.started_ray:
            _ray().shutdown()
            self.started_ray = False

    def run(self) -> None:
        self._loop(_ray())

    def _start(self, ray) -> None:
        options = {"log_to_driver": False, "logging_level": "ERROR", "include_dashboard": False}
        if self.settings.address:
            address = self.settings.address
            try:
                _probe(address)
                with warnings.catch_warnings(), _silent_stderr():  # Ray's retries would print a line a second
                    warnings.simplefilter("ignore")
                    ray.init(address=address, **options)
            except Exception as error:  # no cluster there, a refused connection, Ray Client not installed
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
                hint = "" if os.environ.get("RAY_AUTH_MODE") else \
                    "; a cluster with token authentication also needs RAY_AUTH_MODE=token here, as on its nodes"
                raise UsageError(f"--address {address}: cannot join that Ray cluster ({reason}){hint}") from None
        else:
            ray.init(num_cpus=self.settings.workers or os.cpu_count(), **options)
        self.started_ray = True

    def _loop(self, ray) -> None:
        resources = ray.cluster_resources()
        capacity = self.settings.workers or max(int(resources.get("CPU", 1)), 1)
        gpus = resources.get("GPU", 0) > 0
        task = ray.remote(run_job)
        waiting, held = self._followers()
        ready = deque(item for item in self.pending if id(item) not in held)
        running: dict = {}
        from tqdm import tqdm

        bar = tqdm(total=len(self.pending), unit="job", desc="sweep", disable=not self.settings.progress,
                   file=sys.stderr)
        try:
            while ready or running:
                while ready and len(running) < capacity:
                    item = ready.popleft()
                    if self._regated(item):
                        bar.update(1)
                        ready.extend(waiting.pop(item.job.model, []))
                        continue
                    gpu = 1 if gpus and item.job.trains else 0
                    options = {"num_cpus": 1, "num_gpus": gpu, "max_retries": self.settings.retries,
                               "retry_exceptions": False}
                    running[task.options(**options).remote(item.spec)] = item
                if not running:
                    continue
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                ready.extend(self._released(waiting))
                if not done:
                    continue
                item = running.pop(done[0])
                item.records.append(self._result(ray, done[0], item))
                bar.update(1)
                ready.extend(waiting.pop(item.job.model, []))
        except BaseException:  # Ctrl-C, SIGTERM: stop every worker, list what never finished
            for ref in running:
                ray.cancel(ref, force=True)
            for ref, item in running.items():
                _wait_cancelled(ray, ref)
                item.records.append(failed_record(item.spec, "cancelled: the sweep was interrupted",
                                                  EXIT_INTERRUPTED))
            for item in [*ready, *(f for group in waiting.values() for f in group)]:
                item.records.append({"model": item.job.model, "recipe": item.job.recipe, "state": "cancelled",
                                     "exit_code": EXIT_INTERRUPTED, "error": "cancelled before it started",
                                     "bundles": []})
            raise
        finally:
            bar.close()

    def _released(self, waiting: dict[str, list[Planned]]) -> list[Planned]:
        """The waiting jobs that may start before their model's first job ends: once it has written statistics in
        this sweep, all but the gate-only variants of a job still running (those re-gate its bundles)."""
        released = []
        for model, group in list(waiting.items()):
            if not _written_since(self.settings.out / STATISTICS / model, self.started):
                continue
            unfinished = [other for other in self.planned if other.job.model == model and not other.records]
            keep = [item for item in group if any(other is not item and differs_only_in_gates(other.job.values,
                                                                                               item.job.values)
                                                  for other in unfinished)]
            released += [item for item in group if item not in keep]
            waiting[model] = keep
        return released

    def _followers(self) -> tuple[dict[str, list[Planned]], set[int]]:
        """With sharing on, a model's later jobs wait for its first, which collects the statistics they read (and
        whose bundles a gate-only recipe re-gates): {model: [waiting jobs]} and the waiting jobs' ids."""
        groups: dict[str, list[Planned]] = {}
        if self.settings.share:
            first: set[str] = set()
            for item in self.pending:
                if item.job.model in first:
                    groups.setdefault(item.job.model, []).append(item)
                first.add(item.job.model)
        return groups, {id(item) for group in groups.values() for item in group}

    def _result(self, ray, ref, item: Planned) -> dict:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as error:
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            return failed_record(item.spec, f"worker lost after {self.settings.retries + 1} attempts: {reason}")

    def _regated(self, item: Planned) -> bool:
        """A gate-only variant of a finished job of the same model, re-gated in place of a rebuild where allowed."""
        for candidate in self.planned:
            if candidate.job.model != item.job.model or candidate is item or not candidate.records:
                continue
            if not differs_only_in_gates(candidate.job.values, item.job.values):
                continue
            source_folder = Path(candidate.spec["folder"])
            if regate_plan(source_folder, item.params) is not None:
                continue
            folder = Path(item.spec["folder"])
            started = time.time()
            summary = regate(source_folder, folder, item.params, resolved_recipe(item.params), item.job.recipe)
            record = {"model": item.job.model, "recipe": item.job.recipe, "key": item.spec["key"], "state": "done",
                      "attempts": 1, "exit_code": summary["exit_code"], "regated_from": candidate.job.name,
                      "bundles": [Path(entry["bundle"]).name for entry in summary["targets"]],
                      "node": candidate.records[-1].get("node", ""), "host": candidate.records[-1].get("host", ""),
                      "seconds": round(time.time() - started, 3)}
            write_record(folder, record)
            item.records.append(record)
            return True
        return False


def _written_since(folder: Path, started: float) -> bool:
    """A statistics file (not a partial one) written in this sweep."""
    for path in folder.glob("[!.]*.npz"):
        with contextlib.suppress(OSError):  # replaced while we looked
            if path.stat().st_mtime >= started:
                return True
    return False


def _wait_cancelled(ray, ref) -> None:
    with contextlib.suppress(Exception):  # cancelled or lost: either way it no longer runs
        ray.get(ref, timeout=30)


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray not installed: pip install 'compress-export[ray]'") from None
    return ray
