"""Speed and scale benchmark: per-pair vs in-batch training, matching at any gallery size.

Prints one JSON object:

- ``matmul``: the measured float32 matrix-multiply peak (``tf.matmul``, GFLOP/s).
- ``training``: for each embedding network, the seed-style per-pair loop (``PairBatches``,
  ``mode="pairs"``) and the in-batch mode (``ClassBalancedBatches``, ``mode="in_batch"``) on
  the same network and machine: median step time, pairs scored per second, images embedded per
  second, the pairs/s ratio, and the share of the matmul peak that training reaches (FLOPs of
  the embedding network, forward + backward = 3 x forward, counted per layer).
- ``batch_norm``: training steps with Keras's batch normalisation against the fused kernel of
  :class:`siamese_tf.layers.FusedBatchNormalization` (the package's default), on the Omniglot conv4
  recipe and the LFW face network, alternating in one run: median step, share of the matmul peak.
- ``l1_matching``: L1-sigmoid head against a 6,763-template library (D = 256): numpy,
  ``heads.score_library``, :func:`siamese_tf.indexes.l1_head_scores` with and without XLA,
  :class:`siamese_tf.indexes.L1HeadScorer` on FAISS (exact) and an ``ExactIndex`` top-10 search.
- ``indexes``: per-query latency of exact and FAISS search at 10k, 100k and 1M entries
  (synthetic clustered embeddings), with recall against exact search; the L1 head through FAISS
  (scaled-L1 candidates, exact re-ranking).
- ``time_to_accuracy`` (``--time-to-accuracy``): minutes to reach 92% 20-way one-shot on
  held-out Omniglot alphabets with each training mode.

Steps are timed with a callback (between consecutive batch ends), after warm-up steps, and
summarized by medians: ``fit()`` as a whole would include tracing and the tf.data stall of
ENVIRONMENT_NOTES trap 1.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/throughput.py [--smoke] [--sections ...]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from siamese_tf import heads as heads_module  # noqa: E402
from siamese_tf import indexes  # noqa: E402
from siamese_tf.augmentations import Augmenter  # noqa: E402
from siamese_tf.embeddings import EMBEDDINGS  # noqa: E402
from siamese_tf.models import build_siamese_model  # noqa: E402
from siamese_tf.reports import machine_description, measure_matmul_gflops  # noqa: E402
from siamese_tf.samplers import ClassBalancedBatches, PairBatches  # noqa: E402
from siamese_tf.training import compile_siamese, train_siamese  # noqa: E402

SECTIONS = ("matmul", "pipeline", "batch_norm", "training", "l1_matching", "indexes")


def log(message):
    print(message, file=sys.stderr, flush=True)


def median_seconds(function, repeats, warmup=2, with_cpu=False):
    """Median wall-clock seconds of ``function()``; with ``with_cpu`` also the median process CPU
    seconds (all threads), which a busy shared machine inflates much less than wall time."""
    for _ in range(warmup):
        function()
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        function()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if with_cpu:
        return float(np.median(times)), float(np.median(cpu_times))
    return float(np.median(times))


# --- matrix-multiply peak ---------------------------------------------------------------------

def matmul_peak(sizes=(1024, 2048), repeats=7):
    """Median GFLOP/s of a float32 matrix product per size (``reports.measure_matmul_gflops``); the best
    is the peak we compare to."""
    results = {str(size): round(measure_matmul_gflops(size, repeats), 1) for size in sizes}
    return {"gflops_by_size": results, "peak_gflops": max(results.values())}


# --- FLOPs of an embedding network -------------------------------------------------------------

def forward_flops(model):
    """Multiply-adds x 2 of the conv / dense layers of ``model`` for one image (others ignored)."""
    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = layer.kernel.shape  # (kh, kw, in, multiplier)
            out = layer.output.shape
            total += 2 * out[1] * out[2] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
        elif isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.shape  # (kh, kw, in / groups, out)
            out = layer.output.shape
            total += 2 * out[1] * out[2] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
        elif isinstance(layer, keras.layers.Dense):
            kernel = layer.kernel.shape
            leading = int(np.prod([d for d in layer.output.shape[1:-1]] or [1]))
            total += 2 * leading * kernel[0] * kernel[1]
    return int(total)


# --- training throughput ------------------------------------------------------------------------

class StepTimer(keras.callbacks.Callback):
    """Wall-clock time at the end of every training batch."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def median_step_seconds(model, batches, warmup_steps):
    timer = StepTimer()
    train_siamese(model, batches, 1, callbacks=[timer], verbose=0)
    intervals = np.diff(timer.ends)[warmup_steps:]
    return float(np.median(intervals)), len(intervals)


