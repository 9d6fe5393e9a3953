"""Reusable Click option groups. Each group adds its options to a command and builds its own object
from the parsed values (a QuantRecipe, Gates, BenchSettings, target options, compression steps), so a
command body only assembles them. Gate options come from the metric registry, targets from the catalog."""

from __future__ import annotations

import math

import click

from .compression.prune_torch import IMPORTANCES
from .compression.sparsity_torch import PATTERNS as SPARSITY_PATTERNS

CALIBRATORS = ("entropy", "minmax", "percentile", "mse")


class FiniteFloat(click.FloatRange):
    """A float range that also refuses NaN and infinity (click's FloatRange lets NaN through)."""

    name = "float"

    def _describe_range(self) -> str:
        return "finite" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _stack(*decorators):
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def split_list(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else ()


def targets_help() -> str:
    from .exporters.catalog import TARGETS

    return "Comma-separated targets: " + ", ".join(TARGETS) + " (`compress-export targets` says what each makes)."


output_options = _stack(
    click.option("--json", "as_json", is_flag=True, help="Print the machine-readable report on stdout."),
    click.option("-v", "--verbose", count=True, help="More detail on stderr (repeat for debug)."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary on stderr."),
)

source_options = _stack(
    click.option("--weights", type=click.Path(dir_okay=False),
                 help="Weights for a factory: .safetensors, or a state_dict .pt read with weights_only=True."),
    click.option("--input", "inputs", multiple=True, metavar="NAME:1x3x224x224[:DTYPE]",
                 help="Input name, shape and dtype when the model file does not say (repeatable). "
                      "Dim 0 is the dynamic batch; a named dim (1xseq) is dynamic too."),
    click.option("--trust-pickle", is_flag=True,
                 help="Allow loading pickled PyTorch files and Keras Lambda layers. Both run code from the file: "
                      "only for files you trust."),
)

data_options = _stack(
    click.option("--calib-data", type=click.Path(exists=True), metavar="NPZ|TXT|DIR",
                 help=".npz whose keys are input names (optional 'label'), or a folder of them. For a language "
                      "model: calibration text for onnx-int4 (a file, or a folder of .txt/.md; default: Python's "
                      "documentation of other modules than the held-out text)."),
    click.option("--text-data", type=click.Path(exists=True), metavar="TXT|DIR",
                 help="For a Hugging Face encoder folder: one text a line, tokenized with its own tokenizer "
                      "(instead of --calib-data). For a language model: held-out text (a file, or a folder of "
                      ".txt/.md) for perplexity and the budget search (default: Python's own documentation)."),
    click.option("--seq-len", type=click.IntRange(min=1), default=128, show_default=True,
                 help="--text-data: tokens per sample (padded or truncated)."),
    click.option("--calib-samples", type=click.IntRange(min=1), help="Use at most this many calibration samples."),
    click.option("--calib-batch", type=click.IntRange(min=1), default=16, show_default=True,
                 help="Batch size for calibration and validation passes."),
    click.option("--random-data", is_flag=True,
                 help="Calibrate on random noise when no real data exists (reported as such)."),
)

quant_options = _stack(
    click.option("--calibrator", type=click.Choice(CALIBRATORS), default="entropy", show_default=True,
                 help="How activation ranges are chosen from the collected histograms."),
    click.option("--percentile", type=FiniteFloat(50, 100, min_open=True), default=99.99, show_default=True,
                 help="Percentile kept by --calibrator percentile."),
    click.option("--num-bins", type=click.Choice(["512", "1024", "2048", "4096", "8192"]), default="2048",
                 show_default=True, help="Histogram bins on each side of zero."),
    click.option("--include-ops", metavar="OPS", help="Op types to quantize, comma separated "
                 "(default: Conv,ConvTranspose,MatMul,Gemm,Relu,Clip)."),
    click.option("--exclude-ops", metavar="OPS", help="Op types never to quantize, comma separated."),
    click.option("--exclude-nodes", metavar="REGEX", help="Keep nodes whose name matches REGEX in float."),
    click.option("--per-tensor-weights", is_flag=True, help="One weight scale per tensor instead of per channel."),
)


def build_recipe(o: dict):
    from .specs import QuantRecipe

    return QuantRecipe(method=o.pop("calibrator"), percentile=o.pop("percentile"), num_bins=int(o.pop("num_bins")),
                       per_channel=not o.pop("per_tensor_weights"), include_ops=split_list(o.pop("include_ops")),
                       exclude_ops=split_list(o.pop("exclude_ops")), exclude_nodes=o.pop("exclude_nodes"))


def _gate_option(gate, override: bool):
    flag = "--" + gate.name.replace("_", "-")
    if override:
        return click.option(flag, gate.name, type=FiniteFloat(), help=f"Override the bundle's {gate.name} gate.")
    return click.option(flag, gate.name, type=FiniteFloat(), default=gate.default, show_default=True, help=gate.help)


def gate_options(function, override: bool = False):
    """One option per registered gate (--min-cosine, --max-accuracy-drop, ...)."""
    from .metrics import all_gates

    for gate in reversed(all_gates()):
        function = _gate_option(gate, override)(function)
    return function


def gate_override_options(function):
    return gate_options(function, override=True)


def build_gates(o: dict):
    from .metrics.gates import Gates

    return Gates(**pop_gate_overrides(o))


def pop_gate_overrides(o: dict) -> dict:
    from .metrics import all_gates

    return {gate.name: o.pop(gate.name) for gate in all_gates()}


fallback_option = click.option(
    "--no-fallback", is_flag=True,
    help="Do not keep the most sensitive nodes in float when a quantized artifact misses the gates.")


def task_option(function):
    from .metrics.tasks import TASKS

    return click.option("--task", type=click.Choice(("auto", *TASKS)), default="auto", show_default=True,
                        help="What the model does, which picks its metrics (auto: classification for "
                             "(batch, classes) outputs, else embedding).")(function)


provider_option = click.option(
    "--provider", metavar="NAME", help="onnxruntime execution provider that runs the ONNX artifacts: cpu, cuda, "
    "tensorrt, openvino, dml, coreml, rocm, qnn, xnnpack, or a full name (refused unless this onnxruntime has it).")


def apply_provider(o: dict) -> None:
    name = o.pop("provider")
    if name:
        from .providers import use_provider

        use_provider(name)


bench_options = _stack(
    click.option("--bench-batch", default="1,32", show_default=True, metavar="B1,B2",
                 help="Batch sizes to benchmark."),
    click.option("--bench-runs", type=click.IntRange(min=1), default=1000, show_default=True,
                 help="Most timed runs per batch size (fewer if --bench-seconds runs out)."),
    click.option("--bench-seconds", type=FiniteFloat(min=0), default=2.0, show_default=True,
                 help="Time budget per batch size."),
    click.option("--no-bench", is_flag=True, help="Skip the latency and memory benchmark."),
)


def build_bench(o: dict):
    from .errors import UsageError
    from .validators.bench import BenchSettings

    batch, runs, seconds = o.pop("bench_batch"), o.pop("bench_runs"), o.pop("bench_seconds")
    if o.pop("no_bench"):
        return None
    try:
        batches = tuple(int(part) for part in split_list(batch))
    except ValueError:
        raise UsageError(f"--bench-batch {batch!r}: expected sizes like 1,32") from None
    if not batches or min(batches) < 1:
        raise UsageError("--bench-batch needs positive sizes")
    return BenchSettings(batches=batches, runs=runs, seconds=seconds)


engine_flag_options = _stack(
    click.option("--trt-weakly-typed", is_flag=True,
                 help="TensorRT <= 10 only: a weakly typed network whose float layers may run FP16 by builder flag "
                      "(TensorRT 11 removed it; by default the network is strongly typed: precisions from the ONNX)."),
    click.option("--trt-version-compatible", is_flag=True,
                 help="An engine that later TensorRT releases of the same major also run (built without the lean "
                      "runtime, so it carries no host code)."),
    click.option("--trt-hardware-compat", type=click.Choice(("none", "ampere-plus", "same-cc")), default="none",
                 show_default=True, help="An engine for other GPUs too: every Ampere or newer, or every GPU of this "
                                         "compute capability (may be slower)."),
)


def build_engine_flags(o: dict):
    from .exporters.tensorrt.options import EngineFlags

    return EngineFlags(o.pop("trt_weakly_typed"), o.pop("trt_version_compatible"), o.pop("trt_hardware_compat"))


tensorrt_options = _stack(
    click.option("--trt-float", type=click.Choice(("fp16", "fp32")), default="fp16", show_default=True,
                 help="Precision of the layers trt-int8 leaves unquantized, written into its ONNX (TensorRT 11 "
                      "takes precisions from the ONNX); layers near FP16's limit on the calibration data stay FP32."),
    engine_flag_options,
    click.option("--trt-cache-version", type=click.IntRange(min=1), default=100300, show_default=True,
                 help="TensorRT version number in the calibration cache header (TRT-<version>-<Algorithm>). The "
                      "cache serves TensorRT <= 10's implicit quantization; TensorRT 11 reads the Q/DQ ONNX."),
    click.option("--trt-cache-algorithm", type=click.Choice(("EntropyCalibration2", "EntropyCalibration",
                 "MinMaxCalibration", "LegacyCalibration")), default="EntropyCalibration2", show_default=True,
                 help="Algorithm named in the calibration cache header."),
    click.option("--trt-max-batch", type=click.IntRange(min=1), default=32, show_default=True,
                 help="Largest batch of the TensorRT engine's optimization profile."),
    click.option("--require-engine", is_flag=True,
                 help="trt-int8: fail with exit 3 unless a TensorRT engine is built and run (no onnxruntime proxy)."),
)

tflite_options = _stack(
    click.option("--tflite-io", type=click.Choice(("int8", "float32")), default="int8", show_default=True,
                 help="tflite-int8: input and output tensor type (float32 adds a quantize/dequantize op)."),
)


def build_target_options(o: dict) -> dict:
    from .exporters.tensorrt.options import TrtOptions
    from .exporters.tflite.options import TfliteOptions
    from .llm.generation import GenerationSettings
    from .llm.settings import LlmSettings

    generation = GenerationSettings(max_new_tokens=o.pop("max_new_tokens"))
    return {"tensorrt": TrtOptions(o.pop("trt_cache_version"), o.pop("trt_cache_algorithm"), o.pop("require_engine"),
                                   o.pop("trt_max_batch"), o.pop("trt_float"), build_engine_flags(o)),
            "tflite": TfliteOptions(io=o.pop("tflite_io")),
            "llm": LlmSettings(o.pop("ppl_window"), o.pop("ppl_stride"), o.pop("ppl_tokens"), generation,
                               o.pop("calib_tokens"))}


llm_options = _stack(
    click.option("--prompts", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                 help="Language models: prompts for the continuations (one a line, or JSONL with a \"prompt\" key; "
                      "default: five built-in prompts)."),
    click.option("--max-new-tokens", type=click.IntRange(min=1), default=32, show_default=True,
                 help="Language models: tokens generated per prompt (greedy)."),
    click.option("--ppl-window", type=click.IntRange(min=2), default=512, show_default=True,
                 help="Language models: perplexity window in tokens."),
    click.option("--ppl-stride", type=click.IntRange(min=1), default=256, show_default=True,
                 help="Language models: step between perplexity windows (every token is scored once)."),
    click.option("--ppl-tokens", type=click.IntRange(min=2), default=2048, show_default=True,
                 help="Language models: held-out tokens scored (the first ones of --text-data)."),
    click.option("--calib-tokens", type=click.IntRange(min=2), default=8192, show_default=True,
                 help="Language models: tokens of calibration text (--calib-data) GPTQ rounds onnx-int4 against."),
    click.option("--fid-features", type=click.Path(exists=True, dir_okay=False), metavar="MODEL.onnx",
                 help="Image generators (--task image-generation): the ONNX model whose first output FID reads "
                      "images through (default: the bundled digits classifier's penultimate layer)."),
)


qat_options = _stack(
    click.option("--qat", is_flag=True,
                 help="Quantization-aware fine-tuning before INT8 export (PyTorch factories to onnx-int8/trt-int8, "
                      "Keras models to tflite-int8): the FP32 model teaches its fake-quantized copy, no labels "
                      "needed."),
    click.option("--train-data", type=click.Path(exists=True), metavar="NPZ|DIR",
                 help="Training data for --qat and --distill (default: the calibration data). A 'label' key adds "
                      "the task loss."),
    click.option("--qat-epochs", type=click.IntRange(min=1), default=3, show_default=True,
                 help="--qat: passes over the data."),
    click.option("--qat-steps", type=click.IntRange(min=1), help="--qat: stop after this many steps instead."),
    click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1e-5, show_default=True,
                 help="--qat: learning rate of the weights (activation ranges learn at 10x)."),
    click.option("--alpha", type=FiniteFloat(0, 1), default=0.5, show_default=True,
                 help="--qat with labels: weight of the task loss against distillation."),
)


prune_options = _stack(
    click.option("--prune", type=FiniteFloat(0, 1, min_open=True, max_open=True), metavar="RATIO",
                 help="Structured pruning of a PyTorch model before export: remove this fraction of the channels of "
                      "each convolution and of the hidden neurons of each expanding Linear (transformer FFNs), with "
                      "every coupled layer (torch-pruning's DepGraph). Every target is built from the pruned model."),
    click.option("--prune-importance", type=click.Choice(IMPORTANCES), default=IMPORTANCES[0],
                 show_default=True, help="--prune: rank channels by weight norm, or by |weight x gradient| on a "
                                         "calibration batch."),
    click.option("--prune-kinds", metavar="KIND[=RATIO],...",
                 help="--prune: only these kinds of layers, each at its own ratio (default --prune's): conv "
                      "(convolution channels), ffn (hidden neurons of expanding Linears), e.g. conv=0.3,ffn=0.5."),
    click.option("--student", metavar="every:K|FILE.py:FACTORY",
                 help="A smaller model for --distill: every:K keeps every K-th block of the layer stack (a "
                      "transformer's layers); a factory builds one that takes the same inputs. Both start from the "
                      "original's weights where names and shapes match."),
    click.option("--distill", is_flag=True,
                 help="With --prune or --student: train that model on the original's outputs (label-free; a "
                      "'label' key in --train-data adds the task loss)."),
    click.option("--sparsity", type=click.Choice(SPARSITY_PATTERNS),
                 help="Mask the weights of every Linear/convolution whose input width is a multiple of 4 to the 2:4 "
                      "pattern and fine-tune by distillation from the original (--distill-* settings); trt-int8 "
                      "lints the pattern and builds with sparse weights (faster on sparse tensor cores only)."),
    click.option("--distill-epochs", type=click.IntRange(min=1), default=30, show_default=True,
                 help="--distill and --sparsity fine-tuning: passes over the training data."),
    click.option("--distill-steps", type=click.IntRange(min=1),
                 help="--distill and --sparsity fine-tuning: stop after this many steps instead."),
    click.option("--distill-lr", type=FiniteFloat(min=0, min_open=True),
                 help="--distill and --sparsity fine-tuning: learning rate (default: 1e-3 for models under 5M "
                      "parameters, 1e-4 above)."),
    click.option("--distill-hidden", type=FiniteFloat(min=0), default=1.0, show_default=True,
                 help="--distill and --qat: weight of hidden-state matching (each block of the layer stack "
                      "against the teacher's block at the same relative depth) beside the outputs; 0 matches "
                      "outputs only."),
    click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default="auto", show_default=True,
                 help="Where --distill and --sparsity train (auto: CUDA when torch sees a GPU)."),
)


