"""The Siamese model: one embedding network, one head, calibrated thresholds.

``SiameseModel(embedding, head)`` embeds both images of a pair with the *same* network (shared
weights) and scores the two embeddings with the head. Keeping the two apart is what makes
libraries fast: ``model.embed`` a gallery once, then ``heads.score_library(model.head, ...)``.

Decision thresholds chosen on a validation split (see :mod:`siamese_tf.metrics`) live in
``model.thresholds`` and are saved inside the ``.keras`` file with everything else.
Label convention: 1 = same.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from numpy.typing import ArrayLike

from siamese_tf import heads as heads_module
from siamese_tf.embeddings import get_embedding

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "PACKAGE",
    "SiameseModel",
    "build_siamese_model",
    "check_model_path",
    "half_precision_copy",
    "load_model",
    "save_model",
]

PACKAGE = "siamese_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class SiameseModel(keras.Model):
    """Two-branch Siamese network with shared weights.

    Call it on a pair ``(first_images, second_images)``; it returns one score per pair (a
    probability for an L1 head, a distance for a distance head).

    Args:
        embedding: a ``keras.Model`` from images to vectors (one input, one output).
        head: a head from :mod:`siamese_tf.heads`.
        thresholds: optional dict of calibrated thresholds (``detection`` on the similarity
            scale, ``verification`` as a fraction, ``method``), stored in the saved model.
    """

    def __init__(self, embedding: keras.Model, head: keras.Layer, thresholds: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(embedding, keras.Model) or len(embedding.inputs or []) != 1:
            raise ValueError(f"embedding must be a keras.Model with one image input, got {embedding!r}")
        if not hasattr(head, "output_kind"):
            raise ValueError(f"head must be a siamese_tf head (L1SimilarityHead, DistanceHead), got {head!r}")
        self.embedding = embedding
        self.head = head
        self.thresholds = dict(thresholds or {})
        embedding_shape = tuple(embedding.outputs[0].shape)
        if not head.built:
            head.build(embedding_shape, embedding_shape)
        self.built = True

    @property
    def input_image_shape(self) -> tuple[int, ...]:
        """Shape of one input image, (height, width, channels)."""
        return tuple(self.embedding.inputs[0].shape[1:])

    @property
    def output_kind(self) -> str:
        return self.head.output_kind

    def call(self, inputs: ArrayLike | tuple[ArrayLike, ArrayLike] | list[ArrayLike],
             training: bool | None = None) -> tf.Tensor:
        """A pair ``(first, second)`` gives one score per pair; a single batch of images gives the
        (B, B) score matrix of all its pairs from one embedding pass (in-batch training)."""
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError(
                    f"SiameseModel expects a pair (first_images, second_images) or one batch of images; "
                    f"got {len(inputs)} inputs"
                )
            first, second = inputs
            return self.head(self.embedding(first, training=training), self.embedding(second, training=training))
        embeddings = self.embedding(inputs, training=training)
        return self.head.score_matrix(embeddings, embeddings)

    # --- inference helpers (numpy in, numpy out; no tf.data, so no autotune stall) ---
    def embed(self, images: ArrayLike, batch_size: int = 64) -> np.ndarray:
        """Embed images (N, H, W, C) in batches; returns an (N, D) numpy array."""
        images = self._check_images(images, "images")
        # predict_on_batch runs a compiled function (eager calls are several times slower) and,
        # unlike predict() on numpy, does not build a tf.data pipeline (ENVIRONMENT_NOTES trap 1).
        outputs = [
            np.asarray(self.embedding.predict_on_batch(images[start:start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
        if not outputs:
            return np.zeros((0,) + tuple(self.embedding.outputs[0].shape[1:]), np.float32)
        return np.concatenate(outputs, axis=0)

    def score_pairs(self, first_images: ArrayLike, second_images: ArrayLike, batch_size: int = 64) -> np.ndarray:
        """Head outputs for aligned pairs of images; returns an (N,) numpy array."""
        first_images = self._check_images(first_images, "first_images")
        second_images = self._check_images(second_images, "second_images")
        if len(first_images) != len(second_images):
            raise ValueError(
                f"Got {len(first_images)} first images but {len(second_images)} second images"
            )
        first = self.embed(first_images, batch_size)
        second = self.embed(second_images, batch_size)
        return np.asarray(self.head(first, second)).reshape(-1)

    def similarity_pairs(self, first_images: ArrayLike, second_images: ArrayLike,
                         batch_size: int = 64) -> np.ndarray:
        """Similarities (higher = same) for aligned pairs of images."""
        return heads_module.to_similarity(self.score_pairs(first_images, second_images, batch_size), self.head)

    def similarity_to_library(self, query_embeddings: ArrayLike, library_embeddings: ArrayLike) -> np.ndarray:
        """(Q, M) similarities of query embeddings against library embeddings."""
        scores = heads_module.score_library(self.head, query_embeddings, library_embeddings)
        return heads_module.to_similarity(scores, self.head)

    def _check_images(self, images, argument):
        images = np.asarray(images, dtype=np.float32)
        expected = self.input_image_shape
        if images.ndim == len(expected):
            images = images[None]
        if images.ndim != len(expected) + 1 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{argument} must have shape (N, {', '.join(map(str, expected))}) for this model; "
                f"got {images.shape}"
            )
        return images

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "embedding": keras.saving.serialize_keras_object(self.embedding),
            "head": keras.saving.serialize_keras_object(self.head),
            "thresholds": self.thresholds,
        })
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SiameseModel:
        config = dict(config)
        embedding = keras.saving.deserialize_keras_object(config.pop("embedding"))
        head = keras.saving.deserialize_keras_object(config.pop("head"))
        return cls(embedding=embedding, head=head, **config)


def build_siamese_model(embedding: str | keras.Model = "small_cnn", head: str | keras.Layer = "l1",
                        input_shape: tuple[int, int, int] = (64, 64, 1), name: str = "siamese",
                        **embedding_kwargs: Any) -> SiameseModel:
    """Build a :class:`SiameseModel` from names or ready objects.

    ``embedding`` is a name from :mod:`siamese_tf.embeddings` or a ``keras.Model``; ``head`` is
    "l1" (probability; binary cross-entropy), "euclidean" or "cosine" (distance; contrastive
    loss) or a head object.
    """
    if isinstance(embedding, str):
        embedding = get_embedding(embedding, input_shape, **embedding_kwargs)
    if isinstance(head, str):
        head = heads_module.get_head(head)
    return SiameseModel(embedding, head, name=name)


def _float16_config(config):
    """``config`` with every float32/float64 dtype and dtype policy replaced by float16."""
    if isinstance(config, list):
        return [_float16_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    converted = {}
    for key, value in config.items():
        if key == "dtype" and isinstance(value, str) and value in ("float32", "float64"):
            converted[key] = "float16"
        elif key == "dtype" and isinstance(value, dict) and value.get("class_name") == "DTypePolicy":
            converted[key] = dict(value, config=dict(value.get("config", {}), name="float16"))
        else:
            converted[key] = _float16_config(value)
    return converted


def half_precision_copy(network: keras.Model) -> keras.Model:
    """A float16 copy of a Keras network: weights stored and computed in float16.

    Its ``.keras`` file is about half the size (DeepSign: 0.67 MB instead of 1.18 MB), for
    deployment where size matters; embeddings differ from the float32 network by rounding, so
    measure the copy's accuracy before shipping it. Inputs may stay float32 (they are cast).
    """
    copy = network.__class__.from_config(_float16_config(network.get_config()))
    weights = network.get_weights()
    copy.set_weights([w.astype(np.float16) if np.issubdtype(w.dtype, np.floating) else w for w in weights])
    return copy


# Temporary files of an unfinished save: hidden, and never named like a model.
_PARTIAL_MARK = ".partial-"
# A partial file older than this is left over from a killed save and is removed by the next one.
_STALE_PARTIAL_SECONDS = 600


def check_model_path(path: str | os.PathLike) -> Path:
    """The ``.keras`` path a model will be saved to, checked before any work: ValueError naming it."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Models are saved in the .keras format; the path must end in .keras, got {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the .keras file to write")
    return path


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save ``model`` in the ``.keras`` format, atomically (no half-written file on a crash).

    The file is readable by its owner only (:func:`siamese_tf.settings.make_private`): a model
    trained on faces is personal data too. The temporary file of an unfinished save is hidden
    (``.NAME.partial-*``); one left behind by a killed save is removed by a later save.
    """
    from siamese_tf.settings import make_private

    path = check_model_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for stale in path.parent.glob(f".{path.name}{_PARTIAL_MARK}*"):
        if now - stale.stat().st_mtime > _STALE_PARTIAL_SECONDS:
            stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}{_PARTIAL_MARK}", suffix=".keras", dir=path.parent)
    os.close(handle)
    try:
        model.save(temporary)
        make_private(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def load_model(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """Load a model saved by :func:`save_model`, with every siamese_tf custom piece."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"No model file at {path}. Train one first (python -m siamese_tf train ...) or check the path."
        )
    if path.suffix != ".keras":
        raise ValueError(f"Expected a .keras model file, got {path}")
    import siamese_tf  # noqa: F401  (registers the custom classes)

    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        raise ValueError(
            f"{path}: not a readable .keras file ({'empty' if size == 0 else f'{size} bytes, truncated or damaged'}); "
            f"save the model again or restore a good copy"
        )
    try:
        return keras.saving.load_model(path, compile=compile)
    except TypeError as error:  # Keras names a class it cannot find with a TypeError
        raise ValueError(f"{path}: cannot be rebuilt: {str(error).split(' Full object config')[0]}") from error
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as error:
        raise ValueError(f"{path}: not a readable .keras file ({error}); save the model again") from error
