"""A tiny randomly initialised Llama (2 layers, hidden 64) with its own byte-level BPE tokenizer trained on
Python's json documentation: a causal LM folder that the whole language-model path runs on in seconds."""

from __future__ import annotations

import json
from pathlib import Path


def write_tiny_llama(out: Path, vocab: int = 400, seed: int = 0) -> Path:
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
    config = transformers.LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=0,
                                      eos_token_id=0)
    config.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(seed)
    transformers.LlamaForCausalLM(config).save_pretrained(str(out))
    return out
