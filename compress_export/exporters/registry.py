"""The target protocol: what a target declares, and the context its export function receives.
Declarations are data (see catalog.py); export functions are imported only when a target runs, so
listing targets (`--help`, `compress-export targets`) imports no framework."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..util.lazy import resolve

if TYPE_CHECKING:
    from ..calibration.range_table import RangeTable
    from ..data.calibration_data import CalibrationData
    from ..sources import LoadedModel
    from ..specs import Artifact, QuantRecipe, TensorSpec


@dataclass(frozen=True)
class ExportContext:
    """What a target's export function gets. `options` is the target family's own settings object."""

    fp32_onnx: Path | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    recipe: QuantRecipe
    ranges: RangeTable | None
    bundle_dir: Path
    example_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    float_nodes: frozenset[str] = frozenset()  # kept in float by the quality-budget fallback
    source: LoadedModel | None = None  # the loaded model, for targets that convert it directly
    calibration: CalibrationData | None = None  # for targets that calibrate the source model themselves
    options: Any = None
    weight_plan: Any = None  # language models: the decoder's weight matrices and the widths a search chose


@dataclass(frozen=True)
class Target:
    """name: what `--to` takes. export: "module:function" taking an ExportContext, returning an Artifact.
    runtime: where its artifacts run. consumes: "onnx" (the FP32 ONNX graph) or "source" (the loaded
    model). ranges: which range table it reads: "onnx" (the FP32 graph's, from our calibrators), "source"
    (it calibrates the source model itself, or takes ranges learned there), or None. budget_search:
    whether the quality-budget search runs on its artifact, and how its answer lands: "rewrite" (the
    searched graph itself is the artifact: what was measured is what ships) or "reexport" (the export
    runs again with the fallback nodes, for targets whose placement rules a bypassed pair could
    break). baseline: the FP32 target it is timed
    against in its own runtime. options: the key of its family's settings (TrtOptions, TfliteOptions).
    calibrates: op types (beyond the recipe's) whose tensors calibration must cover for its placement.
    revalidate: "module:function(artifact: dict, require_engine: bool) -> (artifact, notes)" for
    `validate` on another machine, where the artifact's runtime may be missing. finish: a rewrite that keeps the
    function (kernel fusions) applied to the artifact after the budget search, then validated again; the file
    before it comes back when the rewritten one misses a gate the other met. search_graph: for a target whose artifact
    is not ONNX, "module:function(ctx, folder) -> Artifact" writing the ONNX graph it is converted from, which the
    budget search rewrites (its trials run in the target's runtime). family: the kind of model it takes,
    as its task family names it: "tensor" (a network of fixed inputs) or "generation" (a causal language model,
    whose budget search is "widths": which weight matrices stay wider)."""

    name: str
    summary: str
    export: str
    runtime: str = "onnxruntime"
    consumes: str = "onnx"
    extra: str = "core"
    ranges: str | None = None
    budget_search: str | None = None  # None, "rewrite" or "reexport"
    baseline: str = "onnx"
    options: str | None = None
    revalidate: str | None = None
    calibrates: tuple[str, ...] = ()  # op types beyond the recipe's whose float tensors it quantizes
    finish: str | None = None  # "module:function(path, feeds) -> notes": run on the artifact the budget settled on
    family: str = "tensor"
    search_graph: str | None = None

    @property
    def quantizes(self) -> bool:
        return self.ranges is not None

    @property
    def is_baseline(self) -> bool:
        return self.baseline == self.name

    def run_export(self, ctx: ExportContext) -> Artifact:
        return resolve(self.export)(ctx)

    def run_finish(self, path, feeds) -> list[str]:
        return resolve(self.finish)(path, feeds) if self.finish else []

    def write_search_graph(self, ctx: ExportContext, folder: Path) -> Path:
        return Path(resolve(self.search_graph)(ctx, folder).path)

    def revalidation(self, artifact: dict, require_engine: bool) -> tuple[dict, list[str]]:
        if self.revalidate is None:
            return artifact, []
        return resolve(self.revalidate)(artifact, require_engine)


def get_target(name: str, family: str = "tensor") -> Target:
    from .catalog import FAMILIES, TARGETS

    known = TARGETS[family]
    try:
        return known[name]
    except KeyError:
        where = "" if family == "tensor" else f" for {FAMILIES[family].split(' (')[0]}"
        raise UsageError(f"unknown target {name!r}{where}; supported: {', '.join(known)}") from None


def parse_targets(text: str, family: str = "tensor") -> list[Target]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--to needs at least one target")
    return [get_target(name, family) for name in dict.fromkeys(names)]
