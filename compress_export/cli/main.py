"""The command line: a thin layer that builds a config and calls the Python API.

Exit codes: 0 passed, 1 a validation gate failed, 2 usage or input error, 3 missing optional
dependency or device, 4 conversion/export error, 70 internal error, 130 interrupted, 143 terminated.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import UsageError
from .command_group import ModelFirstGroup, terminate
from .option_groups import (
    ExportCommand,
    FiniteFloat,
    RegistryChoice,
    apply_provider,
    bench_options,
    build_bench,
    build_compression,
    build_engine_flags,
    build_gates,
    build_recipe,
    build_target_options,
    calibrator_names,
    data_options,
    engine_flag_options,
    fallback_option,
    gate_options,
    gate_override_options,
    output_options,
    pop_gate_overrides,
    provider_option,
    quant_options,
    source_options,
    targets_help,
    task_data_options,
    task_option,
)
from .summary import print_summary

ROOT_HELP = """Compress a trained model, export it for a target, and prove the result.

\b
  compress-export MODEL --to onnx,onnx-int8,onnx-dynamic --calib-data calib.npz --out dist/
  compress-export demo
  compress-export run recipe.yaml --out dist/
  compress-export sweep fleet.yaml --out fleet-out/
  compress-export compare old/ new/ --max-latency-regression 5
  compress-export calibrate model.onnx --calib-data calib.npz --out ranges.json
  compress-export validate dist/onnx-int8
  compress-export lint dist/trt-int8/model.onnx --for tensorrt

MODEL is a .onnx file, a torch.export .pt2 file, a Keras .keras/.h5 file, a Hugging Face
checkpoint folder (an encoder, a sequence classifier or a ...ForCausalLM language model), a .gguf
language model, or a factory that returns an nn.Module (path/file.py:factory or
package.module:factory). Pickled weights and models and Keras Lambda layers (all run code from the
file) are refused unless --trust-pickle. `compress-export targets` lists the targets of each kind;
`compress-export export --help` every option of the main job.

\b
Exit codes: 0 passed, 1 a gate failed, 2 usage or input error, 3 missing optional
dependency, 4 export error, 70 internal error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""


@click.group(cls=ModelFirstGroup, help=ROOT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="compress-export")
def cli() -> None:
    pass


def _open_command(o: dict) -> tuple[bool, bool]:
    """Every command with output options starts here: (--json, -q), logging set for -v/-q. -q also silences what
    libraries print through logging, warnings and progress bars (torch, transformers, TensorFlow)."""
    as_json, quiet, verbose = o.pop("as_json"), o.pop("quiet"), o.pop("verbose")
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=logging.ERROR if quiet else level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    if quiet:
        from ..util.quiet_logs import quiet_third_parties

        quiet_third_parties()
    return as_json, quiet


def _inputs(texts: tuple[str, ...]):
    from ..specs import TensorSpec

    return tuple(TensorSpec.parse(text) for text in texts)


def _write_text(path: Path, text: str, option: str) -> None:
    from ..bundle.writer import write_text_atomic

    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist")
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


@cli.command("export", cls=ExportCommand, generated_before="prompts")
@click.argument("model")
@click.option("--to", "targets", required=True, metavar="TARGETS", help=targets_help())
@click.option("--out", type=click.Path(file_okay=False), default="dist", show_default=True,
              help="Bundles are written to OUT/<target>/.")
@source_options
@data_options
@click.option("--val-data", type=click.Path(exists=True), metavar="NPZ|DIR",
              help="Held-out data for validation (default: a held-out split of --calib-data).")
@click.option("--holdout", type=FiniteFloat(0.05, 0.9), default=0.2, show_default=True,
              help="Fraction of --calib-data held out for validation when --val-data is not given.")
@click.option("--ranges", "ranges_from", type=click.Path(exists=True, dir_okay=False),
              help="Use this ranges.json instead of calibrating.")
@click.option("--ranges-from-cache", type=click.Path(exists=True, dir_okay=False),
              help="Use the scales of a TensorRT calibration cache instead of calibrating.")
@click.option("--stats-cache", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep calibration statistics in DIR and reuse them when the model, data and settings match "
                   "(runs of other calibrators or targets skip the pass). Not a recipe setting.")
@task_option
@quant_options
@gate_options
@fallback_option
@bench_options
@task_data_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for splits, random data and training.")
@click.option("--with-baseline", is_flag=True,
              help="Each bundle carries its FP32 baseline, so `validate` on the device reports speed-ups there.")
