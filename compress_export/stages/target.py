"""Per target: export within the quality budget, validate, analyse, benchmark, and write the bundle."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..bundle.contents import copy_baseline, finish_bundle
from ..bundle.reference_data import FID_FEATURES_FILE, write_reference, write_sampler
from ..bundle.writer import BundleWriter
from ..compression.base import source_for
from ..errors import CompressExportError
from ..exporters import ExportContext, get_target
from ..graphs.onnx_io import artifact_bytes
from ..metrics.base import ArtifactProbe
from ..report.plots import plot_summary
from ..report.report import Report
from ..report.sampler_section import add_sampler_section
from ..runtimes import open_runner
from ..runtimes.machine import node_name, platform_info
from ..search.budget import export_within_budget, validate
from ..search.sensitivity_report import markdown as sensitivity_markdown
from ..search.sensitivity_report import plot_sensitivity
from ..util.hashing import sha256_file
from ..validators.analysis import analysis_warnings, artifact_analysis
from ..validators.cross_machine import record as record_artifact_outputs
from ..validators.speedup import noise_warnings, speed_warnings
from .run_facts import run_facts


def export_context(job, target, folder: Path, original: bool = False) -> ExportContext:
    """What `target` is built from: what the compression steps made of the model, or the original."""
    if original:
        model, fp32, ranges = job.model, job.fp32, job.ranges if target.ranges == "onnx" else None
    else:
        model, fp32, ranges = source_for(job, target)
    return ExportContext(fp32, model.inputs, job.validation.output_names, job.config.recipe, ranges, folder,
                         job.validation.example_shapes, source=model, calibration=job.calib,
                         options=job.options_for(target))


def build_target(job, target) -> Report:
    if target.ranges == "onnx" and job.ranges is None and job.ranges_error is not None:
        raise job.ranges_error
    bundle = job.out / target.name
    with BundleWriter(bundle) as folder:
        ctx = export_context(job, target, folder)
        artifact, suite, search, ranges = export_within_budget(job, target, ctx)
        artifact_path = folder / artifact.path
        report = Report.from_suite(target.name, job.config.gates, artifact_info(artifact, artifact_path), suite,
                                   {**job.context, **artifact.details}, list(artifact.notes))
        first_section = len(report.sections)
        if search is not None:
            report.sensitivity = search.to_dict()
            report.sections.append(("Sensitivity", sensitivity_markdown(report.sensitivity)))
            if search.ranking:
                plot_sensitivity(search.ranking, folder / "sensitivity.png")
        if job.calib.synthetic:
            report.warnings.append("calibrated on random data (--random-data): ranges do not reflect real inputs")
        probe = ArtifactProbe(artifact_path, artifact.runtime, ctx.fp32_onnx or job.fp32, tuple(job.validation.batches),
                              original_onnx=job.fp32)
        report.analysis.update(artifact_analysis(probe, job.task.metrics))
        report.warnings += analysis_warnings(report.analysis)
        if job.bench is not None:
            _benchmark(job, target, report, job.bench, artifact, artifact_path)
        add_sampler_section(report, job.validation.sampler, folder)
        _compression_sections(job, target, report, folder, first_section)  # their stage tables show the timing
        if ranges is not None and target.ranges == "onnx":
            ranges.save(folder / "ranges.json")
        write_reference(folder, job.validation)
        sampler = write_sampler(folder, job.validation.sampler)  # so that `validate` samples the same way
        if job.config.fid_features:  # so that `validate` reads the images through the same features
            shutil.copy2(job.config.fid_features, folder / "reference" / FID_FEATURES_FILE)
        record_artifact_outputs(folder, lambda: open_runner(artifact.runtime, str(artifact_path)), artifact.inputs)
        carried = carry_baseline(job, target, folder) if job.config.with_baseline else None
        manifest = {**manifest_info(job, target, artifact, report, ctx.fp32_onnx),
                    **({"baseline": carried} if carried else {}), **({"sampler": sampler} if sampler else {})}
        finish_bundle(folder, report, manifest, job.config.run_recipe, plot_summary)
    return report


def artifact_info(artifact, path: Path) -> dict:
    return {"path": artifact.path, "size_bytes": artifact_bytes(path), "sha256": sha256_file(path),
            "runtime": artifact.runtime}


def _compression_sections(job, target, report: Report, folder: Path, at: int) -> None:
    from ..compression.chain import plot_stages

    sections, staged = [], None
    for method, done in job.compressed:
        if not done.applies_to(target):
            note = method.skipped_note(target) if target.quantizes else None
            if note:
                report.warnings.append(note)
            continue
        section = dict(done.section)
        if done.compare_key:
            section[done.compare_key] = _original_side(job, target)
        report.context[method.name] = section
        sections.append((method.title, method.markdown(section, report)))
        if "stages" in section:
            staged = (section["stages"], sections[-1][1])
        for name, write in done.files.items():
            write(folder / name)
    if staged and plot_stages(staged[0], report, folder / "stages.png"):
        staged[1].extend(["", "Held-out cosine vs p50 of every stage and this artifact: `stages.png`."])
    report.sections[at:at] = sections


def _original_side(job, target) -> dict:
    """The same target built from the original model: what a compression step is compared with."""
    with tempfile.TemporaryDirectory(prefix="ce-original-") as tmp:
        folder = Path(tmp)
        artifact = target.run_export(export_context(job, target, folder, original=True))
        suite = validate(artifact, folder, job)
        return {"parity": suite.parity(), "metrics": suite.metrics(),
                "size_bytes": artifact_bytes(folder / artifact.path)}


def carry_baseline(job, target, folder: Path) -> dict | None:
    """A copy of the FP32 model the target is timed against, under baseline/ (with its external data)."""
    if target.is_baseline:
        return None
    return copy_baseline(folder, *baseline(job, target))


def baseline(job, target) -> tuple[str, Path]:
    """The FP32 model `target` is timed against, in its own runtime, made once per run."""
    name = target.baseline
    if name not in job.baselines:
        folder = job.work / "baselines" / name
        folder.mkdir(parents=True, exist_ok=True)
        fp32_target = get_target(name)
        artifact = fp32_target.run_export(export_context(job, fp32_target, folder, original=True))
        job.baselines[name] = (artifact.runtime, folder / artifact.path)
    return job.baselines[name]


def other_fp32_runtimes(job, target) -> list[tuple[str, Path]]:
    """The FP32 model in the other runtimes this run's targets use (onnxruntime and OpenVINO for
    `--to onnx-int8,openvino-int8`), each artifact timed against all of them."""
    own, references = baseline(job, target)[0], []
    for name in dict.fromkeys(other.baseline for other in job.targets if other.family == target.family):
        try:
            runtime, path = baseline(job, get_target(name, target.family))
        except CompressExportError:  # that runtime's own targets report why; this artifact is timed without it
            continue
        if runtime != own:
            references.append((runtime, path))
    return references


def _benchmark(job, target, report: Report, bench, artifact, path: Path) -> None:
    if artifact.runtime != target.runtime and not target.is_baseline:
        # A proxy's latency (onnxruntime computing TensorRT's Q/DQ as written) says nothing of the engine's.
        report.notes.append(f"not timed: {target.runtime} is not here, and {artifact.runtime}'s latency would say "
                            f"nothing of its speed")
        bench.skip()
        return
    report.bench = bench.compare(artifact.runtime, path, baseline(job, target), other_fp32_runtimes(job, target))
    report.bench["machine"] = {**platform_info(), "node": node_name()}  # the numbers belong to this CPU and runtime
    report.warnings += noise_warnings(report.bench.get("a_a", {}))
    if target.is_baseline:
        return
    if target.quantizes and artifact.runtime == "onnxruntime":
        _time_profile(job, target, report, bench, path)
    slow = speed_warnings(report.bench["ratios"])
    report.warnings += slow
    if slow and artifact.runtime == "onnxruntime":  # the diagnosis reads onnxruntime's optimized graph
        from ..validators.fusion import fusion_summary, slow_causes

        report.context["fusion"] = fusion_summary(path)
        report.warnings += [f"likely cause: {cause}" for cause in slow_causes(report.context["fusion"],
                                                                              report.context.get("time_profile"))]


def _time_profile(job, target, report: Report, bench, path: Path) -> None:
    """A diagnosis, not a verdict: when the profile cannot be taken the report says so and the target stands."""
    from ..validators.time_profile import markdown, time_profile

    try:
        report.context["time_profile"] = time_profile(path, baseline(job, target)[1], bench.sample, bench.settings)
    except CompressExportError as exc:
        report.warnings.append(f"no time profile: {exc}")
        return
    report.sections.append(("Where the time goes", markdown(report.context["time_profile"])))


def manifest_info(job, target, artifact, report: Report, fp32: Path | None) -> dict:
    return {
        **run_facts(job, target),
        "artifact": {"path": artifact.path, "runtime": artifact.runtime,
                     "inputs": [spec.to_dict() for spec in artifact.inputs], "outputs": list(artifact.outputs),
                     **artifact.details},
        "fp32_onnx_sha256": sha256_file(fp32) if fp32 is not None and fp32.is_file() else None,
        "data": report.context["data"],
        "recipe": job.config.recipe.to_dict(),
    }
