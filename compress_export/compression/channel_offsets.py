"""Exact channel offsets for torch-pruning's concatenations and splits. DepGraph infers how many channels each
input of a torch.cat brings by walking the graph and gives up when a flatten, a pooling or a residual sits in
the way (a concat of unequal branches before flatten -> Linear then loses channels on one side only); and it
cannot tell which output of a split a consumer reads, nor map a split piece straight into a concat (YOLOv8's
C2f: chunk, bottlenecks on one half, concat of every piece). The traced autograd graph already records every
edge's slot and shape, so each edge between a split and its consumers, and between a concat and its inputs,
gets its own mapping here, refreshed from the current sizes before every group is built (the library's own
split and concat pruners keep those sizes up to date as channels go). A split into equal pieces (chunk) stays
equal: a channel pruned in one piece is pruned at the same place in every piece, since the model's code will
split the pruned tensor evenly again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Edge:
    forward: object  # the producer's dependency on the consumer
    backward: object  # the consumer's dependency on the producer
    split: object | None  # the producer, when it is a split this module maps
    chunk: object | None  # the consumer, when it is an equal split (what reaches it is spread over its pieces)
    slot: int
    pieces: int  # how many pieces the producing split has
    even: bool  # the producer is an equal split
    concat: object | None  # the consumer, when it is a concat this module maps
    position: int


def exact_channel_offsets(graph) -> int:
    """Take over the index mappings of every channel split and concat of a built torch-pruning DependencyGraph
    whose edges can be matched to the autograd graph one to one; returns how many nodes it took. The others keep
    the library's mappings (the pruning that follows checks the model after every group either way)."""
    from torch_pruning import ops

    inputs = {node: _traced_inputs(node, graph) for node in graph.module2node.values()}
    concats = {node: sizes for node in inputs if node.type == ops.OPTYPE.CONCAT
               and (sizes := _sizes(node.grad_fn, [slots for _, slots in inputs[node] or ()], node, "concat"))}
    splits = {}
    for node in graph.module2node.values():
        if node.type == ops.OPTYPE.SPLIT and all(inputs[consumer] is not None for consumer in node.outputs):
            sizes = _sizes(node.grad_fn, None, node, "split")
            if sizes:
                splits[node] = sizes
    chunks = {node for node in splits if hasattr(node.grad_fn, "_saved_split_size") and len(set(splits[node])) == 1}
    edges = _edges(inputs, splits, concats, chunks)
    if edges is None:
        return 0
    for node, sizes in concats.items():
        node.module.concat_sizes, node.enable_index_mapping = list(sizes), False
    for node, sizes in splits.items():
        # the library's own list has an entry per consumer edge, which its shape inference indexes; the pieces'
        # widths lead (its split pruner keeps them current) and the rest add no channels
        node.module.split_sizes = list(sizes) + [0] * max(0, len(node.outputs) - len(sizes))
        node.enable_index_mapping = False
    build = graph.get_pruning_group

    def get_pruning_group(*args, **kwargs):
        _refresh(edges)
        return build(*args, **kwargs)

    graph.get_pruning_group = get_pruning_group
    _refresh(edges)
    return len(concats) + len(splits)


def _traced_inputs(node, graph) -> list[tuple[object, int]] | None:
    """(grad_fn, output slot) of each of `node.inputs`, in order, as the trace recorded them; None when they
    cannot be matched one to one."""
    grad_fn = getattr(node, "grad_fn", None)
    if grad_fn is None or not hasattr(grad_fn, "next_functions"):
        return [] if not node.inputs else None
    unwrapped = [parameter for parameter, _ in graph.unwrapped_parameters]
    traced = []
    for function, slot in grad_fn.next_functions:
        if function is None:
            continue
        if "accumulategrad" in function.name().lower() and not any(function.variable is p for p in unwrapped):
            continue
        traced.append((function, slot))
    if len(traced) != len(node.inputs) or any(source.grad_fn is not function
                                               for source, (function, _) in zip(node.inputs, traced, strict=True)):
        return None
    return traced