@provider_option
@output_options
def export_command(**o) -> int:
    """Export MODEL to each target, validate it, and write a bundle per target.

    MODEL is a .onnx file, a torch.export .pt2 file, a Keras .keras/.h5 file, a Hugging Face checkpoint
    folder (encoder, sequence classifier, or ...ForCausalLM language model), a .gguf language model, or
    path/file.py:factory / package.module:factory returning an nn.Module. Loading never runs code from a
    model or weights file: pickled files and Keras Lambda layers are refused unless --trust-pickle (both
    run code). A factory is Python you name, and runs.
    """
    as_json, quiet = _open_command(o)
    from ..job import PipelineConfig
    from ..pipeline import run

    if o["ranges_from"] and o["ranges_from_cache"]:
        raise UsageError("give --ranges or --ranges-from-cache, not both")
    reshaping = [step for step in ("equalization", "smoothquant") if step in o["ptq"].split(",")]
    if reshaping and (o["ranges_from"] or o["ranges_from_cache"]):
        raise UsageError(f"--ptq {','.join(reshaping)} changes the activations a given range table describes: "
                         "drop it, or calibrate here (without --ranges/--ranges-from-cache)")
    from .recipe_file import resolved_recipe

    run_recipe = resolved_recipe(o)
    apply_provider(o)
    config = PipelineConfig(run_recipe=run_recipe,
        recipe=build_recipe(o), gates=build_gates(o), fallback=not o.pop("no_fallback"), bench=build_bench(o),
        target_options=build_target_options(o), compression=build_compression(o, o["seed"]),
        inputs=_inputs(o.pop("inputs")), out=Path(o.pop("out")), progress=not quiet, **o)
    result = run(config)
    print_summary(result, as_json, quiet)
    return result.exit_code


@cli.command("run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def run_command(ctx: click.Context, recipe: str) -> int:
    """Run the job a recipe file describes: `compress-export run recipe.yaml [EXPORT OPTIONS]`.

    A key is an export option's long name (to, calib-data, min-cosine, ...) or model; sections group keys
    (data:, gates:, ...). Unknown keys are errors. Options given here override the file. Each bundle keeps
    the resolved recipe as recipe.yaml, which runs the same job again.
    """
    from .recipe_file import read_recipe

    values = read_recipe(Path(recipe), export_command)
    return export_command.main(args=list(ctx.args), prog_name="compress-export run", default_map=values,
                               standalone_mode=False)


@cli.command("compare")
@click.argument("a", type=click.Path(exists=True, file_okay=False))
@click.argument("b", type=click.Path(exists=True, file_okay=False))
@click.option("--max-latency-regression", type=FiniteFloat(0.0, 1000.0), default=5.0, show_default=True,
              help="Gate: percent by which B's speed-up against FP32 may fall behind A's, at any batch size.")
@click.option("--max-quality-drop", type=FiniteFloat(0.0, 1000.0), default=0.005, show_default=True,
              help="Gate: how far any gate's value (cosine, accuracy drop, ...) may move the wrong way.")
@click.option("--max-size-growth", type=FiniteFloat(0.0, 1000.0), default=5.0, show_default=True,
              help="Gate: percent by which B's artifact may be larger.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
def compare_command(a, b, max_latency_regression, max_quality_drop, max_size_growth, as_json) -> int:
    """Compare two bundles, two runs' output folders or two sweeps' (a release against the last one), target by
    target: quality, speed-up, size, MACs.
    Exit 1 when B regresses past a limit (for CI), 0 otherwise."""
    from ..bundle.compare import Limits, compare, markdown

    result = compare(Path(a), Path(b), Limits(max_latency_regression, max_quality_drop, max_size_growth))
    click.echo(json.dumps(result, indent=2) if as_json else markdown(result))
    return 0 if result["passed"] else 1


@cli.command("calibrate")
@click.argument("model")
@click.option("--out", type=click.Path(dir_okay=False), default="ranges.json", show_default=True,
              help="Where to write the range table.")
@source_options
@data_options
@quant_options
@output_options
def calibrate_command(**o) -> int:
    """Collect activation statistics in one streaming pass and write ranges.json."""
    as_json, quiet = _open_command(o)
    from ..api import calibrate

    out = o.pop("out")
    table = calibrate(o.pop("model"), Path(out), recipe=build_recipe(o), inputs=_inputs(o.pop("inputs")),
                      progress=not quiet, **o)
    if as_json:
        click.echo(table.to_json())
    if not quiet:
        click.echo(f"{len(table.ranges)} tensor ranges ({table.method}) written to {out}", err=True)
        for name, reason in table.skipped.items():
            click.echo(f"skipped {name}: {reason}", err=True)
    return 0


@cli.command("validate")
@click.argument("bundle", type=click.Path(file_okay=False))
@gate_override_options
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Also write the report JSON here.")
@click.option("--require-engine", is_flag=True,
              help="trt-int8 bundles: exit 3 unless the TensorRT engine runs here (no onnxruntime proxy).")
@bench_options
@provider_option
@output_options
def validate_command(**o) -> int:
    """Re-check a bundle: file hashes, parity against its reference outputs, and the benchmark."""
    as_json, quiet = _open_command(o)
    apply_provider(o)
    from ..api import validate_bundle

    report = validate_bundle(Path(o["bundle"]), bench=build_bench(o), require_engine=o["require_engine"],
                             **pop_gate_overrides(o))
    data = report.to_dict()
    if o["report_path"]:
        _write_text(Path(o["report_path"]), json.dumps(data, indent=2) + "\n", "--report")
    if as_json:
        click.echo(json.dumps(data, indent=2))
    if not quiet:
        click.echo(report.to_markdown(), err=True)
    return report.exit_code


@cli.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="demo-out", show_default=True,
              help="Where the demo data and bundles go.")
@click.option("--to", "targets", default="onnx,onnx-int8,onnx-dynamic", show_default=True, help=targets_help())
@click.option("--calibrator", type=RegistryChoice(calibrator_names), default="entropy", show_default=True,
              help="How activation ranges are chosen from the collected histograms.")
@bench_options
@output_options
def demo_command(**o) -> int:
    """The whole job on a small digits CNN that ships inside the package."""
    as_json, quiet = _open_command(o)
    from ..api import run_demo

    result = run_demo(Path(o["out"]), targets=o["targets"], calibrator=o["calibrator"], bench=build_bench(o),
                      progress=not quiet)
    print_summary(result, as_json, quiet)
    return result.exit_code


@cli.command("lint")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--for", "backend", type=click.Choice(["tensorrt"]), default="tensorrt", show_default=True,
              help="The rules to check against.")
