"""QAT for Keras models bound for tflite-int8: learnable fake-quant ranges (seeded by our calibrators) at
the same quantization points as PTQ, fine-tuned by distillation from the FP32 model, no labels needed."""

from __future__ import annotations

import functools
import time

from ..data.calibration_data import CalibrationData
from ..exporters.tflite.keras_ranges import with_fake_quant
from ..runtimes.keras import keras_inputs
from .qat_settings import QatResult, QatSettings


@functools.cache
def _learnable_fake_quant():
    import keras
    import tensorflow as tf

    class LearnableFakeQuant(keras.layers.Layer):
        """8-bit fake-quant whose min and max are trained (TensorFlow's gradient for min/max vars)."""

        def __init__(self, lo: float, hi: float, **kwargs):
            super().__init__(**kwargs)
            self.initial = (float(min(lo, 0.0)), float(max(hi, 0.0)))

        def build(self, input_shape):
            self.lo = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial[0]), name="lo")
            self.hi = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial[1]), name="hi")

        def call(self, inputs):
            return tf.quantization.fake_quant_with_min_max_vars(inputs, self.lo, self.hi, num_bits=8)

    return LearnableFakeQuant


def _loss(student, teacher, labels, settings: QatSettings):
    import tensorflow as tf

    total = 0.0
    for output, target in zip(student, teacher, strict=True):
        if labels is not None and len(output.shape) == 2 and output.shape[1] > 1:
            t = settings.temperature
            soft = tf.reduce_mean(tf.reduce_sum(tf.nn.softmax(target / t) * (
                tf.nn.log_softmax(target / t) - tf.nn.log_softmax(output / t)), axis=1)) * t * t
            hard = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, output, from_logits=True))
            total += (1 - settings.alpha) * soft + settings.alpha * hard
        else:
            flat_out = tf.reshape(output, (tf.shape(output)[0], -1))
            flat_target = tf.reshape(target, (tf.shape(target)[0], -1))
            norm = tf.maximum(tf.reduce_mean(flat_target ** 2), 1e-12)
            cosine = tf.reduce_mean(-tf.keras.losses.cosine_similarity(flat_out, flat_target))
            total += tf.reduce_mean((flat_out - flat_target) ** 2) / norm + (1 - cosine)
    return total


def fine_tune_keras(model, ranges: dict[str, tuple[float, float]], data: CalibrationData, settings: QatSettings,
                    on_step=None):
    """Returns a copy of `model` with the fine-tuned weights, the learned ranges, and the run's record."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(settings.seed)
    fake_quant = _learnable_fake_quant()
    student = with_fake_quant(model, ranges, fake_quant)
    names = [tensor.name for tensor in model.inputs]
    optimizer = keras.optimizers.Adam(settings.lr)
    range_variables = {id(v) for layer in student.layers if isinstance(layer, fake_quant) for v in (layer.lo, layer.hi)}
    result = QatResult(ranges={}, tensors=sorted(ranges))
    total = settings.steps or settings.epochs * sum(1 for _ in data.batches())
    start = time.perf_counter()
    while result.steps < total:
        for feeds in data.batches(labels=True):
            labels = feeds.pop("label", None)
            args = [feeds[name] for name in names]
            teacher = model(keras_inputs(model, args), training=False)
            teacher = teacher if isinstance(teacher, (list, tuple)) else [teacher]
            with tf.GradientTape() as tape:
                # training=False: BatchNorm keeps its statistics, as the deployed model does.
                produced = student(keras_inputs(student, args), training=False)
                produced = produced if isinstance(produced, (list, tuple)) else [produced]
                loss = _loss(produced, teacher, labels, settings)
            variables = student.trainable_variables
            gradients = tape.gradient(loss, variables)
            scaled = [g * 10.0 if id(v) in range_variables else g
                      for g, v in zip(gradients, variables, strict=True)]
            optimizer.apply_gradients([(g, v) for g, v in zip(scaled, variables, strict=True) if g is not None])
            result.losses.append(float(loss))
            result.steps += 1
            if on_step:
                on_step(result.losses[-1])
            if result.steps >= total:
                break
    result.seconds = time.perf_counter() - start
    learned = {layer.name.removesuffix("_fake_quant"): (float(layer.lo.numpy()), float(layer.hi.numpy()))
               for layer in student.layers if isinstance(layer, fake_quant)}
    result.ranges = {name: (min(lo, hi), max(lo, hi)) for name, (lo, hi) in learned.items()}
    tuned = keras.models.clone_model(model)
    for layer in tuned.layers:
        layer.set_weights(student.get_layer(layer.name).get_weights())
    return tuned, result
