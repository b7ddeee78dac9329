"""siamese_tf: Siamese networks and one-shot learning with Keras 3.

Label convention everywhere: **1 = same**, 0 = different (:mod:`siamese_tf.labels`).

The core modules (``siamese_tf.*``) hold what every study shares; the case studies live in
:mod:`siamese_tf.studies` and are imported last, so that their networks are registered by name.
"""

from siamese_tf import (
    distances,
    embeddings,
    heads,
    labels,
    layers,
    losses,
    models,
    settings,
    studies,  # noqa: E402  (after the core: studies register into it)
)
from siamese_tf.heads import DistanceHead, L1SimilarityHead
from siamese_tf.labels import DIFFERENT_LABEL, SAME_LABEL
from siamese_tf.layers import L1Dist
from siamese_tf.losses import ContrastiveLoss, contrastive_loss
from siamese_tf.models import SiameseModel, build_siamese_model, load_model, save_model

__version__ = "0.1.0"

__all__ = [
    "DIFFERENT_LABEL",
    "ContrastiveLoss",
    "DistanceHead",
    "L1Dist",
    "L1SimilarityHead",
    "SAME_LABEL",
    "SiameseModel",
    "build_siamese_model",
    "contrastive_loss",
    "distances",
    "embeddings",
    "heads",
    "labels",
    "layers",
    "load_model",
    "losses",
    "models",
    "save_model",
    "settings",
    "studies",
]
