"""The stages of a causal language model: load -> held-out text and prompts -> FP32 decoder and its scores; then per
target: weights at the target's precision (the weight-width search first where the target asks for one) -> scores,
continuations and speed against FP32 -> bundle. What is special to generation (windows, prompts, decoding) lives in
the modules these stages call; this list only orders them."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from ..bundle.contents import finish_bundle
from ..bundle.generation_reference_data import write_reference
from ..bundle.writer import BundleWriter
from ..errors import UsageError
from ..exporters import ExportContext
from ..exporters.genai.build import MODEL_FILE, build_fp32, weight_matrices, weight_parameters
from ..exporters.genai.options import LlmSettings
from ..exporters.genai.targets import WeightPlan
from ..job import HeldOutText
from ..metrics.tasks import TASKS
from ..report.generation_sections import markdown_sections
from ..report.plots import plot_generation_tradeoff
from ..report.report import Report
from ..runtimes.machine import node_name, platform_info
from ..util.hashing import sha256_file
from ..validators.generation_measure import measure
from ..validators.token_scores import score
from .run_facts import run_facts


def say(job, message: str) -> None:
    if job.config.progress:
        print(f"compress-export: {message}", file=sys.stderr, flush=True)


def check(config) -> None:
    """Before anything is written: MODEL must be a causal language model."""
    from ..sources.causal_lm import is_causal_lm

    if not is_causal_lm(Path(config.model)):
        raise UsageError(f"{config.model}: --task text-generation needs a causal language model: a Hugging Face "
                         "folder whose config names a ...ForCausalLM architecture, or a .gguf file")
    if config.sampler:
        raise UsageError("--sampler is for image generators; a language model decodes with its own generation loop")
    from ..compression.model_kinds import refuse_unsupported

    refuse_unsupported(config, "generation")


def load(job) -> None:
    from ..sources.causal_lm import load_causal_lm

    say(job, "loading the model")
    job.model = load_causal_lm(Path(job.config.model), job.work, job.config.trust_pickle)
    job.task = TASKS["text-generation"]


def read_text(job) -> None:
    """The held-out text in scoring windows, the prompts, and the long prompt (the held-out text itself)."""
    from ..data.text import held_out_text, prompts, scoring_windows

    settings = job.config.target_options.get("llm") or LlmSettings()
    text, origin = held_out_text(job.config.text_data)
    job.text = HeldOutText(settings, origin, long_prompt=text)
    job.text.prompts, job.text.prompt_origin = prompts(job.config.prompts)
    job.text.tokenizer, job.text.spans = scoring_windows(job.model, text, settings)


def reference(job) -> None:
    """The FP32 decoder (onnxruntime-genai's model builder), its weight matrices and its scores on the windows."""
    import onnx

    say(job, "exporting the FP32 decoder (onnxruntime-genai model builder)")
    job.fp32 = build_fp32(job.model.folder, job.work / "fp32", job.work / "cache")
    job.text.matrices = weight_matrices(onnx.load(str(job.fp32 / MODEL_FILE)))
    spans = job.text.spans
    say(job, f"scoring the FP32 model on {sum(len(s.ids) - 1 - s.first for s in spans)} held-out tokens")
    job.text.reference = score(job.fp32, spans)


def compress(job) -> None:
    """--prune / --distill: the model every target is built from becomes the pruned (distilled) one; the original
    stays the yardstick."""
    if job.config.compression:
        from ..compression.lm_chain import compress_language_model

        compress_language_model(job, lambda message: say(job, message))


def build_target(job, target) -> Report:
    from ..search.decoder_budget import search_widths

    text = job.text
    say(job, f"{target.name}: building")
    with BundleWriter(job.out / target.name) as bundle:
        ctx = ExportContext(job.fp32, (), (), job.config.recipe, None, bundle, source=job.model,
                            options=job.options_for(target), weight_plan=WeightPlan(tuple(text.matrices)))
        search = None
        if target.budget_search == "widths":
            search, plan = search_widths(job, target.name, lambda message: say(job, message))
            ctx = replace(ctx, weight_plan=plan)
        artifact = target.run_export(ctx)
        folder = (bundle / artifact.path).parent
        say(job, f"{target.name}: scoring and generating")
        plain = job.work / "plain-int4" if search and search["promoted"] else None
        metrics, generated, bench = measure(text, job.original_fp32 or job.fp32, folder, plain,
                                            memory=job.config.bench is not None)
        context = {"source": job.model.describe(), "task": job.task.name,
                   "data": {"held_out": text.origin, "prompts": text.prompt_origin,
                            "scoring": text.settings.to_dict(), "scored_tokens": int(len(text.reference["nll"]))},
                   "precision": artifact.details["precision"], "parameters": weight_parameters(text.matrices),
                   "flops_per_token": 2 * sum(m.parameters for m in text.matrices if m.op == "MatMul"),
                   "exporter": artifact.details["exporter"]}
        if job.lm_compression:
            context["compression"] = job.lm_compression
        bench["machine"] = {**platform_info(), "node": node_name()}
        info = {"path": artifact.path, "size_bytes": bench["candidate"]["size_bytes"], "runtime": artifact.runtime,
                "sha256": sha256_file(bundle / artifact.path)}
        report = Report(target=target.name, gates=job.config.gates, artifact=info, metrics=metrics, bench=bench,
                        context=context, sensitivity=search)
        report.sections += markdown_sections(report, text.prompts, generated)
        if job.lm_compression:
            from ..compression.lm_chain import stage_markdown

            report.sections.append(("Pruning and distillation", stage_markdown(job.lm_compression)))
        write_reference(bundle, text, generated[0])
        finish_bundle(bundle, report, manifest_info(job, target, artifact), job.config.run_recipe,
                      plot_generation_tradeoff)
    return report


def manifest_info(job, target, artifact) -> dict:
    return {**run_facts(job, target), "artifact": {"path": artifact.path, "runtime": artifact.runtime},
            "llm": job.text.settings.to_dict()}

