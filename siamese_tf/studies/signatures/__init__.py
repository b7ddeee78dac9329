"""Offline signature verification data: loading, paper preprocessing, writer splits and pairs.

Reproduces the data side of Wang & Ko, "DeepSign" (with the SigNet baseline of Dey et al. 2017).

Two layouts are read, from a folder or a ``.zip`` archive with the same layout:

* **Writer folders** (the shared ``signatures_50writers.zip``, Kaggle "sign_data"): ``NNN/`` holds
  the genuine signatures of writer NNN and ``NNN_forg/`` the skilled forgeries of that writer.
* **CEDAR**: ``full_org/original_W_I.png`` (genuine signature I of writer W) and
  ``full_forg/forgeries_W_I.png`` (forgery I of writer W).

Preprocessing (:func:`preprocess_signature`) follows the paper: grayscale, binary threshold
(Otsu), median blur, resize to the model input, invert so that ink is 1 and paper 0. By default
the image is first cropped to the ink's bounding box (our addition; the scans have wide margins).

Pairs (:func:`signature_pairs`) are built as in the paper, **label 1 = same writer's genuine
signature (genuine-genuine), 0 = a skilled forgery against a genuine signature of the writer it
imitates** (genuine-forgery). Splits (:func:`split_writers`) are by writer: no writer appears in two
splits, which :func:`check_writers_disjoint` asserts.

Bad input is never dropped silently: unreadable files, blank images and images far from the
expected aspect ratio are skipped with a ``warnings.warn`` and listed in ``SignatureSet.skipped``;
writers with fewer than two genuine signatures or no forgeries are left out with a warning and
listed in ``SignatureSet.excluded_writers``.
"""

from siamese_tf.studies.signatures import data, evaluation, networks, recipe
from siamese_tf.studies.signatures.data import *  # noqa: F403
from siamese_tf.studies.signatures.evaluation import *  # noqa: F403
from siamese_tf.studies.signatures.networks import *  # noqa: F403
from siamese_tf.studies.signatures.recipe import *  # noqa: F403

__all__ = data.__all__ + evaluation.__all__ + networks.__all__ + recipe.__all__
