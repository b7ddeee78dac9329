"""Training: compile with the loss that matches the head, fit with callbacks, resume after a stop.

Two modes share one model: ``"pairs"`` (the seed notebooks: batches of image pairs, two
embedding passes per pair) and ``"in_batch"`` (class-balanced batches, each image embedded once
and every pair of the batch scored).

- An L1 (probability) head trains with binary cross-entropy, a distance head with the
  contrastive loss (label convention: 1 = same).
- ``checkpoint_dir`` turns on two things: :class:`RunBackup` (a stopped run resumes at the
  last finished epoch, and because :class:`siamese_tf.samplers.PairBatches` draws epoch ``e``
  from ``(seed, e)`` alone, it ends where an uninterrupted run would; the last two checkpoints
  are kept and ``run.json`` says which run they belong to) and ``best.keras``, the model with
  the best validation loss.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.errors import SiameseDataError
from siamese_tf.losses import ContrastiveLoss, InBatchLoss, PairBinaryCrossentropy
from siamese_tf.settings import make_private, progress_verbosity, tensorflow_available

if TYPE_CHECKING:
    import tensorflow as tf

    from siamese_tf.models import SiameseModel
    from siamese_tf.samplers import ClassBalancedBatches, PairBatches

__all__ = [
    "MODES",
    "PrivateModelCheckpoint",
    "RUN_FILE",
    "RunBackup",
    "ShuffledBatches",
    "TimeBudget",
    "TimeLimit",
    "build_proxy_trainer",
    "check_minutes",
    "claim_checkpoint_dir",
    "describe_run",
    "compile_siamese",
    "cosine_decay_schedule",
    "default_loss",
    "pairs_to_dataset",
    "train_siamese",
    "train_with_class_proxies",
]

MODES = ("pairs", "in_batch")
# Beside a checkpoint: what defines the run it belongs to.
RUN_FILE = "run.json"


def default_loss(model: SiameseModel, margin: float | None = None, mode: str = "pairs", loss: str | None = None,
                 mining: str = "batch_hard") -> keras.losses.Loss:
    """The loss that matches the head and the training mode.

    - ``mode="pairs"`` (batches of image pairs): binary cross-entropy for a probability head,
      contrastive loss for a distance head.
    - ``mode="in_batch"`` (class-balanced batches of single images, every pair scored):
      :class:`~siamese_tf.losses.InBatchLoss`; ``loss`` may pick "triplet" for a distance head.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown training mode {mode!r}; choose one of {MODES}")
    kind = model.output_kind
    if kind not in ("probability", "distance"):
        raise ValueError(f"No default loss for a head with output kind {kind!r}")
    if loss is None:
        loss = "binary_crossentropy" if kind == "probability" else "contrastive"
    if (loss == "binary_crossentropy") != (kind == "probability"):
        raise ValueError(f"Loss {loss!r} does not fit a head that outputs a {kind}")
    if mode == "in_batch":
        return InBatchLoss(loss, margin=margin, mining=mining)
    if loss == "binary_crossentropy":
        return PairBinaryCrossentropy(name="binary_crossentropy")
    if loss == "contrastive":
        return ContrastiveLoss(margin=1.0 if margin is None else margin)
    raise ValueError(f"Loss {loss!r} needs mode='in_batch' (it compares several pairs per anchor)")


def cosine_decay_schedule(learning_rate: float, decay_steps: int,
                          final_fraction: float = 0.05) -> keras.optimizers.schedules.CosineDecay:
    """A learning rate annealed along one cosine from ``learning_rate`` to ``final_fraction`` of it
    over ``decay_steps`` optimizer steps (the schedule every case study uses)."""
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=int(decay_steps), alpha=final_fraction)


def compile_siamese(model: SiameseModel, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
                    margin: float | None = None, optimizer: keras.optimizers.Optimizer | str | None = None,
                    jit_compile: bool | str | None = None, mode: str = "pairs", loss: str | None = None,
                    mining: str = "batch_hard") -> SiameseModel:
    """Compile ``model`` with Adam (or ``optimizer``) and the loss for its head and ``mode``.

    ``jit_compile=None`` (the default) compiles the training step with XLA on the JAX backend,
    where a step that is not compiled runs every operation eagerly (the face network on this CPU:
    1.5 s a step against 0.75 s compiled), and keeps TensorFlow's graph without XLA, which trained
    conv nets no faster on the CPU (benchmarks/throughput.py). ``True`` / ``False`` / ``"auto"`` pass to Keras.

    ``mode="pairs"`` trains on :class:`~siamese_tf.samplers.PairBatches`; ``mode="in_batch"``
    on :class:`~siamese_tf.samplers.ClassBalancedBatches` (each image embedded once per step).
    """
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    if jit_compile is None:
        jit_compile = keras.backend.backend() == "jax"
    metrics = []
    if model.output_kind == "probability" and mode == "pairs":
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(learning_rate),
        loss=default_loss(model, margin, mode, loss, mining),
        metrics=metrics,
        jit_compile=jit_compile,
    )
    return model


