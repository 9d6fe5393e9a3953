"""The built-in samplers against what their schedules say (an oracle denoiser must give back the clean sample), the
noise they add (the same for any model and batch), classifier-free guidance, which input is which, a user's sampler
file, and refusals."""

import numpy as np
import pytest

from compress_export.errors import UsageError
from compress_export.samplers import TRAJECTORY, get_sampler
from compress_export.samplers.ddim import alphas_cumprod
from compress_export.samplers.denoiser import RowNoise
from compress_export.samplers.karras import karras_sigmas

CLEAN = np.linspace(-1, 1, 16).reshape(1, 1, 4, 4)


def feeds(rows=3, scale=80.0, **extra):
    rng = np.random.default_rng(0)
    return {"sample": (rng.standard_normal((rows, 1, 4, 4)) * scale).astype(np.float32),
            "sigma": np.full(rows, scale, np.float32), **extra}


def clean_predictor(calls):
    def call(given):
        calls.append({k: np.array(v) for k, v in given.items()})
        return {"image": np.repeat(CLEAN, len(given["sample"]), 0).astype(np.float32)}
    return call


@pytest.mark.parametrize("text, calls", [("euler:steps=6", 6), ("edm:steps=6", 11), ("consistency", 1),
                                         ("consistency:steps=3", 3)])
def test_sigma_samplers_return_what_a_perfect_denoiser_predicts(text, calls):
    seen = []
    sampler = get_sampler(text)
    out = sampler.run(clean_predictor(seen), feeds())
    assert np.allclose(out["image"], np.repeat(CLEAN, 3, 0), atol=1e-5)
    assert len(seen) == calls == sampler.calls_per_image
    assert out[TRAJECTORY].shape == (3, calls, 1, 4, 4)
    fed = [float(call["sigma"][0]) for call in seen]
    assert fed[0] == pytest.approx(80.0) and all(a >= b for a, b in zip(fed[:-1], fed[1:], strict=True))
    assert np.array_equal(seen[0]["sample"], feeds()["sample"])  # the first call gets the data file's sample


def test_karras_sigmas_span_the_range_and_end_at_zero():
    sigmas = karras_sigmas(5, 0.002, 80.0, 7.0)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-2] == pytest.approx(0.002) and sigmas[-1] == 0
    assert np.all(np.diff(sigmas) < 0)


@pytest.mark.parametrize("prediction", ["epsilon", "sample", "v"])
def test_ddim_with_a_perfect_denoiser_lands_on_the_clean_sample(prediction):
    alphas = alphas_cumprod(1000, 1e-4, 0.02, "linear")
    start = feeds(scale=1.0)
    seen = []

    def call(given):
        x, t = given["sample"].astype(np.float64), int(given["timestep"][0])
        seen.append(t)
        eps = (x - np.sqrt(alphas[t]) * CLEAN) / np.sqrt(1 - alphas[t])
        out = {"epsilon": eps, "sample": np.repeat(CLEAN, len(x), 0),
               "v": np.sqrt(alphas[t]) * eps - np.sqrt(1 - alphas[t]) * CLEAN}[prediction]
        return {"noise": out.astype(np.float32)}

    given = {"sample": start["sample"], "timestep": np.full(3, 999, np.int64)}
    out = get_sampler(f"ddim:steps=5,prediction={prediction}").run(call, given)
    assert np.allclose(out["noise"], np.repeat(CLEAN, 3, 0), atol=1e-4)
    assert seen == [999, 749, 500, 250, 0]


def test_ddim_follows_its_update_rule_with_an_imperfect_denoiser():
    alphas = alphas_cumprod(1000, 1e-4, 0.02, "linear")
    start = feeds(rows=2, scale=1.0)["sample"].astype(np.float64)
    out = get_sampler("ddim:steps=2").run(lambda g: {"eps": np.full_like(g["sample"], 0.5)},
                                          {"sample": start.astype(np.float32), "t": np.zeros(2, np.float32)})
    x = start
    for t, before in ((999, alphas[0]), (0, 1.0)):
        clean = (x - np.sqrt(1 - alphas[t]) * 0.5) / np.sqrt(alphas[t])
        x = np.sqrt(before) * clean + np.sqrt(1 - before) * 0.5
    assert np.allclose(out["eps"], x, rtol=1e-4, atol=1e-4)


def test_the_noise_a_sampler_adds_depends_on_the_image_not_the_batch_or_model():
    start = feeds(rows=4)["sample"]
    whole = RowNoise(start).normal(2)
    assert np.array_equal(RowNoise(start[2:]).normal(2), whole[2:])  # another batch split, the same noise
    assert not np.allclose(RowNoise(start).normal(3), whole)  # a fresh draw each step
    a = get_sampler("consistency:steps=3").run(clean_predictor([]), feeds(rows=4))
    b = get_sampler("consistency:steps=3").run(clean_predictor([]), {k: v[1:] for k, v in feeds(rows=4).items()})
    assert np.allclose(a[TRAJECTORY][1:], b[TRAJECTORY])


