"""Export and weight quantization. onnxruntime-genai's model builder writes the FP32 decoder (KV cache in and
out, fused GroupQueryAttention, genai_config.json, tokenizer files); onnxruntime's MatMulNBitsQuantizer then turns
each weight matrix into INT8 or block-wise INT4 (MatMulNBits; the embedding table as GatherBlockQuantized), with
the bit width chosen per matrix (the budget search's plan). The builder's own int4 is the same quantizer applied
to every matrix at once, which is why it cannot keep a sensitive matrix at 8 bits for a perplexity budget."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ExportError, require
from ...runtimes.onnxruntime_genai import MODEL_FILE
from ...util.quiet_logs import quiet_loggers

BLOCK_SIZE = 32
ACCURACY_LEVEL = 4  # MatMulNBits computes with INT8 activations on CPU: the fast kernels
WEIGHT_OPS = ("MatMul", "Gather")
GATHER_BITS = (4, 8)  # GatherBlockQuantized: a table is 4-bit (onnxruntime's quantizer), 8-bit (ours) or float


def build_fp32(folder: Path, out: Path, cache: Path) -> Path:
    """The FP32 decoder with KV cache for the CPU, by onnxruntime-genai's builder (in a child process: it prints
    per-tensor progress and holds the whole model)."""
    require("onnxruntime_genai", "llm")
    command = [sys.executable, "-m", "compress_export.exporters.genai.builder_shim", "-i", str(folder), "-o",
               str(out), "-p", "fp32", "-e", "cpu", "-c", str(cache), "--extra_options", "hf_remote=false"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not (out / MODEL_FILE).is_file():
        raise ExportError(f"onnxruntime-genai's model builder failed on {folder}: {builder_error(done)}")
    return out


def builder_error(done: subprocess.CompletedProcess) -> str:
    """The line that says why: the exception a traceback ends in, not the warnings the builder prints first."""
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*", line)]
    chosen = raised or lines or [line.strip() for line in done.stdout.splitlines() if line.strip()] or ["no output"]
    return chosen[-1][:300]


def fold_weight_transposes(model, gathers: set[str]) -> int:
    """A tied embedding reaches its Gather through a Transpose of the LM head's weight: give each named Gather its
    own transposed table, so the quantizer sees a weight it can make 4-bit (the head keeps the original). Only
    where the table is to be quantized: a float copy would only add size. Returns how many."""
    from onnx import numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    tables = {node.input[0] for node in model.graph.node if node.op_type == "Gather" and node.name in gathers}
    folded = 0
    for node in list(model.graph.node):
        if node.op_type != "Transpose" or node.input[0] not in initializers or node.output[0] not in tables:
            continue
        readers = [n for n in model.graph.node if node.output[0] in n.input]
        if any(n.op_type != "Gather" for n in readers):
            continue
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        table = np.ascontiguousarray(np.transpose(numpy_helper.to_array(initializers[node.input[0]]), perm))
        model.graph.initializer.append(numpy_helper.from_array(table, node.output[0]))
        model.graph.node.remove(node)
        folded += 1
    return folded


def _save(model, path: Path) -> None:
    import onnx

    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name,
                    size_threshold=1024)


@dataclass(frozen=True)
class WeightMatrix:
    node: str
    op: str  # MatMul or Gather
    weight: str  # the initializer
    shape: tuple[int, ...]  # as the node reads it
    transposed: bool = False  # the node reads the initializer through a Transpose
    parent: str | None = None  # a piece of a fused MatMul (one module's columns): the node it is part of
    columns: tuple[int, int] | None = None  # the piece's columns of the parent's weight
    module: str | None = None  # the piece's module in the source model (model.layers.3.self_attn.v_proj)

    @property
    def label(self) -> str:
        return f"{self.node} ({self.module})" if self.module else self.node

    @property
    def parameters(self) -> int:
        return int(np.prod(self.shape))

    @property
    def read_per_token(self) -> int:
        """Weights a generated token reads: all of a MatMul's, one row of a Gather's table (what a wider width
        costs in decode speed)."""
        return self.parameters if self.op == "MatMul" else int(self.shape[-1])


def weight_matrices(model) -> list[WeightMatrix]:
    """The MatMuls and Gathers that read a 2-D float weight: what the quantizer can turn into N-bit weights."""
    import onnx

    initializers = {init.name: init for init in model.graph.initializer}
    transposed = {node.output[0]: node.input[0] for node in model.graph.node
                  if node.op_type == "Transpose" and node.input[0] in initializers}
    found = []
    for node in model.graph.node:
        if node.op_type not in WEIGHT_OPS:
            continue
        name = node.input[1] if node.op_type == "MatMul" else node.input[0]
        flipped = node.op_type == "Gather" and name in transposed  # a tied embedding: Gather(Transpose(head))
        init = initializers.get(transposed[name] if flipped else name)
        if init is not None and len(init.dims) == 2 and init.data_type == onnx.TensorProto.FLOAT:
            shape = tuple(init.dims)[::-1] if flipped else tuple(init.dims)
            found.append(WeightMatrix(node.name, node.op_type, init.name, shape, flipped))
    return found


def piece(matrix: WeightMatrix, first: int, stop: int, module: str | None = None) -> WeightMatrix:
    """The columns first..stop of a MatMul's weight (one module of a fused projection) as a unit of its own: the
    search can keep it at a width of its own (a fused q/k/v whose v is the sensitive part)."""
    return WeightMatrix(f"{matrix.node}[{first}:{stop}]", matrix.op, matrix.weight, (matrix.shape[0], stop - first),
                        parent=matrix.node, columns=(first, stop), module=module)


def weight_parameters(matrices: list[WeightMatrix]) -> int:
    """Parameters of the weight matrices, each initializer once: a tied embedding is the LM head's weight read
    through a Transpose, one tensor for two nodes."""
    return sum({m.weight: m.parameters for m in matrices}.values())


def quantize(fp32: Path, out: Path, bits: dict[str, int], int4: dict | None = None,
             pieces: list[WeightMatrix] = ()) -> Path:
    """Copy the FP32 build to `out` with each named node's weight at its bit width (4 or 8; absent: float). A
    4-bit MatMul named in `int4` (node -> gptq.Int4Weight) gets those codes and scales instead of round-to-nearest.
    `bits` may name `pieces` (parts of a fused MatMul) instead of their node: a node whose pieces differ in width is
    split into one MatMul per run of equal width, joined by a Concat; one whose pieces agree stays whole."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    out.mkdir(parents=True, exist_ok=True)
    for item in fp32.iterdir():
        if item.is_file() and not item.name.startswith(MODEL_FILE):
            shutil.copy2(item, out / item.name)
    model = onnx.load(str(fp32 / MODEL_FILE))
    bits, int4 = split_mixed_widths(model, bits, dict(int4 or {}), pieces)
    fold_weight_transposes(model, {name for name, width in bits.items() if width in GATHER_BITS})
    quantize_gathers_8bit(model, {name for name, width in bits.items() if width == 8})
    for width in (8, 4):
        nodes = sorted(name for name, b in bits.items() if b == width)
        if not nodes:
            continue
        ops = WEIGHT_OPS if width == 4 else ("MatMul",)
        config = DefaultWeightOnlyQuantConfig(block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=ACCURACY_LEVEL,
                                              bits=width, op_types_to_quantize=ops)
        others = [node.name for node in model.graph.node if node.op_type in ops and node.name not in nodes]
        # nodes_to_include only adds to the op types; nodes_to_exclude is what keeps the others out
        quantizer = MatMulNBitsQuantizer(model, bits=width, block_size=BLOCK_SIZE, is_symmetric=True,
                                         accuracy_level=ACCURACY_LEVEL, nodes_to_exclude=others,
                                         op_types_to_quantize=ops, algo_config=config)
        with quiet_loggers("onnxruntime.quantization.matmul_nbits_quantizer", level=logging.WARNING):
            quantizer.process()  # it logs a line per node at INFO
        model = quantizer.model.model
    if int4:
        replace_4bit_weights(model, {name: int4[name] for name, b in bits.items() if b == 4 and name in int4})
    _save(model, out / MODEL_FILE)
    return out


