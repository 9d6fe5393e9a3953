"""Child process: greedy continuations and per-token timing in onnxruntime-genai, the runtime such models are
deployed with. Several models take turns prompt by prompt (the same machine state for each); `--memory` loads one
model, generates once and reports its own peak RSS.

    python -m compress_export.llm.generate_worker REQUEST.json   # prints one JSON line
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _generate(og, model, tokenizer, ids, max_new_tokens: int, stop: frozenset = frozenset()
              ) -> tuple[list[int], float, list[float], float]:
    """(new token ids without the end-of-sequence token, time to first token s, per-token decode times s, total s)."""
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(ids) + max_new_tokens, min_length=0)
    generator = og.Generator(model, params)
    start = time.perf_counter()
    generator.append_tokens(ids)
    tokens, steps, first, last = [], [], None, start
    while not generator.is_done() and len(tokens) < max_new_tokens:
        generator.generate_next_token()
        now = time.perf_counter()
        if first is None:
            first = now - start
        else:
            steps.append(now - last)
        last = now
        tokens.append(int(generator.get_next_tokens()[0]))
    while tokens and tokens[-1] in stop:
        tokens.pop()
    return tokens, first or 0.0, steps, last - start


def _stop_tokens(folder: str) -> frozenset:
    model = json.loads((Path(folder) / "genai_config.json").read_text())["model"]
    ids = model.get("eos_token_id", [])
    return frozenset(ids if isinstance(ids, list) else [ids])


def run(request: dict) -> dict:
    import onnxruntime_genai as og

    loaded = []
    for folder in request["models"]:
        model = og.Model(og.Config(folder))
        loaded.append((model, og.Tokenizer(model), _stop_tokens(folder)))
    results = [{"continuations": [], "continuation_ids": [], "ttft_short_s": [], "ttft_long_s": [], "token_s": [],
                "generated": 0, "seconds": 0.0, "prompt_tokens": []} for _ in loaded]
    new = request["max_new_tokens"]
    for prompt in request["prompts"]:
        for (model, tokenizer, stop), result in zip(loaded, results, strict=True):
            ids = tokenizer.encode(prompt)
            tokens, first, steps, total = _generate(og, model, tokenizer, ids, new, stop)
            result["continuations"].append(tokenizer.decode(tokens))
            result["continuation_ids"].append(tokens)
            result["ttft_short_s"].append(first)
            result["token_s"] += steps
            result["generated"] += len(tokens)
            result["seconds"] += total
            result["prompt_tokens"].append(len(ids))
    for _ in range(request.get("long_rounds", 3)):
        for (model, tokenizer, _), result in zip(loaded, results, strict=True):
            ids = tokenizer.encode(request["long_prompt"])[: request["long_tokens"]]
            _, first, _, _ = _generate(og, model, tokenizer, ids, 1)
            result["ttft_long_s"].append(first)
            result["long_prompt_tokens"] = len(ids)
    return {"results": results}


def memory(request: dict) -> dict:
    import onnxruntime_genai as og

    from ..validators.bench_worker import peak_rss_kb

    model = og.Model(og.Config(request["models"][0]))
    tokenizer = og.Tokenizer(model)
    _generate(og, model, tokenizer, tokenizer.encode(request["prompts"][0]), request["max_new_tokens"])
    return {"peak_rss_mb": peak_rss_kb() / 1024.0}


def main() -> None:
    with open(sys.argv[1]) as handle:
        request = json.load(handle)
    print(json.dumps(memory(request) if request.get("memory") else run(request)))


if __name__ == "__main__":
    main()
