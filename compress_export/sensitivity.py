"""Quality budget: which quantized activations hurt the outputs most, and the fewest to keep in float.

The unit is the activation tensor: onnxruntime quantizes a tensor when its producer or any consumer
is quantized, so a tensor stays float only when all of them do. A configuration "these tensors in
float" is evaluated without re-running the quantizer, by bypassing their Q/DQ pairs in the exported
graph; the held-out subsample then runs against the original model's outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import onnx

from .data import batch_rows
from .specs import Gates
from .validators.parity import ParityAccumulator

SUBSAMPLE = 64
FOLDED_ACTIVATIONS = ("Relu", "Clip")


def with_float_tensors(quantized: onnx.ModelProto, original: onnx.ModelProto, names: Iterable[str]
                       ) -> onnx.ModelProto:
    """A copy of the QDQ graph where the named activations skip their Quantize/DequantizeLinear pair.
    Where the quantizer folded a Relu or Clip into the pair's clamp, the activation is applied again,
    so the consumers see exactly the float tensor of the original graph."""
    names = set(names)
    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    original_producer = {out: node for node in original.graph.node for out in node.output}
    nodes = list(model.graph.node)
    producer = {out: node for node in nodes for out in node.output}
    replacement: dict[str, str] = {}
    inserted: list[tuple[onnx.NodeProto | None, onnx.NodeProto]] = []
    for node in nodes:
        if node.op_type != "QuantizeLinear" or node.input[0] not in names:
            continue
        tensor = node.input[0]
        folded = original_producer.get(tensor)
        made_by = producer.get(tensor)
        source = tensor
        if folded is not None and folded.op_type in FOLDED_ACTIVATIONS and (made_by is None or
                                                                           made_by.op_type != folded.op_type):
            restored = onnx.NodeProto()
            restored.CopyFrom(folded)
            restored.name = f"{folded.name}_restored"
            restored.input[0] = tensor
            del restored.output[:]
            source = f"{tensor}_float"
            restored.output.append(source)
            inserted.append((made_by, restored))
        for dequantize in nodes:
            if dequantize.op_type == "DequantizeLinear" and dequantize.input[0] == node.output[0]:
                replacement[dequantize.output[0]] = source
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name in replacement:
                node.input[index] = replacement[name]
    for after, restored in inserted:
        position = list(model.graph.node).index(after) + 1 if after is not None else 0
        model.graph.node.insert(position, restored)
    return model


def quantized_activations(model: onnx.ModelProto) -> list[str]:
    """Activation tensors that pass through a QuantizeLinear, in graph order."""
    constants = {init.name for init in model.graph.initializer}
    seen: dict[str, None] = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in constants:
            seen[node.input[0]] = None
    return list(seen)


def adjacent_nodes(original: onnx.ModelProto, tensors: Iterable[str], quantizable: set[str]) -> list[str]:
    """The quantizable nodes that make or read each tensor (through a folded Relu/Clip): keeping them
    in float is what keeps the tensor unquantized in the exported graph."""
    producer = {out: node for node in original.graph.node for out in node.output}
    chosen: dict[str, None] = {}
    for tensor in tensors:
        made_by = producer.get(tensor)
        while made_by is not None and made_by.op_type in FOLDED_ACTIVATIONS:
            chosen.setdefault(made_by.name, None)
            made_by = producer.get(made_by.input[0])
        if made_by is not None:
            chosen.setdefault(made_by.name, None)
        for node in original.graph.node:
            if tensor in node.input:
                chosen.setdefault(node.name, None)
    return [name for name in chosen if name in quantizable]


@dataclass
class Evaluator:
    """Scores configurations on a held-out subsample: the worst mean cosine over outputs, and accuracy."""

    quantized: onnx.ModelProto
    original: onnx.ModelProto
    batches: list  # (feeds, labels, reference outputs)
    gates: Gates
    evaluations: int = 0

    def score(self, float_tensors: Iterable[str]) -> dict:
        import onnxruntime as ort

        model = with_float_tensors(self.quantized, self.original, float_tensors)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]
        accumulator = ParityAccumulator(list(self.batches[0][2]))
        for feeds, labels, expected in self.batches:
            produced = dict(zip(names, session.run(names, feeds), strict=True))
            accumulator.update(expected, produced, labels)
        self.evaluations += 1
        cosine = min(stats["cosine"] for stats in accumulator.parity().values())
        metrics = accumulator.metrics()
        drop = 100.0 * (metrics["reference"]["accuracy"] - metrics["candidate"]["accuracy"]) if metrics else None
        return {"cosine": cosine, "accuracy_drop": drop}

    def meets(self, score: dict) -> bool:
        return self.gates.cosine_passes(score["cosine"]) and self.gates.accuracy_passes(score["accuracy_drop"])


@dataclass
class SearchResult:
    float_tensors: list[str]
    met: bool
    baseline: dict
    final: dict
    ranking: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    float_nodes: list[str] = field(default_factory=list)
    evaluations: int = 0
    samples: int = 0

    def to_dict(self) -> dict:
        return {
            "budget_met": self.met, "kept_in_float": self.float_tensors, "float_nodes": self.float_nodes,
            "all_quantized": self.baseline,
            "with_fallback": self.final, "ranking": self.ranking, "seconds": self.seconds,
            "evaluations": self.evaluations, "subsample": self.samples,
        }


def subsample(batches: Sequence, limit: int = SUBSAMPLE) -> list:
    chosen, taken = [], 0
    for feeds, labels, expected in batches:
        if taken >= limit:
            break
        rows = min(batch_rows(feeds), limit - taken)
        chosen.append(({k: v[:rows] for k, v in feeds.items()}, None if labels is None else labels[:rows],
                       {k: v[:rows] for k, v in expected.items()}))
        taken += rows
    return chosen


def rank_tensors(evaluator: Evaluator, candidates: Sequence[str], baseline: dict,
               on_step: Callable[[], None] | None = None) -> list[dict]:
    """Each tensor's effect: the score with it alone in float (the others quantized), most helpful first."""
    ranking = []
    for name in candidates:
        score = evaluator.score([name])
        ranking.append({"tensor": name, "cosine_if_float": score["cosine"],
                        "cosine_gain": score["cosine"] - baseline["cosine"], "accuracy_drop_if_float":
                        score["accuracy_drop"]})
        if on_step:
            on_step()
    ranking.sort(key=lambda row: (-row["cosine_gain"], row["tensor"]))
    return ranking