def split_mixed_widths(model, bits: dict, int4: dict, pieces: list[WeightMatrix]) -> tuple[dict, dict]:
    """Resolve piece widths to nodes: (bits by node, int4 by node). Where a node's pieces ask for different widths
    the node becomes one MatMul per run of equal width (`<node>/columns<a>_<b>`, its own slice of the weight and of
    the GPTQ codes), their outputs concatenated into the original output."""
    from onnx import helper, numpy_helper

    runs: dict[str, list[list]] = {}
    for unit in sorted((p for p in pieces if p.node in bits), key=lambda p: (p.parent, p.columns)):
        node_runs = runs.setdefault(unit.parent, [])
        if node_runs and node_runs[-1][2] == bits[unit.node] and node_runs[-1][1] == unit.columns[0]:
            node_runs[-1][1] = unit.columns[1]
        else:
            node_runs.append([unit.columns[0], unit.columns[1], bits[unit.node]])
    named = {p.node for p in pieces}
    resolved = {name: width for name, width in bits.items() if name not in named}
    initializers = {init.name: init for init in model.graph.initializer}
    for index, node in reversed(list(enumerate(model.graph.node))):
        node_runs = runs.get(node.name)
        if not node_runs:
            continue
        if len(node_runs) == 1:
            resolved[node.name] = node_runs[0][2]
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        made = []
        for first, stop, width in node_runs:
            name, sliced = f"{node.name}/columns{first}_{stop}", f"{node.input[1]}/columns{first}_{stop}"
            model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight[:, first:stop]), sliced))
            made.append(helper.make_node("MatMul", [node.input[0], sliced], [f"{name}/output_0"], name=name))
            resolved[name] = width
            if node.name in int4:
                int4[name] = int4[node.name].columns(first, stop)
        made.append(helper.make_node("Concat", [m.output[0] for m in made], list(node.output),
                                     name=f"{node.name}/columns", axis=-1))
        model.graph.node.remove(node)
        for offset, new in enumerate(made):
            model.graph.node.insert(index + offset, new)
        if not any(node.input[1] in n.input for n in model.graph.node):
            model.graph.initializer.remove(initializers[node.input[1]])
    return resolved, int4