def pairs_to_dataset(pairs: tuple[tuple[ArrayLike, ArrayLike], ArrayLike], batch_size: int = 64) -> tf.data.Dataset:
    """``((first, second), labels)`` numpy arrays to a batched ``tf.data.Dataset``.

    Autotune is off and prefetch fixed, which avoids the end-of-fit stall described in
    ENVIRONMENT_NOTES (numpy passed to ``fit`` would build a dataset that stalls).
    """
    import tensorflow as tf

    (first, second), labels = pairs
    if not (len(first) == len(second) == len(labels)):
        raise ValueError(
            f"Pairs must be aligned: got {len(first)} first images, {len(second)} second images "
            f"and {len(labels)} labels"
        )
    dataset = tf.data.Dataset.from_tensor_slices(
        ((np.asarray(first, np.float32), np.asarray(second, np.float32)), np.asarray(labels, np.float32))
    ).batch(batch_size)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options).prefetch(2)


def train_siamese(model: SiameseModel, train_batches: PairBatches | ClassBalancedBatches, num_epochs: int,
                  validation_pairs: tuple[tuple[ArrayLike, ArrayLike], ArrayLike] | PairBatches
                  | ClassBalancedBatches | tf.data.Dataset | None = None,
                  checkpoint_dir: str | os.PathLike | None = None, early_stopping_patience: int | None = None,
                  callbacks: Sequence[keras.callbacks.Callback] = (), verbose: str | int = "auto",
                  validation_batch_size: int = 64, fresh: bool = False,
                  log: Callable[[str], object] = print) -> keras.callbacks.History:
    """Fit ``model`` on :class:`~siamese_tf.samplers.PairBatches` for ``num_epochs`` epochs.

    Args:
        model: a compiled :class:`~siamese_tf.models.SiameseModel` (see :func:`compile_siamese`).
        train_batches: :class:`~siamese_tf.samplers.PairBatches` (pairs; ``mode="pairs"``) or
            :class:`~siamese_tf.samplers.ClassBalancedBatches` (``mode="in_batch"``).
        num_epochs: total epochs; a resumed run continues up to this number.
        validation_pairs: ``((first, second), labels)`` numpy arrays (pairs mode), batches of
            validation classes (``PairBatches`` / ``ClassBalancedBatches``, served frozen at
            epoch 0), or a dataset.
        checkpoint_dir: folder for the resumable backup and ``best.keras``; None for neither. It
            also holds ``run.json``, what defines the run (:func:`describe_run`): a backup of
            another run (other data, shapes, head, loss or recipe) is refused, not resumed.
        fresh: discard a backup in ``checkpoint_dir`` (of this run or another) and start at epoch 1.
        log: where "resuming from epoch N" and checkpoint warnings go (default ``print``).
        early_stopping_patience: stop after this many epochs without a better validation loss.
        callbacks: more Keras callbacks.

    Returns:
        The Keras ``History`` of this call (a resumed run holds only the epochs it ran).
    """
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise ValueError("Compile the model first, e.g. siamese_tf.training.compile_siamese(model)")
    from siamese_tf.samplers import ClassBalancedBatches

    in_batch_loss = isinstance(model.loss, InBatchLoss)
    if in_batch_loss != isinstance(train_batches, ClassBalancedBatches):
        compiled = "in_batch" if in_batch_loss else "pairs"
        raise ValueError(
            f"The model was compiled for mode={compiled!r} but got {type(train_batches).__name__}; use "
            f"{'ClassBalancedBatches' if in_batch_loss else 'PairBatches'} or compile_siamese(model, mode=...)"
        )
    all_callbacks = [train_batches.callback()]
    validation_data = validation_pairs
    if isinstance(validation_pairs, tuple):
        if in_batch_loss:
            raise ValueError("In-batch training validates on ClassBalancedBatches of validation classes, not on pairs")
        if tensorflow_available():
            validation_data = pairs_to_dataset(validation_pairs, validation_batch_size)
    elif hasattr(validation_pairs, "validation_source"):
        # The same validation batches every epoch, so validation losses compare across epochs.
        validation_data = validation_pairs.validation_source(epoch=0)
    monitor = "val_loss" if validation_data is not None else "loss"
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        claim_checkpoint_dir(checkpoint_dir, describe_run(model, train_batches), fresh=fresh)
        all_callbacks.append(RunBackup(checkpoint_dir / "backup", log=log))
        all_callbacks.append(PrivateModelCheckpoint(
            str(checkpoint_dir / "best.keras"), monitor=monitor, save_best_only=True, verbose=0))
    if early_stopping_patience:
        all_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=early_stopping_patience, restore_best_weights=True))
    all_callbacks.extend(callbacks)
    # No steps_per_epoch: the dataset is finite (one epoch, known cardinality), so Keras starts a
    # fresh iterator each epoch and PairBatches draws that epoch's pairs from (seed, epoch).
    return model.fit(
        train_batches.training_source(),
        epochs=num_epochs,
        validation_data=validation_data,
        validation_batch_size=validation_batch_size if isinstance(validation_data, tuple) else None,
        callbacks=all_callbacks,
        shuffle=False,
        verbose=progress_verbosity(verbose),
    )


