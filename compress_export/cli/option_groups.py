"""Reusable Click option groups. Each group adds its options to a command and builds its own object
from the parsed values (a QuantRecipe, Gates, BenchSettings, target options, compression steps), so a
command body only assembles them. What a registry declares is generated, never written here: gate options from
the metric registry, target-family options from the catalog's settings classes, compression options from the
methods, calibrator names from the calibrator registry."""

from __future__ import annotations

import math

import click


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


class RegistryChoice(click.Choice):
    """A choice among a registry's names, read when the option is used (a member registered after import counts)."""

    def __init__(self, names):
        self._names = names
        super().__init__(())

    @property
    def choices(self):
        return tuple(self._names())

    @choices.setter
    def choices(self, value) -> None:
        pass


def calibrator_names() -> tuple[str, ...]:
    from ..calibration.methods import CALIBRATORS

    return tuple(CALIBRATORS)


def _option_attributes(spec) -> dict:
    """click's keyword arguments for an OptionSpec."""
    if spec.kind == "flag":
        return {"is_flag": True, "help": spec.help}
    kinds = {"int": lambda: click.IntRange(spec.minimum, spec.maximum, min_open=spec.min_open, max_open=spec.max_open),
             "float": lambda: FiniteFloat(spec.minimum, spec.maximum, min_open=spec.min_open, max_open=spec.max_open),
             "choice": lambda: click.Choice(spec.choices), "text": lambda: click.STRING,
             "file": lambda: click.Path(exists=True, dir_okay=False), "path": lambda: click.Path(exists=True)}
    return {"type": kinds[spec.kind](), "default": spec.default, "show_default": spec.default is not None,
            "metavar": spec.metavar, "help": spec.help}


def click_option(spec) -> click.Option:
    return click.Option([spec.flag, spec.dest], **_option_attributes(spec))


def option_decorators(specs):
    """Decorators adding these OptionSpecs to a command, in their order."""
    return _stack(*(click.option(spec.flag, spec.dest, **_option_attributes(spec)) for spec in specs))


def generated_options() -> list[click.Option]:
    """The export options registries declare: each target family's settings, then each compression method's."""
    from ..compression import method_options
    from ..exporters.catalog import OPTIONS
    from ..util.lazy import resolve

    specs = [spec for reference in OPTIONS.values() for spec in resolve(reference).options]
    return [click_option(spec) for spec in [*specs, *method_options()]]


class ExportCommand(click.Command):
    """The export command: its own options plus those the registries declare (`generated_options`), placed before
    the parameter named `generated_before` and read when the command is used, so a registered target family or
    compression method brings its options without an edit here."""

    def __init__(self, *args, generated_before: str, **kwargs):
        self._generated_before = generated_before
        self._generated: tuple | None = None
        super().__init__(*args, **kwargs)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from ..compression import METHODS
        from ..exporters.catalog import OPTIONS

        key = (tuple(METHODS.items()), tuple(OPTIONS.items()))
        if self._generated is None or self._generated[0] != key:  # the same objects while nothing is registered
            self._generated = (key, generated_options())
        params = super().get_params(ctx)
        at = next(i for i, param in enumerate(params) if param.name == self._generated_before)
        return [*params[:at], *self._generated[1], *params[at:]]


