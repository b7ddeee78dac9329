"""The package on JAX alone (a GPU machine with JAX and no TensorFlow), and the NumPy batch sources
that stand in for ``tf.data`` there. Label convention: 1 = same.

The subprocess tests hide TensorFlow (``sys.modules["tensorflow"] = None``: any import of it fails)
and run on ``KERAS_BACKEND=jax``, as on such a machine.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from siamese_tf import reports, settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.reports import machine_description, measure_matmul_gflops
from siamese_tf.samplers import ClassBalancedBatches, PairBatches
from siamese_tf.training import ShuffledBatches

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")

HIDE_TENSORFLOW = "import sys\nsys.modules['tensorflow'] = None  # every 'import tensorflow' now fails\n"


def _run_without_tensorflow(code, environment=None, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPOSITORY_ROOT), KERAS_BACKEND="jax",
               **(environment or {}))
    completed = subprocess.run([sys.executable, "-c", HIDE_TENSORFLOW + textwrap.dedent(code)],
                               capture_output=True, text=True, env=env, timeout=timeout, cwd=REPOSITORY_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _labelled_images(num_classes=6, per_class=4, side=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    images = rng.random((len(labels), side, side, 1), dtype=np.float32)
    return images, labels


# --- NumPy batch sources (in this process, TensorFlow present) -----------------------------------

def test_shuffled_batches_serve_each_image_once_per_epoch_in_a_seeded_order():
    images, labels = _labelled_images()
    images[:, 0, 0, 0] = np.arange(len(images))  # tag each image with its index
    batches = ShuffledBatches(images, labels, batch_size=5, seed=3)
    assert len(batches) == len(images) // 5  # the incomplete last batch is dropped

    def epoch_indices():
        served = [batches[step] for step in range(len(batches))]
        for batch_images, batch_labels in served:
            np.testing.assert_array_equal(labels[batch_images[:, 0, 0, 0].astype(int)], batch_labels)
        return np.concatenate([batch_images[:, 0, 0, 0] for batch_images, _ in served]).astype(int)

    first = epoch_indices()
    assert len(set(first)) == len(first) == 20  # no image twice within an epoch
    batches.on_epoch_end()
    second = epoch_indices()
    assert not np.array_equal(first, second)  # reshuffled
    again = ShuffledBatches(images, labels, batch_size=5, seed=3)
    np.testing.assert_array_equal(again[0][1], labels[first[:5]])  # the same seed, the same order


@pytest.mark.parametrize("batch_size", [0, 25, 2.5, True])
def test_shuffled_batches_name_a_bad_batch_size(batch_size):
    images, labels = _labelled_images()
    with pytest.raises(ValueError, match=f"batch_size must be an integer from 1 to the 24 images, got {batch_size!r}"):
        ShuffledBatches(images, labels, batch_size)


def test_shuffled_batches_refuse_images_and_labels_of_different_lengths():
    images, labels = _labelled_images()
    with pytest.raises(ValueError, match=r"images \(24\) and labels \(23\) must have the same length"):
        ShuffledBatches(images, labels[:-1], 4)


@pytest.mark.parametrize("source", ["pairs", "class_balanced"])
def test_py_dataset_serves_the_batches_of_the_epoch_keras_is_in(source):
    images, labels = _labelled_images()
    if source == "pairs":
        batches = PairBatches(images, labels, pairs_per_epoch=12, batch_size=4, seed=1, augment=Augmenter())
    else:
        batches = ClassBalancedBatches(images, labels, classes_per_batch=3, images_per_class=2, steps_per_epoch=3,
                                       seed=1)
    dataset = batches.py_dataset()
    assert len(dataset) == batches.steps_per_epoch == 3
    callback = batches.callback()
    for epoch in (0, 1, 5):  # epoch 5: a run resumed there (initial_epoch=5)
        callback.on_epoch_begin(epoch)
        dataset.on_epoch_begin()
        for step in range(len(dataset)):
            expected, served = batches.batch(epoch, step), dataset[step]
            for expected_array, served_array in zip(keras.tree.flatten(expected), keras.tree.flatten(served),
                                                    strict=True):
                np.testing.assert_array_equal(expected_array, served_array)
        dataset.on_epoch_end()
    assert batches.epoch == 6


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_py_dataset_names_a_bad_worker_count(workers):
    images, labels = _labelled_images()
    batches = PairBatches(images, labels, pairs_per_epoch=8, batch_size=4)
    with pytest.raises(ValueError, match=f"workers must be a positive integer, got {workers!r}"):
        batches.py_dataset(workers=workers)


def test_a_fit_on_the_py_dataset_ends_where_a_fit_on_tf_data_ends():
    """The same pairs and augmentation through ``py_dataset`` and through ``dataset``: the same weights."""
    from siamese_tf.models import build_siamese_model
    from siamese_tf.training import compile_siamese

    images, labels = _labelled_images()
    final_weights = []
    for serve in ("dataset", "py_dataset"):
        keras.utils.set_random_seed(0)
        model = build_siamese_model("small_cnn", "euclidean", (8, 8, 1), embedding_dim=4, filters=(4,), normalize=True)
        compile_siamese(model, learning_rate=1e-2, mode="pairs")
        batches = PairBatches(images, labels, pairs_per_epoch=8, batch_size=4, seed=2, augment=Augmenter())
        model.fit(getattr(batches, serve)(), epochs=2, verbose=0, shuffle=False, callbacks=[batches.callback()])
        final_weights.append(model.get_weights())
    for from_tf_data, from_numpy in zip(*final_weights, strict=True):
        np.testing.assert_allclose(from_tf_data, from_numpy, rtol=1e-5, atol=1e-6)


def test_compile_siamese_keeps_tensorflow_graphs_without_xla_by_default():
    from siamese_tf.models import build_siamese_model
    from siamese_tf.training import compile_siamese

    model = build_siamese_model("small_cnn", "euclidean", (8, 8, 1), embedding_dim=4, filters=(4,))
    assert keras.backend.backend() == "tensorflow"
    assert compile_siamese(model).jit_compile is False  # XLA trained conv nets no faster on this CPU
    assert compile_siamese(model, jit_compile=True).jit_compile is True


def test_machine_description_names_the_backend_and_tensorflow():
    description = machine_description()
    assert description["backend"] == keras.backend.backend()
    assert description["tensorflow"] is not None and settings.tensorflow_available()
    assert description["gpus"] == len(description["gpu_names"])


class SteppingClock:
    """A perf_counter whose readings are given: each product then takes a known time."""

    def __init__(self, readings):
        self.readings = list(readings)

    def perf_counter(self):
        return self.readings.pop(0)


def test_matmul_speed_is_the_flops_of_a_product_over_its_median_time(monkeypatch):
    # Three timed products of 0.5 s, 0.25 s and 2 s: the median is 0.5 s for 2 x 64^3 flops.
    monkeypatch.setattr(reports, "time", SteppingClock([10.0, 10.5, 20.0, 20.25, 30.0, 32.0]))
    assert measure_matmul_gflops(size=64, repeats=3) == pytest.approx(2 * 64 ** 3 / 0.5 / 1e9)


def test_matmul_speed_is_measured_on_the_backend_and_refuses_bad_settings():
    assert measure_matmul_gflops(size=128, repeats=2) > 0.1  # any CPU multiplies faster than 0.1 GFLOP/s
    for name, value in (("size", 0), ("size", 2.5), ("repeats", -1), ("repeats", True)):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {value!r}"):
            measure_matmul_gflops(**{name: value})



def test_round_figures_rounds_to_decimals_but_never_turns_a_small_figure_into_zero():
    figures = {"accuracy": np.float32(0.984375), "steps": np.int64(24863), "rates": [1e-3, 5e-5, 1.23456e-7, 0.0],
               "negative": -3.0e-6, "name": "x"}
    assert reports.round_figures(figures) == {"accuracy": 0.9844, "steps": 24863, "rates": [0.001, 5e-5, 1.235e-7, 0.0],
                                              "negative": -3e-6, "name": "x"}
    assert reports.round_figures(0.000123456, digits=2) == 0.00012

# --- JAX alone (subprocesses, TensorFlow hidden) -------------------------------------------------

IMPORTS_CODE = """
import json
import siamese_tf
from siamese_tf import reports, settings
from siamese_tf.studies import captcha, faces, mask_guided, omniglot, signatures
try:
    import siamese_tf.pipelines
    pipelines_error = ""
