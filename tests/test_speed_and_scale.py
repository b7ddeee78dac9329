"""Speed and scale: exact and FAISS indexes, library search, the L1-head fast path, several
devices (two logical CPUs, in a subprocess), mixed precision, the JAX backend and the FLOP count
of the throughput benchmark. Label convention: 1 = same; similarities are higher = same."""

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

from siamese_tf import distribution, indexes
from siamese_tf.libraries import TemplateLibrary
from siamese_tf.models import build_siamese_model

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
HAS_FAISS = importlib.util.find_spec("faiss") is not None
needs_faiss = pytest.mark.skipif(not HAS_FAISS, reason="faiss-cpu is not installed")


def _sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def _clustered(count, dim, seed=0, members=5, noise=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((count // members, dim)).astype(np.float32)
    labels = np.arange(count) % len(centres)
    return centres[labels] + noise * rng.standard_normal((count, dim)).astype(np.float32), labels, centres


def _tiny_model(head="l1", dim=6, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(dim)(keras.layers.Flatten()(inputs))
    return build_siamese_model(keras.Model(inputs, outputs), head)


# --- the L1 head's fast exact path ---------------------------------------------------------------

@pytest.mark.parametrize("jit_compile", [False, True])
def test_l1_head_scores_equal_the_formula_including_a_padded_last_chunk(jit_compile):
    rng = np.random.default_rng(1)
    library = rng.random((37, 5), dtype=np.float32)
    queries = rng.random((7, 5), dtype=np.float32)
    weights = rng.standard_normal(5).astype(np.float32)
    expected = _sigmoid(np.abs(queries[:, None, :] - library[None]) @ weights - 0.3)
    # chunk 3: chunks of 3, 3 and a padded 1 -- the padding must not leak into the result.
    scores = indexes.l1_head_scores(queries, library, weights, -0.3, chunk_size=3, jit_compile=jit_compile)
    assert scores.shape == (7, 37)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_hand_computed_l1_head_score():
    # |(1, 2) - (0, 4)| = (1, 2); w = (-1, -0.5) -> -1 - 1 = -2; + b 2 = 0 -> sigmoid(0) = 0.5
    score = indexes.l1_head_scores([[1.0, 2.0]], [[0.0, 4.0]], [-1.0, -0.5], 2.0)
    assert score[0, 0] == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("backend", [pytest.param("faiss", marks=needs_faiss), "tensorflow"])
def test_l1_head_scorer_is_exact_with_mixed_sign_and_zero_weights(backend):
    rng = np.random.default_rng(2)
    library = rng.standard_normal((53, 9)).astype(np.float32)
    queries = rng.standard_normal((11, 9)).astype(np.float32)
    # Negative, positive and zero weights: the FAISS path splits dimensions by sign.
    weights = np.array([-1.5, 0.7, 0.0, -0.2, 2.0, -0.9, 0.0, 0.3, -3.0], np.float32)
    logits = np.abs(queries[:, None, :] - library[None]) @ weights + 0.4
    scorer = indexes.L1HeadScorer(library, weights, 0.4, backend=backend)
    assert scorer.backend == backend
    np.testing.assert_allclose(scorer.logits(queries), logits, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(scorer.scores(queries), _sigmoid(logits), rtol=1e-5, atol=1e-6)


def test_l1_head_scorer_hand_computed_and_bad_input():
    # |(1, 2) - (0, 4)| = (1, 2); w = (-1, +0.5) -> -1 + 1 = 0; + b 0.25 -> logit 0.25
    scorer = indexes.L1HeadScorer([[0.0, 4.0]], [-1.0, 0.5], 0.25)
    assert scorer.logits([[1.0, 2.0]])[0, 0] == pytest.approx(0.25, abs=1e-6)
    with pytest.raises(ValueError, match="'gpu'"):
        indexes.L1HeadScorer([[0.0, 4.0]], [-1.0, 0.5], 0.0, backend="gpu")
    with pytest.raises(ValueError, match="3 entries"):
        indexes.L1HeadScorer([[0.0, 4.0]], [-1.0, 0.5, 1.0], 0.0)


def test_exact_l1_search_ranks_by_logit_when_the_sigmoid_saturates():
    # Both entries score sigmoid(>= 60) == 1.0 in float32; only the logit tells them apart.
    index = indexes.ExactIndex(1, "l1_head", head_weights=([-1.0], 70.0)).add([[5.0], [0.0]])
    similarities, found = index.search([[0.0]], k=2)
    assert found.tolist() == [[1, 0]]
    assert similarities[0, 0] == pytest.approx(1.0)


# --- ExactIndex -----------------------------------------------------------------------------------

def test_exact_euclidean_search_on_hand_made_points():
    index = indexes.ExactIndex(1, "euclidean").add([[0.0], [1.0], [3.0]])
    similarities, found = index.search([[0.9]], k=3)
    assert found.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(similarities, [[-0.1, -0.9, -2.1]], atol=1e-5)


def test_exact_cosine_similarity_is_minus_cosine_distance():
    index = indexes.ExactIndex(2, "cosine").add([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    similarities, found = index.search([[5.0, 0.0]], k=3)
    assert found.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(similarities, [[0.0, -1.0, -2.0]], atol=1e-6)


@pytest.mark.parametrize("head", ["l1", "euclidean", "cosine"])
def test_exact_index_reproduces_the_model_head(head):
    model = _tiny_model(head)
    rng = np.random.default_rng(2)
    library = rng.standard_normal((30, 6)).astype(np.float32)
    queries = rng.standard_normal((4, 6)).astype(np.float32)
    index = indexes.ExactIndex.for_model(model, library)
    assert index.metric == {"l1": "l1_head", "euclidean": "euclidean", "cosine": "cosine"}[head]
    np.testing.assert_allclose(index.similarities(queries), model.similarity_to_library(queries, library),
                               rtol=1e-4, atol=1e-4)


def test_exact_search_in_chunks_matches_one_pass(monkeypatch):
    library, _, _ = _clustered(200, 8)
    queries = library[:25] + 0.01
    index = indexes.ExactIndex(8, "euclidean").add(library)
    full = np.argsort(-index.similarities(queries), axis=1, kind="stable")[:, :3]
    monkeypatch.setattr(indexes, "SEARCH_BLOCK_BYTES", 4 * 200 * 7)  # chunks of 7 queries: 7, 7, 7, 4
    _, found = index.search(queries, k=3)
    assert np.array_equal(found, full)
    assert np.array_equal(found[:, 0], np.arange(25))


def test_index_errors_name_the_problem():
    with pytest.raises(ValueError, match="Unknown index metric 'manhattan'"):
        indexes.ExactIndex(4, "manhattan")
    with pytest.raises(ValueError, match="head_weights"):
        indexes.ExactIndex(4, "l1_head")
    with pytest.raises(ValueError, match="empty"):
        indexes.ExactIndex(4).search(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="3 dimensions but the index holds 4"):
        indexes.ExactIndex(4).add(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        indexes.ExactIndex(1).add([[0.0]]).search([[0.0]], k=0)
    with pytest.raises(FileNotFoundError, match="No saved index"):
        indexes.load_index(REPOSITORY_ROOT / "no-such-index")


def test_exact_index_save_and_load_beside_the_model(tmp_path):
    model = _tiny_model("l1")
    library = np.random.default_rng(3).standard_normal((12, 6)).astype(np.float32)
    index = indexes.ExactIndex.for_model(model, library)
    folder = index.save(indexes.index_path_for(tmp_path / "face.keras"))
    assert folder == tmp_path / "face.index"
    loaded = indexes.load_index(folder)
    assert isinstance(loaded, indexes.ExactIndex) and loaded.metric == "l1_head" and len(loaded) == 12
    np.testing.assert_allclose(loaded.similarities(library[:3]), index.similarities(library[:3]), atol=1e-6)


# --- FaissIndex -----------------------------------------------------------------------------------

@needs_faiss
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_faiss_flat_agrees_with_exact(metric):
    library, _, _ = _clustered(300, 16, seed=4)
    queries = library[::37] + 0.05
    exact_similarities, exact_found = indexes.ExactIndex(16, metric).add(library).search(queries, 5)
    similarities, found = indexes.FaissIndex(16, metric, index_type="flat").add(library).search(queries, 5)
    assert np.array_equal(found, exact_found)
    np.testing.assert_allclose(similarities, exact_similarities, atol=1e-4)


@needs_faiss
def test_faiss_l1_head_with_negative_weights_is_exact_on_a_flat_index():
    rng = np.random.default_rng(5)
    library, _, _ = _clustered(400, 12, seed=5)
    queries = library[::50] + 0.1
    head_weights = (-np.abs(rng.standard_normal(12)).astype(np.float32), 1.5)
    exact = indexes.ExactIndex(12, "l1_head", head_weights=head_weights).add(library)
    approximate = indexes.FaissIndex(12, "l1_head", index_type="flat", head_weights=head_weights, rerank=10)
    approximate.add(library)
    exact_similarities, exact_found = exact.search(queries, 5)
    similarities, found = approximate.search(queries, 5)
    assert np.array_equal(found, exact_found)
    np.testing.assert_allclose(similarities, exact_similarities, atol=1e-5)


@needs_faiss
def test_faiss_l1_head_reranking_uses_the_positive_weights_too():
    # Dimension 1 has a positive weight: candidates ignore it, the re-ranking must not.
    library = np.array([[0.0, 0.0], [0.1, 5.0], [3.0, 0.0]], np.float32)
    head_weights = (np.array([-1.0, 0.5], np.float32), 0.0)
    index = indexes.FaissIndex(2, "l1_head", index_type="flat", head_weights=head_weights, rerank=3).add(library)
    similarities, found = index.search([[0.0, 0.0]], k=3)
    # logits: entry 0 -> 0; entry 1 -> -0.1 + 2.5 = 2.4; entry 2 -> -3
    assert found.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(similarities[0], _sigmoid(np.array([2.4, 0.0, -3.0])), atol=1e-6)


@needs_faiss
def test_faiss_ivf_recall_and_save_load(tmp_path):
    library, labels, centres = _clustered(4000, 16, seed=6)
    rng = np.random.default_rng(7)
    query_classes = rng.integers(0, len(centres), 40)
    queries = centres[query_classes] + 0.3 * rng.standard_normal((40, 16)).astype(np.float32)
    _, truth = indexes.ExactIndex(16, "euclidean").add(library).search(queries, 10)
    index = indexes.FaissIndex(16, "euclidean", index_type="ivf", nprobe=8).add(library)
    assert index.nlist == round(np.sqrt(4000))
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert recall >= 0.9
    assert np.all(labels[found[:, 0]] == query_classes)
    loaded = indexes.load_index(index.save(tmp_path / "ivf"))
    assert isinstance(loaded, indexes.FaissIndex) and len(loaded) == 4000
    assert np.array_equal(loaded.search(queries, 10)[1], found)


@needs_faiss
def test_faiss_index_arguments_are_checked():
    with pytest.raises(ValueError, match="Unknown FAISS index type 'lsh'"):
        indexes.FaissIndex(4, index_type="lsh")
    with pytest.raises(ValueError, match="nprobe must be a positive integer"):
        indexes.FaissIndex(4, nprobe=0)
    with pytest.raises(ValueError, match="nlist=50 needs at least that many"):
        indexes.FaissIndex(4, index_type="ivf", nlist=50).add(np.zeros((10, 4)))
    with pytest.raises(NotImplementedError):
        indexes.FaissIndex(4).add(np.zeros((3, 4))).similarities(np.zeros((1, 4)))


# --- TemplateLibrary with an index -----------------------------------------------------------------

def test_template_library_with_an_exact_index_matches_as_before():
    model = _tiny_model("l1")
    rng = np.random.default_rng(8)
    embeddings = rng.standard_normal((20, 6)).astype(np.float32)
    labels = np.arange(20) % 5
    queries = embeddings[[0, 7, 13]] + 0.01
    plain = TemplateLibrary(model, embeddings, labels)
    indexed = TemplateLibrary(model, embeddings, labels)
    index = indexed.build_index("exact")
    assert isinstance(index, indexes.ExactIndex) and indexed.index is index
    np.testing.assert_allclose(indexed.similarities(queries), plain.similarities(queries), atol=1e-5)
    assert indexed.match(query_embeddings=queries, top_k=2).labels.tolist() == \
        plain.match(query_embeddings=queries, top_k=2).labels.tolist()
    nearest = indexed.nearest(query_embeddings=queries, k=3)
    similarities = plain.similarities(queries)
    assert nearest.indices.tolist() == np.argsort(-similarities, axis=1, kind="stable")[:, :3].tolist()
    assert np.array_equal(nearest.labels, labels[nearest.indices])
    indexed.add(embeddings=rng.standard_normal((2, 6)), labels=[0, 1])
    assert len(indexed.index) == 22


def test_template_library_rejects_an_index_of_another_size():
    model = _tiny_model("euclidean")
    index = indexes.ExactIndex(6).add(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="3 entries but the library has 4"):
        TemplateLibrary(model, np.zeros((4, 6)), [0, 1, 2, 3], index=index)


# --- strategies, mixed precision ---------------------------------------------------------------------

def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'"):
        distribution.get_strategy("tpu")
    with pytest.raises(ValueError, match="devices only apply"):
        distribution.get_strategy("default", devices=["/cpu:0"])


def test_mixed_precision_embedding_keeps_a_float32_head_and_restores_the_policy():
    before = keras.config.dtype_policy().name
    model = distribution.build_model("small_cnn", "l1", input_shape=(16, 16, 1), mixed_precision=True,
                                     embedding_dim=8, filters=(4, 4))
    assert keras.config.dtype_policy().name == before
    assert model.embedding.layers[1].dtype_policy.name == "mixed_float16"
    assert model.head.dtype_policy.name == "float32"
    images = np.random.default_rng(9).random((3, 16, 16, 1), dtype=np.float32)
    assert keras.backend.standardize_dtype(model.embedding(images).dtype) == "float16"
    assert keras.backend.standardize_dtype(model((images, images)).dtype) == "float32"


def _run_python(code, environment=None, timeout=240):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPOSITORY_ROOT))
    for name, value in (environment or {}).items():
        if value is None:
            env.pop(name, None)  # None removes a variable
        else:
            env[name] = value
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                               env=env, timeout=timeout, cwd=REPOSITORY_ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


MIRRORED_CODE = """
import json
import tensorflow as tf
# Two logical CPU devices; this must run before TensorFlow initialises its devices.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from siamese_tf import distribution
from siamese_tf.samplers import ClassBalancedBatches, PairBatches
from siamese_tf.training import train_siamese

def embedding():
    inputs = keras.Input((4, 4, 1))
    return keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs)))

rng = np.random.default_rng(0)
images = rng.random((24, 4, 4, 1), dtype=np.float32)
labels = np.repeat(np.arange(6), 4)
# One MirroredStrategy per process, reused: a second one over the same devices reuses collective
# keys and fails with "Shape mismatch in the collective instance".
mirrored = distribution.get_strategy("mirrored", ["/cpu:0", "/cpu:1"])
out = {}
weights = {}
for name in ("default", "mirrored"):
    keras.utils.set_random_seed(1)
    model, strategy = distribution.build_and_compile(
        mirrored if name == "mirrored" else name, embedding=embedding, head="l1",
        compile_options={"optimizer": keras.optimizers.SGD(0.5)})
    out[name + "_replicas"] = strategy.num_replicas_in_sync
    history = train_siamese(model, PairBatches(images, labels, 16, batch_size=16, seed=2), 1, verbose=0)
    out[name + "_loss"] = history.history["loss"][0]
    weights[name] = [np.asarray(w) for w in model.weights]
out["max_weight_difference"] = float(max(np.abs(a - b).max() for a, b in zip(weights["default"], weights["mirrored"])))

# In-batch: each replica scores the pairs of its half of the P x K batch.
keras.utils.set_random_seed(3)
model, strategy = distribution.build_and_compile(mirrored, embedding=embedding, head="euclidean",
                                                 mode="in_batch", compile_options={"loss": "triplet"})
batches = ClassBalancedBatches(images, labels, classes_per_batch=4, images_per_class=2, steps_per_epoch=1, seed=4)
batch_images, batch_labels = batches.batch(0, 0)
halves = [model.loss(batch_labels[s], model(batch_images[s], training=True)) for s in (slice(0, 4), slice(4, 8))]
history = train_siamese(model, batches, 1, verbose=0)
out["in_batch_loss"] = history.history["loss"][0]
out["in_batch_expected"] = float(np.mean([float(h) for h in halves]))
print(json.dumps(out))
"""


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    result = _run_python(MIRRORED_CODE)
    assert result["default_replicas"] == 1 and result["mirrored_replicas"] == 2
    # Same global batch, gradients averaged over replicas: the same SGD step as on one device.
    assert result["mirrored_loss"] == pytest.approx(result["default_loss"], rel=1e-5)
    assert result["max_weight_difference"] < 1e-5
    assert result["in_batch_loss"] == pytest.approx(result["in_batch_expected"], rel=1e-4)


MULTI_WORKER_CODE = """
import json
import keras
import numpy as np
from siamese_tf import distribution
from siamese_tf.samplers import ClassBalancedBatches
from siamese_tf.training import train_siamese

rng = np.random.default_rng(0)
images = rng.random((24, 8, 8, 1), dtype=np.float32)
labels = np.repeat(np.arange(6), 4)
model, strategy = distribution.build_and_compile("multi_worker", embedding="small_cnn", head="l1",
                                                 input_shape=(8, 8, 1), mode="in_batch", embedding_dim=4,
                                                 filters=(4,))
history = train_siamese(model, ClassBalancedBatches(images, labels, 3, 2, steps_per_epoch=2), 1, verbose=0)
import tensorflow as tf
print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                  "multi_worker": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy),
                  "loss": history.history["loss"][0]}))
"""


def test_multi_worker_strategy_trains_as_a_single_worker_without_tf_config():
    result = _run_python(MULTI_WORKER_CODE, {"TF_CONFIG": None})
    assert result["multi_worker"] and result["replicas"] == 1
    assert np.isfinite(result["loss"])


JAX_CODE = """
import json
import keras
import numpy as np
assert keras.backend.backend() == "jax", keras.backend.backend()
from siamese_tf import distances, heads, layers, losses
from siamese_tf.models import build_siamese_model
from siamese_tf.training import compile_siamese

rng = np.random.default_rng(0)
a, b = rng.random((3, 4), dtype=np.float32), rng.random((3, 4), dtype=np.float32)
out = {"l1dist": np.asarray(layers.L1Dist()(a, b)).tolist(), "expected_l1dist": np.abs(a - b).tolist()}
contrastive = losses.contrastive_loss(np.array([1.0, 0.0]), np.array([0.5, 0.25]), 1.0)
out["contrastive"] = float(np.mean(np.asarray(contrastive)))
labels = np.array([0, 0, 1, 1])
distance_matrix = np.array([[0, 1, 2, 3], [1, 0, 3, 1], [2, 3, 0, 1], [3, 1, 1, 0]], np.float32)
out["triplet"] = float(losses.triplet_loss(labels, distance_matrix, margin=0.5, mining="batch_hard"))
head = heads.get_head("euclidean")
out["head"] = np.asarray(head(a, b)).tolist()
out["expected_head"] = np.sqrt(((a - b) ** 2).sum(-1)).tolist()
images = rng.random((16, 8, 8, 1), dtype=np.float32)
class_labels = np.repeat(np.arange(4), 4).astype("int32")
model = build_siamese_model("small_cnn", "l1", input_shape=(8, 8, 1), embedding_dim=4, filters=(4,))
compile_siamese(model, mode="in_batch")
history = model.fit(images, class_labels, batch_size=8, epochs=2, shuffle=False, verbose=0)
out["losses"] = history.history["loss"]
print(json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_layers_losses_heads_and_a_fit_run_on_the_jax_backend():
    result = _run_python(JAX_CODE, {"KERAS_BACKEND": "jax"})
    np.testing.assert_allclose(result["l1dist"], result["expected_l1dist"], rtol=1e-6)
    # 0.5 * [1 * 0.5^2] and 0.5 * [(1 - 0.25)^2]: mean of 0.125 and 0.28125
    assert result["contrastive"] == pytest.approx((0.125 + 0.28125) / 2, rel=1e-5)
    # batch-hard, margin 0.5: anchors 0..3 -> max(1-2+.5,0)=0, max(1-1+.5,0)=.5, max(1-2+.5,0)=0, max(1-1+.5,0)=.5
    assert result["triplet"] == pytest.approx(0.25, rel=1e-5)
    np.testing.assert_allclose(result["head"], result["expected_head"], rtol=1e-4)
    assert len(result["losses"]) == 2 and all(np.isfinite(result["losses"]))


JAX_ENGINE_CODE = """
import json
import keras
from siamese_tf import distribution
from siamese_tf.studies import omniglot

data_parallel = distribution.use_data_parallel()
data = omniglot.load_background_small(None, image_size=(28, 28), invert=True, max_images_per_class=4)
train, held = omniglot.split_alphabets(data)
episodes = omniglot.sample_one_shot_episodes(held, n_way=4, num_episodes=2, seed=0)
out = {"devices": len(data_parallel.device_mesh.devices.reshape(-1)), "backend": keras.backend.backend()}
for loss in ("neighbourhood", "proxies"):
    model = omniglot.build_conv4_model((28, 28, 1), embedding_dim=8, filters=(8, 8, 8, 8),
                                       head="cosine" if loss == "proxies" else "euclidean")
    before = model.embed(held.images[:4]).tolist()
    history, one_shot, budget = omniglot.train_conv4(model, train, held, episodes, num_epochs=2, steps_per_epoch=3,
                                                     classes_per_batch=4, images_per_class=2, loss=loss)
    out[loss] = {"losses": history.history["loss"], "steps": budget.steps, "accuracy": one_shot.history,
                 "changed": before != model.embed(held.images[:4]).tolist()}
print(json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_the_tf_data_engine_trains_data_parallel_on_two_jax_devices(shared_data_dir):
    result = _run_python(JAX_ENGINE_CODE, {"KERAS_BACKEND": "jax", "SIAMESE_TF_DATA_DIR": str(shared_data_dir),
                                           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert result["backend"] == "jax" and result["devices"] == 2
    for loss in ("neighbourhood", "proxies"):
        figures = result[loss]
        assert figures["steps"] == 6 and len(figures["losses"]) == 2 and all(np.isfinite(figures["losses"]))
        assert figures["changed"] and all(0.0 <= value <= 1.0 for value in figures["accuracy"])


JAX_STUDIES_CODE = """
import json
import keras
import numpy as np
from siamese_tf.studies import captcha, mask_guided

keras.utils.set_random_seed(0)
out = {"backend": keras.backend.backend()}
data = mask_guided.generate_chairlift_data(num_domains=2, train_per_domain=8, validation_per_domain=4,
                                           test_per_domain=4, image_size=(24, 24), seed=3, progress=False)
model = mask_guided.build_mask_guided_siamese(data["train"].image_shape, learning_rate=3e-3)
before = mask_guided.shared_mask_loss(model, data["train"])
history = mask_guided.train_mask_guided_siamese(model, data["train"], 3, validation_data=data["validation"],
                                                batch_size=8)
out["mask_guided"] = {"before": before, "losses": history.history["loss"], "val_losses": history.history["val_loss"],
                      "after": mask_guided.shared_mask_loss(model, data["train"])}
labels = np.repeat(np.arange(8), 4)
images = np.random.default_rng(0).random((32, 48, 48, 1), dtype=np.float32)
config = captcha.CCRConfig(head="euclidean", random_epochs=1, mining_rounds=1, mining_epochs=1, steps_per_epoch=2,
                           classes_per_batch=4, images_per_class=2, widths=(4, 4, 4, 4), embedding_dim=8, top_k=3)
_, report = captcha.train_siamese_ccr(images, labels, config)
out["captcha"] = [{"kind": r["kind"], "batches": r["batches"], "losses": r["losses"]} for r in report["rounds"]]
print(json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_mask_guided_and_captcha_hard_negative_rounds_train_on_the_jax_backend():
    result = _run_python(JAX_STUDIES_CODE, {"KERAS_BACKEND": "jax"})
    assert result["backend"] == "jax"
    figures = result["mask_guided"]
    assert len(figures["losses"]) == 3 and len(figures["val_losses"]) == 3
    assert figures["after"] < figures["before"]  # the shared-mask scorer trains the Siamese model
    assert [round_["kind"] for round_ in result["captcha"]] == ["random", "hard_negatives"]
    assert {round_["batches"] for round_ in result["captcha"]} == {"ClassBalancedPipeline"}
    assert all(np.isfinite(round_["losses"]).all() for round_ in result["captcha"])


def test_data_parallel_needs_the_jax_backend():
    from siamese_tf import distribution

    with pytest.raises(ValueError, match="needs KERAS_BACKEND=jax; this process runs 'tensorflow'"):
        distribution.use_data_parallel()


# --- the throughput benchmark's FLOP count ------------------------------------------------------

def test_forward_flops_counts_conv_and_dense_layers_by_hand():
    path = REPOSITORY_ROOT / "benchmarks" / "throughput.py"
    spec = importlib.util.spec_from_file_location("throughput_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3)(inputs)  # 6x6x4 outputs, 3*3*2 multiply-adds each
    x = keras.layers.MaxPooling2D(2)(x)  # 3x3x4
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)  # 36 -> 5
    model = keras.Model(inputs, outputs)
    assert benchmark.forward_flops(model) == 2 * (6 * 6 * 4 * 3 * 3 * 2) + 2 * (36 * 5)
