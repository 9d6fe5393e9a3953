"""Child process: greedy continuations and per-token timing in onnxruntime-genai, the runtime such models are
deployed with. Several models take turns prompt by prompt (the same machine state for each); `--memory` loads one
model, generates once and reports its own peak RSS.

    python -m compress_export.validators.generation_worker REQUEST.json   # prints one JSON line
"""

from __future__ import annotations

import contextlib
import json
import sys

from ..runtimes import open_runner


def run(request: dict) -> dict:
    with contextlib.ExitStack() as stack:
        runners = [stack.enter_context(open_runner("onnxruntime-genai", folder)) for folder in request["models"]]
        return _take_turns(runners, request)


def _take_turns(runners: list, request: dict) -> dict:
    results = [{"continuations": [], "continuation_ids": [], "ttft_short_s": [], "ttft_long_s": [], "token_s": [],
                "generated": 0, "seconds": 0.0, "prompt_tokens": []} for _ in runners]
    new = request["max_new_tokens"]
    for prompt in request["prompts"]:
        for runner, result in zip(runners, results, strict=True):
            ids = runner.encode(prompt)
            tokens, first, steps, total = runner.generate(ids, new)
            result["continuations"].append(runner.decode(tokens))
            result["continuation_ids"].append(tokens)
            result["ttft_short_s"].append(first)
            result["token_s"] += steps
            result["generated"] += len(tokens)
            result["seconds"] += total
            result["prompt_tokens"].append(len(ids))
    for _ in range(request.get("long_rounds", 3)):
        for runner, result in zip(runners, results, strict=True):
            ids = runner.encode(request["long_prompt"])[: request["long_tokens"]]
            _, first, _, _ = runner.generate(ids, 1, drop_stop_tokens=False)
            result["ttft_long_s"].append(first)
            result["long_prompt_tokens"] = len(ids)
    return {"results": results}


def memory(request: dict) -> dict:
    from .bench_worker import peak_rss_kb

    with open_runner("onnxruntime-genai", request["models"][0]) as runner:
        runner.generate(runner.encode(request["prompts"][0]), request["max_new_tokens"], drop_stop_tokens=False)
    return {"peak_rss_mb": peak_rss_kb() / 1024.0}


def main() -> None:
    with open(sys.argv[1]) as handle:
        request = json.load(handle)
    print(json.dumps(memory(request) if request.get("memory") else run(request)))


if __name__ == "__main__":
    main()
