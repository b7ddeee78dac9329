"""End-to-end jobs. ``run_face_verification`` is the main job behind ``make demo``.

Face verification on ORL faces, identity-disjoint: train on some subjects, pick thresholds on
validation subjects, and report on subjects the model never saw (pair verification, AUC, EER,
N-way one-shot identification, and the seed apps' "N validation images" rule).

Labeled Faces in the Wild at real scale: ``load_lfw`` (with the one face crop ``lfw_face_crop``),
``read_lfw_pairs`` / ``read_lfw_people`` and the protocol's scoring side (``lfw_fold_report``,
``lfw_cross_validation``, ``summarise_folds``) with pixel and HOG baselines; a learned metric on
hand-made descriptors (``LearnedMetricScorer``) and score fusion with a network (``FusedPairScorer``).
Label convention: 1 = same.
"""

from siamese_tf.studies.faces import data, descriptors, evaluation, recipe
from siamese_tf.studies.faces.data import *  # noqa: F403
from siamese_tf.studies.faces.descriptors import *  # noqa: F403
from siamese_tf.studies.faces.evaluation import *  # noqa: F403
from siamese_tf.studies.faces.recipe import *  # noqa: F403

__all__ = data.__all__ + descriptors.__all__ + evaluation.__all__ + recipe.__all__