def training_throughput(embedding_name, input_shape, embedding_kwargs, pair_batch_size, classes_per_batch,
                        images_per_class, steps, warmup_steps, peak_gflops, jit_modes=(False,), seed=0):
    """Per-pair vs in-batch training on one embedding network; returns a dict of figures."""
    rng = np.random.default_rng(seed)
    num_classes = 200
    # Content does not change the arithmetic: random images, 20 per class.
    images = rng.random((num_classes * 20,) + tuple(input_shape), dtype=np.float32)
    labels = np.repeat(np.arange(num_classes), 20)

    def fresh_model(mode, jit_compile=False):
        keras.utils.set_random_seed(seed)
        model = build_siamese_model(embedding_name, "l1", input_shape=input_shape, **embedding_kwargs)
        return compile_siamese(model, mode=mode, jit_compile=jit_compile)

    model = fresh_model("pairs")
    flops_per_image = forward_flops(model.embedding)
    result = {"embedding": embedding_name, "input_shape": list(input_shape),
              "parameters": int(model.embedding.count_params()),
              "forward_mflops_per_image": round(flops_per_image / 1e6, 2),
              "note": "training FLOPs per image = 3 x forward (forward + backward); the head and BN are not counted"}
    total_steps = steps + warmup_steps + 1
    log(f"[training] {embedding_name} pairs mode, batch {pair_batch_size}")
    pair_batches = PairBatches(images, labels, pairs_per_epoch=pair_batch_size * total_steps,
                               batch_size=pair_batch_size, seed=seed)
    step_seconds, measured = median_step_seconds(model, pair_batches, warmup_steps)
    images_per_step = 2 * pair_batch_size
    result["pairs"] = _mode_figures(step_seconds, measured, pair_batch_size, images_per_step,
                                    flops_per_image, peak_gflops, f"{pair_batch_size} pairs per batch")
    for jit_compile in jit_modes:
        log(f"[training] {embedding_name} in-batch mode, P={classes_per_batch} K={images_per_class} jit={jit_compile}")
        model = fresh_model("in_batch", jit_compile)
        class_batches = ClassBalancedBatches(images, labels, classes_per_batch, images_per_class,
                                             steps_per_epoch=total_steps, seed=seed)
        step_seconds, measured = median_step_seconds(model, class_batches, warmup_steps)
        key = "in_batch_xla" if jit_compile else "in_batch"
        result[key] = _mode_figures(step_seconds, measured, class_batches.pairs_per_batch, class_batches.batch_size,
                                    flops_per_image, peak_gflops,
                                    f"P={classes_per_batch} x K={images_per_class} = {class_batches.batch_size} "
                                    f"images, {class_batches.pairs_per_batch} pairs per batch")
    result["pairs_per_second_ratio"] = round(result["in_batch"]["pairs_per_second"]
                                             / result["pairs"]["pairs_per_second"], 1)
    result["images_per_second_ratio"] = round(result["in_batch"]["images_per_second"]
                                              / result["pairs"]["images_per_second"], 2)
    if "in_batch_xla" in result:
        result["xla_speedup"] = round(result["in_batch"]["median_step_seconds"]
                                      / result["in_batch_xla"]["median_step_seconds"], 2)
    return result


def _mode_figures(step_seconds, measured, pairs_per_step, images_per_step, flops_per_image, peak_gflops, batch):
    achieved_gflops = images_per_step * 3 * flops_per_image / step_seconds / 1e9
    return {
        "batch": batch,
        "median_step_seconds": round(step_seconds, 4),
        "steps_measured": measured,
        "pairs_per_second": round(pairs_per_step / step_seconds, 1) if pairs_per_step else None,
        "images_per_second": round(images_per_step / step_seconds, 1),
        "achieved_gflops": round(achieved_gflops, 2),
        "share_of_matmul_peak": round(achieved_gflops / peak_gflops, 3) if peak_gflops else None,
    }


# --- batch pipeline: Python batches vs tf.data batches on Omniglot conv4 ----------------------------

def _source_figures(batches, num_batches, rounds):
    """Median wall and process-CPU seconds per batch of iterating ``batches.dataset()`` alone."""
    walls, cpus = [], []
    for _ in range(rounds):
        dataset = batches.dataset().take(num_batches)
        iterator = iter(dataset)
        next(iterator)  # warm-up: tracing, the first prefetch
        start, cpu_start = time.perf_counter(), time.process_time()
        count = sum(1 for _ in iterator)
        walls.append((time.perf_counter() - start) / count)
        cpus.append((time.process_time() - cpu_start) / count)
    return float(np.median(walls)), float(np.median(cpus))