except ImportError as error:
    pipelines_error = str(error)
description = reports.machine_description()
print(json.dumps({"tensorflow_available": settings.tensorflow_available(), "pipelines_error": pipelines_error,
                  "backend": description["backend"], "tensorflow": description["tensorflow"],
                  "matmul_gflops": reports.measure_matmul_gflops(size=64, repeats=1)}))
"""


@needs_jax
def test_the_package_imports_on_jax_without_tensorflow():
    result = _run_without_tensorflow(IMPORTS_CODE)
    assert result["tensorflow_available"] is False
    assert result["backend"] == "jax" and result["tensorflow"] is None
    assert "tensorflow" in result["pipelines_error"]  # the tf.data engine itself says what it needs
    assert result["matmul_gflops"] > 0  # the machine's speed is measured on JAX too


FACES_CODE = """
import json
import numpy as np
from siamese_tf.studies import faces
from siamese_tf.training import train_with_class_proxies
from siamese_tf.datasets import ImageSet

files = faces.locate_lfw()
people = faces.read_lfw_people(files.people)
names = sorted(name for name, count in people[0] if count >= 2)[:12]
images = faces.load_lfw(files.images, image_size=(32, 32), people=set(names))
recipe = faces.ClassProxyRecipe.smoke()
recipe = faces.ClassProxyRecipe(**{**vars(recipe), "minutes": 0.1})
model, training = faces.train_pair_model(images, "contrastive", recipe, pairs_per_epoch=64, batch_size=16,
                                         workers=2, verbose=0)
