"""The face-verification job behind ``make demo``: train on some people, choose thresholds on
validation people, report on people the model never saw.

Label convention: 1 = same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from siamese_tf import settings
from siamese_tf.errors import SiameseDataError
from siamese_tf.reports import machine_description, round_figures
from siamese_tf.studies.faces.data import (
    central_square,
    load_lfw,
    locate_face_data,
    locate_lfw,
    read_lfw_pairs,
    read_lfw_people,
)
from siamese_tf.studies.faces.descriptors import fuse_with_descriptor_metric
from siamese_tf.studies.faces.evaluation import (
    HogPairScorer,
    PixelPairScorer,
    calibrate_face_thresholds,
    cross_dataset_report,
    fold_report,
    reference_rule_scores,
    score_lfw_folds,
)

if TYPE_CHECKING:
    import keras

    from siamese_tf.datasets import ImageSet
    from siamese_tf.models import SiameseModel

__all__ = [
    "ClassProxyRecipe",
    "FaceVerificationConfig",
    "face_augmentation",
    "train_class_proxy_model",
    "LFW_DEMO_METHOD",
    "LFW_DEMO_MINUTES",
    "run_face_verification",
    "run_lfw_demo",
    "train_lfw_verification_model",
    "train_pair_model",
]

# The LFW demo's training budget: the whole `make demo` stays near 8 minutes on 2 CPU cores.
LFW_DEMO_MINUTES = 7.0
# The LFW demo's recipe (chosen on fold 8, the validation fold; see README).
LFW_DEMO_METHOD = "contrastive"


@dataclasses.dataclass
class FaceVerificationConfig:
    """Every hyperparameter of the face-verification job in one place."""

    image_size: tuple = (56, 46)  # ORL is 112x92: half size keeps the aspect ratio
    channels: int = 1
    embedding: str = "small_cnn"
    embedding_dim: int = 64
    normalize: bool = True  # unit-length embeddings (helps distance heads)
    head: str = "euclidean"  # "l1" (BCE, the seed notebooks) or "euclidean"/"cosine" (contrastive)
    loss: str | None = "triplet"  # batch-hard triplet; None: the head's default (BCE for "l1", contrastive)
    mode: str = "in_batch"  # "pairs" (two embeddings per pair) or "in_batch" (all pairs of a P x K batch)
    margin: float | None = None  # None: 1.0 for contrastive, 0.2 for triplet
    train_subjects: int = 16
    validation_subjects: int = 4
    test_subjects: int = 10
    num_epochs: int = 30
    pairs_per_epoch: int = 2048  # mode="pairs"
    batch_size: int = 32  # mode="pairs"
    classes_per_batch: int = 8  # mode="in_batch": P subjects x K images per batch
    images_per_class: int = 4
    steps_per_epoch: int = 40  # mode="in_batch"
    learning_rate: float = 1e-3
    early_stopping_patience: int = 8
    augment: bool = True
    validation_pairs: int = 800
    test_pairs: int = 2000
    n_way: int = 10
    num_tasks: int = 1000
    reference_images: int = 5  # the seed apps' "validation images" of the person to verify
    threshold_method: str = "accuracy"
    seed: int = 0

    @classmethod
    def smoke(cls, **overrides: Any) -> FaceVerificationConfig:
        """A configuration that runs in well under a minute (CI, quick checks)."""
        values = dict(num_epochs=2, pairs_per_epoch=128, steps_per_epoch=4, validation_pairs=120, test_pairs=200,
                      num_tasks=50, early_stopping_patience=0)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def default(cls, **overrides: Any) -> FaceVerificationConfig:
        """The full configuration, or the smoke one when SIAMESE_TF_SMOKE is set."""
        return cls.smoke(**overrides) if settings.smoke_mode() else cls(**overrides)


def _split_subjects(faces, config):
    from siamese_tf.datasets import split_by_identity

    counts = (config.train_subjects, config.validation_subjects, config.test_subjects)
    if sum(counts) > faces.num_classes:
        raise SiameseDataError(
            f"The split asks for {sum(counts)} subjects ({counts}) but the data has {faces.num_classes}"
        )
    fractions = tuple(count / sum(counts) for count in counts)
    subset = faces.select_classes(list(range(sum(counts)))) if sum(counts) < faces.num_classes else faces
    return split_by_identity(subset, fractions=fractions, seed=config.seed)


def run_face_verification(config: FaceVerificationConfig | None = None, data_dir: str | os.PathLike | None = None,
                          models_dir: str | os.PathLike | None = None, reports_dir: str | os.PathLike | None = None,
                          verbose: int = 1) -> dict[str, Any]:
    """Train, calibrate, evaluate and save a face-verification Siamese model; write a report.

    Returns the report dict that is also written to ``reports/face_verification.json``.
    """
    from siamese_tf import metrics, plots
    from siamese_tf.augmentations import Augmenter
    from siamese_tf.datasets import load_identity_folders
    from siamese_tf.models import build_siamese_model, save_model
    from siamese_tf.samplers import (
        ClassBalancedBatches,
        PairBatches,
        make_pairs,
        sample_n_way_tasks,
    )
    from siamese_tf.training import compile_siamese, train_siamese

    config = config or FaceVerificationConfig.default()
    models_dir = settings.models_dir(models_dir)
    reports_dir = settings.reports_dir(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    settings.seed_everything(config.seed)

    faces = load_identity_folders(locate_face_data(data_dir), image_size=config.image_size, channels=config.channels)
    train, validation, test = _split_subjects(faces, config)
    model = build_siamese_model(config.embedding, config.head, (*config.image_size, config.channels),
                                embedding_dim=config.embedding_dim, normalize=config.normalize,
                                name="face_verification")
    compile_siamese(model, learning_rate=config.learning_rate, margin=config.margin, mode=config.mode,
                    loss=config.loss)
    augmenter = Augmenter() if config.augment else None
    if config.mode == "in_batch":
        train_batches = ClassBalancedBatches(train.images, train.labels, config.classes_per_batch,
                                             config.images_per_class, config.steps_per_epoch, seed=config.seed,
                                             augment=augmenter)
        validation_batches = ClassBalancedBatches(
            validation.images, validation.labels, min(config.classes_per_batch, validation.num_classes),
            config.images_per_class, steps_per_epoch=8, seed=config.seed + 1)
    else:
        train_batches = PairBatches(train.images, train.labels, config.pairs_per_epoch, config.batch_size,
                                    seed=config.seed, augment=augmenter)
        validation_batches = None
    validation_pairs = make_pairs(validation.images, validation.labels, config.validation_pairs, seed=config.seed)
    test_pairs = make_pairs(test.images, test.labels, config.test_pairs, seed=config.seed + 1)

    started = time.perf_counter()
    history = train_siamese(model, train_batches, config.num_epochs,
                            validation_pairs=validation_batches or validation_pairs,
                            checkpoint_dir=models_dir / "face_verification_checkpoints",
                            early_stopping_patience=config.early_stopping_patience or None, verbose=verbose)
    training_seconds = time.perf_counter() - started

    # Thresholds come from validation subjects only; the test subjects are touched once, below.
    (validation_first, validation_second), validation_labels = validation_pairs
    detection_threshold = metrics.calibrate(model, validation_first, validation_second, validation_labels,
                                            method=config.threshold_method)
    validation_fractions, validation_rule_labels = reference_rule_scores(
        model, validation, config.reference_images, detection_threshold, seed=config.seed)
    from siamese_tf.verification import choose_verification_threshold

    verification_threshold = choose_verification_threshold(validation_fractions, validation_rule_labels)
    model.thresholds.update({"detection": float(detection_threshold),
                             "verification": float(verification_threshold)})

    (test_first, test_second), test_labels = test_pairs
    pair_figures = metrics.evaluate_verification(model, test_first, test_second, test_labels, detection_threshold)
    n_way = min(config.n_way, test.num_classes)
    n_way_figures = metrics.evaluate_n_way(model, test.images, test.labels, n_way=n_way,
                                           num_tasks=config.num_tasks, seed=config.seed)
    test_fractions, test_rule_labels = reference_rule_scores(
        model, test, config.reference_images, detection_threshold, seed=config.seed)
    rule_figures = metrics.binary_metrics(test_fractions, test_rule_labels, verification_threshold)

    model_path = save_model(model, models_dir / "face_verification.keras")
    test_similarities = model.similarity_pairs(test_first, test_second)
    figure_paths = {
        "training_curves": plots.plot_training_curves(history, path=reports_dir / "face_training_curves.png"),
        "roc": plots.plot_roc({"test subjects": (test_similarities, test_labels)}, path=reports_dir / "face_roc.png"),
        "score_histogram": plots.plot_score_histogram(test_similarities, test_labels, threshold=detection_threshold,
                                                      path=reports_dir / "face_score_histogram.png"),
        "test_pairs": plots.plot_pairs(test_first, test_second, test_labels, test_similarities,
                                       path=reports_dir / "face_test_pairs.png"),
    }
    query_indices, support_indices, correct_positions = sample_n_way_tasks(test.labels, n_way, 1, seed=config.seed)
    task_embeddings = model.embed(np.concatenate([test.images[query_indices], test.images[support_indices[0]]]))
    task_similarities = model.similarity_to_library(task_embeddings[:1], task_embeddings[1:])[0]
    figure_paths["n_way_task"] = plots.plot_n_way_task(
        test.images[query_indices[0]], test.images[support_indices[0]], task_similarities, int(correct_positions[0]),
        path=reports_dir / "face_n_way_task.png")
    import matplotlib.pyplot as plt

    plt.close("all")

    report = {
        "job": "face_verification",
        "data": str(locate_face_data(data_dir)),
        "config": dataclasses.asdict(config),
        "smoke_mode": settings.smoke_mode(),
        "subjects": {"train": train.class_names, "validation": validation.class_names, "test": test.class_names},
        "skipped_files": len(faces.skipped),
        "epochs_run": len(history.history.get("loss", [])),
        "training_seconds": round(training_seconds, 1),
        "parameters": int(model.count_params()),
        "thresholds": model.thresholds,
        "test_pair_verification": round_figures(pair_figures),
        "test_n_way_one_shot": round_figures(n_way_figures),
        "test_reference_rule": round_figures(rule_figures),
        "model_path": str(model_path),
        "plots": {name: str(reports_dir / f"face_{name}.png") for name in figure_paths},
        "machine": machine_description(),
    }
    (reports_dir / "face_verification.json").write_text(json.dumps(report, indent=2))
    return report


@dataclasses.dataclass
class ClassProxyRecipe:
    """Face verification trained with class proxies (normalised softmax with an additive margin).

    Every step compares each face with one learned proxy per training person, all of them; the
    saved model is the embedding with a cosine head. The defaults fit a 2-core CPU: 64x64 gray
    centre crops, the package's small CNN, 30 minutes.
    """

    image_size: tuple[int, int] = (64, 64)
    channels: int = 1  # 1: gray, 3: RGB
    embedding: str = "small_cnn"
    embedding_dim: int = 128
    filters: tuple[int, ...] = (32, 64, 128, 128)
    batch_size: int = 128
    learning_rate: float = 3e-3
    scale: float = 30.0
    margin: float = 0.35
    num_epochs: int = 60
    minutes: float | None = 30.0
    flip: bool = True
    max_shift: float = 0.06  # fraction of the image, in-graph RandomTranslation
    max_zoom: float = 0.08
    seed: int = 0

    @classmethod
    def smoke(cls) -> ClassProxyRecipe:
        """A seconds-long run for CI."""
        return cls(image_size=(32, 32), embedding_dim=16, filters=(8, 8, 8, 8), batch_size=32, num_epochs=1,
                   minutes=0.5)


def face_augmentation(recipe: ClassProxyRecipe) -> keras.Sequential | None:
    """The in-graph training augmentation of ``recipe``: mirror, shift and zoom (Keras layers)."""
    import keras

    steps = []
    if recipe.flip:
        steps.append(keras.layers.RandomFlip("horizontal", seed=recipe.seed))
    if recipe.max_shift:
        steps.append(keras.layers.RandomTranslation(recipe.max_shift, recipe.max_shift, fill_mode="nearest",
                                                    seed=recipe.seed))
    if recipe.max_zoom:
        steps.append(keras.layers.RandomZoom(recipe.max_zoom, fill_mode="nearest", seed=recipe.seed))
    return keras.Sequential(steps, name="augmentation") if steps else None


def train_class_proxy_model(train_set: ImageSet, recipe: ClassProxyRecipe | None = None,
                            verbose: str | int = 2) -> tuple[SiameseModel, dict[str, float]]:
    """Train a face-verification :class:`~siamese_tf.models.SiameseModel` with class proxies.

    ``train_set`` holds the training people (every person is a class, one image is enough).
    Returns the model (embedding + cosine head; no thresholds yet) and training figures
    (seconds, epochs, images per second, final loss).
    """
    from siamese_tf.models import build_siamese_model
    from siamese_tf.training import train_with_class_proxies

    recipe = recipe or ClassProxyRecipe()
    if train_set.num_classes < 2:
        raise SiameseDataError(f"class-proxy training needs at least 2 people, got {train_set.num_classes}")
    settings.seed_everything(recipe.seed)
    model = build_siamese_model(recipe.embedding, "cosine", (*recipe.image_size, train_set.image_shape[-1]),
                                name="face_verification", embedding_dim=recipe.embedding_dim,
                                filters=tuple(recipe.filters))
    started = time.perf_counter()
    history = train_with_class_proxies(
        model.embedding, train_set.images, train_set.labels, recipe.num_epochs, batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate, scale=recipe.scale, margin=recipe.margin,
        augmentation=face_augmentation(recipe), minutes=recipe.minutes, seed=recipe.seed, verbose=verbose)
    seconds = time.perf_counter() - started
    epochs = len(history.history["loss"])
    images_seen = epochs * (len(train_set) // recipe.batch_size) * recipe.batch_size
    return model, {"training_seconds": seconds, "epochs": epochs, "images_per_second": images_seen / seconds,
                   "final_loss": float(history.history["loss"][-1])}


PAIR_METHODS = {"pairs_l1": "l1", "contrastive": "euclidean"}


def train_pair_model(train_set: ImageSet, method: str = "pairs_l1", recipe: ClassProxyRecipe | None = None,
                     pairs_per_epoch: int = 4096, batch_size: int = 64, workers: int = 4,
                     verbose: str | int = 2) -> tuple[SiameseModel, dict[str, float]]:
    """The seeds' pair recipes on the same network, data and clock as :func:`train_class_proxy_model`.

    ``method``: ``"pairs_l1"`` (the seeds' ``L1Dist`` + sigmoid head with binary cross-entropy) or
    ``"contrastive"`` (unit-length embeddings, Euclidean distance, contrastive loss). Balanced pairs
    (positives from people with two or more images) with the package's augmentation, run by the tf.data
    engine (:class:`siamese_tf.pipelines.PairPipeline`), Adam annealed by
    the clock over ``recipe.minutes``. Without TensorFlow (``KERAS_BACKEND=jax`` on a machine with JAX
    alone) the same pairs come from its NumPy twin (:class:`siamese_tf.numpy_pipelines.NumpyPairPipeline`,
    each batch's random draws made at once), built by ``workers`` threads. Returns the model (no
    thresholds yet) and training figures.
    """
    import keras

    from siamese_tf.augmentations import Augmenter
    from siamese_tf.models import build_siamese_model
    from siamese_tf.numpy_pipelines import pair_pipeline
    from siamese_tf.training import TimeLimit, compile_siamese

    if method not in PAIR_METHODS:
        raise ValueError(f"method must be one of {sorted(PAIR_METHODS)}, got {method!r}")
    recipe = recipe or ClassProxyRecipe()
    if recipe.minutes is None:
        raise ValueError("the pair recipes train by the clock: give recipe.minutes")
    settings.seed_everything(recipe.seed)
    head = PAIR_METHODS[method]
    model = build_siamese_model(recipe.embedding, head, (*recipe.image_size, train_set.image_shape[-1]),
                                name="face_verification", embedding_dim=recipe.embedding_dim,
                                filters=tuple(recipe.filters), normalize=head != "l1")
    learning_rate = 1e-3
    compile_siamese(model, learning_rate=learning_rate, mode="pairs")
    # Pairs from (seed, epoch); images gathered and augmented a batch at a time, inside tf.data
    # (pipelines.PairPipeline), or by NumPy where TensorFlow is missing (e.g. JAX alone on a GPU machine).
    batches = pair_pipeline(train_set.images, train_set.labels, pairs_per_epoch, batch_size, seed=recipe.seed,
                            augment=Augmenter())
    source = batches.training_source(workers=workers)
    started = time.perf_counter()
    history = model.fit(source, epochs=10_000, verbose=verbose, shuffle=False,
                        callbacks=[batches.callback(), TimeLimit(recipe.minutes, learning_rate),
                                   keras.callbacks.TerminateOnNaN()])
    seconds = time.perf_counter() - started
    epochs = len(history.history["loss"])
    return model, {"training_seconds": seconds, "epochs": epochs,
                   "pairs_per_second": epochs * pairs_per_epoch / seconds,
                   "final_loss": float(history.history["loss"][-1])}


def _training_people(people, train_folds, max_train_people=None):
    """The sorted names of the people of ``train_folds`` (people.txt), the first ``max_train_people``."""
    return sorted(name for fold in train_folds for name, _ in people[fold - 1])[:max_train_people]


def train_lfw_verification_model(data_dir: str | os.PathLike | None = None, train_folds: Sequence[int] = range(1, 8),
                                 validation_folds: Sequence[int] = (8,), recipe: ClassProxyRecipe | None = None,
                                 max_train_people: int | None = None, references: int | None = None,
                                 method: str = "class_proxy",
                                 verbose: str | int = 2) -> tuple[SiameseModel, dict[str, Any]]:
    """A face-verification model for the app: class proxies on LFW people, thresholds on other people.

    Trains on the people of ``train_folds`` (people.txt) and chooses both thresholds
    (:func:`calibrate_face_thresholds`, with ``references`` gallery images per person) on the people of
    ``validation_folds``, never trained on.
    The people of the remaining folds stay unseen for tests (``stand_in_frames``). ``method`` is
    ``"class_proxy"`` (:func:`train_class_proxy_model`) or a pair recipe of :func:`train_pair_model`
    (``"contrastive"``, ``"pairs_l1"``). Returns the model (thresholds stored) and figures:
    training, the chosen thresholds and the people counts.
    """
    if method != "class_proxy" and method not in PAIR_METHODS:
        raise ValueError(f"method must be 'class_proxy' or one of {sorted(PAIR_METHODS)}, got {method!r}")
    overlap = set(train_folds) & set(validation_folds)
    if overlap:
        raise ValueError(f"train_folds and validation_folds share fold(s) {sorted(overlap)}")
    recipe = recipe or ClassProxyRecipe()
    files = locate_lfw(data_dir)
    people = read_lfw_people(files.people)
    for fold in [*train_folds, *validation_folds]:
        if not 1 <= fold <= len(people):
            raise ValueError(f"fold {fold} is not in {files.people} (folds 1-{len(people)})")
    train_people = _training_people(people, train_folds, max_train_people)
    validation_people = sorted(name for fold in validation_folds for name, count in people[fold - 1] if count >= 2)
    images = load_lfw(files.images, image_size=recipe.image_size, channels=recipe.channels,
                      people=set(train_people) | set(validation_people))
    index = {name: label for label, name in enumerate(images.class_names)}
    train_set = images.select_classes([index[name] for name in train_people])
    validation_set = images.select_classes([index[name] for name in validation_people])
    if method == "class_proxy":
        model, training = train_class_proxy_model(train_set, recipe, verbose=verbose)
    else:
        model, training = train_pair_model(train_set, method, recipe, verbose=verbose)
    thresholds = calibrate_face_thresholds(model, validation_set, seed=recipe.seed, references=references)
    return model, {**training, "method": method, "thresholds": thresholds, "train_folds": list(train_folds),
                   "validation_folds": list(validation_folds), "train_people": train_set.num_classes,
                   "train_images": len(train_set)}


def run_lfw_demo(minutes: float | None = None, data_dir: str | os.PathLike | None = None,
                 models_dir: str | os.PathLike | None = None, reports_dir: str | os.PathLike | None = None,
                 method: str | None = None, verbose: str | int = 2) -> dict[str, Any]:
    """The main job (``make demo``): a face-verification model from LFW, scored on people it never saw.

    Trains ``method`` (default :data:`LFW_DEMO_METHOD`; see :func:`train_lfw_verification_model`) for
    ``minutes`` (default :data:`LFW_DEMO_MINUTES`) on the people of
    every fold but the last two, chooses both thresholds on the people of the second-to-last fold
    (galleries of 10 images for the verification threshold, as the app enrols), and scores the last
    fold's pairs with the threshold chosen on the previous fold's pairs, beside the learned metric on
    LBP and HOG descriptors of the same training people, the two fused (:func:`fuse_with_descriptor_metric`,
    the LFW benchmark's winner), raw pixels and HOG, then the same scorers on ORL's people (never
    trained on). Saves ``face_verification.keras`` (thresholds included; ready for ``python -m
    siamese_tf app``) and ``face_verification_descriptor_metric.npz`` (the fused scorer's other half),
    and writes ``face_verification.json`` with a ROC plot. Smoke mode trains a tiny model for seconds.
    """
    from siamese_tf import plots
    from siamese_tf.datasets import load_identity_folders
    from siamese_tf.models import save_model

    smoke = settings.smoke_mode()
    models_dir = settings.models_dir(models_dir)
    reports_dir = settings.reports_dir(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    files = locate_lfw(data_dir)
    pairs = read_lfw_pairs(files.pairs)
    if pairs.num_folds < 3:
        raise SiameseDataError(f"{files.pairs} holds {pairs.num_folds} folds; the demo needs 3 or more "
                               f"(training people, threshold people, test people)")
    test_fold, validation_fold = pairs.num_folds, pairs.num_folds - 1
    train_folds = [1] if smoke else list(range(1, validation_fold))
    recipe = ClassProxyRecipe.smoke() if smoke else ClassProxyRecipe(minutes=LFW_DEMO_MINUTES)
    if minutes is not None:
        recipe.minutes = float(minutes)
    started = time.perf_counter()
    max_train_people = 60 if smoke else None
    model, training = train_lfw_verification_model(data_dir, train_folds, (validation_fold,), recipe,
                                                   max_train_people=max_train_people,
                                                   references=None if smoke else 10,
                                                   method=method or LFW_DEMO_METHOD, verbose=verbose)
    # The fused scorer (the LFW benchmark's winner): the model plus a learned metric on LBP and HOG
    # descriptors of the same training people (about a minute on 2 cores).
    train_people = _training_people(read_lfw_people(files.people), train_folds, max_train_people)
    train_set = load_lfw(files.images, image_size=recipe.image_size, channels=recipe.channels,
                         people=set(train_people))
    fused = fuse_with_descriptor_metric(model, train_set, num_components=16 if smoke else 400,
                                        num_pairs=200 if smoke else 2000)
    del train_set
    images = load_lfw(files.images, image_size=recipe.image_size, channels=recipe.channels,
                      people=pairs.people([validation_fold, test_fold]))
    scorers = {"fused": fused, "model": model, "descriptor_metric": fused.scorers["descriptor"],
               "pixels": PixelPairScorer(), "hog": HogPairScorer()}
    results, curves = {}, {}
    for name, scorer in scorers.items():
        # Scored once: the same similarities give the fold report and the ROC plot.
        similarities = score_lfw_folds(scorer, images, pairs, [test_fold, validation_fold])
        labels = {fold: pairs.labels(fold) for fold in similarities}
        results[name] = fold_report(similarities, labels, test_fold, [validation_fold]).to_dict(roc=False)
        curves[name] = (similarities[test_fold], labels[test_fold])
    orl = load_identity_folders(locate_face_data(data_dir), image_size=recipe.image_size, channels=recipe.channels,
                                crop=central_square)
    model_path = save_model(model, models_dir / "face_verification.keras")
    metric_path = fused.scorers["descriptor"].save(models_dir / "face_verification_descriptor_metric.npz")
    roc_path = reports_dir / "face_roc.png"
    plots.plot_roc(curves, path=roc_path, title=f"LFW fold {test_fold}: people never trained on")
    import matplotlib.pyplot as plt

    plt.close("all")
    report = {
        "job": "face_verification",
        "data": "lfw",
        "smoke_mode": smoke,
        "protocol": f"LFW View 2 folds: train on the people of folds {train_folds[0]}-{train_folds[-1]}, "
                    f"thresholds on fold {validation_fold}, scored on fold {test_fold}'s pairs",
        "method": training["method"],
        "recipe": {key: (list(value) if isinstance(value, tuple) else value)
                   for key, value in dataclasses.asdict(recipe).items()},
        **{key: value for key, value in training.items() if key != "thresholds"},
        "thresholds": model.thresholds,
        "threshold_choice": training["thresholds"],
        "test_pair_verification": round_figures(results),
        "cross_dataset_orl": {"people": orl.num_classes, **round_figures(cross_dataset_report(scorers, orl))},
        "total_seconds": round(time.perf_counter() - started, 1),
        "model_path": str(model_path),
        "descriptor_metric_path": str(metric_path),
        "plots": {"roc": str(roc_path)},
        "machine": machine_description(),
    }
    (reports_dir / "face_verification.json").write_text(json.dumps(round_figures(report), indent=2))
    return report
