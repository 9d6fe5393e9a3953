"""The knobs of a language-model run (CLI: --ppl-window, --ppl-stride, --ppl-tokens, --calib-tokens,
--max-new-tokens)."""

from __future__ import annotations

from dataclasses import dataclass

from .generation import GenerationSettings


@dataclass(frozen=True)
class LlmSettings:
    window: int = 512  # perplexity: tokens per window
    stride: int = 256  # and the step between windows (each token is scored once)
    max_tokens: int = 2048  # held-out tokens scored (the first ones of --text-data)
    generation: GenerationSettings = GenerationSettings()
    calibration_tokens: int = 8192  # GPTQ's calibration text for onnx-int4, in windows of `window` tokens

    def to_dict(self) -> dict:
        return {"window": self.window, "stride": self.stride, "max_tokens": self.max_tokens,
                "calibration_tokens": self.calibration_tokens,
                "max_new_tokens": self.generation.max_new_tokens, "long_prompt_tokens": self.generation.long_tokens}
