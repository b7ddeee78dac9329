"""Omniglot one-shot learning (Koch, Zemel & Salakhutdinov 2015; Lake et al. 2015).

What this module gives:

* **Loading**: :func:`load_omniglot` reads one or more background/evaluation sets (zip archives
  or extracted folders laid out ``alphabet/character/drawer.png``) into one
  :class:`~siamese_tf.datasets.ImageSet` whose class names are ``"Alphabet/characterNN"``;
  characters present in several sources (Greek and Latin are in both minimal background sets)
  are kept once. :func:`class_alphabets`, :func:`split_alphabets` and :func:`add_rotations`
  (rotated characters as new classes) work on that set.
* **Koch's verification recipe**: :func:`sample_koch_pairs` draws same pairs (two drawers of one
  character) and different pairs within and across alphabets; :class:`KochPairBatches` serves
  them with ``distortions_per_pair`` affine-distorted copies of every pair
  (:meth:`siamese_tf.augmentations.Augmenter.koch`, 8 in the paper).
* **One-shot evaluation**: :func:`sample_one_shot_episodes` draws Lake-style N-way episodes (N
  characters, one drawer gives the support set, another the N queries), within one alphabet or
  across alphabets; :func:`evaluate_episodes` scores them with a :class:`ModelScorer` (any
  :class:`~siamese_tf.models.SiameseModel`; ``test_time_grid=TEST_TIME_GRID_OFFSETS`` averages
  each embedding over a 3 x 3 grid of shifted views, as the benchmark scores) or the raw-pixel
  :class:`PixelScorer` floor;
  :class:`OneShotEarlyStopping` stops training on N-way accuracy of validation alphabets.
* **Lake's official 20 runs**: :func:`read_lake_runs` / :func:`score_lake_runs` read
  ``runNN/training/classKK.png``, ``runNN/test/itemKK.png`` and ``runNN/class_labels.txt`` (lines
  ``runNN/test/itemKK.png runNN/training/classKK.png``) from a folder or ``all_runs.zip`` and
  report per-run and mean accuracy.
* **Training**: :func:`build_koch_model` / :func:`train_koch` (the faithful reproduction: Koch
  network, L1 head, binary cross-entropy on verification pairs) and :func:`build_conv4_model` /
  :func:`train_conv4` (what trains well on a CPU: a 4-block conv net at 28x28, rotations as new
  classes, in-batch neighbourhood loss). One conv4 network stops gaining after about 6 minutes on 2
  cores, so :func:`choose_ensemble_size` gives a time budget one network per full
  :data:`MINUTES_PER_NETWORK` (four for the benchmark's 24 minutes), scored together by
  :class:`EnsembleScorer`.

Label convention: pair labels are **1 for the same character** and 0 for different characters.
Similarities are higher for "same".
"""

from siamese_tf.studies.omniglot import data, evaluation, networks, recipe
from siamese_tf.studies.omniglot.data import *  # noqa: F403
from siamese_tf.studies.omniglot.evaluation import *  # noqa: F403
from siamese_tf.studies.omniglot.networks import *  # noqa: F403
from siamese_tf.studies.omniglot.recipe import *  # noqa: F403

__all__ = data.__all__ + evaluation.__all__ + networks.__all__ + recipe.__all__
