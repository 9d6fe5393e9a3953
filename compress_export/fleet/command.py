"""`compress-export sweep FLEET.yaml`: every model x recipe of a fleet file as ordinary export runs on Ray."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..cli.main import export_command
from ..errors import UsageError
from .fleet_file import read_fleet
from .fleet_report import PICKS, fleet_summary, write_fleet_report
from .scheduler import SweepSettings, run_sweep


@click.command("sweep")
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="fleet-out", show_default=True,
              help="Bundles go to OUT/<model>/<recipe>/<target>/; the fleet's report to OUT/fleet.json and fleet.md.")
@click.option("--address", metavar="auto|ray://HOST:PORT",
              help="Run on this Ray cluster (every node must see the models, data and OUT at the same paths). "
                   "Default: a local Ray started for the sweep.")
@click.option("--workers", type=click.IntRange(min=1), help="Jobs at once (default: the cluster's CPUs).")
@click.option("--force", is_flag=True, help="Rebuild jobs whose bundles are finished and intact.")
@click.option("--no-share", is_flag=True,
              help="Every job collects its own calibration statistics, and nothing is re-gated.")
@click.option("--retries", type=click.IntRange(0, 10), default=2, show_default=True,
              help="Times a job whose worker was lost (killed process, lost node) runs again.")
@click.option("--pick", type=click.Choice(list(PICKS)), default="fastest", show_default=True,
              help="How the best passing artifact per model and device is chosen.")
@click.option("--json", "as_json", is_flag=True, help="Print fleet.json on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or report on stderr.")
def sweep_command(fleet, out, address, workers, force, no_share, retries, pick, as_json, quiet) -> int:
    """Run a fleet: models x recipes, each an ordinary export run whose bundles go to OUT/<model>/<recipe>/.

    \b
    models:                    # name -> model and export options (long names)
      detector: {model: det.onnx, calib-data: det_calib.npz}
    recipes:                   # name -> a recipe's keys
      int8: {to: [onnx-int8, trt-int8]}
      int8-percentile: {to: [onnx-int8], calibrator: percentile}
    matrix:                    # optional: which recipes per model (default: all)
      detector: [int8]

    Finished jobs (same settings and input files, bundles intact) are skipped; a model's jobs share one
    calibration pass; a recipe that changes only gates re-gates a finished bundle where that cannot change the
    artifact. Exit 0 all passed, 1 a gate failed, 2 bad fleet file, else the worst job's exit code.
    """
    path = Path(fleet)
    parsed_fleet = read_fleet(path, export_command)
    out_dir = Path(out).resolve()
    if out_dir == path.resolve().parent:
        raise UsageError(f"--out {out}: give the sweep a folder of its own, not the fleet file's")
    settings = SweepSettings(out=out_dir, address=address, workers=workers, force=force, share=not no_share,
                             retries=retries, progress=not quiet)
    started = time.time()
    written: dict = {}

    def report(records: list[dict]) -> None:
        written.update(fleet_summary(path.resolve(), records, pick, time.time() - started))
        write_fleet_report(out_dir, written)

    run_sweep(parsed_fleet, settings, export_command, report)
    summary = written
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    if not quiet:
        from .fleet_report import fleet_markdown

        click.echo(fleet_markdown(summary), err=True)
    return summary["exit_code"]
