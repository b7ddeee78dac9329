"""Mask-guided training: image-mask pair batches, the contrastive Siamese, the classifier baseline and the
whole seen/unseen-domain comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from siamese_tf.heads import DistanceHead
from siamese_tf.models import SiameseModel
from siamese_tf.studies.mask_guided.data import (
    MaskGuidedData,
    check_data,
    image_mask_pairs,
    validation_pairs,
)
from siamese_tf.studies.mask_guided.evaluation import (
    per_domain_accuracy,
    predict_classifier,
    predict_with_masks,
)
from siamese_tf.studies.mask_guided.networks import (
    build_classifier,
    mask_guided_sister_embedding,
)
from siamese_tf.training import compile_siamese, train_siamese

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "MaskPairBatches",
    "SharedMaskScorer",
    "build_mask_guided_siamese",
    "run_chairlift_comparison",
    "shared_mask_loss",
    "train_classifier",
    "train_mask_guided_siamese",
]


class MaskPairBatches:
    """Training batches of (image, mask) pairs for :func:`siamese_tf.training.train_siamese`.

    Each epoch holds every image with both of its domain's masks (so exactly 50% positive, 50%
    negative), shuffled anew each epoch from ``seed``. Images and masks stay in one tensor each
    and batches gather from them, so memory does not grow with the number of pairs.
    """

    def __init__(self, data: MaskGuidedData, batch_size: int = 32, seed: int = 0) -> None:
        check_data(data)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.data = data
        self.batch_size = batch_size
        self.seed = int(seed)
        self.image_indices, self.mask_indices, self.labels = image_mask_pairs(data)

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.batch_size))

    def dataset(self) -> tf.data.Dataset:
        import tensorflow as tf

        images = tf.constant(self.data.images)
        masks = tf.constant(self.data.flat_masks)
        pairs = tf.data.Dataset.from_tensor_slices(
            (self.image_indices.astype(np.int32), self.mask_indices.astype(np.int32), self.labels))
        pairs = pairs.shuffle(len(self.labels), seed=self.seed, reshuffle_each_iteration=True)

        def gather(image_index, mask_index, label):
            return (tf.gather(images, image_index), tf.gather(masks, mask_index)), label

        dataset = pairs.batch(self.batch_size).map(gather)
        options = tf.data.Options()
        options.autotune.enabled = False  # ENVIRONMENT_NOTES: autotune stalls the end of fit()
        return dataset.with_options(options).prefetch(2)

    def training_source(self, workers: int = 1) -> tf.data.Dataset | keras.utils.PyDataset:
        """What ``model.fit`` reads: :meth:`dataset` where TensorFlow is installed, else a
        ``keras.utils.PyDataset`` of the same pairs, shuffled anew each epoch from ``seed``."""
        from siamese_tf.settings import tensorflow_available

        if tensorflow_available():
            return self.dataset()
        batches = self

        class ShuffledPairs(keras.utils.PyDataset):
            """Every (image, mask) pair once per epoch, in an order drawn from (seed, epoch)."""

            def __init__(self) -> None:
                super().__init__(workers=workers)
                self.masks = batches.data.flat_masks
                self.epoch, self.order = -1, None
                self.on_epoch_end()

            def __len__(self) -> int:
                return len(batches)

            def on_epoch_end(self) -> None:
                self.epoch += 1
                self.order = np.random.default_rng([batches.seed, self.epoch]).permutation(len(batches.labels))

            def __getitem__(self, step: int):
                chosen = self.order[step * batches.batch_size:(step + 1) * batches.batch_size]
                images = batches.data.images[batches.image_indices[chosen]]
                masks = self.masks[batches.mask_indices[chosen]]
                return (images, masks), batches.labels[chosen]

        return ShuffledPairs()

    def callback(self) -> keras.callbacks.Callback:
        """A no-op callback (the shuffle is seeded by tf.data itself); train_siamese asks for one."""
        return keras.callbacks.Callback()


def build_mask_guided_siamese(image_shape: tuple[int, int, int] = (64, 64, 3), embedding_dim: int = 2,
                              learning_rate: float = 1e-3, margin: float = 1.0,
                              name: str = "mask_guided_siamese") -> SiameseModel:
    """The paper's Siamese network: the sister embedding, Euclidean distance, contrastive loss.

    Returns a compiled :class:`~siamese_tf.models.SiameseModel` whose head outputs distances
    (lower = same).
    """
    embedding = mask_guided_sister_embedding(tuple(image_shape), embedding_dim=embedding_dim)
    model = SiameseModel(embedding, DistanceHead("euclidean", name="head"), name=name)
    return compile_siamese(model, learning_rate=learning_rate, margin=margin)


class SharedMaskScorer(keras.Model):
    """Scores a batch of images against their own domain's two masks, embedding each mask once per step.

    Inputs ``(images, mask_indices)``: (B, H, W, C) images and (B, 2) rows of ``masks`` (the
    image's own-class mask, then its domain's other mask). Output: (B, 2) distances under
    ``model.head``, so with pair labels ``[1, 0]`` per image (**1 = same**) the model's
    contrastive loss is the mean loss over every image/mask pair, as :class:`MaskPairBatches`
    gives it, at one embedding pass per image instead of two. It shares ``model``'s embedding and
    head (training it trains ``model``) and is written in ``keras.ops``, so ``model.fit``,
    callbacks and every Keras backend apply.
    """

    def __init__(self, model: SiameseModel, masks: ArrayLike, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.siamese = model
        self.masks = np.asarray(masks, np.float32)

    def call(self, inputs: tuple[ArrayLike, ArrayLike], training: bool | None = None) -> tf.Tensor:
        images, mask_indices = inputs
        image_embeddings = self.siamese.embedding(images, training=training)
        # Batch norm sees images and masks in separate passes, as in the pair-by-pair method.
        mask_embeddings = self.siamese.embedding(ops.convert_to_tensor(self.masks), training=training)
        mask_indices = ops.cast(mask_indices, "int32")
        own = ops.take(mask_embeddings, mask_indices[:, 0], axis=0)
        other = ops.take(mask_embeddings, mask_indices[:, 1], axis=0)
        batch = ops.shape(image_embeddings)[0]
        own_distances = ops.reshape(self.siamese.head(image_embeddings, own), (batch,))
        other_distances = ops.reshape(self.siamese.head(image_embeddings, other), (batch,))
        return ops.stack([own_distances, other_distances], axis=1)


def _scorer_dataset(data: MaskGuidedData, batch_size: int, seed: int | None = None) -> tf.data.Dataset:
    """``((images, mask_indices), pair_labels)`` batches for :class:`SharedMaskScorer` (labels ``[1, 0]``)."""
    own = data.domain_ids.astype(np.int32) * 2 + data.class_ids.astype(np.int32)
    other = data.domain_ids.astype(np.int32) * 2 + 1 - data.class_ids.astype(np.int32)
    mask_indices = np.stack([own, other], axis=1)
    pair_labels = np.tile(np.array([[1.0, 0.0]], np.float32), (len(data), 1))
    return _batched(((data.images, mask_indices), pair_labels), batch_size, seed)


def _batched(arrays, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Batches of ``arrays`` (rows shuffled anew each pass when ``seed`` is given), autotune off."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    if seed is not None:
        dataset = dataset.shuffle(int(dataset.cardinality()), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False  # ENVIRONMENT_NOTES: autotune stalls the end of fit()
    return dataset.batch(batch_size).with_options(options).prefetch(2)


def _compiled_scorer(model: SiameseModel, data: MaskGuidedData) -> SharedMaskScorer:
    scorer = SharedMaskScorer(model, data.flat_masks)
    # The Siamese model's own optimizer and contrastive loss: training the scorer is training the model.
    scorer.compile(optimizer=model.optimizer, loss=model.loss)
    return scorer


class _SharedMaskValidation(keras.callbacks.Callback):
    """Adds ``val_loss`` (:func:`shared_mask_loss` on the validation domains' own masks) to each epoch's logs."""

    def __init__(self, model: SiameseModel, data: MaskGuidedData) -> None:
        super().__init__()
        # Built once: each epoch only evaluates.
        self.scorer = _compiled_scorer(model, data)
        self.dataset = _scorer_dataset(data, batch_size=128)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["val_loss"] = float(self.scorer.evaluate(self.dataset, verbose=0))


def train_mask_guided_siamese(model: SiameseModel, train_data: MaskGuidedData, num_epochs: int,
                              validation_data: MaskGuidedData | None = None, batch_size: int = 32, seed: int = 0,
                              verbose: int | str = 0, callbacks: Sequence[keras.callbacks.Callback] = (),
                              method: str = "shared_masks",
                              on_epoch_end: Callable[[int, dict[str, float]], Any] | None = None,
                              ) -> keras.callbacks.History:
    """Train on all image/mask pairs of ``train_data`` (every image with both of its domain's masks).

    Both methods run ``model.fit`` with ``callbacks`` (checkpoints, time budgets, early stopping)
    and give the same objective, the mean contrastive loss over all pairs, half of them positive
    (pair labels: 1 = same):

    - ``"shared_masks"`` (default, about twice as fast): each step embeds a batch of images once
      and all masks once, then scores every image against its own domain's two masks
      (:class:`SharedMaskScorer`).
    - ``"pairs"``: :class:`MaskPairBatches` through :func:`siamese_tf.training.train_siamese`
      (two embedding passes per pair).

    ``validation_data`` adds ``val_loss`` per epoch; ``on_epoch_end(epoch, logs)`` is called
    after each epoch (progress, evaluation). ``verbose`` is Keras' (0, 1, 2 or "auto"). Returns the
    Keras ``History`` (``.history["loss"]``, ``.history["val_loss"]``).
    """
    if method not in ("shared_masks", "pairs"):
        raise ValueError(f"Unknown training method {method!r}; choose 'shared_masks' or 'pairs'")
    check_data(train_data, "train_data")
    if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if getattr(model, "optimizer", None) is None or not hasattr(model.loss, "margin"):
        raise ValueError("Compile the model with a contrastive loss first (build_mask_guided_siamese does)")
    callbacks = list(callbacks)
    if on_epoch_end is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end))
    has_validation = validation_data is not None and len(validation_data) > 0
    if method == "pairs":
        batches = MaskPairBatches(train_data, batch_size=batch_size, seed=seed)
        validation = validation_pairs(validation_data) if has_validation else None
        return train_siamese(model, batches, num_epochs, validation_pairs=validation, verbose=verbose,
                             callbacks=callbacks)
    if has_validation:
        check_data(validation_data, "validation_data")
        # First, so that later callbacks (and the History) see val_loss.
        callbacks.insert(0, _SharedMaskValidation(model, validation_data))
    scorer = _compiled_scorer(model, train_data)
    return scorer.fit(_scorer_dataset(train_data, batch_size, seed), epochs=num_epochs, verbose=verbose,
                      callbacks=callbacks, shuffle=False)


def shared_mask_loss(model: SiameseModel, data: MaskGuidedData, batch_size: int = 128) -> float:
    """The mean contrastive loss over all image/mask pairs of ``data`` (label 1 = same), no training.

    Equals what ``model.evaluate`` gives on :func:`validation_pairs` (checked in the tests).
    """
    check_data(data)
    if getattr(model, "loss", None) is None or not hasattr(model.loss, "margin"):
        raise ValueError("Compile the model with a contrastive loss first (build_mask_guided_siamese does)")
    return float(_compiled_scorer(model, data).evaluate(_scorer_dataset(data, batch_size), verbose=0))


def _class_dataset(data, batch_size, seed=None):
    return _batched((data.images, data.class_ids.astype(np.int32)), batch_size, seed)


def train_classifier(model: keras.Model, train_data: MaskGuidedData, num_epochs: int,
                     validation_data: MaskGuidedData | None = None, batch_size: int = 32, seed: int = 0,
                     verbose: int = 0, callbacks: Sequence[keras.callbacks.Callback] = ()) -> keras.callbacks.History:
    """Train the softmax baseline on images and class ids; returns the Keras History.

    One classifier epoch sees each image once while a Siamese epoch sees it twice (with both
    masks); pass twice the epochs for equal image presentations.
    """
    check_data(train_data, "train_data")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    validation = None
    if validation_data is not None and len(validation_data):
        validation = _class_dataset(validation_data, 128)
    return model.fit(_class_dataset(train_data, batch_size, seed), epochs=num_epochs, validation_data=validation,
                     shuffle=False, verbose=verbose, callbacks=list(callbacks))


def run_chairlift_comparison(num_seen_domains: int = 12, num_unseen_domains: int = 4, train_per_domain: int = 100,
                             validation_per_domain: int = 20, test_per_domain: int = 60,
                             image_size: tuple[int, int] = (48, 48), siamese_epochs: int = 16,
                             classifier_epochs: int = 16, batch_size: int = 32, learning_rate: float = 1e-3,
                             margin: float = 1.0, seed: int = 0, data: dict[str, Any] | None = None,
                             progress: bool = True, verbose: int = 0) -> dict[str, Any]:
    """Generate chairlifts, train the mask-guided Siamese network and the softmax baseline, test both.

    Both models train on the seen domains' training images only; both are tested on the seen
    domains' test images and on the test images of ``num_unseen_domains`` chairlifts never seen
    in training (the Siamese model only needs their two masks). ``data`` reuses a
    :func:`~siamese_tf.studies.mask_guided.generate_chairlift_data` result with at least
    ``num_seen_domains + num_unseen_domains`` domains (the first ones are the seen ones).

    Returns a dict: ``data`` (splits), ``seen`` / ``unseen`` domain ids, ``siamese`` and
    ``classifier`` models, ``siamese_history`` / ``classifier_history`` (loss lists), ``results``
    ``{"seen"|"unseen": {"siamese"|"classifier": {"rows": [...], "summary": {...}}}}`` and
    ``seconds_per_epoch``.
    """
    import time

    from siamese_tf.settings import seed_everything
    from siamese_tf.studies.mask_guided.data import generate_chairlift_data

    total_domains = num_seen_domains + num_unseen_domains
    if data is None:
        data = generate_chairlift_data(total_domains, train_per_domain, validation_per_domain, test_per_domain,
                                       image_size=image_size, seed=seed, progress=progress)
    if len(data["train"].domain_names) < total_domains:
        raise ValueError(f"data holds {len(data['train'].domain_names)} domains; {total_domains} are needed")
    seen, unseen = list(range(num_seen_domains)), list(range(num_seen_domains, total_domains))
    train = data["train"].select_domains(seen)
    validation = data["validation"].select_domains(seen)
    tests = {"seen": data["test"].select_domains(seen)}
    if unseen:
        tests["unseen"] = data["test"].select_domains(unseen)
    image_shape = train.image_shape

    seed_everything(seed)
    siamese = build_mask_guided_siamese(image_shape, learning_rate=learning_rate, margin=margin)
    start = time.perf_counter()
    siamese_history = train_mask_guided_siamese(siamese, train, siamese_epochs, validation_data=validation,
                                                batch_size=batch_size, seed=seed, verbose=verbose)
    siamese_seconds = (time.perf_counter() - start) / siamese_epochs

    seed_everything(seed)
    classifier = build_classifier(image_shape, learning_rate=learning_rate)
    start = time.perf_counter()
    history = train_classifier(classifier, train, classifier_epochs, validation_data=validation,
                               batch_size=batch_size, seed=seed, verbose=verbose)
    classifier_seconds = (time.perf_counter() - start) / classifier_epochs

    results = {}
    for name, test in tests.items():
        results[name] = {}
        for method, predicted in (("siamese", predict_with_masks(siamese, test)),
                                  ("classifier", predict_classifier(classifier, test))):
            rows, summary = per_domain_accuracy(test, predicted)
            results[name][method] = {"rows": rows, "summary": summary}
    return {
        "data": data, "seen": seen, "unseen": unseen, "siamese": siamese, "classifier": classifier,
        "siamese_history": {key: list(map(float, values)) for key, values in siamese_history.history.items()},
        "classifier_history": {key: list(map(float, values)) for key, values in history.history.items()},
        "results": results,
        "seconds_per_epoch": {"siamese": siamese_seconds, "classifier": classifier_seconds},
    }