def _source_alone_figures(make, sources, steps, rounds, images_per_batch):
    """Each engine's batch source iterated alone, ``rounds`` times alternating; medians and the ratio."""
    alone = {kind: [] for kind in sources}
    for _ in range(rounds):
        for kind in sources:
            log(f"[pipeline] batch source alone: {kind}")
            alone[kind].append(_source_figures(make(kind, steps + 1), steps, 1))
    figures = {}
    for kind, measured in alone.items():
        wall = float(np.median([figure[0] for figure in measured]))
        cpu = float(np.median([figure[1] for figure in measured]))
        figures[kind] = {"ms_per_batch": round(1000 * wall, 2), "cpu_ms_per_batch": round(1000 * cpu, 2),
                         "images_per_second": round(images_per_batch / wall, 1)}
    figures["images_per_second_ratio"] = round(
        figures["tf_data"]["images_per_second"] / figures["python"]["images_per_second"], 2)
    figures["cpu_per_batch_ratio"] = round(
        figures["python"]["cpu_ms_per_batch"] / figures["tf_data"]["cpu_ms_per_batch"], 2)
    if "numpy" in figures:  # the NumPy twin (machines without TensorFlow) against the same Python batches
        figures["numpy_images_per_second_ratio"] = round(
            figures["numpy"]["images_per_second"] / figures["python"]["images_per_second"], 2)
    return figures


def _training_figures(make, build_model, sources, steps, rounds, warmup, pairs_per_step, images_per_step,
                      peak_gflops, batch, label):
    """Train a fresh ``build_model()`` on each engine's batches, ``rounds`` times alternating; step medians."""
    trained = {kind: [] for kind in sources}
    flops_per_image = None
    for _ in range(rounds):
        for kind in sources:
            log(f"[pipeline] {label} training: {kind}")
            keras.utils.set_random_seed(0)
            model = build_model()
            flops_per_image = flops_per_image or forward_flops(model.embedding)
            timer = StepTimer()
            model.fit(make(kind, steps + warmup + 1).dataset(), epochs=1, callbacks=[timer], verbose=0, shuffle=False)
            trained[kind].append(float(np.median(np.diff(timer.ends)[warmup:])))
    figures = {}
    for kind, step_times in trained.items():
        figures[kind] = _mode_figures(float(np.median(step_times)), steps * rounds, pairs_per_step, images_per_step,
                                      flops_per_image, peak_gflops, batch)
        figures[kind]["step_seconds_per_round"] = [round(value, 4) for value in step_times]
    figures["images_per_second_ratio"] = round(
        figures["tf_data"]["images_per_second"] / figures["python"]["images_per_second"], 2)
    if "numpy" in figures:
        figures["numpy_images_per_second_ratio"] = round(
            figures["numpy"]["images_per_second"] / figures["python"]["images_per_second"], 2)
    return figures, flops_per_image


def pipeline_throughput(peak_gflops, smoke=False, steps=40, rounds=3, seed=0):
    """Today's Python batches (``ClassBalancedBatches`` + NumPy/OpenCV ``Augmenter``) against the
    tf.data engine (``ClassBalancedPipeline``) and its NumPy twin (``NumpyClassBalancedPipeline``, what
    machines without TensorFlow train from) with the same augmentation settings, on the Omniglot
    conv4 recipe (28x28, rotations as classes, P=32 x K=4): the batch source alone, then training
    with the neighbourhood loss, alternating the two engines ``rounds`` times in one run."""
    from siamese_tf.numpy_pipelines import NumpyClassBalancedPipeline
    from siamese_tf.pipelines import ClassBalancedPipeline
    from siamese_tf.studies import omniglot

    data = omniglot.load_background_small(None, image_size=(28, 28), invert=True,
                                          max_images_per_class=4 if smoke else None)
    train_set = omniglot.add_rotations(omniglot.split_alphabets(data)[0])
    classes_per_batch, images_per_class = (8, 4) if smoke else (32, 4)
    augmenter = omniglot.conv4_augmenter()
    sources = {"python": ClassBalancedBatches, "tf_data": ClassBalancedPipeline, "numpy": NumpyClassBalancedPipeline}

    def make(kind, steps_per_epoch):
        return sources[kind](train_set.images, train_set.labels, classes_per_batch, images_per_class,
                             steps_per_epoch=steps_per_epoch, seed=seed, augment=augmenter)

    result = {"data": f"Omniglot background minus held-out alphabets, 28x28, rotations: {len(train_set.labels)} "
                      f"images, {train_set.num_classes} classes",
              "batch": f"P={classes_per_batch} x K={images_per_class}", "augment": augmenter.get_config()}
    batch_size = classes_per_batch * images_per_class
    result["source_alone"] = _source_alone_figures(make, sources, steps, rounds, batch_size)

    def build_model():
        model = omniglot.build_conv4_model((28, 28, 1))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=omniglot.NeighbourhoodLoss())
        return model

    result["training"], flops_per_image = _training_figures(
        make, build_model, sources, steps, rounds, 1 if smoke else 3, batch_size * (batch_size - 1) // 2, batch_size,
        peak_gflops, result["batch"], "conv4")
    result["forward_mflops_per_image"] = round(flops_per_image / 1e6, 2)
    return result


