"""onnxruntime-genai's model builder, run with the config it reads in the form it expects.

transformers 5 stores Gemma 3's RoPE settings per layer type (`rope_parameters = {"full_attention": {...},
"sliding_attention": {...}}`, re-nested on every load, so editing config.json does not help); builder 0.18 reads the
flat form (`rope_parameters["rope_type"]`, `rope_theta`, `rope_local_base_freq`) and stops with KeyError 'rope_type'.
This module runs the builder's own entry point with AutoConfig.from_pretrained returning the flat form for the model
types listed in NESTED_ROPE (the builder's Gemma 4 class reads the nested form itself). Remove an entry when the
builder reads it: tests/integration/test_llm_families.py fails on the plain builder while the shim is needed."""

from __future__ import annotations

import runpy
import sys

NESTED_ROPE = ("gemma3", "gemma3_text")
BUILDER = "onnxruntime_genai.models.builder"


def flat_rope(config):
    """The config with per-layer-type RoPE settings flattened: the full-attention layers' as the model's, the
    sliding-window layers' theta as `rope_local_base_freq`. Other configs come back as they were, and so does a
    (config, unused kwargs) pair: that is transformers loading the weights, which reads the nested form itself."""
    if isinstance(config, tuple):
        return config
    for part in (config, getattr(config, "text_config", None)):
        if part is None or getattr(part, "model_type", None) not in NESTED_ROPE:
            continue
        nested = getattr(part, "rope_parameters", None)
        if not (isinstance(nested, dict) and nested and all(isinstance(value, dict) for value in nested.values())):
            continue
        full = dict(nested.get("full_attention") or next(iter(nested.values())))
        sliding = nested.get("sliding_attention") or full
        full.setdefault("rope_type", "default")
        part.rope_parameters = full
        part.rope_theta = full.get("rope_theta", 10000.0)
        part.rope_local_base_freq = sliding.get("rope_theta", part.rope_theta)
    return config


def main() -> None:
    import transformers

    load = transformers.AutoConfig.from_pretrained

    def flat_load(*args, **kwargs):
        return flat_rope(load(*args, **kwargs))

    transformers.AutoConfig.from_pretrained = flat_load
    sys.argv = [BUILDER, *sys.argv[1:]]
    runpy.run_module(BUILDER, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
