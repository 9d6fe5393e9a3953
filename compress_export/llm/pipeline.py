"""The language-model job: load -> text -> FP32 decoder and its scores -> per target: weights at the chosen
precision (the budget search for onnx-int4) -> scores, continuations and speed against FP32 -> bundle. One
target's failure never stops the others."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bundle import BundleWriter, ensure_writable, write_text_atomic
from ..errors import CompressExportError, UsageError
from ..hashing import sha256_file
from ..job import PipelineConfig, RunResult, TargetFailure
from .build import (
    ACCURACY_LEVEL,
    BLOCK_SIZE,
    MODEL_FILE,
    build_fp32,
    folder_bytes,
    quantize,
    weight_matrices,
    weight_parameters,
)
from .measure import perplexity
from .scoring import Window, score, windows
from .settings import LlmSettings

TARGET_BITS = {"onnx": None, "onnx-int8": 8, "onnx-int4": 4}
MODEL_DIR = "model"


@dataclass
class LlmJob:
    config: PipelineConfig
    settings: LlmSettings
    work: Path
    targets: list[str]
    model: object = None  # CausalLM
    text_origin: str = ""
    prompt_origin: str = ""
    prompts: list[str] = field(default_factory=list)
    long_prompt: str = ""
    tokenizer: object = None
    spans: list[Window] = field(default_factory=list)
    fp32: Path | None = None
    matrices: list = field(default_factory=list)
    reference: dict = field(default_factory=dict)
    reports: list = field(default_factory=list)
    bundles: list = field(default_factory=list)
    failures: list = field(default_factory=list)


def llm_targets(spec: str) -> list[str]:
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in TARGET_BITS]
    if unknown or not names:
        raise UsageError(f"--to {spec}: a language model exports to {', '.join(TARGET_BITS)} (not "
                         f"{', '.join(unknown) or 'nothing'})")
    return list(dict.fromkeys(names))


def run(config: PipelineConfig) -> RunResult:
    from .source import is_causal_lm, load_causal_lm

    if not is_causal_lm(Path(config.model)):
        raise UsageError(f"{config.model}: --task text-generation needs a causal language model: a Hugging Face "
                         "folder whose config names a ...ForCausalLM architecture, or a .gguf file")
    targets = llm_targets(config.targets)
    out = Path(config.out)
    ensure_writable(out)
    job = LlmJob(config, config.target_options.get("llm") or LlmSettings(), Path(), targets)
    with tempfile.TemporaryDirectory(prefix=".ce-work-", dir=out) as tmp:
        job.work = Path(tmp)
        _say(job, "loading the model")
        job.model = load_causal_lm(Path(config.model), job.work, config.trust_pickle)
        _text(job)
        _reference(job)
        for target in targets:
            try:
                job.reports.append(_build_target(job, target))
                job.bundles.append(out / target)
            except CompressExportError as error:
                job.failures.append(TargetFailure(target, str(error), error.exit_code))
    result = RunResult(job.reports, job.bundles, job.failures)
    write_text_atomic(out / "summary.json", json.dumps(result.summary(), indent=2) + "\n")
    from .report import plot_generation_tradeoff

    plot_generation_tradeoff(job.reports, out / "tradeoff.png")
    return result


def _say(job: LlmJob, message: str) -> None:
    if job.config.progress:
        print(f"compress-export: {message}", file=sys.stderr, flush=True)


def _text(job: LlmJob) -> None:
    from ..errors import require
    from .text import held_out_text, prompts

    transformers = require("transformers", "hf")
    text, job.text_origin = held_out_text(job.config.text_data)
    job.prompts, job.prompt_origin = prompts(job.config.prompts)
    try:
        job.tokenizer = transformers.AutoTokenizer.from_pretrained(str(job.model.folder), local_files_only=True)
    except Exception as exc:  # a damaged tokenizer file fails anywhere inside transformers
        raise UsageError(f"{job.model.description}: its tokenizer does not load ({str(exc)[:200]})") from None
    ids = np.asarray(job.tokenizer(text)["input_ids"], dtype=np.int64)[: job.settings.max_tokens + 1]
    if len(ids) < 2:
        raise UsageError("--text-data: fewer than two tokens of text to score")
    job.spans = windows(ids, job.settings.window, job.settings.stride)
    job.long_prompt = text


def _calibrate(job: LlmJob):
    """GPTQ's 4-bit weights from the calibration text (--calib-data; never the held-out text)."""
    from .calibration import calibrate, calibration_windows

    spans, origin = calibration_windows(job.tokenizer, job.config.calib_data, job.settings)
    _say(job, f"onnx-int4: GPTQ rounding of {len(job.matrices)} weight matrices against "
              f"{sum(len(s) for s in spans)} tokens of calibration text")
    return calibrate(job.fp32, job.matrices, spans, job.model.folder), origin


def _reference(job: LlmJob) -> None:
    import onnx

    _say(job, "exporting the FP32 decoder (onnxruntime-genai model builder)")
    job.fp32 = build_fp32(job.model.folder, job.work / "fp32", job.work / "cache")
    job.matrices = weight_matrices(onnx.load(str(job.fp32 / MODEL_FILE)))
    _say(job, f"scoring the FP32 model on {sum(len(s.ids) - 1 - s.first for s in job.spans)} held-out tokens")
    job.reference = score(job.fp32, job.spans)