def search_fallback(evaluator: Evaluator, candidates: Sequence[str], on_step: Callable[[], None] | None = None
                    ) -> SearchResult:
    """Return the most sensitive tensors to float, one at a time in ranked order, until the budget holds."""
    start = time.perf_counter()
    baseline = evaluator.score([])
    if evaluator.meets(baseline):
        return SearchResult(float_tensors=[], met=True, baseline=baseline, final=baseline,
                            seconds=time.perf_counter() - start, evaluations=evaluator.evaluations)
    ranking = rank_tensors(evaluator, candidates, baseline, on_step)
    kept: list[str] = []
    score = baseline
    for row in ranking:
        if row["cosine_gain"] <= 0 and kept:
            break
        kept.append(row["tensor"])
        score = evaluator.score(kept)
        if evaluator.meets(score):
            break
    return SearchResult(float_tensors=kept, met=evaluator.meets(score), baseline=baseline, final=score,
                        ranking=ranking, seconds=time.perf_counter() - start, evaluations=evaluator.evaluations)


def plot_sensitivity(ranking: list[dict], path, count: int = 15) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = ranking[:count][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2), dpi=100)
    axes.barh([row["tensor"] for row in rows], [row["cosine_gain"] for row in rows], color="#4c72b0")
    axes.set_xlabel("cosine gain when this tensor alone stays in float")
    axes.set_title("most sensitive quantized activations")
    axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return True

