"""A functional Keras digits CNN with a BatchNorm branch and a Concatenate, trained on the demo's training
split in a few seconds, and the calibration and validation splits as NHWC `.npz`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from compress_export.demo.data import digits_split


def build():
    import keras

    inputs = keras.Input((8, 8, 1), name="image")
    wide = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    wide = keras.layers.BatchNormalization()(wide)
    wide = keras.layers.ReLU()(wide)
    narrow = keras.layers.Conv2D(8, 1, padding="same", activation="relu")(inputs)
    merged = keras.layers.Concatenate()([wide, narrow])
    merged = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(merged)
    merged = keras.layers.MaxPooling2D()(merged)
    hidden = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(merged))
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(hidden))


def train(folder: Path) -> tuple[Path, Path, Path]:
    """The saved model, then calibration and validation data (with labels)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    split = {name: (images.transpose(0, 2, 3, 1), labels) for name, (images, labels) in digits_split().items()}
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(*split["train"], epochs=30, batch_size=64, verbose=0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "digits.keras")
    paths = []
    for name in ("calib", "val"):
        images, labels = split[name]
        np.savez(folder / f"{name}.npz", image=images.astype(np.float32), label=labels)
        paths.append(folder / f"{name}.npz")
    return folder / "digits.keras", paths[0], paths[1]
