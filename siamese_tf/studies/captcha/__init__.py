"""Chinese character CAPTCHAs in the style of the CICC set of SiameseCCR (Chen et al.).

One Chinese character per 48x48 RGB image: random background and text colours, random size,
position and rotation, random noise points and lines, the font drawn from several installed CJK
fonts. Characters come from the GB2312 code table: level 1 (3,755 common characters, rows 16-55)
and level 2 (3,008 less common ones, rows 56-87).

Splits (as in the paper, at ``scale=1``):

| split | characters | images |
|---|---|---|
| ``train`` | level 1 | 4 per character (15,020) |
| ``test_a`` | level 1 | 10,000 (few-shot: characters seen in training) |
| ``test_b`` | level 2 | 10,000 (one-shot: characters never seen in training) |
| ``support_a`` | level 1 | one template per character |
| ``support_b`` | level 2 | one template per character |
| ``test_b_held_out_font`` | level 2 | like ``test_b``, in a font kept out of every other split |
| ``support_b_held_out_font`` | level 2 | one template per character in the held-out font |

``scale`` keeps a seeded random share of the characters (and of the test sizes) for CPU runs.
Every image is drawn from ``numpy.random.default_rng([seed, split_number, image_number])``, so
a data set is reproducible image by image. :func:`generate_captcha_dataset` writes PNG files, an
``index.csv`` (split, path, character, label, level, font) and ``metadata.json``;
:func:`load_captcha_split` reads a split back. Labels index ``metadata["characters"]``
(level-1 characters first), so level-1 and level-2 templates can share one library.

Fonts are looked up on the system (:func:`find_cjk_fonts`); Debian packages that provide them:
fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-ukai, fonts-arphic-uming, fonts-noto-cjk.


SiameseCCR: few-shot and one-shot Chinese CAPTCHA recognition by template matching.

After Chen et al., "SiameseCCR: a novel method for one-shot and few-shot Chinese CAPTCHA
recognition using deep Siamese network". A Siamese residual network (``siamese_ccr_15/27/39`` in
:mod:`siamese_tf.studies.captcha.networks`, registered by name) with the L1 head ``sigmoid(|v1 - v2| w + b)`` and binary
cross-entropy (label convention: 1 = same character, 0 = different) learns whether two CAPTCHA
images show the same character. Recognition embeds one template per character once
(:class:`siamese_tf.libraries.TemplateLibrary`) and picks the template most similar to the query,
so characters never seen in training are recognised from a single template (one-shot).

Training follows the paper's algorithm: first balanced random same/different pairs, then a set
number of rounds in which each character's negatives come from its ``top_k`` most similar wrong
characters under the current model (hard negative mining, :func:`confusable_classes`). Two
modes: ``"pairs"`` (the paper's image pairs, :class:`CaptchaPairBatches`) and ``"in_batch"``
(class-balanced batches where every pair is scored from one embedding pass, built by the tf.data
engine, :class:`siamese_tf.pipelines.ClassBalancedPipeline` with 44x44 random crops; in
hard-negative rounds it groups each character with some of its confusable characters, as the
NumPy reference :class:`CaptchaClassBatches` does). In-batch training scores far more pairs per
second on a CPU.

Images are 48x48 gray in [0, 1]; training uses random 44x44 crops, evaluation the centre crop.
After each training round the batch-normalisation statistics are recomputed on the training
images (:func:`recalibrate_batch_norm`): short CPU runs leave the moving averages far from the
data and the inference-mode embedding collapses without it.
Baselines: :func:`lenet5_classifier` and :func:`cnn11_classifier`, plain softmax classifiers
trained on the same images (:func:`train_classifier_baseline`).
"""

from siamese_tf.studies.captcha import data, evaluation, networks, recipe
from siamese_tf.studies.captcha.data import *  # noqa: F403
from siamese_tf.studies.captcha.evaluation import *  # noqa: F403
from siamese_tf.studies.captcha.networks import *  # noqa: F403
from siamese_tf.studies.captcha.recipe import *  # noqa: F403

__all__ = data.__all__ + evaluation.__all__ + networks.__all__ + recipe.__all__
