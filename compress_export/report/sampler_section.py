"""An image generator's sampler in its report: the error after every denoiser call (table and plot) and what an
image costs (the calls it takes times the timed call)."""

from __future__ import annotations

from pathlib import Path

MAX_ROWS = 12  # steps shown in the table: the first, the last and evenly between


def per_image(bench: dict, calls: int) -> dict:
    """Per batch size: ms an image takes (calls x the p50 of one call over that batch / its size) and images/s,
    for the FP32 model and the candidate."""
    result = {"calls": calls, "method": "denoiser calls per image x the p50 of one call (the sampler's own "
                                       "arithmetic, a few array operations a call, excluded)"}
    for side in ("reference", "candidate"):
        by_batch = (bench.get(side) or {}).get("by_batch") or {}
        result[side] = {batch: _per_image(calls * stats["p50_ms"], int(batch))
                        for batch, stats in by_batch.items() if stats.get("p50_ms")}
    return result


def add_sampler_section(report, sampler, folder: Path | None) -> None:
    steps = (report.metrics.get("candidate") or {}).get("sampler_steps")
    if not steps:
        return
    calls = sampler.calls_per_image if sampler is not None else len(steps["cosine"])
    named = f"`{sampler.describe()}`" if sampler is not None else "none given (the model's output is the image)"
    lines = [f"Sampler: {named}, {calls} denoiser call(s) per image, FP32 and this artifact from the same starting "
             f"samples and seeds ({steps['images']} images). Each row is the sample after that call against the FP32 "
             "model's.", "",
             "| after call | cosine vs FP32 | PSNR vs FP32 (dB) |", "|---|---|---|"]
    count = len(steps["cosine"])
    shown = range(count) if count <= MAX_ROWS else sorted({round(i * (count - 1) / (MAX_ROWS - 1))
                                                            for i in range(MAX_ROWS)})
    lines += [f"| {i + 1} | {steps['cosine'][i]:.5f} | {steps['psnr_db'][i]:.2f} |" for i in shown]
    if report.bench and calls:
        report.bench["per_image"] = per_image(report.bench, calls)
        lines += ["", "| per image | batch | FP32 ms | this ms | FP32 images/s | this images/s |",
                  "|---|---|---|---|---|---|"]
        reference, candidate = report.bench["per_image"]["reference"], report.bench["per_image"]["candidate"]
        label = f"{calls} call{'s' if calls != 1 else ''}"
        lines += [_row(label, batch, reference.get(batch), stats) for batch, stats in candidate.items()]
        timed = [_row("whole loop, timed", batch, fp32, stats) for batch, stats, fp32 in _timed_loop(report.bench)]
        lines += [*timed, "", f"Per image: {report.bench['per_image']['method']}"
                  + ("; the timed rows: the whole loop run (FP32, where the bundle carries it, and this artifact "
                     "interleaved in one process)." if timed else ".")]
    if folder is not None and count > 1:
        _plot(steps, folder / "sampler_steps.png")
        lines += ["", "The curve: `sampler_steps.png`."]
    report.sections.append(("Sampler", lines))


def _row(label: str, batch, fp32: dict | None, this: dict) -> str:
    fp32 = fp32 or {}
    return (f"| {label} | {batch} | {_number(fp32.get('ms'), '.1f')} | {this['ms']:.1f} | "
            f"{_number(fp32.get('images_per_s'), '.2f')} | {this['images_per_s']:.2f} |")


def _number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _timed_loop(bench: dict):
    """(batch, candidate, reference or None) per image from the timed whole-loop runs, where the benchmark made
    them (`validate` of a bundle without its FP32 baseline times the artifact alone)."""
    loop = bench.get("per_image_loop") or {}
    for batch, stats in (loop.get("candidate") or {}).items():
        reference = (loop.get("reference") or {}).get(batch) or {}
        if stats.get("p50_ms"):
            yield (batch, _per_image(stats["p50_ms"], int(batch)),
                   _per_image(reference["p50_ms"], int(batch)) if reference.get("p50_ms") else None)


def _per_image(loop_ms: float, batch: int) -> dict:
    """ms an image takes and images/s, from the ms the loop over a batch took."""
    return {"ms": loop_ms / batch, "images_per_s": 1000.0 * batch / loop_ms}


def _plot(steps: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = range(1, len(steps["cosine"]) + 1)
    figure, left = plt.subplots(figsize=(6, 3.5))
    left.plot(calls, steps["psnr_db"], marker="o", color="tab:blue")
    left.set_xlabel("denoiser call")
    left.set_ylabel("PSNR vs FP32 sample (dB)", color="tab:blue")
    right = left.twinx()
    right.plot(calls, steps["cosine"], marker="s", color="tab:orange")
    right.set_ylabel("cosine vs FP32 sample", color="tab:orange")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