def _plain(value: object) -> object:
    """``value`` reduced to JSON types (tuples to lists, numpy scalars to numbers, the rest to str)."""
    return json.loads(json.dumps(value, default=lambda item: item.item() if hasattr(item, "item") else str(item)))


def _config_without_names(layer_or_loss: object) -> dict:
    config = layer_or_loss.get_config() if hasattr(layer_or_loss, "get_config") else {}
    return {key: value for key, value in config.items() if key not in ("name", "trainable", "dtype")}


def describe_run(model: SiameseModel, train_batches: object) -> dict:
    """What defines a training run, as JSON: data fingerprint, shapes, network, head, loss, recipe.

    Two runs with the same description resume each other's checkpoints; anything else is
    another run. Layer names are left out (Keras numbers them per process); the network is
    described by its layer types and weight shapes.
    """
    network = [[type(layer).__name__, [list(weight.shape) for weight in layer.weights]]
               for layer in model.embedding.layers]
    optimizer = model.optimizer
    batches = {"class": type(train_batches).__name__}
    for name, value in sorted(vars(train_batches).items()):
        if not name.startswith("_") and isinstance(value, (bool, int, float, str, tuple)):
            batches[name] = value
    augment = getattr(train_batches, "augment", None)
    if augment is not None:
        batches["augment"] = augment.get_config() if hasattr(augment, "get_config") else repr(augment)
    data = hashlib.sha256()
    for name in ("images", "labels", "first", "second", "codes"):
        array = getattr(train_batches, name, None)
        if isinstance(array, np.ndarray):
            data.update(name.encode() + str(array.shape).encode() + np.ascontiguousarray(array).tobytes())
    return _plain({
        "input_shape": list(model.input_image_shape),
        "embedding": hashlib.sha256(json.dumps(network).encode()).hexdigest()[:16],
        "head": {"class": type(model.head).__name__, **_config_without_names(model.head)},
        "loss": {"class": type(model.loss).__name__, **_config_without_names(model.loss)},
        "optimizer": {"class": type(optimizer).__name__,
                      **{key: value for key, value in optimizer.get_config().items() if key != "name"}},
        "batches": batches,
        "data": data.hexdigest()[:16],
    })


def claim_checkpoint_dir(checkpoint_dir: str | os.PathLike, description: dict, fresh: bool = False) -> Path:
    """Make ``checkpoint_dir`` this run's (``run.json``), refusing a backup of another run.

    Raises ``ValueError`` naming what differs when the folder holds a backup whose run
    description is not ``description``; ``fresh=True`` discards that backup instead. Nothing
    is deleted unless ``fresh`` is set.
    """
    checkpoint_dir = Path(checkpoint_dir)
    backup, run_file = checkpoint_dir / "backup", checkpoint_dir / RUN_FILE
    if fresh and backup.exists():
        shutil.rmtree(backup)
    if backup.exists() and any(backup.iterdir()):
        try:
            stored = json.loads(run_file.read_text())
        except FileNotFoundError:
            stored = None
        except (OSError, ValueError) as error:
            raise SiameseDataError(f"{run_file}: unreadable ({error}); pass fresh=True (--fresh) to start "
                                   f"afresh") from error
        if stored != description:
            if stored is None:
                differences = f"{RUN_FILE} is missing, so the run it came from is unknown"
            else:
                differing = sorted(key for key in set(stored) | set(description)
                                   if stored.get(key) != description.get(key))
                differences = "it differs in " + ", ".join(
                    f"{key} (was {stored.get(key)!r}, now {description.get(key)!r})"
                    if key in ("input_shape", "head", "loss") else key for key in differing)
            raise ValueError(
                f"{backup} holds a checkpoint of another run: {differences}. Rerun with the same data and "
                f"settings to resume it, pass fresh=True (--fresh on the command line) to discard it, or choose "
                f"another checkpoint folder"
            )
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    make_private(checkpoint_dir)
    run_file.write_text(json.dumps(description, indent=1, sort_keys=True))
    return checkpoint_dir


class RunBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that keeps the last two checkpoints and says what it does.

    A damaged latest checkpoint (truncated, empty, not HDF5, garbage metadata) falls back to
    the one before it, with a message naming the damaged file; with no good one left it raises
    :class:`~siamese_tf.errors.SiameseDataError` saying which file and what to do. A resumed run
    logs "resuming from epoch N".
    """

    def __init__(self, backup_dir: str | os.PathLike, log: Callable[[str], object] = print) -> None:
        super().__init__(str(backup_dir), double_checkpoint=True)
        self.log = log

    def _damaged(self, error: Exception, fallback: bool) -> str:
        what = f"the checkpoint {self._weights_path} (with {self._training_metadata_path}) is damaged ({error})"
        return what if fallback else (
            f"{what} and there is no earlier good checkpoint; delete {self.backup_dir} or pass fresh=True "
            f"(--fresh on the command line) to start this run afresh")

    def on_train_begin(self, logs: dict | None = None) -> None:
        readable = (OSError, KeyError, TypeError, json.JSONDecodeError)
        try:
            self._load_model()
        except readable as error:
            if not os.path.exists(self._prev_weights_path):
                raise SiameseDataError(self._damaged(error, fallback=False)) from error
            self.log(self._damaged(error, fallback=True) + "; falling back to the previous checkpoint")
            shutil.copyfile(self._prev_weights_path, self._weights_path)
            if os.path.exists(self._prev_training_metadata_path):
                shutil.copyfile(self._prev_training_metadata_path, self._training_metadata_path)
            for path in (self._prev_weights_path, self._prev_training_metadata_path):
                if os.path.exists(path):
                    os.remove(path)
            try:
                self._load_model()
            except readable as second_error:
                raise SiameseDataError(self._damaged(second_error, fallback=False)) from second_error
        epoch = int(getattr(self.model, "_initial_epoch", 0) or 0)
        if epoch:
            self.log(f"resuming from epoch {epoch}: {self.backup_dir} holds {epoch} finished epoch(s)")


class PrivateModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` whose files are readable by their owner only (they may come from faces)."""

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        super()._save_model(epoch, batch, logs)
        for path in Path(self.filepath).parent.glob(Path(self.filepath).name.split("{")[0] + "*"):
            make_private(path)



def check_minutes(minutes: float | None, allow_none: bool = True) -> float | None:
    """``minutes`` as a float when it is a usable time budget: a finite number above zero (``None``, no
    clock, when ``allow_none``). Anything else (0, -3, nan, inf, True, "24") raises ValueError naming it,
    so every trainer refuses a bad budget with the same words before any training starts."""
    if minutes is None and allow_none:
        return None
    if (isinstance(minutes, bool) or not isinstance(minutes, (int, float, np.integer, np.floating))
            or not np.isfinite(minutes) or minutes <= 0):
        expected = "a positive number of minutes" + (" or None" if allow_none else "")
        raise ValueError(f"minutes must be {expected}, got {minutes!r}")
    return float(minutes)


