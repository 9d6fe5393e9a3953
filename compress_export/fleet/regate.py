"""A recipe that changes only gates re-gates another job's bundles instead of rebuilding them, where that gives the
bundle the export would have written: the quality numbers were measured on the same artifact, and the new limits
could not have changed the artifact. They could where a budget search ran (its stopping point depends on the
gates), where the new limits fail a value and the search would run, or where a finishing rewrite is kept or undone
by the gates; those jobs are rebuilt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..bundle.manifest import MANIFEST, write_manifest
from ..bundle.recipe import RECIPE_FILE, recipe_yaml
from ..bundle.writer import BundleWriter, write_text_atomic
from ..errors import EXIT_GATE_FAILED, EXIT_OK
from ..exporters import get_target
from ..metrics import all_gates
from ..metrics.gates import Gates, gate_results
from .job_state import read_record

MANIFEST_OWN = ("schema", "files", "libraries", "platform")  # write_manifest makes these anew


def gate_names() -> set[str]:
    return {gate.name for gate in all_gates()}


def differs_only_in_gates(a: dict, b: dict) -> bool:
    gates = gate_names()
    keys = set(a) | set(b)
    return a != b and all(a.get(key) == b.get(key) for key in keys if key not in gates)


def regate_plan(source: Path, params: dict) -> str | None:
    """None when every bundle of the finished job in `source` can take the gates in `params`; else why not."""
    record = read_record(source)
    if record.get("exit_code") not in (EXIT_OK, EXIT_GATE_FAILED) or not record.get("bundles"):
        return "the job it would re-gate did not complete"
    limits = new_gates(params)
    for name in record["bundles"]:
        report = json.loads((source / name / "report.json").read_text())
        target = get_target(report["target"], _family(source / name))
        if "sensitivity" in report:
            return f"{name}: a budget search chose its artifact under the old gates"
        if target.finish and "finishing_rewrite" in report:
            return f"{name}: the gates decided whether its finishing rewrite ships"
        passes = all(row["passed"] for row in gate_results(limits, report["parity"], report["metrics"]))
        if target.budget_search and not params.get("no_fallback") and not passes:
            return f"{name}: misses the new gates, so the budget search would run"
    return None


def new_gates(params: dict) -> Gates:
    return Gates.from_dict({}, **{name: params.get(name) for name in gate_names()})


def _family(bundle: Path) -> str:
    from ..metrics.tasks import TASKS

    task = TASKS.get(json.loads((bundle / MANIFEST).read_text()).get("task"))
    return task.family if task is not None else "tensor"


def regate(source: Path, folder: Path, params: dict, resolved: dict, recipe_name: str) -> dict:
    """Copies of `source`'s bundles in `folder`, each judged by the gates in `params`: report.json, report.md,
    recipe.yaml and the manifest rewritten, the artifact and its measurements untouched. Returns summary.json's
    content."""
    limits = new_gates(params)
    entries = []
    for name in read_record(source)["bundles"]:
        with BundleWriter(folder / name) as bundle:
            shutil.copytree(source / name, bundle, dirs_exist_ok=True)
            report = _regated_report(bundle, limits, f"{source.parent.name}/{source.name}", recipe_name)
            (bundle / RECIPE_FILE).write_text(recipe_yaml(resolved))
            manifest = json.loads((bundle / MANIFEST).read_text())
            manifest["gates"] = limits.to_dict()
            write_manifest(bundle, {key: value for key, value in manifest.items() if key not in MANIFEST_OWN})
        entries.append({"target": report["target"], "passed": report["passed"], "bundle": str(folder / name),
                        "report": report})
    codes = [entry["report"]["exit_code"] for entry in entries]
    summary = {"passed": all(entry["passed"] for entry in entries), "exit_code": max(codes, default=EXIT_OK),
               "targets": entries}
    write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _regated_report(bundle: Path, limits: Gates, source: str, recipe_name: str) -> dict:
    report = json.loads((bundle / "report.json").read_text())
    results = gate_results(limits, report["parity"], report["metrics"])
    passed = all(row["passed"] for row in results)
    note = (f"re-gated by recipe {recipe_name}: the artifact and every number were measured in {source}; only the "
            "gate limits differ")
    report.update(gates=limits.to_dict(), gate_results=results, passed=passed,
                  exit_code=EXIT_OK if passed else EXIT_GATE_FAILED, notes=[*report.get("notes", []), note])
    (bundle / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (bundle / "report.md").write_text(_regated_markdown((bundle / "report.md").read_text(), report, results, note))
    return report


def _regated_markdown(text: str, report: dict, results: list[dict], note: str) -> str:
    """The verdict line and the gates table anew; the rest as measured."""
    lines = text.splitlines()
    lines[0] = f"# {report['target']}: {'PASSED' if report['passed'] else 'FAILED'}"
    if "## Gates" in lines:
        start = lines.index("## Gates") + 4  # heading, blank, header, rule
        end = start
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        rows = [f"| {row['gate']} | {row['limit']:g} | {row['value']:.6g} | {'pass' if row['passed'] else 'FAIL'} |"
                for row in results]
        lines[start:end] = rows
    return "\n".join([*lines[:1], "", note, *lines[1:]]) + "\n"
