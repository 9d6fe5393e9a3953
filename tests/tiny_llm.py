"""Tiny randomly initialised decoders (2 layers, hidden 64) of each common family, with their own byte-level BPE
tokenizer trained on Python's json documentation: causal LM folders the whole language-model path runs on in
seconds."""

from __future__ import annotations

import json
from pathlib import Path

FAMILIES = ("llama", "gemma3", "qwen2", "qwen3", "phi3", "phi3-longrope", "mistral")
LONGROPE = {"type": "longrope", "short_factor": [1.0 + 0.05 * i for i in range(8)],
            "long_factor": [2.0 + 0.5 * i for i in range(8)]}  # Phi-3 128K's form, for head_dim 16


def family_config(family: str, vocab: int):
    """A 2-layer, hidden-64 config of `family` in its own transformers class (Gemma 3: one sliding-window and one
    full-attention layer, each with its own RoPE theta, as transformers 5 nests them)."""
    import transformers

    shared = {"vocab_size": vocab, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024,
              "bos_token_id": 0, "eos_token_id": 0}
    if family == "gemma3":
        config = transformers.Gemma3TextConfig(**shared, head_dim=16, sliding_window=16, tie_word_embeddings=True,
                                               layer_types=["sliding_attention", "full_attention"])
        architecture = "Gemma3ForCausalLM"
    else:
        classes = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3", "phi3": "Phi3", "phi3-longrope": "Phi3",
                   "mistral": "Mistral"}
        name = classes[family]
        extra = {"qwen3": {"head_dim": 16},
                 "phi3": {"original_max_position_embeddings": 1024, "pad_token_id": 0},
                 "phi3-longrope": {"original_max_position_embeddings": 512, "pad_token_id": 0,
                                   "rope_scaling": LONGROPE}}.get(family, {})
        config = getattr(transformers, f"{name}Config")(**shared, **extra,
                                                        tie_word_embeddings=not family.startswith("phi3"))
        architecture = f"{name}ForCausalLM"
    config.architectures = [architecture]
    return config


def write_tiny_llama(out: Path, vocab: int = 400, seed: int = 0) -> Path:
    return write_tiny_model(out, "llama", vocab, seed)


def write_tiny_model(out: Path, family: str, vocab: int = 400, seed: int = 0) -> Path:
    import pydoc

    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([pydoc.plain(pydoc.render_doc(json))], trainer)
    end = "<|endoftext|>"
    transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=end, eos_token=end,
                                         unk_token=end).save_pretrained(str(out))
    settings = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(json.dumps({**settings, "tokenizer_class": "GPT2Tokenizer"}))
    config = family_config(family, tokenizer.get_vocab_size())
    torch.manual_seed(seed)
    getattr(transformers, config.architectures[0])(config).save_pretrained(str(out))
    return out