def quantize_gathers_8bit(model, names: set[str]) -> int:
    """Each named Gather of a float table becomes an 8-bit GatherBlockQuantized (uint8 codes around the implicit
    zero point 128, one scale per block of BLOCK_SIZE along the hidden axis): onnxruntime's quantizer writes only
    4-bit tables. A table whose width is not a multiple of BLOCK_SIZE stays float. Returns how many."""
    import onnx
    from onnx import helper, numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    done = 0
    for index, node in enumerate(list(model.graph.node)):
        table = initializers.get(node.input[0]) if node.op_type == "Gather" and node.name in names else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if table is None or len(table.dims) != 2 or table.dims[1] % BLOCK_SIZE or axis != 0 \
                or table.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(table).reshape(table.dims[0], -1, BLOCK_SIZE)
        scales = np.abs(values).max(axis=2) / 127.0
        scales[scales == 0] = 1.0
        codes = (np.clip(np.round(values / scales[..., None]), -127, 127) + 128).astype(np.uint8)
        model.graph.initializer.extend([numpy_helper.from_array(codes.reshape(table.dims), f"{table.name}_Q8"),
                                        numpy_helper.from_array(scales.astype(np.float32), f"{table.name}_scales8")])
        model.graph.node.remove(node)
        model.graph.node.insert(index, helper.make_node(
            "GatherBlockQuantized", [f"{table.name}_Q8", node.input[1], f"{table.name}_scales8"], list(node.output),
            name=f"{node.name}_Q8", domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=BLOCK_SIZE,
            bits=8))
        if not any(table.name in n.input for n in model.graph.node):
            model.graph.initializer.remove(table)
        done += 1
    if done and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return done


def replace_4bit_weights(model, weights: dict) -> None:
    """Write each node's own codes and scales into the 4-bit MatMulNBits the quantizer made of it (named
    `<node>_Q4`; same layout, so the kernel is unchanged)."""
    from onnx import helper, numpy_helper

    made = {node.name: node for node in model.graph.node if node.op_type == "MatMulNBits"}
    initializers = {init.name: init for init in model.graph.initializer}
    for name, weight in weights.items():
        node = made.get(f"{name}_Q4")
        if node is None:
            raise ExportError(f"the 4-bit quantizer left no MatMulNBits for {name}")
        for index, value in ((1, weight.packed()), (2, weight.scales)):
            old = initializers[node.input[index]]
            value = value.reshape(tuple(old.dims)).astype(helper.tensor_dtype_to_np_dtype(old.data_type))
            old.CopyFrom(numpy_helper.from_array(value, old.name))