embeddings = model.embed(images.images[:4])
history = train_with_class_proxies(model.embedding, images.images, images.labels, num_epochs=2, batch_size=8,
                                   verbose=0)
print(json.dumps({"epochs": training["epochs"], "embedding_shape": list(embeddings.shape),
                  "jit_compile": bool(model.jit_compile),
                  "norms": np.linalg.norm(embeddings, axis=1).tolist(),
                  "proxy_losses": [float(value) for value in history.history["loss"]]}))
"""


@needs_jax
def test_face_pair_and_class_proxy_training_run_on_jax_without_tensorflow(shared_data_dir):
    result = _run_without_tensorflow(FACES_CODE, {"SIAMESE_TF_DATA_DIR": str(shared_data_dir)})
    assert result["epochs"] >= 1
    # Without XLA a JAX training step runs op by op (the face network on a CPU: 1.5 s a step against 0.75 s).
    assert result["jit_compile"] is True
    assert result["embedding_shape"] == [4, 16]
    np.testing.assert_allclose(result["norms"], 1.0, atol=1e-4)  # the contrastive recipe's unit-length embeddings
    assert len(result["proxy_losses"]) == 2 and all(np.isfinite(result["proxy_losses"]))


ENGINE_CODE = """
import json
import numpy as np
from siamese_tf.augmentations import Augmenter
from siamese_tf.models import build_siamese_model
from siamese_tf.numpy_pipelines import NumpyClassBalancedPipeline, class_balanced_pipeline, pair_pipeline
from siamese_tf.samplers import make_pairs
from siamese_tf.studies.signatures.networks import LocalResponseNormalization
from siamese_tf.training import compile_siamese, train_siamese

