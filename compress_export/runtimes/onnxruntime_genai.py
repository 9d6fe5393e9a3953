"""Decoders built for onnxruntime-genai (a folder: model.onnx, its weights, genai_config.json, tokenizer files), the
runtime such language models are deployed with. `logits(ids)` scores one window of token ids in one onnxruntime call
(every KV cache input fed empty); `generate(ids, n)` continues greedily in onnxruntime-genai itself, timing each token.
Each engine loads on first use, so a process that only generates (a peak-memory measurement) never holds the other."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .base import Runner

MODEL_FILE = "model.onnx"


def model_folder(path: str | Path) -> Path:
    """The decoder's folder, given the folder or its model.onnx."""
    path = Path(path)
    return path.parent if path.is_file() else path


def sliding_window(folder: Path) -> int:
    """The window of the decoder's sliding-window layers (Gemma 2/3, Mistral) within its context length, 0 when it
    has none (a window past the context, Mistral's 4096 in a shorter model, is the context)."""
    model = json.loads((folder / "genai_config.json").read_text())["model"]
    window = int((model["decoder"].get("sliding_window") or {}).get("window_size", 0))
    return min(window, int(model.get("context_length") or window))


class Feeds:
    """A genai-built decoder's inputs for one window: the ids, an all-ones mask, positions where it takes them, and
    every KV cache input empty."""

    def __init__(self, folder: Path, inputs: list[tuple[str, list, bool]]):
        """`inputs`: (name, shape with ints or names, whether float16) of each graph input."""
        decoder = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
        window = sliding_window(folder)
        self.past = {}
        for name, shape, half in inputs:
            if name.startswith("past_key_values"):
                heads = shape[1] if isinstance(shape[1], int) else decoder["num_key_value_heads"]
                size = shape[3] if isinstance(shape[3], int) else decoder["head_size"]
                # A sliding-window layer's cache is a buffer of the window's size (GroupQueryAttention refuses a
                # smaller one); the all-ones mask over the window's ids says none of it is filled yet.
                length = window if shape[2] == "past_sliding_length" else 0
                self.past[name] = (heads, length, size, np.float16 if half else np.float32)
        self.names = {name for name, _, _ in inputs}

    @classmethod
    def of_model(cls, folder: Path, model) -> Feeds:
        import onnx

        return cls(folder, [(value.name, [d.dim_value if d.HasField("dim_value") else d.dim_param
                                          for d in value.type.tensor_type.shape.dim],
                             value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16)
                            for value in model.graph.input])

    def __call__(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        batch = ids[None].astype(np.int64)
        feeds = {"input_ids": batch, "attention_mask": np.ones_like(batch)}
        if "position_ids" in self.names:
            feeds["position_ids"] = np.arange(len(ids), dtype=np.int64)[None]
        for name, (heads, length, size, dtype) in self.past.items():
            feeds[name] = np.zeros((1, heads, length, size), dtype)
        return feeds


class GenaiRunner(Runner):
    """`infer` takes the decoder's own feeds; `logits(ids)` builds them for one window (all cores unless `threads`,
    intra-op spinning off); `generate` runs onnxruntime-genai's greedy search."""

    name = "onnxruntime-genai"

    def __init__(self, path: str, threads: int | None = None):
        super().__init__()
        self.folder = model_folder(path)
        self.threads = threads
        self._session = None
        self._feeds: Feeds | None = None
        self._generator = None

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.session.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.session.get_outputs()]

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if self.threads:
                options.intra_op_num_threads = self.threads
            self._session = ort.InferenceSession(str(self.folder / MODEL_FILE), options,
                                                 providers=["CPUExecutionProvider"])
            self._feeds = Feeds(self.folder, [(spec.name, spec.shape, "float16" in spec.type)
                                              for spec in self._session.get_inputs()])
        return self._session

    def deactivate(self) -> None:
        self._session = self._feeds = self._generator = None

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(None, feeds), strict=True))

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """[tokens, vocabulary] logits of one window of ids."""
        session = self.session
        return session.run(["logits"], self._feeds(ids))[0][0]

    def _loaded(self):
        if self._generator is None:
            import onnxruntime_genai as og

            model = og.Model(og.Config(str(self.folder)))
            self._generator = (og, model, og.Tokenizer(model), stop_tokens(self.folder))
        return self._generator

    def encode(self, text: str):
        return self._loaded()[2].encode(text)

    def decode(self, ids: list[int]) -> str:
        return self._loaded()[2].decode(ids)

    def generate(self, ids, max_new_tokens: int, drop_stop_tokens: bool = True
                 ) -> tuple[list[int], float, list[float], float]:
        """Greedy continuation of `ids`: (new token ids, end-of-sequence tokens dropped where asked; time to first
        token s; per-token decode times s; total s)."""
        og, model, _, stop = self._loaded()
        params = og.GeneratorParams(model)
        # The sliding-window cache is sized by max_length, and GroupQueryAttention refuses one under the window.
        length = max(len(ids) + max_new_tokens, sliding_window(self.folder))
        params.set_search_options(do_sample=False, max_length=length, min_length=0)
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
        while drop_stop_tokens and tokens and tokens[-1] in stop:
            tokens.pop()
        return tokens, first or 0.0, steps, last - start


def stop_tokens(folder: Path) -> frozenset:
    model = json.loads((Path(folder) / "genai_config.json").read_text())["model"]
    ids = model.get("eos_token_id", [])
    return frozenset(ids if isinstance(ids, list) else [ids])


def folder_bytes(folder: Path) -> int:
    """The decoder's size on disk: its model file and external weights."""
    return sum(item.stat().st_size for item in folder.iterdir() if item.is_file() and item.name.startswith(MODEL_FILE))
