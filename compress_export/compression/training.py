"""The step loop that QAT and distillation share: a fixed number of optimizer steps, cycling over the data."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import contextmanager

from ..data.calibration_data import CalibrationData


def total_steps(steps: int | None, epochs: int, data: CalibrationData) -> int:
    """`steps` when given, else `epochs` passes over the data's batches."""
    return steps or epochs * sum(1 for _ in data.batches())


def run_steps(data: CalibrationData, total: int, step: Callable, on_step: Callable[[float], None] | None = None
              ) -> list[float]:
    """Call `step(feeds, labels) -> loss` `total` times over the data's batches (labels None where the data has
    none); returns the losses."""
    losses: list[float] = []
    while len(losses) < total:
        before = len(losses)
        for feeds in data.batches(labels=True):
            losses.append(step(feeds, feeds.pop("label", None)))
            if on_step:
                on_step(losses[-1])
            if len(losses) >= total:
                break
        if len(losses) == before:  # no batch at all
            break
    return losses


def optimizer_step(optimizer, loss, schedule=None) -> float:
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if schedule is not None:
        schedule.step()
    return float(loss.detach())


def training_record(result) -> dict:
    """What the report keeps of a distillation run (a DistillResult)."""
    return {"steps": result.steps, "seconds": result.seconds, "device": result.device, "lr": result.lr,
            "hidden_pairs": result.hidden_pairs, "loss_first": result.losses[0] if result.losses else None,
            "loss_last": result.losses[-1] if result.losses else None}


def training_line(section: dict, plot: str) -> str:
    return (f"{section['steps']} steps in {section['seconds']:.0f} s on {section['device']} (lr {section['lr']:g}); "
            f"loss {section['loss_first']:.4g} -> {section['loss_last']:.4g} (`{plot}`)")


@contextmanager
def step_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over the training steps; yields the per-step callback (it shows the loss)."""
    from tqdm import tqdm

    with tqdm(total=total, unit="step", desc=desc, disable=not enabled, file=sys.stderr, leave=False) as bar:
        yield lambda loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4g}"))