def test_classifier_free_guidance_mixes_the_conditioned_and_null_predictions():
    given = feeds(rows=2, label=np.array([3, 5], np.int64))

    def call(g):
        shift = np.where(g["label"] == 10, 0.0, 1.0).reshape(-1, 1, 1, 1)
        return {"image": (np.repeat(CLEAN, len(shift), 0) + shift).astype(np.float32)}

    out = get_sampler("consistency:guidance=3,null=10").run(call, given)
    assert np.allclose(out["image"], np.repeat(CLEAN, 2, 0) + 3.0, atol=1e-5)  # null + 3 * (cond - null)
    assert get_sampler("consistency:guidance=3,null=10").calls_per_image == 2


def test_inputs_are_told_apart_by_name_and_an_ambiguous_level_is_refused():
    seen = []
    given = feeds(rows=2, difficulty=np.full(2, 0.4, np.float32))
    get_sampler("euler:steps=2").run(clean_predictor(seen), given)
    assert all(np.array_equal(call["difficulty"], given["difficulty"]) for call in seen)  # a condition stays
    assert seen[1]["sigma"][0] != given["sigma"][0]  # the level follows the schedule
    ambiguous = {"x": given["sample"], "a": given["sigma"], "b": given["difficulty"]}
    with pytest.raises(UsageError, match="level=INPUT"):
        get_sampler("euler:steps=2").run(lambda g: {"y": g["x"]}, ambiguous)
    out = get_sampler("euler:steps=2,level=a").run(lambda g: {"y": g["x"] * 0}, ambiguous)
    assert np.allclose(out["y"], 0, atol=1e-5)


@pytest.mark.parametrize("text, why", [("ddpm", "unknown sampler"), ("euler:steps=0", "at least 1"),
                                       ("euler:rho=x", "takes a number"), ("ddim:size=3", "unknown option"),
                                       ("edm:sigma_min=90", "sigma_min < sigma_max"), ("euler:steps", "key=value"),
                                       ("ddim:prediction=x0", "prediction"), ("missing.py:sample", "no file")])
def test_settings_no_model_can_use_are_refused(text, why):
    with pytest.raises(UsageError, match=why):
        get_sampler(text)