def _stack(*decorators):
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def split_list(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else ()


def targets_help() -> str:
    from ..exporters.catalog import TARGETS

    return ("Comma-separated targets: " + ", ".join(TARGETS["tensor"]) + "; for a language model: "
            + ", ".join(TARGETS["generation"]) + " (`compress-export targets` says what each makes).")


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

def _weight_steps(_ctx, _param, value: str) -> str:
    names = split_list(value) or ("none",)
    if names in (("auto",), ("none",)):
        return names[0]
    from ..ptq.steps import STEPS

    unknown = [name for name in names if name not in STEPS]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a PTQ step (auto, none, {', '.join(STEPS)})")
    return ",".join(dict.fromkeys(names))


quant_options = _stack(
    click.option("--calibrator", type=RegistryChoice(calibrator_names), default="entropy", show_default=True,
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
    click.option("--ptq", metavar="STEPS", default="auto", show_default=True, callback=_weight_steps,
                 help="PTQ weight steps for INT8 targets: auto (the quality-budget search tries each where the "
                      "plain export misses and keeps what helps), none, or a list applied always from "
                      "equalization, smoothquant, learned-rounding, bias-correction."),
)


def build_recipe(o: dict):
    from ..specs import QuantRecipe

    return QuantRecipe(method=o.pop("calibrator"), percentile=o.pop("percentile"), num_bins=int(o.pop("num_bins")),
                       per_channel=not o.pop("per_tensor_weights"), include_ops=split_list(o.pop("include_ops")),
                       exclude_ops=split_list(o.pop("exclude_ops")), exclude_nodes=o.pop("exclude_nodes"),
                       weight_steps=o.pop("ptq"))


def _gate_option(gate, override: bool):
    flag = "--" + gate.name.replace("_", "-")
    limits = FiniteFloat(gate.low, gate.high)
    if override:
        return click.option(flag, gate.name, type=limits, help=f"Override the bundle's {gate.name} gate.")
    return click.option(flag, gate.name, type=limits, default=gate.default, show_default=True, help=gate.help)


def gate_options(function, override: bool = False):
    """One option per registered gate (--min-cosine, --max-accuracy-drop, ...)."""
    from ..metrics import all_gates

    for gate in reversed(all_gates()):
        function = _gate_option(gate, override)(function)
    return function


def gate_override_options(function):
    return gate_options(function, override=True)


def build_gates(o: dict):
    from ..metrics.gates import Gates

    return Gates(**pop_gate_overrides(o))


def pop_gate_overrides(o: dict) -> dict:
    from ..metrics import all_gates

    return {gate.name: o.pop(gate.name) for gate in all_gates()}


fallback_option = _stack(
    click.option("--no-fallback", is_flag=True,
                 help="Do not keep the most sensitive nodes in float when a quantized artifact misses the gates."),
    click.option("--search-minutes", type=click.FloatRange(min=0), default=10.0, show_default=True,
                 help="Time for the budget search to bring float tensors back to INT8 once a float set meets the "
                      "gates (large models: each trial runs the whole model); what it found by then ships."),
)


def task_option(function):
    from ..metrics.tasks import TASKS

    return click.option("--task", type=click.Choice(("auto", *TASKS)), default="auto", show_default=True,
                        help="What the model does, which picks its metrics (auto: classification for "
                             "(batch, classes) outputs, else embedding).")(function)


provider_option = click.option(
    "--provider", metavar="NAME", help="onnxruntime execution provider that runs the ONNX artifacts: cpu, cuda, "
    "tensorrt, openvino, dml, coreml, rocm, qnn, xnnpack, or a full name (refused unless this onnxruntime has it).")


def apply_provider(o: dict) -> None:
    name = o.pop("provider")
    if name:
        from ..runtimes.providers import use_provider

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
    from ..errors import UsageError
    from ..validators.bench import BenchSettings

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


def engine_flag_options(function):
    from ..exporters.tensorrt.options import EngineFlags

    return option_decorators(EngineFlags.options)(function)


def build_engine_flags(o: dict):
    from ..exporters.tensorrt.options import EngineFlags

    flags = EngineFlags.from_values(o)
    _pop(o, EngineFlags.options)
    return flags


def build_target_options(o: dict) -> dict:
    """Each target family's settings by its catalog key, from the options it declares."""
    from ..exporters.catalog import OPTIONS
    from ..util.lazy import resolve

    built = {}
    for key, reference in OPTIONS.items():
        settings = resolve(reference)
        built[key] = settings.from_values(o)
        _pop(o, settings.options)
    return built


def build_compression(o: dict, seed: int) -> tuple:
    """The compression steps the options ask for, in the order they run (the method registry's)."""
    from ..compression import build_steps, method_options

    steps = build_steps(o, seed)
    _pop(o, method_options())
    return steps


def _pop(o: dict, specs) -> None:
    """The generated options are read: what is left of `o` goes to PipelineConfig."""
    for spec in specs:
        o.pop(spec.dest)


task_data_options = _stack(
    click.option("--prompts", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
                 help="Language models: prompts for the continuations (one a line, or JSONL with a \"prompt\" key; "
                      "default: five built-in prompts)."),
    click.option("--fid-features", type=click.Path(exists=True, dir_okay=False), metavar="MODEL.onnx",
                 help="Image generators (--task image-generation): the ONNX model whose first output FID reads "
                      "images through (default: the bundled digits classifier for 1x8x8 images, general "
                      "random-CNN features for any other size)."),
    click.option("--sampler", metavar="NAME[:key=value,...]|FILE.py:FUNCTION",
                 help="Image generators: how the denoiser is called to make one image; quality is measured on the "
                      "final images and the report shows the error after every call. Built in: consistency (steps=1), "
                      "ddim (steps=10, train_steps, beta_start, beta_end, schedule, prediction=epsilon|sample|v, eta), "
                      "euler and edm (steps=10, sigma_min=0.002, sigma_max=80, rho=7, prediction=sample|epsilon), "
                      "each with guidance=W,condition=INPUT,null=V for classifier-free guidance and sample=/level= "
                      "to name the inputs; or your FILE.py:FUNCTION(denoise, inputs, rng). The data files hold the "
                      "first call's inputs. Default: one call, the model's output is the image."),
    click.option("--train-data", type=click.Path(exists=True), metavar="NPZ|DIR",
                 help="Training data for --qat and --distill (default: the calibration data). A 'label' key adds "
                      "the task loss."),
)