def prune_kinds(spec: str | None, ratio: float | None) -> tuple[tuple[str, float], ...]:
    """"conv=0.3,ffn" -> (("conv", 0.3), ("ffn", ratio))."""
    from .compression.prune_torch import KINDS
    from .errors import UsageError

    if not spec:
        return ()
    if ratio is None:
        raise UsageError("--prune-kinds refines --prune RATIO: give --prune too")
    found = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        if name not in KINDS:
            raise UsageError(f"--prune-kinds: unknown kind {name!r}; known: {', '.join(KINDS)}")
        try:
            found.append((name, float(value) if value else ratio))
        except ValueError:
            raise UsageError(f"--prune-kinds: {item!r}: the ratio after '=' is a number such as 0.3") from None
    return tuple(found)


def build_compression(o: dict, seed: int) -> tuple:
    """The compression steps in the order they run: prune, student, distill, 2:4 sparsity, then QAT on the
    result."""
    from .compression.distill_torch import DistillSettings
    from .compression.prune import PruneSettings
    from .compression.qat_settings import QatSettings

    steps: list = []
    ratio, importance, student = o.pop("prune"), o.pop("prune_importance"), o.pop("student")
    kinds = prune_kinds(o.pop("prune_kinds"), ratio)
    hidden = o.pop("distill_hidden")
    distill = DistillSettings(epochs=o.pop("distill_epochs"), steps=o.pop("distill_steps"), lr=o.pop("distill_lr"),
                              alpha=o["alpha"], seed=seed, device=o.pop("device"), hidden=hidden)
    if ratio is not None:
        steps.append(("prune", PruneSettings(ratio, importance, kinds)))
    if student:
        from .compression.student import StudentSettings

        steps.append(("student", StudentSettings(student)))
    if o.pop("distill"):
        steps.append(("distill", distill))
    pattern = o.pop("sparsity")
    if pattern:
        from .compression.sparsity import SparsitySettings

        steps.append(("sparsity", SparsitySettings(pattern, distill)))
    settings = QatSettings(epochs=o.pop("qat_epochs"), steps=o.pop("qat_steps"), lr=o.pop("lr"), alpha=o.pop("alpha"),
                           seed=seed, hidden=hidden)
    if o.pop("qat"):
        steps.append(("qat", settings))
    return tuple(steps)