@click.option("--float", "float_precision", type=click.Choice(("fp16", "any")), default="any", show_default=True,
              help="fp16: also flag compute layers left FP32 (bar those the model's metadata names as kept).")
@click.option("--sparsity", type=click.Choice(("2:4", "any")), default="any", show_default=True,
              help="2:4: check the 2:4 weight pattern (checked anyway where the model's metadata says 2:4).")
@click.option("--json", "as_json", is_flag=True, help="Print the violations as JSON on stdout.")
def lint_command(model, backend, float_precision, sparsity, as_json) -> int:
    """Check that a QDQ ONNX model follows TensorRT's explicit-quantization rules; exit 1 on any violation.

    \b
    Rules: INT8 Q/DQ only; zero points 0; weights in [-127, 127] with the per-channel axis on the output
    channel; opset >= 13 (19 for FP16 scales); positive finite scales; biases in float; no Q/DQ on graph
    outputs; one scale across Concat inputs; 2:4 weights where asked or recorded.
    """
    from ..api import lint_model

    violations = lint_model(Path(model), float_precision, sparsity)
    if as_json:
        click.echo(json.dumps({"model": model, "for": backend, "passed": not violations,
                               "violations": [v.to_dict() for v in violations]}, indent=2))
    for violation in violations:
        click.echo(str(violation), err=True)
    click.echo(f"{model}: {len(violations)} violation(s) of the {backend} rules", err=True)
    return 1 if violations else 0


@cli.command("build-engine")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Largest batch of the optimization profile.")
@engine_flag_options
def build_engine_command(bundle, max_batch, **flags) -> int:
    """Build the TensorRT engine of a trt-int8 bundle on this device and add it to the bundle."""
    from ..api import build_engine_for_bundle

    versions = build_engine_for_bundle(Path(bundle), max_batch, build_engine_flags(flags))
    click.echo(f"engine built: {json.dumps(versions)}", err=True)
    return 0


@cli.command("targets")
def targets_command() -> int:
    """List the export targets, the runtime that validates each, and the extra it needs."""
    from ..exporters.catalog import FAMILIES, TARGETS

    for family, title in FAMILIES.items():
        if family != "tensor":
            click.echo(f"\nfor {title}:")
        for target in TARGETS[family].values():
            extra = "" if target.extra == "core" else f"  [needs compress-export[{target.extra}]]"
            click.echo(f"{target.name:15} {target.runtime:17} {target.summary}{extra}")
    return 0


def main() -> None:
    signal.signal(signal.SIGTERM, terminate)
    cli.main(prog_name="compress-export")


if __name__ == "__main__":
    main()