def batch_norm_throughput(peak_gflops, smoke=False, steps=40, rounds=3, seed=0):
    """Keras's batch normalisation against the fused kernel (``FusedBatchNormalization.use_fused_kernel``)
    on the same tf.data batches and networks: Omniglot conv4 (28x28, P=32 x K=4, neighbourhood loss)
    and the LFW face network (the class-proxy recipe's small CNN, 64x64, 64 pairs, contrastive loss
    on a Euclidean head), each alternating the two ``rounds`` times; the ratio is Keras's step over
    the fused one."""
    from siamese_tf.layers import FusedBatchNormalization
    from siamese_tf.pipelines import ClassBalancedPipeline, PairPipeline
    from siamese_tf.studies import faces, omniglot

    data = omniglot.load_background_small(None, image_size=(28, 28), invert=True,
                                          max_images_per_class=4 if smoke else None)
    train_set = omniglot.add_rotations(omniglot.split_alphabets(data)[0])
    classes_per_batch, images_per_class = (8, 4) if smoke else (32, 4)
    files = faces.locate_lfw(None)
    people = faces.read_lfw_people(files.people)
    recipe = faces.ClassProxyRecipe()
    face_images = faces.load_lfw(files.images, image_size=recipe.image_size, channels=1,
                                 people={name for name, _ in people[0]})
    pairs_per_step = 8 if smoke else 64

    def conv4():
        model = omniglot.build_conv4_model((28, 28, 1))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=omniglot.NeighbourhoodLoss())
        batches = ClassBalancedPipeline(train_set.images, train_set.labels, classes_per_batch, images_per_class,
                                        steps_per_epoch=steps + 4, seed=seed, augment=omniglot.conv4_augmenter())
        return model, batches, classes_per_batch * images_per_class

    def face_network():
        model = build_siamese_model(recipe.embedding, "euclidean", (*recipe.image_size, 1),
                                    embedding_dim=recipe.embedding_dim, filters=tuple(recipe.filters), normalize=True)
        batches = PairPipeline(face_images.images, face_images.labels, pairs_per_epoch=pairs_per_step * (steps + 4),
                               batch_size=pairs_per_step, seed=seed, augment=Augmenter())
        return compile_siamese(model, mode="pairs"), batches, 2 * pairs_per_step

    result = {}
    for label, build in (("conv4 (Omniglot, 28x28, 128 images)", conv4),
                         (f"face network (LFW, 64x64, {2 * pairs_per_step} images)", face_network)):
        step_times = {"keras": [], "fused": []}
        flops_per_image = images_per_step = None
        for _ in range(rounds):
            for kind in step_times:
                log(f"[batch_norm] {label}: {kind}")
                FusedBatchNormalization.use_fused_kernel = kind == "fused"
                keras.utils.set_random_seed(0)
                model, batches, images_per_step = build()
                flops_per_image = flops_per_image or forward_flops(model.embedding)
                timer = StepTimer()
                model.fit(batches.dataset(), epochs=1, callbacks=[timer], verbose=0, shuffle=False)
                step_times[kind].append(float(np.median(np.diff(timer.ends)[3:])))
        FusedBatchNormalization.use_fused_kernel = True
        figures = {}
        for kind, times in step_times.items():
            figures[kind] = _mode_figures(float(np.median(times)), steps * rounds, None, images_per_step,
                                          flops_per_image, peak_gflops, label)
            figures[kind]["step_seconds_per_round"] = [round(value, 4) for value in times]
        figures["speedup"] = round(figures["keras"]["median_step_seconds"] / figures["fused"]["median_step_seconds"], 2)
        result[label] = figures
    return result