def test_a_users_sampler_file_gets_a_callable_denoiser_and_a_seeded_generator(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("def sample(denoise, inputs, rng):\n"
                    "    x = inputs['sample']\n"
                    "    for _ in range(3):\n"
                    "        x = x - 0.5 * denoise({**inputs, 'sample': x})['image']\n"
                    "    return x + rng.standard_normal(x.shape) * 0\n")
    seen = []
    sampler = get_sampler(f"{path}:sample")
    out = sampler.run(clean_predictor(seen), feeds(rows=2))
    assert len(seen) == 3 == sampler.calls_per_image
    assert np.allclose(out["image"], feeds(rows=2)["sample"] - 1.5 * np.repeat(CLEAN, 2, 0), atol=1e-4)
    assert out[TRAJECTORY].shape == (2, 3, 1, 4, 4)
    (tmp_path / "broken.py").write_text("raise ValueError('bad')\n")
    with pytest.raises(UsageError, match="failed to load"):
        get_sampler(f"{tmp_path / 'broken.py'}:sample")
    with pytest.raises(UsageError, match="no function"):
        get_sampler(f"{path}:other")


def _denoiser_graph(scalar_shape):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Reshape", ["sigma", "column"], ["sigma2"]),
             helper.make_node("Log", ["sigma2"], ["log"]),
             helper.make_node("Gemm", ["log", "we"], ["embed"], name="embed_gemm"),
             helper.make_node("Reshape", ["embed", "bias_shape"], ["bias"]),
             helper.make_node("Conv", ["x", "wc"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["conv", "bias"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "denoiser", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 4, 4]),
        helper.make_tensor_value_info("sigma", TensorProto.FLOAT, scalar_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 4, 4])],
        [numpy_helper.from_array(rng.normal(size=(1, 2)).astype(np.float32), "we"),
         numpy_helper.from_array(rng.normal(size=(2, 2, 3, 3)).astype(np.float32), "wc"),
         numpy_helper.from_array(np.array([-1, 1], np.int64), "column"),
         numpy_helper.from_array(np.array([-1, 2, 1, 1], np.int64), "bias_shape")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_the_noise_level_path_stays_float_and_the_network_is_quantized():
    from onnx import TensorProto, helper

    from compress_export.graphs.selection import level_path_nodes, level_path_note, select_nodes
    from compress_export.specs import QuantRecipe

    model = _denoiser_graph(["n"])
    assert "embed_gemm" in level_path_nodes(model) and "conv" not in level_path_nodes(model)
    assert [node.name for node in select_nodes(model, QuantRecipe())] == ["conv"]
    assert "sigma" in level_path_note(model, ["Gemm", "Conv"])[0]
    model.graph.input.pop()  # the same graph fed a full tensor: nothing is set aside
    model.graph.input.append(helper.make_tensor_value_info("sigma", TensorProto.FLOAT, ["n", 3, 4, 4]))
    assert not level_path_nodes(model)


def test_a_bundle_keeps_the_users_sampler_file_and_validate_reads_that_copy(tmp_path):
    from compress_export.bundle.reference_data import write_sampler

    source = tmp_path / "src" / "mine.py"
    source.parent.mkdir()
    source.write_text("def draw(denoise, inputs, rng):\n    return denoise(inputs)['image']\n")
    bundle = tmp_path / "bundle"
    (bundle / "reference").mkdir(parents=True)
    recorded = write_sampler(bundle, get_sampler(f"{source}:draw"))
    source.unlink()  # the bundle travels without the original
    assert recorded == "mine.py:draw"
    again = get_sampler(recorded, bundle / "reference")
    assert np.allclose(again.run(clean_predictor([]), feeds(rows=2))["image"], np.repeat(CLEAN, 2, 0))
    assert write_sampler(bundle, get_sampler("ddim:steps=4")) == "ddim:steps=4"


def test_multistep_consistency_noises_back_to_levels_above_the_floor():
    seen = []
    get_sampler("consistency:steps=3").run(clean_predictor(seen), feeds())
    levels = [float(call["sigma"][0]) for call in seen]
    assert levels[0] == pytest.approx(80.0) and levels[0] > levels[1] > levels[2] > 0.002 * 10


def test_the_sampler_section_shows_the_derived_and_the_timed_cost_per_image(tmp_path):
    from types import SimpleNamespace

    from compress_export.report.sampler_section import add_sampler_section

    steps = {"cosine": [0.99, 0.98, 0.97], "psnr_db": [40.0, 35.0, 30.0], "images": 8}
    bench = {"reference": {"by_batch": {"1": {"p50_ms": 10.0}, "4": {"p50_ms": 20.0}}},
             "candidate": {"by_batch": {"1": {"p50_ms": 5.0}, "4": {"p50_ms": 8.0}}},
             "per_image_loop": {"reference": {"1": {"p50_ms": 33.0}}, "candidate": {"1": {"p50_ms": 16.0}}}}
    report = SimpleNamespace(metrics={"candidate": {"sampler_steps": steps}}, bench=bench, sections=[])
    add_sampler_section(report, get_sampler("ddim:steps=3"), tmp_path)
    (title, lines), = report.sections
    text = "\n".join(lines)
    assert title == "Sampler" and "| 3 | 0.97000 | 30.00 |" in text
    assert "| 3 calls | 4 | 15.0 | 6.0 | 66.67 | 166.67 |" in text  # 3 x 20 ms / 4 images against 3 x 8 / 4
    assert "| whole loop, timed | 1 | 33.0 | 16.0 | 30.30 | 62.50 |" in text
    assert bench["per_image"]["candidate"]["1"]["ms"] == 15.0 and (tmp_path / "sampler_steps.png").is_file()
    report = SimpleNamespace(metrics={"candidate": {"sampler_steps": {**steps, "cosine": [0.9], "psnr_db": [33.0]}}},
                             bench=None, sections=[])
    add_sampler_section(report, None, tmp_path / "none")
    assert "none given (the model's output is the image), 1 denoiser call(s)" in report.sections[0][1][0]


def test_validate_without_the_fp32_baseline_shows_the_artifacts_own_loop_time(tmp_path):
    from types import SimpleNamespace

    from compress_export.report.sampler_section import add_sampler_section

    steps = {"cosine": [0.99, 0.98], "psnr_db": [40.0, 35.0], "images": 8}
    bench = {"candidate": {"by_batch": {"1": {"p50_ms": 5.0}}},
             "per_image_loop": {"candidate": {"1": {"p50_ms": 12.0}}}}
    report = SimpleNamespace(metrics={"candidate": {"sampler_steps": steps}}, bench=bench, sections=[])
    add_sampler_section(report, get_sampler("ddim:steps=2"), None)
    text = "\n".join(report.sections[0][1])
    assert "| 2 calls | 1 | - | 10.0 | - | 100.00 |" in text
    assert "| whole loop, timed | 1 | - | 12.0 | - | 83.33 |" in text
