"""Face evaluation: the seed apps' "N reference images" rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from siamese_tf.datasets import ImageSet
    from siamese_tf.models import SiameseModel

__all__ = [
    "reference_rule_scores",
]


def reference_rule_scores(model: SiameseModel, image_set: ImageSet, reference_images: int, detection_threshold: float,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the seed apps' rule: the fraction of a person's reference images that match.

    For every subject, the first ``reference_images`` images are the stored references;
    each remaining image of that subject is a genuine attempt (label 1) and an equal number
    of other subjects' images are impostor attempts (label 0).
    Returns (fractions, labels).
    """
    rng = np.random.default_rng(seed)
    embeddings = model.embed(image_set.images)
    fractions, labels = [], []
    for label in range(image_set.num_classes):
        members = np.flatnonzero(image_set.labels == label)
        if len(members) <= reference_images:
            continue
        references = embeddings[members[:reference_images]]
        genuine = members[reference_images:]
        others = np.flatnonzero(image_set.labels != label)
        impostors = rng.choice(others, size=min(len(genuine), len(others)), replace=False)
        attempts = np.concatenate([genuine, impostors])
        similarities = model.similarity_to_library(embeddings[attempts], references)
        fractions.extend((similarities > detection_threshold).mean(axis=1))
        labels.extend([1] * len(genuine) + [0] * len(impostors))
    return np.asarray(fractions), np.asarray(labels)