rng = np.random.default_rng(0)
labels = np.repeat(np.arange(8), 4)
images = rng.random((32, 12, 12, 1), dtype=np.float32)
balanced = class_balanced_pipeline(images[:24], labels[:24], 3, 2, steps_per_epoch=3, seed=1, crop_size=10,
                                   augment=Augmenter(max_rotation=10.0))
validation = NumpyClassBalancedPipeline(images[24:], labels[24:], 2, 2, steps_per_epoch=2, crop_size=10)
model = build_siamese_model("small_cnn", "euclidean", (10, 10, 1), embedding_dim=4, filters=(4,))
compile_siamese(model, mode="in_batch")
in_batch = train_siamese(model, balanced, 2, validation_pairs=validation, verbose=0).history
pairs = pair_pipeline(images, labels, 24, 8, seed=2, augment=Augmenter())
pair_model = build_siamese_model("small_cnn", "l1", (12, 12, 1), embedding_dim=4, filters=(4,))
compile_siamese(pair_model)
paired = train_siamese(pair_model, pairs, 2, validation_pairs=make_pairs(images, labels, 16, seed=0),
                       validation_batch_size=8, verbose=0).history
print(json.dumps({"balanced": type(balanced).__name__, "pairs": type(pairs).__name__,
                  "in_batch_loss": in_batch["loss"], "in_batch_val_loss": in_batch["val_loss"],
                  "pair_loss": paired["loss"], "pair_val_loss": paired["val_loss"],
                  "next_epochs": [balanced.epoch, pairs.epoch],
                  "signet_normalised": np.asarray(LocalResponseNormalization(alpha=1.0)(np.ones((1, 2, 2, 5))))
                  .tolist()}))
"""


@needs_jax
def test_the_engine_trains_on_jax_without_tensorflow_from_its_numpy_twins():
    result = _run_without_tensorflow(ENGINE_CODE)
    assert result["balanced"] == "NumpyClassBalancedPipeline" and result["pairs"] == "NumpyPairPipeline"
    for name in ("in_batch_loss", "in_batch_val_loss", "pair_loss", "pair_val_loss"):
        assert len(result[name]) == 2 and all(np.isfinite(result[name])), name  # two epochs, validated
    assert result["next_epochs"] == [2, 2]  # each Keras epoch served one epoch of batches
    # SigNet's normalisation runs in keras.ops: ones over a window of 3, 4, 5, 4, 3 channels, bias 2, beta 0.75
    np.testing.assert_allclose(result["signet_normalised"][0][0][0], [(2.0 + n) ** -0.75 for n in (3, 4, 5, 4, 3)],
                               rtol=1e-5)


OMNIGLOT_CODE = """
import json
import os
from pathlib import Path
from siamese_tf.studies import omniglot

background = omniglot.load_background_small(Path(os.environ["SIAMESE_TF_DATA_DIR"]), image_size=(28, 28),
                                            invert=True, max_images_per_class=3)
train, held = omniglot.split_alphabets(background)
episodes = omniglot.sample_one_shot_episodes(held, n_way=5, num_episodes=2, seed=0)
model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=16, filters=(8, 8, 8, 8))
history, one_shot, budget = omniglot.train_conv4(model, train, held, episodes, num_epochs=2, steps_per_epoch=2,
                                                 classes_per_batch=4, images_per_class=2, seed=0)
print(json.dumps({"loss": history.history["loss"], "one_shot": one_shot.history, "steps": budget.steps}))
"""


@needs_jax
def test_omniglot_trains_in_batch_on_jax_without_tensorflow(shared_data_dir):
    result = _run_without_tensorflow(OMNIGLOT_CODE, {"SIAMESE_TF_DATA_DIR": str(shared_data_dir)})
    assert len(result["loss"]) == 2 and all(np.isfinite(result["loss"])) and result["steps"] == 4
    assert len(result["one_shot"]) == 2 and all(0.0 <= value <= 1.0 for value in result["one_shot"])
