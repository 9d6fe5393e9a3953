"""FID's general features: any image size, 1 or 3 channels, the same numbers everywhere, and a distance that grows
with the damage done to the images."""

import numpy as np
import pytest

from compress_export.metrics.fid import frechet_distance
from compress_export.metrics.fid_features import DIGITS, feature_model_name, features
from compress_export.metrics.random_features import DESCRIPTION, random_features, resize

RNG = np.random.default_rng(0)


def smooth_images(count: int, channels: int, height: int, width: int) -> np.ndarray:
    images = RNG.random((count, channels, height, width)).cumsum(axis=2).cumsum(axis=3)
    return images / images.max(axis=(2, 3), keepdims=True)


@pytest.mark.parametrize("shape", [(1, 128, 128), (3, 50, 70), (1, 9, 300)])
def test_any_size_and_channel_count_reads_to_64_features_a_channel(shape):
    images = smooth_images(6, *shape)
    read = random_features(images)
    assert read.shape == (6, 64 * shape[0]) and np.isfinite(read).all()
    assert np.array_equal(read, random_features(images.copy()))  # no state, no randomness left


def test_a_constant_image_resizes_to_the_same_constant():
    planes = np.full((2, 1, 97, 131), 0.25)
    assert np.allclose(resize(planes, 32), 0.25) and resize(planes, 32).shape == (2, 1, 32, 32)


def test_the_distance_grows_with_the_noise_added_to_the_images():
    images = smooth_images(48, 1, 64, 64)
    clean = random_features(images)
    distances = [frechet_distance(clean, random_features(images + RNG.normal(0, noise, images.shape)))
                 for noise in (0.0, 0.01, 0.05, 0.2)]
    assert distances[0] == pytest.approx(0.0, abs=1e-12)
    assert distances == sorted(distances) and distances[-1] > 100 * distances[1] > 0


def test_digits_keep_their_learned_features_and_everything_else_gets_the_general_ones():
    assert feature_model_name(None, (1, 8, 8)) == DIGITS
    assert feature_model_name(None, (1, 128, 128)) == DESCRIPTION
    assert feature_model_name("mine.onnx", (1, 128, 128)) == "mine.onnx"
    assert features(smooth_images(3, 1, 128, 128).astype(np.float32), None).shape == (3, 64)