def _build_model(job: LlmJob, target: str, folder: Path) -> tuple[dict | None, dict]:
    """The target's decoder folder; (search record or None, precision summary)."""
    width = TARGET_BITS[target]
    if width is None:
        folder.mkdir()
        for item in job.fp32.iterdir():
            if item.is_file():
                shutil.copy2(item, folder / item.name)  # not a hard link: onnx refuses external data with two
        return None, _precision(job.matrices, {m.node: None for m in job.matrices})
    if width == 8:
        bits = {m.node: 8 for m in job.matrices}
        quantize(job.fp32, folder, bits)
        return None, _precision(job.matrices, bits)
    return _search_int4(job, folder)


def _search_int4(job: LlmJob, folder: Path) -> tuple[dict, dict]:
    from ..metrics.bleu import METRIC as BLEU
    from .generation import generate
    from .search import search

    calibration, origin = _calibrate(job)
    budget, floor = job.config.gates.max_perplexity_increase, job.config.gates.min_bleu
    base = perplexity(job.reference)
    trial_dir = job.work / "trial"
    settings = job.settings.generation
    (fp32,) = generate([job.fp32], job.prompts, "", settings, long_rounds=0)

    def evaluate(bits):
        shutil.rmtree(trial_dir, ignore_errors=True)
        quantize(job.fp32, trial_dir, bits, calibration.int4, calibration.pieces)
        increase = 100.0 * (perplexity(score(trial_dir, job.spans)) - base) / base
        bleu = None
        if increase <= budget:  # the same greedy continuations the report compares
            (here,) = generate([trial_dir], job.prompts, "", settings, long_rounds=0)
            bleu = BLEU.compare(here["continuations"], fp32["continuations"])
        met = increase <= budget and bleu is not None and bleu >= floor
        _say(job, f"onnx-int4 search: {sum(1 for b in bits.values() if b != 4)} matrices above 4 bits -> "
                  f"perplexity {increase:+.2f}% (budget {budget:g}%)" + ("" if bleu is None else
                                                                          f", BLEU {bleu:.1f} (floor {floor:g})"))
        return increase, folder_bytes(trial_dir), bleu, met

    result = search(calibration.units, 4, calibration.ranking(), evaluate)
    shutil.rmtree(trial_dir, ignore_errors=True)
    quantize(job.fp32, folder, result.bits, calibration.int4, calibration.pieces)
    plain = job.work / "plain-int4"
    if result.promoted and not plain.exists():
        quantize(job.fp32, plain, {m.node: 4 for m in job.matrices}, calibration.int4)
    record = {**result.to_dict(), "calibration": {"text": origin, "tokens": calibration.tokens,
                                                  "window": job.settings.window, "rounding": "GPTQ, act-order",
                                                  "ranked_by": calibration.ranked_by,
                                                  "seconds": round(calibration.seconds, 1)}}
    return record, _precision(calibration.units, result.bits)


def _precision(units: list, bits: dict) -> dict:
    """Parameters per width and what stayed above 4 bits; `units` the matrices or their pieces `bits` names."""
    by_width: dict[str, int] = {}
    for unit in units:
        width = bits.get(unit.node)
        key = "float" if width is None else f"int{width}"
        by_width[key] = by_width.get(key, 0) + unit.parameters
    return {"weights_by_precision": by_width, "block_size": BLOCK_SIZE,
            "kept_above_4_bits": [u.label for u in units if bits.get(u.node) != 4]
            if any(b == 4 for b in bits.values()) else []}


def _build_target(job: LlmJob, target: str):
    from ..report import Report
    from .bundle_files import write_bundle
    from .measure import measure
    from .report import markdown_sections

    _say(job, f"{target}: building")
    with BundleWriter(Path(job.config.out) / target) as bundle:
        folder = bundle / MODEL_DIR
        search, precision = _build_model(job, target, folder)
        _say(job, f"{target}: scoring and generating")
        metrics, generated, bench = measure(job, folder, job.work / "plain-int4" if search and search["promoted"]
                                            else None)
        context = {"source": job.model.describe(), "task": "text-generation",
                   "data": {"held_out": job.text_origin, "prompts": job.prompt_origin,
                            "scoring": job.settings.to_dict(), "scored_tokens": int(len(job.reference["nll"]))},
                   "precision": precision, "parameters": weight_parameters(job.matrices),
                   "flops_per_token": 2 * sum(m.parameters for m in job.matrices if m.op == "MatMul"),
                   "exporter": "onnxruntime-genai model builder (fp32, cpu); weights by onnxruntime's "
                               f"MatMulNBitsQuantizer (block {BLOCK_SIZE}, symmetric, accuracy level {ACCURACY_LEVEL})"
                               + ("; 4-bit MatMul codes and scales by GPTQ on calibration text" if search else "")}
        artifact = {"path": f"{MODEL_DIR}/{MODEL_FILE}", "size_bytes": bench["candidate"]["size_bytes"],
                    "runtime": "onnxruntime-genai", "sha256": sha256_file(folder / MODEL_FILE)}
        report = Report(target=target, gates=job.config.gates, artifact=artifact, metrics=metrics, bench=bench,
                        context=context, sensitivity=search)
        report.sections += markdown_sections(report, job.prompts, generated)
        write_bundle(bundle, job, report, generated[0])
    return report