def _sizes(grad_fn, slots: list | None, node, kind: str) -> list[int] | None:
    """Channel widths: of each traced input (a concat; `slots` their output slots) or of each output (a split);
    None unless the op works along dim 1 of (N, C, ...) or the features of (N, F)."""
    dim = getattr(grad_fn, "_saved_dim", None)
    try:
        if kind == "concat":
            shapes = [list(function._input_metadata[slot].shape) for function, slot in
                      ((source.grad_fn, slot) for source, slot in zip(node.inputs, slots, strict=True))]
        else:
            shapes = [list(meta.shape) for meta in grad_fn._input_metadata]
    except (AttributeError, IndexError, RuntimeError, ValueError):
        return None
    if dim is None or not shapes or len({len(shape) for shape in shapes}) != 1:
        return None
    rank = len(shapes[0])
    if rank < 2 or (dim + rank if dim < 0 else dim) != 1:
        return None
    return [shape[1] for shape in shapes]


def _edges(inputs: dict, splits: dict, concats: dict, chunks: set) -> list[_Edge] | None:
    edges = []
    for consumer, traced in inputs.items():
        if traced is None:
            continue
        seen: dict[int, int] = {}
        for position, (producer, (_, slot)) in enumerate(zip(consumer.inputs, traced, strict=True)):
            occurrence = seen.get(id(producer), 0)
            seen[id(producer)] = occurrence + 1
            split = producer if producer in splits else None
            concat = consumer if consumer in concats else None
            chunk = consumer if consumer in chunks else None
            if split is None and concat is None and chunk is None:
                continue
            backward = consumer.dependencies[position]
            forward = [dep for dep in producer.dependencies[len(producer.inputs):] if dep.target is consumer]
            if backward.target is not producer or len(forward) <= occurrence:
                return None
            pieces = len(splits[producer]) if split is not None else 0
            edges.append(_Edge(forward[occurrence], backward, split, chunk, slot, pieces, producer in chunks, concat,
                               position))
    return edges


def _refresh(edges: list[_Edge]) -> None:
    from torch_pruning.dependency.index_mapping import _ConcatIndexMapping, _SplitIndexMapping

    for edge in edges:
        if edge.chunk is not None:  # into an equal split: a channel of one piece is that channel of every piece
            edge.forward.index_mapping[0] = _EveryPiece(_pieces(edge.chunk))
        if edge.split is not None:
            span = _span(edge.split.module.split_sizes[:edge.pieces], edge.slot)
            edge.forward.index_mapping[0] = _SplitIndexMapping(offset=span, reverse=False)
        if edge.concat is not None:
            span = _span(edge.concat.module.concat_sizes, edge.position)
            edge.forward.index_mapping[1] = _ConcatIndexMapping(offset=span, reverse=False)
        if edge.split is None and edge.concat is None:
            continue
        # the way back undoes the concat first, then the split: the library's slots run in that order
        back = [_ConcatIndexMapping(offset=_span(edge.concat.module.concat_sizes, edge.position), reverse=True)
                if edge.concat is not None else None, None]
        if edge.split is not None:
            sizes = edge.split.module.split_sizes[:edge.pieces]
            back[1] = _EveryPiece(sizes, edge.slot) if edge.even else \
                _SplitIndexMapping(offset=_span(sizes, edge.slot), reverse=True)
        edge.backward.index_mapping[0], edge.backward.index_mapping[1] = back


class _EveryPiece:
    """Indices into an equal split's input: each at the same place in every piece. From a piece (`slot`), its
    local indices; from the input, indices into any piece."""

    def __init__(self, sizes: list[int], slot: int | None = None):
        self.sizes, self.slot = list(sizes), slot

    def __call__(self, idxs):
        from torch_pruning import _helpers

        width = self.sizes[0]
        found, seen = [], set()
        for index in idxs:
            local = index.idx if self.slot is not None else index.idx % width
            for piece in range(len(self.sizes)):
                target = piece * width + local
                if target not in seen:
                    seen.add(target)
                    found.append(_helpers._HybridIndex(idx=target, root_idx=index.root_idx))
        return found


def _pieces(split) -> list[int]:
    """An equal split's current piece widths (the head of the library's list)."""
    return list(split.module.split_sizes[:len(split.grad_fn._input_metadata)])


def _span(sizes: list[int], index: int) -> list[int]:
    start = sum(sizes[:index])
    return [start, start + sizes[index]]