def face_pair_throughput(peak_gflops, smoke=False, steps=30, rounds=3, seed=0):
    """The LFW contrastive recipe's pair batches (64 pairs of 64x64 gray faces, the package's default
    ``Augmenter``): ``PairBatches`` (NumPy/OpenCV) against ``PairPipeline`` (tf.data) and
    ``NumpyPairPipeline``, the source alone
    and training the recipe's network, alternating ``rounds`` times in one run."""
    from siamese_tf.numpy_pipelines import NumpyPairPipeline
    from siamese_tf.pipelines import PairPipeline
    from siamese_tf.studies import faces

    files = faces.locate_lfw(None)
    people = faces.read_lfw_people(files.people)
    names = {name for name, _ in people[0]} if smoke else {name for fold in people[:2] for name, _ in fold}
    recipe = faces.ClassProxyRecipe()
    images = faces.load_lfw(files.images, image_size=recipe.image_size, channels=1, people=names)
    batch_size = 8 if smoke else 64
    augmenter = Augmenter()
    sources = {"python": PairBatches, "tf_data": PairPipeline, "numpy": NumpyPairPipeline}

    def make(kind, steps_per_epoch):
        return sources[kind](images.images, images.labels, pairs_per_epoch=batch_size * steps_per_epoch,
                             batch_size=batch_size, seed=seed, augment=augmenter)

    folds = "fold 1" if smoke else "folds 1-2"
    result = {"data": f"LFW people of {folds}, {recipe.image_size[0]}x{recipe.image_size[1]} gray: "
                      f"{len(images.labels)} images", "batch": f"{batch_size} pairs ({2 * batch_size} images)"}
    result["source_alone"] = _source_alone_figures(make, sources, steps, rounds, 2 * batch_size)

    def build_model():
        model = build_siamese_model(recipe.embedding, "euclidean", (*recipe.image_size, 1),
                                    embedding_dim=recipe.embedding_dim, filters=tuple(recipe.filters), normalize=True)
        return compile_siamese(model, mode="pairs")

    result["training"], _ = _training_figures(make, build_model, sources, steps, rounds, 1 if smoke else 3,
                                              batch_size, 2 * batch_size, peak_gflops, result["batch"],
                                              "face contrastive")
    return result


# --- L1 head against a template library --------------------------------------------------------

def l1_matching(num_templates=6763, dim=256, num_queries=1000, single_repeats=100, seed=0):
    rng = np.random.default_rng(seed)
    library = rng.random((num_templates, dim), dtype=np.float32)
    queries = rng.random((num_queries, dim), dtype=np.float32)
    head = heads_module.L1SimilarityHead(name="head")
    head.build((None, dim), (None, dim))
    weights, bias = indexes.head_weights_from(head)
    library_tensor = tf.constant(library)
    result = {"templates": num_templates, "dim": dim, "queries": num_queries}
    faiss_available = indexes._faiss_available()

    def numpy_scores(batch):
        return 1.0 / (1.0 + np.exp(-(np.abs(batch[:, None, :] - library[None]) @ weights + bias)))

    reference = numpy_scores(queries[:8])
    checks = {}
    methods = {
        "numpy": lambda batch: numpy_scores(batch),
        "score_library": lambda batch: heads_module.score_library(head, batch, library, chunk_size=16),
        "tf_function": lambda batch: indexes.l1_head_scores(batch, library_tensor, weights, bias, jit_compile=False),
        "tf_function_xla": lambda batch: indexes.l1_head_scores(batch, library_tensor, weights, bias, jit_compile=True),
    }
    if faiss_available:
        scorer = indexes.L1HeadScorer(library, weights, bias, backend="faiss")
        exact_index = indexes.ExactIndex(dim, "l1_head", head_weights=(weights, bias), l1_backend="faiss").add(library)
        methods["faiss_l1"] = scorer.scores
        # The whole answer a user asks for: scores plus the top-10 templates, through the index.
        methods["exact_index_top10"] = lambda batch: exact_index.search(batch, k=10)[0]
        reference_top10 = np.sort(reference, axis=1)[:, ::-1][:, :10]
    for name, method in methods.items():
        log(f"[l1_matching] {name}")
        expected = reference_top10 if name == "exact_index_top10" else reference
        checks[name] = float(np.abs(method(queries[:8]) - expected).max())
        single, single_cpu = median_seconds(lambda: method(queries[rng.integers(num_queries)][None]),
                                            single_repeats if name != "numpy" else 20, with_cpu=True)
        batch_count = num_queries if name != "numpy" else 100
        batched, batched_cpu = median_seconds(lambda: method(queries[:batch_count]), 3, warmup=1, with_cpu=True)
        result[name] = {"single_query_ms": round(single * 1e3, 3),
                        "single_query_cpu_ms": round(single_cpu * 1e3, 3),
                        "batched_ms_per_query": round(batched / batch_count * 1e3, 4),
                        "batched_cpu_ms_per_query": round(batched_cpu / batch_count * 1e3, 4),
                        "max_abs_difference_vs_numpy": checks[name]}
    return result


# --- indexes at 10k, 100k, 1M ------------------------------------------------------------------

