"""Pruning and distillation of a causal language model before its targets: the FP32 original (already built and
scored) is the teacher and the yardstick; the pruned, then distilled, model is saved as a checkpoint folder, built
to an FP32 decoder, and every target is built from that. Each stage is scored on the held-out windows and its
greedy continuations compared with the original's, all stages' decoders timed in one process, taking turns."""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from pathlib import Path


def compress_language_model(job, say: Callable[[str], None]) -> None:
    from ..exporters.genai.build import MODEL_FILE, build_fp32, weight_matrices
    from ..exporters.genai.gptq_calibration import calibration_windows
    from ..sources.causal_lm import CausalLM, float_model
    from ..util.hashing import sha256_files

    steps = dict(job.config.compression)
    text = job.text
    windows, origin = calibration_windows(text.tokenizer, job.config.calib_data, text.settings)
    teacher = float_model(job.model.folder)
    record = {"calibration_text": origin, "tokens": int(sum(len(w) for w in windows))}
    folders = [("original", job.fp32, sum(p.numel() for p in teacher.parameters()))]
    student = copy.deepcopy(teacher)
    if "prune" in steps:
        from .lm_width import prune_mlp_width

        settings = steps["prune"]
        kinds = dict(settings.kinds) or {"ffn": settings.ratio}
        record["prune"] = {"settings": settings.__dict__, "importance": settings.importance,
                           "parameters_before": sum(p.numel() for p in student.parameters())}
        if "heads" in kinds:
            from .lm_heads import prune_heads

            say(f"pruning {kinds['heads']:.0%} of every layer's key/value head groups ({settings.importance} "
                "importance)")
            record["prune"]["attention"] = prune_heads(student, kinds["heads"], settings.importance, windows[:8])
        if "ffn" in kinds:
            say(f"pruning {kinds['ffn']:.0%} of every MLP's hidden neurons ({settings.importance} importance)")
            width = prune_mlp_width(student, kinds["ffn"], settings.importance, windows[:8])
            record["prune"].update({key: value for key, value in width.items() if key != "parameters_before"})
        record["prune"]["parameters_after"] = sum(p.numel() for p in student.parameters())
        folders.append(_stage(job, "pruned", student, build_fp32))
    if "student" in steps:
        k = int(steps["student"].spec.split(":")[1])
        say(f"keeping every {k}th decoder layer")
        record["student"] = {"settings": steps["student"].__dict__, **drop_layers(student, k)}
        folders.append(_stage(job, "student", student, build_fp32))
    if "distill" in steps:
        from .lm_distill import distill_lm, planned_steps
        from .training import step_bar

        settings = steps["distill"]
        say(f"distilling from the FP32 original on {record['tokens']} tokens of calibration text")
        started = time.perf_counter()
        with step_bar(planned_steps(windows, settings), "distill", job.config.progress) as on_step:
            student, losses, lr = distill_lm(student, teacher, windows, settings, on_step)
        from .distill_torch import resolve_device

        record["distill"] = {"settings": settings.__dict__, "steps": len(losses), "lr": lr,
                             "device": resolve_device(settings.device),
                             "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                             "seconds": round(time.perf_counter() - started, 1)}
        folders.append(_stage(job, "distilled", student, build_fp32))
    record["stages"] = _measure_stages(job, folders)
    last_folder = folders[-1][1].parent / "checkpoint"
    job.original_fp32 = job.fp32
    job.fp32 = folders[-1][1]
    import onnx

    text.matrices = weight_matrices(onnx.load(str(job.fp32 / MODEL_FILE)))
    job.model = CausalLM(last_folder, job.model.description, sha256_files(*sorted(last_folder.glob("*.safetensors"))),
                         job.model.kind, {**job.model.config, **{key: getattr(student.config, key) for key in (
                             "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
                             if hasattr(student.config, key)}})
    job.lm_compression = record


def drop_layers(model, k: int) -> dict:
    """Keep decoder layers 0, k, 2k, ...; the config's per-layer lists and each attention's cache slot follow."""
    from .student import keep_every

    before, after = keep_every(model, k)
    kept = list(range(0, before, k))
    types = getattr(model.config, "layer_types", None)
    if isinstance(types, list) and len(types) == before:
        model.config.layer_types = [types[i] for i in kept]
    for index, layer in enumerate(model.model.layers):
        for part in (layer, getattr(layer, "self_attn", None)):
            if part is not None and hasattr(part, "layer_idx"):
                part.layer_idx = index
    return {"layers_before": before, "layers_after": after, "kept": kept}


def _stage(job, name: str, model, build_fp32) -> tuple[str, Path, int]:
    folder = job.work / f"stage-{name}"
    checkpoint = folder / "checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=True)
    from ..sources.causal_lm import quiet

    with quiet():  # transformers' shard-writing bar; the stage lines say what happens
        model.save_pretrained(str(checkpoint))
    for source in job.model.folder.iterdir():  # the tokenizer and generation settings travel with the weights
        if source.is_file() and source.name.startswith(("tokenizer", "special_tokens", "generation_config",
                                                        "vocab", "merges", "chat_template")):
            shutil.copy2(source, checkpoint / source.name)
    fp32 = build_fp32(checkpoint, folder / "fp32", job.work / "cache")
    return name, fp32, sum(p.numel() for p in model.parameters())


def _measure_stages(job, folders: list) -> list[dict]:
    from ..metrics.bleu import METRIC as BLEU
    from ..validators.continuations import generate
    from ..validators.generation_measure import perplexity
    from ..validators.token_scores import score

    text = job.text
    generated = generate([fp32 for _, fp32, _ in folders], text.prompts, "", text.settings.generation, long_rounds=0)
    base = perplexity(text.reference)
    rows = []
    for (name, fp32, parameters), result in zip(folders, generated, strict=True):
        value = base if name == "original" else perplexity(score(fp32, text.spans))
        rows.append({"stage": name, "parameters": parameters, "perplexity": value,
                     "perplexity_increase_pct": 100.0 * (value - base) / base,
                     "bleu": BLEU.compare(result["continuations"], generated[0]["continuations"]),
                     "decode_tokens_per_s": result["speed"]["decode_tokens_per_s"]})
    return rows


def stage_markdown(record: dict) -> list[str]:
    """The report's section: each stage against the original (the artifact's own numbers are the report's)."""
    lines = []
    if "prune" in record:
        prune = record["prune"]
        what = []
        if "mlp_width" in prune:
            what.append(f"MLP hidden neurons {prune['mlp_width'][0]} -> {prune['mlp_width'][1]}")
        if "attention" in prune:
            heads = prune["attention"]
            what.append(f"attention heads {heads['heads'][0]} -> {heads['heads'][1]} (key/value "
                        f"{heads['key_value_heads'][0]} -> {heads['key_value_heads'][1]})")
        lines.append(f"{' and '.join(what)} in every layer ({prune['importance']} importance): parameters "
                     f"{prune['parameters_before']:,} -> {prune['parameters_after']:,}.")
    if "student" in record:
        lines.append(f"Kept decoder layers {record['student']['kept']} ({record['student']['layers_after']} of "
                     f"{record['student']['layers_before']}).")
    if "distill" in record:
        distill = record["distill"]
        lines.append(f"Distilled from the FP32 original on {distill['device']}: {distill['steps']} steps at lr "
                     f"{distill['lr']:g}, loss "
                     f"{distill['loss_first']:.4f} -> {distill['loss_last']:.4f}, {distill['seconds']} s, on "
                     f"{record['tokens']} tokens of {record['calibration_text']}.")
    lines += ["", "| stage | parameters | perplexity (vs original) | BLEU vs original | decode tokens/s |",
              "|---|---|---|---|---|"]
    for row in record["stages"]:
        lines.append(f"| {row['stage']} | {row['parameters']:,} | {row['perplexity']:.3f} "
                     f"({row['perplexity_increase_pct']:+.1f}%) | {row['bleu']:.1f} | "
                     f"{row['decode_tokens_per_s'] or 0:.1f} |")
    return lines
