"""Cosine similarity per sample (flattened), its mean and minimum; the default quality gate.

Two cases where the per-sample mean hides what matters get gates of their own: an output with one value
per sample (its per-sample cosine is always 1), compared across the samples instead; and an output whose
channels differ in scale by orders of magnitude (a detection head's boxes beside its scores), where each
group of channels of one scale is compared on its own, so that dead scores cannot hide behind boxes."""

from __future__ import annotations

import math

from .base import Gate, OutputMetric

SCALE_GAP = 2.0  # decades: channels whose RMS jump by 100x or more from the next larger start a new group
# Channels below this share of the output's largest RMS are float32 noise around zero (an embedding's dead
# dimensions): compared, they would fail on rounding alone, so they are left out of the groups.
NOISE_FLOOR = 1e-6


def cosine_rows(a, b):
    """Cosine similarity per row; two all-zero rows count as identical."""
    import numpy as np

    dot = (a * b).sum(axis=1)
    norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    norms = norm_a * norm_b
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where((norm_a == 0) & (norm_b == 0), 1.0, cos)


class Cosine(OutputMetric):
    name = "cosine"
    keys = ("cosine", "cosine_min", "samples", "cosine_groups")
    gate = Gate("min_cosine", 0.99, "Gate: smallest accepted mean cosine similarity per output (and per group of "
                "channels of one scale).", higher_is_better=True, score_key="cosine", low=-1.0, high=1.0)

    def start(self) -> dict:
        return {"rows": [], "dot": None, "ref": None, "cand": None, "count": None, "one_value": True}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        import numpy as np

        rows = reference.reshape(reference.shape[0], -1) if reference.ndim else reference.reshape(1, 1)
        state["one_value"] = state["one_value"] and rows.shape[1] == 1
        state["rows"].extend(cosine_rows(rows, candidate.reshape(rows.shape)).tolist())
        ref, cand = _by_channel(reference), _by_channel(candidate)  # (samples x positions, channels)
        sums = {"dot": (ref * cand).sum(0), "ref": (ref * ref).sum(0), "cand": (cand * cand).sum(0),
                "count": np.full(ref.shape[1], ref.shape[0], np.float64)}
        if state["dot"] is None:
            state.update(sums)
        elif state["dot"].shape == sums["dot"].shape:  # a batch of another channel count adds to the rows only
            for key, value in sums.items():
                state[key] = state[key] + value

    def result(self, state: dict) -> dict:
        import numpy as np

        values = np.asarray(state["rows"]) if state["rows"] else np.asarray([1.0])
        out = {"cosine": float(values.mean()), "cosine_min": float(values.min()), "samples": len(state["rows"])}
        if state["dot"] is not None:
            groups = _groups(state)
            if len(groups) > 1 or (state["one_value"] and groups):
                out["cosine_groups"] = groups
        return out

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        values = []
        for output, stats in parity.items():
            if "cosine" not in stats:
                continue
            groups = stats.get("cosine_groups") or []
            one_value = len(groups) == 1 and groups[0]["channels"] == [0, 0]
            if not one_value:
                values.append((f"min_cosine[{output}]", stats["cosine"]))
            for group in groups:
                where = "across samples" if one_value else f"channels {group['channels'][0]}-{group['channels'][1]}"
                values.append((f"min_cosine[{output} {where}]", group["cosine"]))
        return values

    def headline(self, parity: dict, metrics: dict) -> tuple[str, float, float] | None:
        values = [value for _, value in self.gate_values(parity, metrics)]
        return ("cosine", 1.0, min(values)) if values else None

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        rows = [(f"cosine `{output}`", 1.0, stats["cosine"])]
        for group in stats.get("cosine_groups", []):
            first, last = group["channels"]
            rows.append((f"cosine `{output}` channels {first}-{last} (RMS ~{group['rms']:.3g})", 1.0,
                         group["cosine"]))
        return rows


def _by_channel(array):
    """(everything but the channel axis, channels): axis 1 is the channel axis; one value per sample is
    one channel."""
    import numpy as np

    array = np.asarray(array, np.float64)
    if array.ndim <= 1:
        return array.reshape(-1, 1)
    return np.moveaxis(array, 1, -1).reshape(-1, array.shape[1])


def _groups(state: dict) -> list[dict]:
    """Channels grouped by the scale of their reference values (a new group where the RMS, in descending
    order, drops by SCALE_GAP decades or more); the cosine of each group over all its samples."""
    import numpy as np

    rms = np.sqrt(state["ref"] / np.maximum(state["count"], 1))
    floor = NOISE_FLOOR * float(rms.max()) if rms.size else 0.0
    live = np.flatnonzero(rms > floor)
    order = live[np.argsort(-rms[live], kind="stable")]
    scale = np.log10(rms[order]) if order.size else np.zeros(0)
    cuts = np.flatnonzero(scale[:-1] - scale[1:] >= SCALE_GAP) + 1
    groups = []
    for members in np.split(order, cuts) if order.size else []:
        dot, ref, cand = (float(state[key][members].sum()) for key in ("dot", "ref", "cand"))
        cosine = dot / math.sqrt(ref * cand) if ref > 0 and cand > 0 else 0.0
        groups.append({"channels": [int(members.min()), int(members.max())], "count": int(members.size),
                       "rms": float(rms[members].mean()), "cosine": cosine})
    dead = np.flatnonzero(rms <= floor)
    candidate_rms = np.sqrt(state["cand"][dead] / np.maximum(state["count"][dead], 1)) if dead.size else dead
    if dead.size and float(candidate_rms.max()) > max(floor, 1e-30) * 10:
        groups.append({"channels": [int(dead.min()), int(dead.max())], "count": int(dead.size), "rms": 0.0,
                       "cosine": 0.0})  # the original is all zero there, the candidate is not
    return groups


METRIC = Cosine()
