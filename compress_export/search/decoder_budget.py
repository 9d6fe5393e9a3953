"""The perplexity budget of a 4-bit decoder: GPTQ's codes from the calibration text (never the held-out text), the
matrices ranked by what their rounding costs the loss, then the weight-width search (`weight_widths.search`) over
builds scored on the report's own held-out windows and continuations, so the search's number is the artifact's."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from ..exporters.genai.build import quantize
from ..exporters.genai.targets import WeightPlan
from ..runtimes.onnxruntime_genai import folder_bytes
from ..validators.generation_measure import perplexity
from ..validators.token_scores import score


def calibrate(job, say: Callable[[str], None]):
    """GPTQ's 4-bit weights from the calibration text (--calib-data); (calibration, where its text came from)."""
    from ..exporters.genai.gptq_calibration import calibrate as gptq_calibrate
    from ..exporters.genai.gptq_calibration import calibration_windows

    text = job.text
    spans, origin = calibration_windows(text.tokenizer, job.config.calib_data, text.settings)
    say(f"onnx-int4: GPTQ rounding of {len(text.matrices)} weight matrices against "
        f"{sum(len(s) for s in spans)} tokens of calibration text")
    return gptq_calibrate(job.fp32, text.matrices, spans, job.model.folder), origin


def search_widths(job, target: str, say: Callable[[str], None]) -> tuple[dict, WeightPlan]:
    """(the search's report record, the plan the target is written with). Where the search promotes any matrix, a
    plain 4-bit build is left in the work folder (`plain-int4`), so the report can price the promotions."""
    from ..metrics.bleu import METRIC as BLEU
    from ..validators.continuations import generate
    from .weight_widths import search

    text = job.text
    calibration, origin = calibrate(job, say)
    budget, floor = job.config.gates.max_perplexity_increase, job.config.gates.min_bleu
    base = perplexity(text.reference)
    trial_dir = job.work / "trial"
    settings = text.settings.generation
    (fp32,) = generate([job.original_fp32 or job.fp32], text.prompts, "", settings, long_rounds=0)

    def evaluate(bits):
        shutil.rmtree(trial_dir, ignore_errors=True)
        quantize(job.fp32, trial_dir, bits, calibration.int4, calibration.pieces)
        increase = 100.0 * (perplexity(score(trial_dir, text.spans)) - base) / base
        bleu = None
        if increase <= budget:  # the same greedy continuations the report compares
            (here,) = generate([trial_dir], text.prompts, "", settings, long_rounds=0)
            bleu = BLEU.compare(here["continuations"], fp32["continuations"])
        met = increase <= budget and bleu is not None and bleu >= floor
        say(f"{target} search: {sum(1 for b in bits.values() if b != 4)} matrices above 4 bits -> "
            f"perplexity {increase:+.2f}% (budget {budget:g}%)" + ("" if bleu is None else
                                                                    f", BLEU {bleu:.1f} (floor {floor:g})"))
        return increase, folder_bytes(trial_dir), bleu, met

    result = search(calibration.units, 4, calibration.ranking(), evaluate)
    shutil.rmtree(trial_dir, ignore_errors=True)
    plain = job.work / "plain-int4"
    if result.promoted and not plain.exists():
        quantize(job.fp32, plain, {m.node: 4 for m in text.matrices}, calibration.int4)
    record = {**result.to_dict(), "calibration": {"text": origin, "tokens": calibration.tokens,
                                                  "window": text.settings.window, "rounding": "GPTQ, act-order",
                                                  "ranked_by": calibration.ranked_by,
                                                  "seconds": round(calibration.seconds, 1)}}
    return record, WeightPlan(tuple(calibration.units), result.bits, calibration.int4, tuple(calibration.pieces))
