"""Training on more than one device, in mixed precision, or with XLA: one option each.

- ``strategy``: "default" (one device), "mirrored" (``tf.distribute.MirroredStrategy``: every
  GPU of this machine, or the devices you name) or "multi_worker"
  (``tf.distribute.MultiWorkerMirroredStrategy``: several machines, configured by the
  ``TF_CONFIG`` environment variable on each). The model must be built *and* compiled inside
  ``strategy.scope()``; :func:`build_and_compile` does both. ``model.fit`` then splits every
  batch between the replicas and averages the gradients.
- ``mixed_precision=True``: the embedding computes in float16 (fast on GPUs with tensor
  cores); variables stay float32, the head computes in float32 so probabilities and distances
  keep their precision, and Keras scales the loss against float16 underflow.
- ``jit_compile=True``: XLA. Measured on this 2-core CPU machine it did not speed up conv-net
  training (benchmarks/throughput.py reports it), but it speeds up template matching about 6x
  (:mod:`siamese_tf.indexes`).

On the JAX backend (``KERAS_BACKEND=jax``; GPU machines often have JAX and no TensorFlow GPU build:
install ``tensorflow-cpu`` beside it for the ``tf.data`` batch engine), :func:`use_data_parallel`
turns on ``keras.distribution.DataParallel``: every batch is split across the devices and the
in-batch losses still see the whole batch (one program sharded by XLA).

In-batch training with several replicas: each replica scores the pairs of its own share of the
batch. :class:`~siamese_tf.samplers.ClassBalancedBatches` lays a batch out class by class, so with
``classes_per_batch`` a multiple of the number of replicas every share holds whole classes (same
and different pairs alike).
Label convention: 1 = same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:
    import tensorflow as tf

    from siamese_tf.models import SiameseModel

__all__ = [
    "STRATEGIES",
    "build_and_compile",
    "build_model",
    "dtype_policy",
    "get_strategy",
    "use_data_parallel",
]

STRATEGIES = ("default", "mirrored", "multi_worker")


def get_strategy(name: str | tf.distribute.Strategy = "default",
                 devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name`` (see the module docstring).

    ``devices`` (mirrored only) lists device names, e.g. ``["/cpu:0", "/cpu:1"]``. A
    ``tf.distribute.Strategy`` passes through unchanged. Create one strategy per process and
    reuse it for every model: a second ``MirroredStrategy`` over the same devices can collide
    with the first one's collective operations ("Shape mismatch in the collective instance").
    """
    import tensorflow as tf

    if not isinstance(name, str) and isinstance(name, tf.distribute.Strategy):
        return name
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}")
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices only apply to strategy='mirrored', not {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.MultiWorkerMirroredStrategy()


@contextlib.contextmanager
def dtype_policy(mixed_precision: bool = False) -> Iterator[None]:
    """Within the block, new layers use "mixed_float16" (or "float32"); the old policy returns after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_model(embedding: str | keras.Model | Callable[..., keras.Model] = "small_cnn",
                head: str | keras.Layer = "l1", input_shape: tuple[int, int, int] = (64, 64, 1),
                mixed_precision: bool = False, **embedding_kwargs: Any) -> SiameseModel:
    """:func:`~siamese_tf.models.build_siamese_model` with an optional mixed-precision embedding.

    The head always computes in float32 (its output is a probability or a distance).
    """
    from siamese_tf import heads as heads_module
    from siamese_tf.models import build_siamese_model

    if isinstance(head, str):
        heads_module.get_head(head)  # raises the usual error for an unknown name
        # Built under a float32 policy, so that the head's own sub-layers are float32 too.
        with dtype_policy(False):
            head = (heads_module.L1SimilarityHead(name="head", dtype="float32") if head.lower() == "l1"
                    else heads_module.DistanceHead(head.lower(), name="head", dtype="float32"))
    with dtype_policy(mixed_precision):
        return build_siamese_model(embedding, head, input_shape=input_shape, **embedding_kwargs)


def build_and_compile(strategy: str | tf.distribute.Strategy = "default",
                      embedding: str | keras.Model | Callable[..., keras.Model] = "small_cnn",
                      head: str | keras.Layer = "l1", input_shape: tuple[int, int, int] = (64, 64, 1),
                      mixed_precision: bool = False, jit_compile: bool = False, mode: str = "pairs",
                      compile_options: dict[str, Any] | None = None, devices: Sequence[str] | None = None,
                      **embedding_kwargs: Any) -> tuple[SiameseModel, tf.distribute.Strategy]:
    """Build and compile a Siamese model inside ``strategy``'s scope; returns ``(model, strategy)``.

    Args:
        strategy: "default", "mirrored", "multi_worker" or a ``tf.distribute.Strategy``.
        embedding, head, input_shape, embedding_kwargs: as for
            :func:`~siamese_tf.models.build_siamese_model`. Pass a name or a callable returning a
            fresh ``keras.Model``: a model built before, outside the scope, would not be mirrored.
        mixed_precision: float16 compute in the embedding (GPUs); the head stays float32.
        jit_compile: XLA-compile the train step.
        mode: "pairs" or "in_batch" (see :func:`~siamese_tf.training.compile_siamese`).
        compile_options: more arguments for ``compile_siamese`` (``learning_rate``, ``loss``, ...).
        devices: device names for "mirrored".

    Train the result with :func:`~siamese_tf.training.train_siamese` as usual; the batch size of
    the batches is the *global* batch, split between ``strategy.num_replicas_in_sync`` replicas.
    """
    from siamese_tf.training import compile_siamese

    strategy = get_strategy(strategy, devices)
    with strategy.scope():
        if callable(embedding) and not isinstance(embedding, keras.Model):
            with dtype_policy(mixed_precision):
                embedding = embedding()
        model = build_model(embedding, head, input_shape, mixed_precision, **embedding_kwargs)
        compile_siamese(model, jit_compile=jit_compile, mode=mode, **(compile_options or {}))
    return model, strategy


def use_data_parallel(devices: Sequence[str] | None = None) -> keras.distribution.DataParallel:
    """JAX backend: split every batch across ``devices`` (default: all of them) from now on.

    Sets ``keras.distribution.DataParallel`` as the global distribution, so models built after
    this call train data-parallel with ``model.fit``. Raises ``ValueError`` on another backend
    (``keras.distribution`` is JAX-only; on TensorFlow use ``get_strategy("mirrored")``).
    """
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(f"keras.distribution data parallelism needs KERAS_BACKEND=jax; this process runs "
                         f"{backend!r} (on TensorFlow use get_strategy('mirrored'))")
    devices = list(devices) if devices else keras.distribution.list_devices()
    if not devices:
        raise ValueError("no device to train on")
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    return distribution