class TimeBudget(keras.callbacks.Callback):
    """Stop training once ``minutes`` of wall-clock time have passed: the one time budget of every study.

    Checked after every batch, or with ``per_epoch`` after every epoch (the epoch that runs past
    the budget finishes). With ``learning_rate`` set it also anneals the optimizer's learning rate
    along one cosine of the elapsed time, from ``learning_rate`` down to ``final_fraction`` of it,
    so a time-bounded run ends annealed however fast the machine is (the optimizer needs a plain,
    not scheduled, rate). ``total_steps``, the run's own step cap (epochs x steps per epoch) where
    it has one: the cosine then follows whichever of the clock and the steps is further along, so a
    run that reaches its last epoch before its budget also ends annealed (its last step at
    ``final_fraction``). ``minutes=None`` only counts steps and time (and anneals along the steps
    alone when ``learning_rate`` and ``total_steps`` are given).

    Attributes: ``steps`` (batches run), ``elapsed_seconds`` (frozen when training ends, so a
    budget read later reports its own run), ``stopped_for_time``.
    """

    def __init__(self, minutes: float | None, learning_rate: float | None = None, final_fraction: float = 0.05,
                 per_epoch: bool = False, total_steps: int | None = None) -> None:
        super().__init__()
        if total_steps is not None and (isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer))
                                        or total_steps < 1):
            raise ValueError(f"total_steps must be a positive integer or None, got {total_steps!r}")
        minutes = check_minutes(minutes)
        if learning_rate is not None and minutes is None and total_steps is None:
            raise ValueError("a learning-rate schedule needs minutes or total_steps to follow")
        if not 0.0 <= final_fraction <= 1.0:
            raise ValueError(f"final_fraction must lie in [0, 1], got {final_fraction!r}")
        self.seconds = None if minutes is None else 60.0 * minutes
        self.learning_rate = learning_rate
        self.final_fraction = float(final_fraction)
        self.per_epoch = bool(per_epoch)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.started = None
        self.finished = None
        self.steps = 0
        self.stopped_for_time = False

    @property
    def minutes(self) -> float | None:
        return None if self.seconds is None else self.seconds / 60.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started, self.finished, self.stopped_for_time = time.perf_counter(), None, False

    def on_train_end(self, logs: dict | None = None) -> None:
        self.finished = time.perf_counter()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.learning_rate is not None:
            fraction = 0.0 if self.seconds is None else min(1.0, self.elapsed_seconds / self.seconds)
            if self.total_steps is not None:
                fraction = max(fraction, min(1.0, self.steps / max(1, self.total_steps - 1)))
            scale = self.final_fraction + (1.0 - self.final_fraction) * 0.5 * (1.0 + np.cos(np.pi * fraction))
            self.model.optimizer.learning_rate.assign(self.learning_rate * scale)

    def _check(self) -> None:
        if self.seconds is not None and self.elapsed_seconds >= self.seconds:
            self.stopped_for_time = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps += 1
        if not self.per_epoch:
            self._check()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.per_epoch:
            self._check()

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since training began, or of the whole run once it has ended."""
        if self.started is None:
            return 0.0
        return (self.finished if self.finished is not None else time.perf_counter()) - self.started


class TimeLimit(TimeBudget):
    """A :class:`TimeBudget` that must have one (``minutes`` > 0)."""

    def __init__(self, minutes: float, learning_rate: float | None = None, final_fraction: float = 0.05,
                 total_steps: int | None = None) -> None:
        check_minutes(minutes, allow_none=False)
        super().__init__(minutes, learning_rate, final_fraction, total_steps=total_steps)


def build_proxy_trainer(embedding: keras.Model, num_classes: int,
                        augmentation: keras.Layer | None = None,
                        input_shape: Sequence[int] | None = None) -> keras.Model:
    """``images -> cosines to every class proxy``: the training model of class-proxy losses.

    ``augmentation`` (e.g. Keras preprocessing layers, active only in training) runs inside the
    graph before ``embedding``; a :class:`~siamese_tf.layers.CosineProxies` head holds one
    learned vector per class. After training, ``embedding`` alone is the verification network.
    ``input_shape``: of the training images, when ``augmentation`` changes their size (e.g. a
    random 44x44 crop of 48x48 CAPTCHAs); default: ``embedding``'s input shape.
    """
    from siamese_tf.layers import CosineProxies

    shape = tuple(embedding.input_shape[1:]) if input_shape is None else tuple(int(size) for size in input_shape)
    inputs = keras.Input(shape=shape, name="image")
    features = embedding(augmentation(inputs) if augmentation is not None else inputs)
    return keras.Model(inputs, CosineProxies(num_classes, name="proxies")(features), name="proxy_trainer")


class ShuffledBatches(keras.utils.PyDataset):
    """Labelled images in batches of ``batch_size``, shuffled afresh each epoch, from NumPy alone.

    Epoch ``e`` is the permutation drawn by ``numpy.random.default_rng([seed, e])``; the last
    incomplete batch is dropped. :func:`train_with_class_proxies` uses it where TensorFlow (and so
    ``tf.data``) is missing, e.g. ``KERAS_BACKEND=jax`` on a GPU machine with JAX alone.

    Raises:
        ValueError: images and labels differ in length, or ``batch_size`` is not 1..N.
    """

    def __init__(self, images: ArrayLike, labels: ArrayLike, batch_size: int, seed: int = 0) -> None:
        super().__init__()
        self.images = np.asarray(images, np.float32)
        self.labels = np.asarray(labels).reshape(-1)
        if len(self.images) != len(self.labels):
            raise ValueError(f"images ({len(self.images)}) and labels ({len(self.labels)}) must have the same length")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or not 1 <= batch_size <= len(self.images):
            raise ValueError(f"batch_size must be an integer from 1 to the {len(self.images)} images, "
                             f"got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.epoch = 0
        self._order = np.random.default_rng([self.seed, 0]).permutation(len(self.images))

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self._order[step * self.batch_size:(step + 1) * self.batch_size]
        return self.images[chosen], self.labels[chosen]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))


def train_with_class_proxies(embedding: keras.Model, images: ArrayLike, labels: ArrayLike, num_epochs: int,
                             batch_size: int = 128, learning_rate: float = 3e-3, scale: float = 30.0,
                             margin: float = 0.35, augmentation: keras.Layer | None = None,
                             minutes: float | None = None, seed: int = 0,
                             callbacks: Sequence[keras.callbacks.Callback] = (),
                             verbose: str | int = 2) -> keras.callbacks.History:
    """Train ``embedding`` with a class-proxy loss (additive-margin softmax) on labelled images.

    Every step scores each image against every training class (one proxy each), which converges
    far faster than pairs or triplets drawn from a few classes per batch. Adam with a cosine
    learning-rate decay over ``num_epochs``, or, with ``minutes``, over the time budget (training
    stops when it is spent or after ``num_epochs``, whichever comes first). Images are
    shuffled by ``seed`` and served by ``tf.data`` (autotune off, ENVIRONMENT_NOTES trap 1).

    Args:
        embedding: the network to train, ``images -> (B, D)`` features.
        images: (N, H, W, C) float32 in [0, 1]; labels: (N,) class ids ``0..C-1``.
        num_epochs, batch_size, learning_rate: the schedule.
        scale, margin: of :class:`~siamese_tf.losses.AdditiveMarginSoftmaxLoss`.
        augmentation: optional in-graph augmentation layer(s); it may change the images' size to
            ``embedding``'s input (e.g. ``keras.layers.RandomCrop``).
        minutes: wall-clock budget; None for none.
    """
    from siamese_tf.losses import AdditiveMarginSoftmaxLoss

    images = np.asarray(images, np.float32)
    labels = np.asarray(labels).reshape(-1).astype(np.int32)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be (N, H, W, C) with one label each, got {images.shape} and {labels.shape}")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    if not isinstance(batch_size, int) or not 2 <= batch_size <= len(images):
        raise ValueError(f"batch_size must be an integer from 2 to the {len(images)} images, got {batch_size!r}")
    num_classes = int(labels.max()) + 1
    if labels.min() < 0 or num_classes < 2:
        raise ValueError(f"labels must be class ids 0..C-1 with at least 2 classes, got {labels.min()}..{labels.max()}")
    steps_per_epoch = len(images) // batch_size
    trainer = build_proxy_trainer(embedding, num_classes, augmentation, input_shape=images.shape[1:])
    # A time budget anneals by the clock (TimeLimit); otherwise one cosine over the epochs.
    rate = learning_rate if minutes is not None else cosine_decay_schedule(learning_rate,
                                                                         num_epochs * steps_per_epoch)
    trainer.compile(optimizer=keras.optimizers.Adam(rate), loss=AdditiveMarginSoftmaxLoss(scale=scale, margin=margin))
    if tensorflow_available():
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        options = tf.data.Options()
        options.autotune.enabled = False
        dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(2).with_options(options)
    else:  # e.g. KERAS_BACKEND=jax on a GPU machine without TensorFlow: the same batches from NumPy
        dataset = ShuffledBatches(images, labels, batch_size, seed=seed)
    # The clock anneals the rate; the epoch cap, when it comes first, does too (TimeBudget.total_steps).
    budget = [] if minutes is None else [TimeLimit(minutes, learning_rate, total_steps=num_epochs * steps_per_epoch)]
    all_callbacks = list(callbacks) + budget
    return trainer.fit(dataset, epochs=num_epochs, callbacks=all_callbacks, shuffle=False,
                       verbose=progress_verbosity(verbose))
