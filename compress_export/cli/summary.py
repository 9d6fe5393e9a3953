"""The run's summary on the terminal: a table per target on stderr (JSON on stdout with --json), then the
warnings, then the failures, so the last line says what went wrong."""

from __future__ import annotations

import json

import click


def print_summary(result, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
    if not quiet:
        print_table(result)
    for failure in result.failures:  # last, so that the final line says what went wrong
        click.echo(f"error: {failure.target}: {failure.error}", err=True)


def _speed_label(key: str) -> str:
    """speedup_p50_batch32 -> b32 (p50 at a batch size); speedup_decode -> decode (tokens/s)."""
    if key.startswith("speedup_p50_batch"):
        return "b" + key.removeprefix("speedup_p50_batch")
    return key.removeprefix("speedup_")


def print_table(result) -> None:
    from ..metrics import all_metrics

    analyses = [metric for metric in all_metrics() if metric.scope == "artifact"]
    rows = [("target", "result", "quality", "speedup p50", "size", "compute", "bundle")]
    for report, bundle in zip(result.reports, result.bundles, strict=True):
        label, reference, candidate = report.quality()
        quality = f"{label} {candidate:.4f}" + (f" (FP32 {reference:.4f})" if reference not in (None, 1.0) else "")
        ratios = report.bench.get("ratios", {})
        speed = " ".join(f"{_speed_label(k)}:{v:.2f}x" for k, v in ratios.items() if k.startswith("speedup"))
        size = f"{ratios['size']:.2f}x" if "size" in ratios else f"{report.artifact['size_bytes'] / 1024:.0f} KB"
        compute = " ".join(filter(None, (metric.summary(report.analysis[metric.name]) for metric in analyses
                                         if metric.name in report.analysis)))
        rows.append((report.target, "pass" if report.passed else "FAIL", quality, speed or "-", size, compute or "-",
                     str(bundle)))
    rows += [(failure.target, "ERROR", "-", "-", "-", "-", "(not written)") for failure in result.failures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), err=True)
    for batch, best in result.fastest_passing().items():
        versus = best["speedup_vs_fastest_fp32"]
        against = f", {versus:.2f}x the fastest FP32" + (f" ({best['fastest_fp32']})" if best["fastest_fp32"] else "")
        where = f" in {best['fastest_fp32']}" if best["fastest_fp32"] else ""
        slower = f"; the FP32 model{where} is faster at this batch on this CPU" if versus and versus < 1 else ""
        click.echo(f"fastest passing at batch {batch}: {best['target']} ({best['runtime']}, p50 {best['p50_ms']:.3g} ms"
                   f"{against if versus else ''}){slower}", err=True)
    if result.seconds:
        stages = ", ".join(f"{name} {value:.0f} s" for name, value in result.seconds.items())
        click.echo(f"took {sum(result.seconds.values()):.0f} s ({stages})", err=True)
    for report in result.reports:
        for warning in report.warnings:
            click.echo(f"warning: {report.target}: {warning}", err=True)
