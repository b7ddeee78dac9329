"""Training: compile with the loss that matches the head, fit with callbacks, resume after a stop.

Two modes share one model: ``"pairs"`` (the seed notebooks: batches of image pairs, two
embedding passes per pair) and ``"in_batch"`` (class-balanced batches, each image embedded once
and every pair of the batch scored).

- An L1 (probability) head trains with binary cross-entropy, a distance head with the
  contrastive loss (label convention: 1 = same).
- ``checkpoint_dir`` turns on two things: ``BackupAndRestore`` (a stopped run resumes at the
  last finished epoch, and because :class:`siamese_tf.samplers.PairBatches` draws epoch ``e``
  from ``(seed, e)`` alone, it ends where an uninterrupted run would) and ``best.keras``, the
  model with the best validation loss.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from siamese_tf.losses import ContrastiveLoss, InBatchLoss, PairBinaryCrossentropy

if TYPE_CHECKING:
    from siamese_tf.models import SiameseModel
    from siamese_tf.samplers import ClassBalancedBatches, PairBatches

__all__ = [
    "MODES",
    "compile_siamese",
    "cosine_decay_schedule",
    "default_loss",
    "pairs_to_dataset",
    "train_siamese",
]

MODES = ("pairs", "in_batch")


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
                    jit_compile: bool | str = False, mode: str = "pairs", loss: str | None = None,
                    mining: str = "batch_hard") -> SiameseModel:
    """Compile ``model`` with Adam (or ``optimizer``) and the loss for its head and ``mode``.

    ``mode="pairs"`` trains on :class:`~siamese_tf.samplers.PairBatches`; ``mode="in_batch"``
    on :class:`~siamese_tf.samplers.ClassBalancedBatches` (each image embedded once per step).
    """
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
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
                  validation_batch_size: int = 64) -> keras.callbacks.History:
    """Fit ``model`` on :class:`~siamese_tf.samplers.PairBatches` for ``num_epochs`` epochs.

    Args:
        model: a compiled :class:`~siamese_tf.models.SiameseModel` (see :func:`compile_siamese`).
        train_batches: :class:`~siamese_tf.samplers.PairBatches` (pairs; ``mode="pairs"``) or
            :class:`~siamese_tf.samplers.ClassBalancedBatches` (``mode="in_batch"``).
        num_epochs: total epochs; a resumed run continues up to this number.
        validation_pairs: ``((first, second), labels)`` numpy arrays (pairs mode), batches of
            validation classes (``PairBatches`` / ``ClassBalancedBatches``, served frozen at
            epoch 0), or a dataset.
        checkpoint_dir: folder for the resumable backup and ``best.keras``; None for neither.
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
        validation_data = pairs_to_dataset(validation_pairs, validation_batch_size)
    elif hasattr(validation_pairs, "frozen_dataset"):
        # The same validation batches every epoch, so validation losses compare across epochs.
        validation_data = validation_pairs.frozen_dataset(epoch=0)
    monitor = "val_loss" if validation_data is not None else "loss"
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        all_callbacks.append(keras.callbacks.BackupAndRestore(str(checkpoint_dir / "backup")))
        all_callbacks.append(keras.callbacks.ModelCheckpoint(
            str(checkpoint_dir / "best.keras"), monitor=monitor, save_best_only=True, verbose=0))
    if early_stopping_patience:
        all_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=early_stopping_patience, restore_best_weights=True))
    all_callbacks.extend(callbacks)
    # No steps_per_epoch: the dataset is finite (one epoch, known cardinality), so Keras starts a
    # fresh iterator each epoch and PairBatches draws that epoch's pairs from (seed, epoch).
    return model.fit(
        train_batches.dataset(),
        epochs=num_epochs,
        validation_data=validation_data,
        callbacks=all_callbacks,
        shuffle=False,
        verbose=verbose,
    )
