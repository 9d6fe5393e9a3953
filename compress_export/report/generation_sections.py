"""The language-model parts of a report: speed and resources before/after, the FP32 and compressed continuations
side by side, what the search kept above 4 bits and what it cost, and the perplexity-vs-tokens/s plot."""

from __future__ import annotations

SPEED_ROWS = (("time to first token, short prompt (ms)", "ttft_short_ms"),
              ("time to first token, long prompt (ms)", "ttft_long_ms"),
              ("decode tokens/s", "decode_tokens_per_s"),
              ("per-token latency p50 (ms)", "token_p50_ms"), ("per-token latency p95 (ms)", "token_p95_ms"),
              ("per-token latency p99 (ms)", "token_p99_ms"),
              ("throughput incl. prefill (tokens/s)", "throughput_tokens_per_s"),
              ("peak RSS (MB)", "peak_rss_mb"), ("size on disk (MB)", "size_mb"))
SIDE_BY_SIDE = 3


def _value(side: dict, key: str):
    if key == "size_mb":
        return side["size_bytes"] / 1e6 if side.get("size_bytes") else None
    return side.get(key)


def _row(label: str, before, after) -> str:
    if before is None and after is None:
        return ""
    change = f"{100 * (after - before) / before:+.1f}%" if before and after is not None else ""
    return f"| {label} | {_number(before)} | {_number(after)} | {change} |"


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def markdown_sections(report, prompts: list[str], generated: list[dict]) -> list[tuple[str, list[str]]]:
    bench = report.bench
    reference, candidate = bench["reference"], bench["candidate"]
    short, long = reference.get("ttft_short_prompt_tokens"), reference.get("ttft_long_prompt_tokens")
    speed = ["Measured in onnxruntime-genai, greedy, the FP32 model and this one taking turns prompt by prompt in one "
             f"process (short prompts: median {short} tokens; long prompt: {long} tokens of the held-out text); "
             "peak RSS each in a process of its own.", "",
             "| metric | FP32 | this | change |", "|---|---|---|---|"]
    speed += [row for label, key in SPEED_ROWS
              if (row := _row(label, _value(reference, key), _value(candidate, key)))]
    speed += [_row("parameters", report.context["parameters"], report.context["parameters"]),
              _row("FLOPs per token (weights, 2 x MatMul parameters)", report.context["flops_per_token"],
                   report.context["flops_per_token"])]
    sections = [("Speed and resources", speed)]
    side = ["Greedy continuations of the same prompts (first three):", "", "| prompt | FP32 | this |", "|---|---|---|"]
    for prompt, before, after in list(zip(prompts, generated[0]["continuations"], generated[1]["continuations"],
                                          strict=False))[:SIDE_BY_SIDE]:
        side.append(f"| {_cell(prompt)} | {_cell(before)} | {_cell(after)} |")
    sections.append(("Continuations", side))
    sections.append(("Precision", _precision_lines(report)))
    return sections


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ⏎ ").strip() or "(nothing)"


def _precision_lines(report) -> list[str]:
    precision = report.context["precision"]
    lines = ["Weights by precision (parameters): " + ", ".join(
        f"{name} {count:,}" for name, count in precision["weights_by_precision"].items()) + "."]
    search = report.sensitivity
    if not search:
        return lines
    budget = report.gates.max_perplexity_increase
    calibration = search.get("calibration")
    if calibration:
        lines += ["", f"4-bit weights: {calibration['rounding']} rounding against {calibration['tokens']:,} tokens of "
                      f"{calibration['text']} in windows of {calibration['window']} ({calibration['seconds']:g} s); "
                      f"embedding tables rounded to nearest; matrices ranked by {calibration['ranked_by']}."]
    lines += ["", "Budget search (the most sensitive matrices promoted first; perplexity increase on the held-out "
              "windows, BLEU of continuations where it held; then the largest promoted tried back at 4 bits): "
              + "; ".join(_trial(t) for t in search["trials"]) + "."]
    kept = precision["kept_above_4_bits"]
    if not search["met"]:
        lines.append(f"**No setting meets the budget** ({budget:g}% perplexity, BLEU {report.gates.min_bleu:g}): "
                     "not even with every matrix above 4 bits.")
    elif kept:
        plain = report.bench.get("plain_int4")
        cost = ""
        if plain:
            size = report.artifact["size_bytes"] - plain["size_bytes"]
            speed = (report.bench["candidate"].get("decode_tokens_per_s"), plain.get("decode_tokens_per_s"))
            cost = f" Cost against plain int4 (perplexity {plain['perplexity']:.4g}): {size / 1e6:+.1f} MB" + (
                f", decode {100 * (speed[0] - speed[1]) / speed[1]:+.1f}% tokens/s" if all(speed) else "") + "."
        lines.append(f"Kept above 4 bits ({len(kept)}): {', '.join(kept[:12])}{', ...' if len(kept) > 12 else ''}."
                     + cost)
    else:
        lines.append(f"Plain 4-bit weights hold the {budget:g}% budget.")
    return lines


def _trial(trial: dict) -> str:
    without = f" (without {trial['demoted']})" if trial.get("demoted") else ""
    bleu = f", BLEU {trial['bleu']:.1f}" if trial.get("bleu") is not None else ""
    return f"{trial['promoted']} above 4 bits{without} -> {trial['perplexity_increase']:+.2f}%{bleu}"
