"""The budget search in the report: its section of report.md and the sensitivity plot."""

from __future__ import annotations


def plot_sensitivity(ranking: list[dict], path, count: int = 15) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import math

    rows = ranking[:count][::-1]
    finite = [row["cosine_gain"] for row in rows if math.isfinite(row["cosine_gain"])]
    top = max([*finite, 1e-6]) * 1.2  # an overflowed tensor's infinite error drawn past the largest finite one
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2), dpi=100)
    axes.barh([row["tensor"] for row in rows], [row["cosine_gain"] if math.isfinite(row["cosine_gain"]) else top
                                                for row in rows], color="#4c72b0")
    axes.set_xlabel("estimated cosine gain from its own rounding error" if "local_error" in rows[-1]
                    else "cosine gain when this tensor alone stays in float")
    axes.set_title("most sensitive quantized activations")
    axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return True


def markdown(search: dict) -> list[str]:
    """The report.md section of a search (its `to_dict()` form)."""
    base, final = search["all_quantized"], search["with_fallback"]
    if search.get("note"):
        return [f"All quantized with the run's ranges: cosine {base['cosine']:.4f}. {search['note']}."]
    verdict = "the budget holds" if search["budget_met"] else "no fallback set meets the budget"
    shipped = (f"the shipped artifact on all {search['validation_samples']} validation samples"
               if search.get("validation_samples") else "on the subsample")
    confirmed = (f", {search['confirmations']} of them met the budget and were scored again on the whole set"
                 if search.get("confirmations") else "")
    lines = [f"All quantized with the run's ranges: cosine {base['cosine']:.4f}. After the search "
             f"({len(search['kept_in_float'])} activation(s) kept in float): cosine {final['cosine']:.4f} "
             f"({shipped}): {verdict}. {search['evaluations']} evaluations on {search['subsample']} held-out "
             f"samples{confirmed}; {search['seconds']:.1f} s.", ""]
    if search.get("stopped_at_time_limit") and search["budget_met"]:
        lines += ["Bringing float tensors back to INT8 stopped at the search's time limit (--search-minutes): the "
                  "float set above meets the budget; more time could quantize more of it.", ""]
    elif search.get("stopped_at_time_limit"):
        lines += ["The search stopped at its time limit (--search-minutes) before any float set met the budget; "
                  "more time could float more, or the activations still quantized (per-layer error) need better "
                  "ranges.", ""]
    estimate = search.get("estimate")
    if estimate and abs(estimate["cosine"] - final["cosine"]) > 5e-5:
        lines += [f"The search's own trial of that set read cosine {estimate['cosine']:.4f}; the shipped graph "
                  "differs from the trial (a finishing rewrite) and reads the number above.", ""]
    choice = search.get("range_choice")
    if choice:
        by_method = choice["scores_by_method"].items()
        scores = ", ".join(f"{method} {score['cosine']:.4f}" for method, score in by_method)
        lines += [f"Ranges: `{choice['method']}` for all tensors (cosine with each calibrator, all quantized: "
                  f"{scores}).", ""]
        if choice["per_tensor"]:
            lines += ["Per-tensor ranges: " + ", ".join(f"`{name}` {method}"
                                                        for name, method in choice["per_tensor"].items()), ""]
    if search["kept_in_float"]:
        lines += ["Activations kept in float (best cosine per MAC first): "
                  + ", ".join(f"`{n}`" for n in search["kept_in_float"]), ""]
        if search["float_nodes"]:
            lines += ["Nodes kept in float for them: " + ", ".join(f"`{n}`" for n in search["float_nodes"]), ""]
        lines += speed_lines(search.get("speed_cost") or {})
    lines += weight_limit_lines(search.get("weight_limit"), search["budget_met"])
    if search["ranking"] and "local_error" in search["ranking"][0]:
        lines += [f"{len(search['ranking'])} quantized activations, too many for a trial each: ranked by each one's "
                  "own rounding error from one pass (relative error energy e; floating it estimated to win "
                  "cosine e / 2); the decisions above ran the graph.", "",
                  "| activation | own rounding error | estimated gain | MACs leaving INT8 |", "|---|---|---|---|"]
        lines += [f"| `{row['tensor']}` | {row['local_error']:.2e} | {row['cosine_gain']:+.4f} | "
                  f"{row.get('macs_share', 0.0):.1%} |" for row in search["ranking"][:15]]
        lines += ["", "![sensitivity](sensitivity.png)"]
    elif search["ranking"]:
        lines += ["| activation | cosine if alone in float | gain | MACs leaving INT8 |", "|---|---|---|---|"]
        lines += [f"| `{row['tensor']}` | {row['cosine_if_float']:.4f} | {row['cosine_gain']:+.4f} | "
                  f"{row.get('macs_share', 0.0):.1%} |" for row in search["ranking"][:15]]
        lines += ["", "![sensitivity](sensitivity.png)"]
    return lines


def weight_limit_lines(limit: dict | None, met: bool = False) -> list[str]:
    """The report's words for `weight_limit()`, when the forward pass missed the budget."""
    if not limit:
        return []
    if limit["reachable"]:
        every = limit["every_activation_float"]["cosine"]
        how = ("so activations were quantized back from there, the most MACs first, while the budget held" if met
               else "but no activation could be quantized back from there within it")
        return [f"Floated one at a time, no set met the budget; every activation in float meets it (cosine "
                f"{every:.4f}), {how}.", ""]
    missed = ", ".join(f"{row['gate']} {row['value']:.4f}, limit {row['limit']:g}" for row in limit["missed"])
    return [f"Every activation in float (only the weights INT8) misses the budget too ({missed}): the weights' "
            "rounding alone costs more than it allows on this data, so floating activations is not the lever "
            "(`--qat` where the source can train, or `--exclude-nodes`, are).", ""]


def speed_lines(cost: dict) -> list[str]:
    """The speed cost of the fallback, in words: which compute layers it sends back to float."""
    if not cost.get("nodes"):
        return ["Speed cost of the fallback: none (no compute node leaves its INT8 kernel).", ""]
    named = ", ".join(f"`{row['node']}` {row['macs_share']:.1%}" for row in cost["nodes"][:10])
    more = f" and {len(cost['nodes']) - 10} more" if len(cost["nodes"]) > 10 else ""
    return [f"Speed cost of the fallback: {cost['macs_share']:.1%} of the model's MACs leave INT8 kernels "
            f"({len(cost['nodes'])} compute nodes: {named}{more}). These layers are what keeps this "
            "artifact from the full INT8 speed-up at this budget.", ""]