def clustered_embeddings(count, dim, rng, members_per_class=10, noise=0.5):
    """Synthetic embeddings: classes of ``members_per_class`` around random centres."""
    num_classes = max(1, count // members_per_class)
    centres = rng.standard_normal((num_classes, dim), dtype=np.float32)
    # Consecutive members: the first n entries hold n // members_per_class whole classes.
    labels = np.arange(count) // members_per_class
    embeddings = centres[labels] + noise * rng.standard_normal((count, dim), dtype=np.float32)
    return embeddings, labels, centres


def _latency(index, queries, k, single_count):
    """Median single-query wall ms, batched wall ms per query, median single-query CPU ms, results."""
    index.search(queries[:2], k)  # warm-up (tracing, XLA compilation)
    single, single_cpu = [], []
    for query in queries[:single_count]:
        start, cpu_start = time.perf_counter(), time.process_time()
        index.search(query[None], k)
        single.append(time.perf_counter() - start)
        single_cpu.append(time.process_time() - cpu_start)
    start = time.perf_counter()
    _, found = index.search(queries, k)
    batched = (time.perf_counter() - start) / len(queries)
    return float(np.median(single)) * 1e3, batched * 1e3, float(np.median(single_cpu)) * 1e3, found


def _recall(found, truth):
    hits = [len(set(a[a >= 0]) & set(b)) for a, b in zip(found, truth)]
    return float(np.mean(hits) / truth.shape[1])


def index_latencies(sizes=(10_000, 100_000, 1_000_000), dim=256, num_queries=200, single_count=50, k=10,
                    l1_sizes=(100_000, 1_000_000), seed=0, partial=None):
    faiss = indexes._import_faiss()
    result = {"dim": dim, "k": k, "queries": num_queries, "faiss_version": faiss.__version__,
              "faiss_threads": faiss.omp_get_max_threads(),
              "data": "synthetic: classes of 10 around standard-normal centres, noise 0.5 per dimension; "
                      "queries are new members of classes in the index",
              "euclidean": {}, "cosine": {}, "l1_head": {}}
    rng = np.random.default_rng(seed)
    largest = max(sizes)
    all_embeddings, all_labels, centres = clustered_embeddings(largest, dim, rng)
    query_noise = 0.5 * rng.standard_normal((num_queries, dim), dtype=np.float32)
    query_draws = rng.random(num_queries)

    def queries_for(size):
        # New members of classes that the first ``size`` entries hold (10 members each).
        query_classes = (query_draws * (size // 10)).astype(np.int64)
        return centres[query_classes] + query_noise

    for metric in ("euclidean", "cosine"):
        for size in sizes:
            embeddings = all_embeddings[:size]
            queries = queries_for(size)
            entry = {}
            log(f"[indexes] {metric} {size}: exact")
            exact = indexes.ExactIndex(dim, metric).add(embeddings)
            single_ms, batched_ms, cpu_ms, truth = _latency(exact, queries, k, single_count)
            entry["exact"] = {"single_query_ms": round(single_ms, 3), "single_query_cpu_ms": round(cpu_ms, 3),
                              "batched_ms_per_query": round(batched_ms, 4)}
            del exact
            types = ["flat", "ivf"] if size <= 100_000 else ["ivf"]
            if size == 100_000 and metric == "euclidean":
                types.append("hnsw")
            for index_type in types:
                log(f"[indexes] {metric} {size}: faiss {index_type}")
                start = time.perf_counter()
                index = indexes.FaissIndex(dim, metric, index_type=index_type).add(embeddings)
                build_seconds = time.perf_counter() - start
                single_ms, batched_ms, cpu_ms, found = _latency(index, queries, k, single_count)
                entry[f"faiss_{index_type}"] = {
                    "build_seconds": round(build_seconds, 1), "single_query_ms": round(single_ms, 3),
                    "single_query_cpu_ms": round(cpu_ms, 3),
                    "batched_ms_per_query": round(batched_ms, 4),
                    f"recall_at_{k}_vs_exact": round(_recall(found, truth), 4),
                    **({"nlist": index.nlist, "nprobe": index.nprobe} if index_type == "ivf" else {}),
                }
                del index
            result[metric][str(size)] = entry
            if partial:
                partial(result)
    # The L1 head: exact (XLA) vs FAISS scaled-L1 candidates + exact re-ranking. 10% of the
    # weights are positive (they reward a difference), which the candidate search cannot use.
    weights = -np.abs(rng.standard_normal(dim)).astype(np.float32) * 0.1
    positive = rng.random(dim) < 0.1
    weights[positive] = np.abs(weights[positive])
    head_weights = (weights, 2.0)
    for size in l1_sizes:
        embeddings = all_embeddings[:size]
        queries = queries_for(size)
        entry = {}
        log(f"[indexes] l1_head {size}: exact (XLA)")
        exact = indexes.ExactIndex(dim, "l1_head", head_weights=head_weights).add(embeddings)
        truth_queries = queries[:50]
        single_ms, batched_ms, cpu_ms, truth = _latency(exact, truth_queries, k, 20)
        entry["exact_xla"] = {"single_query_ms": round(single_ms, 3), "single_query_cpu_ms": round(cpu_ms, 3),
                              "batched_ms_per_query": round(batched_ms, 4)}
        del exact
        for index_type in (("flat", "ivf") if size <= 100_000 else ("ivf",)):
            log(f"[indexes] l1_head {size}: faiss {index_type} + re-rank")
            start = time.perf_counter()
            index = indexes.FaissIndex(dim, "l1_head", index_type=index_type, head_weights=head_weights,
                                       rerank=100).add(embeddings)
            build_seconds = time.perf_counter() - start
            single_ms, batched_ms, cpu_ms, found = _latency(index, truth_queries, k, 20)
            entry[f"faiss_{index_type}_rerank100"] = {
                "build_seconds": round(build_seconds, 1), "single_query_ms": round(single_ms, 3),
                "single_query_cpu_ms": round(cpu_ms, 3),
                "batched_ms_per_query": round(batched_ms, 4),
                "recall_at_1_vs_exact": round(float(np.mean(found[:, 0] == truth[:, 0])), 4),
                f"recall_at_{k}_vs_exact": round(_recall(found, truth), 4),
            }
            del index
        result["l1_head"][str(size)] = entry
        if partial:
            partial(result)
    result["l1_head"]["weights"] = "90% negative, 10% positive (|N(0,1)| x 0.1), bias 2.0; truth from 50 queries"
    return result


# --- time to accuracy ---------------------------------------------------------------------------

class AccuracyClock(keras.callbacks.Callback):
    """Every ``eval_every`` steps, N-way accuracy on fixed held-out episodes; the clock counts
    training time only (evaluation is paused out). Stops at ``target`` or after ``budget_seconds``."""

    def __init__(self, images, episodes, eval_every, target, budget_seconds):
        super().__init__()
        self.images, self.episodes = images, episodes
        self.eval_every, self.target, self.budget_seconds = eval_every, target, budget_seconds
        self.curve, self.steps, self.training_seconds = [], 0, 0.0
        self.reached_seconds = None
        self._resumed = None

    def on_train_begin(self, logs=None):
        self._resumed = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.eval_every:
            return
        self.training_seconds += time.perf_counter() - self._resumed
        from siamese_tf.studies.omniglot import ModelScorer, evaluate_episodes

        accuracy = evaluate_episodes(ModelScorer(self.model), self.images, self.episodes)["accuracy"]
        self.curve.append({"steps": self.steps, "training_minutes": round(self.training_seconds / 60, 3),
                           "accuracy": round(accuracy, 4)})
        log(f"[time_to_accuracy] step {self.steps}: {accuracy:.3f} after {self.training_seconds / 60:.2f} min")
        if accuracy >= self.target and self.reached_seconds is None:
            self.reached_seconds = self.training_seconds
            self.model.stop_training = True
        if self.training_seconds >= self.budget_seconds:
            self.model.stop_training = True
        self._resumed = time.perf_counter()


def run_time_to_accuracy(budget_minutes, smoke=False, target=0.92, side=28, seed=0):
    """Minutes of training to ``target`` 20-way one-shot accuracy on held-out Omniglot alphabets
    (Balinese, Early_Aramaic; the same 20 within-alphabet episodes for both modes).

    Same network (the 4-block conv net at 28x28, 64-d, Euclidean head), same augmentation, same
    contrastive loss family: ``pairs`` trains on batches of 32 pairs (two embeddings per pair),
    ``in_batch`` on P=32 x K=4 class-balanced batches (every pair of 128 images scored).
    """
    from siamese_tf.samplers import ClassBalancedBatches, PairBatches
    from siamese_tf.studies import omniglot

    data = omniglot.load_background_small(image_size=(side, side), invert=True,
                                          max_images_per_class=6 if smoke else None)
    train_set, held_out = omniglot.split_alphabets(data)
    train_set = omniglot.add_rotations(train_set)
    episodes = omniglot.sample_one_shot_episodes(held_out, n_way=5 if smoke else 20,
                                                 num_episodes=2 if smoke else 20, seed=seed)
    augment = omniglot.conv4_augmenter()
    result = {"target": target, "n_way": episodes.n_way, "tasks": episodes.num_tasks,
              "held_out_alphabets": list(omniglot.HELD_OUT_ALPHABETS), "train_classes": train_set.num_classes,
              "image_side": side, "budget_minutes_per_mode": budget_minutes}
    for mode in ("pairs", "in_batch"):
        keras.utils.set_random_seed(seed)
        model = omniglot.build_conv4_model((side, side, 1))
        compile_siamese(model, mode=mode, loss="contrastive", margin=1.0)
        if mode == "pairs":
            batches = PairBatches(train_set.images, train_set.labels, pairs_per_epoch=32 * 100, batch_size=32,
                                  seed=seed, augment=augment)
        else:
            batches = ClassBalancedBatches(train_set.images, train_set.labels, classes_per_batch=32,
                                           images_per_class=4, steps_per_epoch=100, seed=seed, augment=augment)
        clock = AccuracyClock(held_out.images, episodes, eval_every=5 if smoke else 50, target=target,
                              budget_seconds=60 * budget_minutes)
        log(f"[time_to_accuracy] {mode}")
        train_siamese(model, batches, 2 if smoke else 1000, callbacks=[clock], verbose=0)
        result[mode] = {
            "minutes_to_target": None if clock.reached_seconds is None else round(clock.reached_seconds / 60, 2),
            "best_accuracy": max((point["accuracy"] for point in clock.curve), default=None),
            "training_minutes": round(clock.training_seconds / 60, 2), "steps": clock.steps,
            "curve": clock.curve,
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check that it runs")
    parser.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS,
                        help="sections to run (none: only --time-to-accuracy)")
    parser.add_argument("--koch", action="store_true", help="also the Koch network at 105x105 (slow on CPU)")
    parser.add_argument("--time-to-accuracy", action="store_true",
                        help="minutes to 92%% 20-way one-shot on held-out Omniglot alphabets, both modes")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="per mode, for --time-to-accuracy")
    parser.add_argument("--output", type=Path, help="also write the JSON here (rewritten after every section)")
    parser.add_argument("--steps", type=int, default=15, help="measured training steps per mode (after warm-up)")
    args = parser.parse_args(argv)

    report = {"benchmark": "throughput", "smoke": args.smoke, "machine": machine_description(),
              "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                          "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
              "label_convention": "1 = same",
              "load_average_at_start": [round(value, 2) for value in os.getloadavg()]}
    started = time.perf_counter()

    def save_partial():
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(report, indent=2) + "\n")

    peak = None
    if {"matmul", "training", "pipeline", "batch_norm"} & set(args.sections):
        log("[matmul]")
        report["matmul"] = matmul_peak((256, 512) if args.smoke else (1024, 2048), 3 if args.smoke else 7)
        peak = report["matmul"]["peak_gflops"]
    if "pipeline" in args.sections:
        report["pipeline"] = pipeline_throughput(peak, smoke=args.smoke, steps=3 if args.smoke else 40,
                                                 rounds=1 if args.smoke else 3)
        save_partial()
        report["pipeline_face_pairs"] = face_pair_throughput(peak, smoke=args.smoke, steps=3 if args.smoke else 30,
                                                             rounds=1 if args.smoke else 3)
        save_partial()
    if "batch_norm" in args.sections:
        report["batch_norm"] = batch_norm_throughput(peak, smoke=args.smoke, steps=3 if args.smoke else 40,
                                                     rounds=1 if args.smoke else 3)
        save_partial()
    if "training" in args.sections:
        steps, warmup = (3, 1) if args.smoke else (args.steps, 3)
        networks = []
        if "siamese_ccr" in EMBEDDINGS and not args.smoke:
            networks.append(("siamese_ccr", (44, 44, 1), {}))
        networks.append(("small_cnn", (44, 44, 1), {"embedding_dim": 256}))
        if args.koch:
            networks.append(("koch", (105, 105, 1), {}))
        report["training"] = []
        for name, shape, kwargs in networks:
            is_koch = name == "koch"
            report["training"].append(training_throughput(
                name, shape, kwargs, pair_batch_size=32, classes_per_batch=16, images_per_class=4,
                steps=(6 if is_koch else steps) if not args.smoke else steps, warmup_steps=warmup,
                peak_gflops=peak, jit_modes=(False,) if is_koch else (False, True)))
            save_partial()
    if "l1_matching" in args.sections:
        report["l1_matching"] = l1_matching(num_queries=64 if args.smoke else 1000,
                                            single_repeats=10 if args.smoke else 100)
        save_partial()
    if "indexes" in args.sections:
        if args.smoke:
            report["indexes"] = index_latencies(sizes=(2_000, 5_000), dim=32, num_queries=20, single_count=5,
                                                l1_sizes=(5_000,))
        else:
            report["indexes"] = index_latencies(partial=lambda value: (report.__setitem__("indexes", value),
                                                                       save_partial()))
    if args.time_to_accuracy:
        report["time_to_accuracy"] = run_time_to_accuracy(args.budget_minutes, smoke=args.smoke)
    report["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
