"""Paired image metrics for generators: SSIM as Wang et al. define it and PSNR over the image's own range."""

import numpy as np
import pytest

from compress_export.metrics.psnr import METRIC as PSNR
from compress_export.metrics.psnr import PSNR_CAP, image_psnr
from compress_export.metrics.ssim import K1, K2, image_ssim
from compress_export.metrics.ssim import METRIC as SSIM

RNG = np.random.default_rng(0)


def test_ssim_of_one_window_is_the_papers_formula():
    x = RNG.random((1, 1, 11, 11))
    y = x + RNG.normal(0, 0.05, x.shape)
    taps = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    weights = np.outer(taps, taps) / taps.sum() ** 2
    a, b = x[0, 0], y[0, 0]
    mx, my = (weights * a).sum(), (weights * b).sum()
    vx, vy = (weights * a * a).sum() - mx**2, (weights * b * b).sum() - my**2
    cov = (weights * a * b).sum() - mx * my
    c1, c2 = (K1 * np.ptp(a)) ** 2, (K2 * np.ptp(a)) ** 2
    expected = (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert image_ssim(x, y)[0] == pytest.approx(expected, rel=1e-12)


def test_psnr_is_over_the_reference_images_own_range():
    x = np.zeros((2, 1, 8, 8))
    x[:, :, 0, 0] = [[2.0], [4.0]]
    y = x + 0.1
    assert image_psnr(x, y) == pytest.approx([20 * np.log10(2 / 0.1), 20 * np.log10(4 / 0.1)])
    assert image_psnr(x, x).tolist() == [PSNR_CAP, PSNR_CAP]
    broken = x.copy()
    broken[1, 0, 3, 3] = np.nan  # an overflowed artifact's image is no match, not an identical one
    assert image_psnr(x, broken).tolist() == [PSNR_CAP, 0.0]


def test_both_fall_as_noise_grows_and_read_rgb_images_of_any_size():
    images = RNG.random((4, 3, 40, 56)).cumsum(axis=3)
    psnr, ssim = [], []
    for noise in (0.0, 0.05, 0.5):
        noisy = images + RNG.normal(0, noise, images.shape)
        psnr.append(image_psnr(images, noisy).mean())
        ssim.append(image_ssim(images, noisy).mean())
    assert ssim[0] == pytest.approx(1.0) and psnr[0] == PSNR_CAP
    assert psnr[0] > psnr[1] > psnr[2] and ssim[0] > ssim[1] > ssim[2]


def test_the_metrics_read_image_outputs_only_and_gate_the_mean():
    images = {"image": RNG.random((5, 1, 16, 16))}
    noisy = {"image": images["image"] + 0.01}
    for metric, key, worst in ((PSNR, "psnr_db", "psnr_db_min"), (SSIM, "ssim", "ssim_min")):
        state = metric.start()
        metric.update(state, {"logits": RNG.random((5, 10))}, {"logits": RNG.random((5, 10))})
        assert metric.result(state) == {}
        metric.update(state, images, noisy)
        result = metric.result(state)["candidate"]
        assert result[worst] <= result[key] < (100.0 if metric is PSNR else 1.0)
        assert metric.gate_values({}, {"candidate": result}) == [(metric.gate.name, result[key])]


def test_a_latent_denoisers_four_channels_are_its_images_and_a_one_call_generator_has_a_one_step_curve():
    from compress_export.metrics.fid import image_output
    from compress_export.metrics.sampler_steps import METRIC as STEPS

    latents = {"noise_pred": RNG.random((3, 4, 16, 16)), "mask": RNG.random((3, 1, 16, 16))}
    assert image_output(latents) == "mask"  # an output shaped like images comes first
    latents.pop("mask")
    assert image_output(latents) == "noise_pred"
    state = PSNR.start()
    PSNR.update(state, latents, {"noise_pred": latents["noise_pred"] + 0.01})
    assert PSNR.result(state)["candidate"]["psnr_db_images"] == 3
    state = STEPS.start()
    STEPS.update(state, latents, {"noise_pred": latents["noise_pred"] + 0.01})
    steps = STEPS.result(state)["candidate"]["sampler_steps"]
    assert len(steps["psnr_db"]) == 1 and steps["images"] == 3
    expected = image_psnr(latents["noise_pred"], latents["noise_pred"] + 0.01).mean()
    assert steps["psnr_db"][0] == pytest.approx(expected)  # the curve's one point is the final image's PSNR


def test_kid_is_the_paired_unbiased_squared_mmd_of_the_cubic_kernel():
    from compress_export.metrics.kid import kernel_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 5)), rng.normal(loc=0.5, size=(12, 5))
    rms = np.sqrt((a**2).sum(axis=1).mean() / 5)  # the FP32 features' scale

    def k(x, y):
        return (x @ y / rms**2 / 5 + 1) ** 3

    pairs = [(i, j) for i in range(12) for j in range(12) if i != j]
    expected = sum(k(a[i], a[j]) + k(b[i], b[j]) - k(a[i], b[j]) - k(a[j], b[i]) for i, j in pairs) / len(pairs)
    assert kernel_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert kernel_distance(a * 100, b * 100) == pytest.approx(kernel_distance(a, b), rel=1e-9)  # any feature scale
    assert kernel_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    assert kernel_distance(a, a + 0.05) < kernel_distance(a, a + 0.5)
    assert kernel_distance(a, np.full_like(a, np.nan)) == float("inf")


def test_the_perceptual_distance_reads_learned_features_only():
    from compress_export.metrics.feature_distance import METRIC as DISTANCE

    rng = np.random.default_rng(0)
    digits = rng.uniform(size=(6, 1, 8, 8)).astype(np.float32)
    state = DISTANCE.start()
    DISTANCE.update(state, {"image": digits}, {"image": digits})
    DISTANCE.update(state, {"image": digits}, {"image": np.clip(digits + rng.normal(0, 0.3, digits.shape), 0, 1)})
    values = state
    assert values[:6] == pytest.approx([0.0] * 6, abs=1e-9) and min(values[6:]) > 1e-4
    assert DISTANCE.result(state)["candidate"]["feature_distance_max"] == max(values)
    big = rng.uniform(size=(4, 1, 32, 32)).astype(np.float32)  # general features are not learned: no distance
    other = DISTANCE.start()
    DISTANCE.update(other, {"image": big}, {"image": big * 0.5})
    assert DISTANCE.result(other) == {}
