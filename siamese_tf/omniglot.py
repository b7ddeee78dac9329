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
  :class:`~siamese_tf.models.SiameseModel`) or the raw-pixel :class:`PixelScorer` floor;
  :class:`OneShotEarlyStopping` stops training on N-way accuracy of validation alphabets.
* **Lake's official 20 runs**: :func:`read_lake_runs` / :func:`score_lake_runs` read
  ``runNN/training/classKK.png``, ``runNN/test/itemKK.png`` and ``runNN/class_labels.txt`` (lines
  ``runNN/test/itemKK.png runNN/training/classKK.png``) from a folder or ``all_runs.zip`` and
  report per-run and mean accuracy.
* **Training**: :func:`build_koch_model` / :func:`train_koch` (the faithful reproduction: Koch
  network, L1 head, binary cross-entropy on verification pairs) and :func:`build_conv4_model` /
  :func:`train_conv4` (what trains well on a CPU: a 4-block conv net at 28x28, rotations as new
  classes, in-batch neighbourhood loss).

Label convention: pair labels are **1 for the same character** and 0 for different characters.
Similarities are higher for "same".
"""

import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from siamese_tf.datasets import ImageSet, _FileTree, load_identity_folders, natural_sort_key, read_image
from siamese_tf.errors import SiameseDataError
from siamese_tf.samplers import DIFFERENT_LABEL, SAME_LABEL, PairBatches

HELD_OUT_ALPHABETS = ("Balinese", "Early_Aramaic")
BACKGROUND_SMALL_FILES = ("images_background_small1.zip", "images_background_small2.zip")
OMNIGLOT_IMAGE_SIZE = (105, 105)
ROTATION_SEPARATOR = "@rot"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff"}
_DRAWER_PATTERN = re.compile(r"_(\d+)\.[A-Za-z]+$")


# --- loading ------------------------------------------------------------------------------------

def _check_source(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Omniglot data not found: {path}")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise SiameseDataError(
            f"{path}: not a readable zip archive (truncated download or another file type); "
            "download it again (siamese_tf.downloads.download)"
        )
    return path


def find_background_small(data_dir=None):
    """Paths of the two minimal background archives under ``<data_dir>/omniglot/``.

    ``data_dir`` defaults to :func:`siamese_tf.settings.data_dir`.

    Raises:
        FileNotFoundError: naming every missing archive.
    """
    from siamese_tf import settings

    folder = settings.data_dir(data_dir) / "omniglot"
    paths = [folder / name for name in BACKGROUND_SMALL_FILES]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise FileNotFoundError(
            f"Omniglot archives not found: {', '.join(missing)} (download them with "
            "siamese_tf.downloads.download('omniglot_background_small1') and '...small2')"
        )
    return paths


def load_omniglot(sources, image_size=OMNIGLOT_IMAGE_SIZE, invert=False, max_images_per_class=None):
    """Load Omniglot background/evaluation sets (zips or folders) into one :class:`ImageSet`.

    Every character folder is one class named ``"Alphabet/characterNN"``. A character that appears
    in more than one source (Greek and Latin are in both minimal background sets) is kept once,
    from the first source; its other copies are listed in ``skipped`` with the reason.

    Args:
        sources: one path or a list of paths (``images_background.zip``, an extracted folder, ...).
        image_size: ``(height, width)``; 105x105 is the original size.
        invert: make strokes 1 and the background 0 (helps small conv nets with zero padding).
        max_images_per_class: read at most this many drawers per character.

    Raises:
        FileNotFoundError: a source does not exist.
        SiameseDataError: a source is not a readable zip/folder or holds no character folders.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    sources = [_check_source(source) for source in sources]
    if not sources:
        raise ValueError("sources must name at least one Omniglot archive or folder")
    all_images, all_labels, all_paths, class_names, skipped = [], [], [], [], []
    seen = {}
    for source in sources:
        loaded = load_identity_folders(source, image_size=image_size, channels=1,
                                       max_images_per_class=max_images_per_class)
        skipped.extend(loaded.skipped)
        for label, name in enumerate(loaded.class_names):
            if name.count("/") != 1:
                raise SiameseDataError(
                    f"{source}: class folder {name!r} is not laid out as alphabet/character"
                )
            members = np.flatnonzero(loaded.labels == label)
            if name in seen:
                skipped.extend((loaded.paths[index], f"duplicate of character {name} from {seen[name]}")
                               for index in members)
                continue
            seen[name] = source
            all_images.append(loaded.images[members])
            all_labels.append(np.full(len(members), len(class_names)))
            all_paths.extend(loaded.paths[index] for index in members)
            class_names.append(name)
    images = np.concatenate(all_images)
    if invert:
        images = 1.0 - images
    return ImageSet(images, np.concatenate(all_labels), class_names, all_paths, skipped)


def load_background_small(data_dir=None, image_size=OMNIGLOT_IMAGE_SIZE, invert=False, max_images_per_class=None):
    """Both minimal background sets (8 distinct alphabets, 242 distinct characters x 20 drawers)."""
    return load_omniglot(find_background_small(data_dir), image_size, invert, max_images_per_class)


def alphabet_of(class_name):
    """The alphabet of a class name ``"Alphabet/characterNN"`` (rotations keep their alphabet)."""
    return str(class_name).split("/", 1)[0]


def class_alphabets(image_set):
    """Alphabet name of every class of ``image_set``, as a numpy string array."""
    return np.array([alphabet_of(name) for name in image_set.class_names])


def drawer_of(path):
    """Drawer number from an Omniglot file name (``0108_07.png`` -> 7); -1 when there is none."""
    match = _DRAWER_PATTERN.search(PurePosixPath(str(path).replace("\\", "/")).name)
    return int(match.group(1)) if match else -1


def split_alphabets(image_set, held_out=HELD_OUT_ALPHABETS):
    """Split into (training set, held-out set) by alphabet; both relabelled from 0.

    Raises:
        ValueError: an alphabet in ``held_out`` is not in the set, or nothing is left to train on.
    """
    held_out = (held_out,) if isinstance(held_out, str) else tuple(held_out)
    alphabets = class_alphabets(image_set)
    unknown = sorted(set(held_out) - set(alphabets))
    if unknown:
        raise ValueError(f"held-out alphabets {unknown} are not in the set; it has {sorted(set(alphabets))}")
    held = np.isin(alphabets, held_out)
    if held.all():
        raise ValueError("every alphabet is held out; nothing is left for training")
    return image_set.select_classes(np.flatnonzero(~held)), image_set.select_classes(np.flatnonzero(held))


def add_rotations(image_set, angles=(90, 180, 270)):
    """Add each character rotated by ``angles`` (multiples of 90 degrees) as new classes.

    A rotated character is a different character (a "6" is not a "9"), which multiplies the
    number of training classes; class names get a suffix ``"@rot90"``.
    """
    angles = tuple(int(angle) for angle in angles)
    for angle in angles:
        if angle % 90 or angle % 360 == 0:
            raise ValueError(f"rotation angles must be multiples of 90 degrees other than 0, got {angle}")
    if image_set.images.shape[1] != image_set.images.shape[2]:
        raise ValueError(f"rotations as classes need square images, got {image_set.image_shape}")
    images, labels, paths = [image_set.images], [image_set.labels], list(image_set.paths)
    class_names = list(image_set.class_names)
    for position, angle in enumerate(angles, start=1):
        # np.rot90 turns counter-clockwise by 90 degrees per k.
        images.append(np.rot90(image_set.images, k=(angle // 90) % 4, axes=(1, 2)))
        labels.append(image_set.labels + position * image_set.num_classes)
        paths.extend(f"{path}{ROTATION_SEPARATOR}{angle}" for path in image_set.paths)
        class_names.extend(f"{name}{ROTATION_SEPARATOR}{angle}" for name in image_set.class_names)
    return ImageSet(np.concatenate(images), np.concatenate(labels), class_names, paths, image_set.skipped)


# --- Koch's verification pairs --------------------------------------------------------------------

def sample_koch_pairs(labels, alphabets_of_classes, num_pairs, rng, within_alphabet_fraction=0.5):
    """Verification pairs as in Koch et al.: half same, half different; different pairs within
    one alphabet (the hard ones) or across alphabets.

    Args:
        labels: (N,) class id of each image.
        alphabets_of_classes: alphabet of each class id (``class_alphabets(image_set)``).
        num_pairs: number of pairs; ``num_pairs // 2`` are same (label 1).
        rng: numpy Generator or seed.
        within_alphabet_fraction: share of the different pairs whose two characters come from the
            same alphabet (alphabets with a single character give across-alphabet pairs instead).

    Returns:
        ``(first_indices, second_indices, pair_labels)`` int64 arrays, shuffled; 1 = same.
    """
    labels = np.asarray(labels).reshape(-1)
    alphabets_of_classes = np.asarray(alphabets_of_classes)
    if not isinstance(num_pairs, (int, np.integer)) or num_pairs < 2:
        raise ValueError(f"num_pairs must be an integer >= 2, got {num_pairs!r}")
    if not 0.0 <= within_alphabet_fraction <= 1.0:
        raise ValueError(f"within_alphabet_fraction must lie in [0, 1], got {within_alphabet_fraction!r}")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(alphabets_of_classes):
        raise ValueError(f"labels must index alphabets_of_classes (0..{len(alphabets_of_classes) - 1})")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    members = [np.flatnonzero(labels == label) for label in range(len(alphabets_of_classes))]
    present = np.array([label for label, found in enumerate(members) if len(found)])
    with_two = np.array([label for label, found in enumerate(members) if len(found) >= 2])
    if len(present) < 2 or len(with_two) == 0:
        raise ValueError("Koch pairs need at least 2 classes and one class with 2 images")
    classes_by_alphabet = {}
    for label in present:
        classes_by_alphabet.setdefault(alphabets_of_classes[label], []).append(label)
    num_same = num_pairs // 2
    first, second, pair_labels = [], [], []
    for label in rng.choice(with_two, size=num_same):
        a, b = rng.choice(members[label], size=2, replace=False)
        first.append(a), second.append(b), pair_labels.append(SAME_LABEL)
    for _ in range(num_pairs - num_same):
        first_class = rng.choice(present)
        siblings = [label for label in classes_by_alphabet[alphabets_of_classes[first_class]] if label != first_class]
        if siblings and rng.random() < within_alphabet_fraction:
            second_class = rng.choice(siblings)
        else:
            others = present[alphabets_of_classes[present] != alphabets_of_classes[first_class]]
            if len(others) == 0:  # a single alphabet: every different pair is within it
                others = present[present != first_class]
            second_class = rng.choice(others)
        first.append(rng.choice(members[first_class])), second.append(rng.choice(members[second_class]))
        pair_labels.append(DIFFERENT_LABEL)
    order = rng.permutation(num_pairs)
    return (np.asarray(first, np.int64)[order], np.asarray(second, np.int64)[order],
            np.asarray(pair_labels, np.int64)[order])


class KochPairBatches(PairBatches):
    """Koch et al.'s training data: verification pairs, each followed by affine-distorted copies.

    Every epoch draws ``base_pairs_per_epoch`` pairs with :func:`sample_koch_pairs` (from
    ``default_rng([seed, epoch])``) and adds ``distortions_per_pair`` copies of each pair in which
    both images get their own random affine distortion (``augment``, default
    :meth:`Augmenter.koch() <siamese_tf.augmentations.Augmenter.koch>`), so an epoch has
    ``base_pairs_per_epoch * (1 + distortions_per_pair)`` pairs in random order. Batches are
    ``((first_images, second_images), pair_labels)``, 1 = same; use with
    :func:`siamese_tf.training.train_siamese` like :class:`PairBatches`.
    """

    def __init__(self, images, labels, alphabets_of_classes, base_pairs_per_epoch, batch_size=32, seed=0,
                 distortions_per_pair=8, within_alphabet_fraction=0.5, augment="koch"):
        from siamese_tf.augmentations import Augmenter

        if not isinstance(distortions_per_pair, (int, np.integer)) or distortions_per_pair < 0:
            raise ValueError(f"distortions_per_pair must be an integer >= 0, got {distortions_per_pair!r}")
        if not isinstance(base_pairs_per_epoch, (int, np.integer)) or base_pairs_per_epoch < 2:
            raise ValueError(f"base_pairs_per_epoch must be an integer >= 2, got {base_pairs_per_epoch!r}")
        if augment == "koch":
            augment = Augmenter.koch()
        if distortions_per_pair and augment is None:
            raise ValueError("distortions_per_pair > 0 needs an augment callable")
        self.alphabets_of_classes = np.asarray(alphabets_of_classes)
        self.base_pairs_per_epoch = int(base_pairs_per_epoch)
        self.distortions_per_pair = int(distortions_per_pair)
        self.within_alphabet_fraction = float(within_alphabet_fraction)
        super().__init__(images, labels, self.base_pairs_per_epoch * (1 + self.distortions_per_pair),
                         batch_size=batch_size, seed=seed, augment=augment)

    def _sample_epoch_pairs(self, rng):
        """``(first, second, pair_labels, distorted)`` of a whole epoch; ``distorted`` marks copies."""
        first, second, pair_labels = sample_koch_pairs(self.labels, self.alphabets_of_classes,
                                                       self.base_pairs_per_epoch, rng, self.within_alphabet_fraction)
        copies = 1 + self.distortions_per_pair
        distorted = np.tile(np.arange(copies) > 0, len(first))
        order = rng.permutation(len(distorted))
        return (np.repeat(first, copies)[order], np.repeat(second, copies)[order],
                np.repeat(pair_labels, copies)[order], distorted[order])

    def batch(self, epoch, step):
        """The batch ``((first_images, second_images), pair_labels)`` of ``step`` in ``epoch``."""
        if not 0 <= step < self.steps_per_epoch:
            raise ValueError(f"step must lie in 0..{self.steps_per_epoch - 1}, got {step!r}")
        first, second, pair_labels, distorted = self.epoch_pairs(epoch)
        window = slice(step * self.batch_size, (step + 1) * self.batch_size)
        first_images = self.images[first[window]].copy()
        second_images = self.images[second[window]].copy()
        rng = np.random.default_rng([self.seed, int(epoch), int(step)])
        for row in np.flatnonzero(distorted[window]):
            first_images[row] = self.augment(first_images[row], rng)
            second_images[row] = self.augment(second_images[row], rng)
        return (first_images, second_images), pair_labels[window].astype(np.float32)


# --- one-shot episodes ------------------------------------------------------------------------------

@dataclass
class OneShotEpisodes:
    """N-way one-shot episodes in the layout of Lake's runs.

    Episode ``e`` has ``n_way`` characters; ``support_indices[e, k]`` is the one example of
    character k (all from one drawer when possible) and ``query_indices[e, k]`` another drawing of
    the same character k (from a second drawer). Every query is a task whose answer is k.
    """

    support_indices: np.ndarray
    query_indices: np.ndarray
    alphabets: list = field(default_factory=list)

    @property
    def n_way(self):
        return int(self.support_indices.shape[1])

    @property
    def num_episodes(self):
        return int(self.support_indices.shape[0])

    @property
    def num_tasks(self):
        return int(self.query_indices.size)


def sample_one_shot_episodes(image_set, n_way=20, num_episodes=20, seed=0, within_alphabet=True,
                             same_drawer=True):
    """Draw seeded N-way one-shot episodes like Lake's 20-way runs.

    Args:
        image_set: an Omniglot :class:`ImageSet` (class names ``"Alphabet/character"``).
        n_way: characters per episode.
        num_episodes: episodes; each gives ``n_way`` query tasks.
        seed: the same seed gives the same episodes.
        within_alphabet: all characters of an episode from one alphabet (Lake's task, harder);
            False draws them from all alphabets.
        same_drawer: support images from one drawer and queries from another (as in Lake's runs)
            when the characters share two drawers; otherwise two random drawings per character.

    Raises:
        ValueError: no alphabet (or, across alphabets, not enough characters) for ``n_way``.
    """
    if not isinstance(n_way, (int, np.integer)) or n_way < 2:
        raise ValueError(f"n_way must be an integer >= 2, got {n_way!r}")
    if not isinstance(num_episodes, (int, np.integer)) or num_episodes < 1:
        raise ValueError(f"num_episodes must be a positive integer, got {num_episodes!r}")
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(image_set.labels == label) for label in range(image_set.num_classes)]
    usable = np.array([label for label, found in enumerate(members) if len(found) >= 2])
    alphabets = class_alphabets(image_set)
    if within_alphabet:
        pools = {name: usable[alphabets[usable] == name] for name in sorted(set(alphabets[usable]))}
        pools = {name: pool for name, pool in pools.items() if len(pool) >= n_way}
        if not pools:
            raise ValueError(f"no alphabet has {n_way} characters with 2 drawings for {n_way}-way episodes")
    elif len(usable) < n_way:
        raise ValueError(f"{n_way}-way episodes need {n_way} characters with 2 drawings, got {len(usable)}")
    drawers = np.array([drawer_of(path) for path in image_set.paths])
    supports, queries, episode_alphabets = [], [], []
    pool_names = sorted(pools) if within_alphabet else []
    for _ in range(num_episodes):
        if within_alphabet:
            name = pool_names[rng.integers(len(pool_names))]
            classes = rng.choice(pools[name], size=n_way, replace=False)
            episode_alphabets.append(str(name))
        else:
            classes = rng.choice(usable, size=n_way, replace=False)
            episode_alphabets.append("mixed")
        shared = set.intersection(*(set(drawers[members[label]]) for label in classes)) - {-1}
        if same_drawer and len(shared) >= 2:
            support_drawer, query_drawer = rng.choice(sorted(shared), size=2, replace=False)
            support = [members[label][drawers[members[label]] == support_drawer][0] for label in classes]
            query = [members[label][drawers[members[label]] == query_drawer][0] for label in classes]
        else:
            picks = [rng.choice(members[label], size=2, replace=False) for label in classes]
            support, query = [pick[0] for pick in picks], [pick[1] for pick in picks]
        supports.append(support), queries.append(query)
    return OneShotEpisodes(np.asarray(supports, np.int64), np.asarray(queries, np.int64), episode_alphabets)


class ModelScorer:
    """Scores queries against support images with a :class:`~siamese_tf.models.SiameseModel`:
    each image embedded once, then the model's head (similarities, higher = same).

    ``test_time_shift`` > 0 averages each image's embedding over itself and four copies moved
    by that many pixels up, down, left and right (test-time augmentation; five embedding passes).
    Shifted-in pixels are zeros, the background of inverted characters.
    """

    def __init__(self, model, batch_size=256, test_time_shift=0):
        if not isinstance(test_time_shift, (int, np.integer)) or test_time_shift < 0:
            raise ValueError(f"test_time_shift must be a non-negative integer, got {test_time_shift!r}")
        self.model = model
        self.batch_size = batch_size
        self.test_time_shift = int(test_time_shift)

    def _embed(self, images):
        # predict_on_batch runs the compiled graph (much faster than eager calls), in fixed-size chunks
        chunks = [np.asarray(self.model.embedding.predict_on_batch(images[start:start + self.batch_size]))
                  for start in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.model.embedding.outputs[0].shape[-1]))

    def features(self, images):
        images = np.asarray(images, np.float32)
        if not self.test_time_shift or len(images) == 0:
            return self._embed(images)
        total = self._embed(images)
        shift = self.test_time_shift
        for axis, offset in ((1, shift), (1, -shift), (2, shift), (2, -shift)):
            total = total + self._embed(shift_images(images, offset, axis))
        return total / 5.0

    def similarity(self, query_features, support_features):
        return np.asarray(self.model.similarity_to_library(query_features, support_features))


class EnsembleScorer:
    """Several scorers voting together: each query's similarities to the supports are standardised
    per scorer (zero mean, unit spread over the supports) and then averaged.

    Standardising first lets members whose similarity scales differ (distances of different
    networks) count equally. Features of the members are stored side by side in one array, so
    :func:`evaluate_episodes` and :func:`score_lake_runs` take an ensemble like any scorer. All
    members see the same images (same input size and inversion). Trained models can be passed
    directly; they are wrapped in :class:`ModelScorer` with ``test_time_shift``.
    """

    def __init__(self, scorers, test_time_shift=0):
        scorers = list(scorers)
        if not scorers:
            raise ValueError("an ensemble needs at least one scorer, got none")
        self.scorers = [scorer if hasattr(scorer, "features") else ModelScorer(scorer, test_time_shift=test_time_shift)
                        for scorer in scorers]
        self._widths = None

    def features(self, images):
        parts = [np.asarray(scorer.features(images), np.float32) for scorer in self.scorers]
        parts = [part.reshape(len(part), -1) for part in parts]
        self._widths = [part.shape[1] for part in parts]
        return np.concatenate(parts, axis=1)

    def similarity(self, query_features, support_features):
        if self._widths is None:
            raise ValueError("call features() before similarity(): the ensemble splits features by member")
        total = 0.0
        start = 0
        for scorer, width in zip(self.scorers, self._widths):
            similarities = np.asarray(scorer.similarity(query_features[:, start:start + width],
                                                        support_features[:, start:start + width]), np.float64)
            spread = similarities.std(axis=-1, keepdims=True)
            total = total + (similarities - similarities.mean(axis=-1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
            start += width
        return total / len(self.scorers)


def shift_images(images, offset, axis):
    """Move (N, H, W, C) images by ``offset`` pixels along ``axis`` (1 = rows, 2 = columns), filling with 0."""
    if offset == 0:
        return images.copy()
    shifted = np.zeros_like(images)
    source = [slice(None)] * images.ndim
    target = [slice(None)] * images.ndim
    if offset > 0:
        source[axis], target[axis] = slice(0, -offset), slice(offset, None)
    else:
        source[axis], target[axis] = slice(-offset, None), slice(0, offset)
    shifted[tuple(target)] = images[tuple(source)]
    return shifted


class PixelScorer:
    """Raw-pixel nearest neighbour: similarity = minus the Euclidean distance of the pixels."""

    def features(self, images):
        images = np.asarray(images, np.float32)
        return images.reshape(len(images), -1)

    def similarity(self, query_features, support_features):
        squared = ((query_features ** 2).sum(1)[:, None] + (support_features ** 2).sum(1)[None]
                   - 2.0 * query_features @ support_features.T)
        return -np.sqrt(np.maximum(squared, 0.0))


def _episode_accuracies(scorer, query_features, support_features):
    """Per-episode accuracy: query k of an episode is right when support k is its unique best."""
    from siamese_tf.metrics import n_way_accuracy

    accuracies = []
    for queries, supports in zip(query_features, support_features):
        similarities = scorer.similarity(queries, supports)
        accuracies.append(n_way_accuracy(similarities, np.arange(len(supports))))
    return np.asarray(accuracies)


def evaluate_episodes(scorer, images, episodes, return_similarities=False):
    """N-way one-shot accuracy of ``scorer`` (a :class:`ModelScorer`, :class:`PixelScorer` or any
    object with ``features(images)`` and ``similarity(query_features, support_features)``).

    Every image used is turned into features once. Ties for first place count as wrong.

    Returns a dict: ``accuracy`` (mean over all tasks), ``per_episode`` accuracies, ``n_way``,
    ``num_episodes``, ``num_tasks``, ``chance``; with ``return_similarities`` also
    ``similarities`` (episodes, n_way queries, n_way supports).
    """
    if not hasattr(scorer, "features"):
        scorer = ModelScorer(scorer)
    images = np.asarray(images, np.float32)
    needed, inverse = np.unique(np.r_[episodes.support_indices.ravel(), episodes.query_indices.ravel()],
                                return_inverse=True)
    features = scorer.features(images[needed])
    split = episodes.support_indices.size
    support_features = features[inverse[:split]].reshape(episodes.support_indices.shape + (-1,))
    query_features = features[inverse[split:]].reshape(episodes.query_indices.shape + (-1,))
    per_episode = _episode_accuracies(scorer, query_features, support_features)
    result = {
        "accuracy": float(per_episode.mean()),
        "per_episode": per_episode.tolist(),
        "n_way": episodes.n_way,
        "num_episodes": episodes.num_episodes,
        "num_tasks": episodes.num_tasks,
        "chance": 1.0 / episodes.n_way,
    }
    if return_similarities:
        result["similarities"] = np.stack([scorer.similarity(queries, supports)
                                           for queries, supports in zip(query_features, support_features)])
    return result


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class OneShotEarlyStopping(_keras_callback_base()):
    """Evaluate N-way one-shot accuracy on validation episodes after every epoch; keep the best
    weights and stop after ``patience`` epochs without improvement (Koch et al. stop on 20-way
    accuracy of validation alphabets).

    Adds ``val_one_shot_accuracy`` to the epoch logs (and so to the ``History``).
    """

    def __init__(self, images, episodes, patience=5, restore_best_weights=True, verbose=0):
        super().__init__()
        self.images = np.asarray(images, np.float32)
        self.episodes = episodes
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self.best_accuracy = -1.0
        self.best_epoch = None
        self.history = []
        self._best_weights = None
        self._waited = 0

    def on_epoch_end(self, epoch, logs=None):
        accuracy = evaluate_episodes(ModelScorer(self.model), self.images, self.episodes)["accuracy"]
        self.history.append(accuracy)
        if logs is not None:
            logs["val_one_shot_accuracy"] = accuracy
        if self.verbose:
            print(f"epoch {epoch + 1}: {self.episodes.n_way}-way one-shot accuracy {accuracy:.4f}")
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch, self._waited = accuracy, epoch, 0
            if self.restore_best_weights:
                self._best_weights = self.model.get_weights()
        else:
            self._waited += 1
            if self.patience is not None and self._waited >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class TimeBudget(_keras_callback_base()):
    """Stop training once ``minutes`` of wall-clock time have passed (checked after every batch).

    With ``learning_rate`` set, it also anneals the optimizer's learning rate by elapsed time: a
    cosine from ``learning_rate`` down to ``final_fraction`` of it at the end of the budget, so a
    time-bounded run ends with a small learning rate however fast the machine is.
    """

    def __init__(self, minutes, learning_rate=None, final_fraction=0.05):
        super().__init__()
        if minutes is not None and minutes <= 0:
            raise ValueError(f"minutes must be positive or None, got {minutes!r}")
        if learning_rate is not None and minutes is None:
            raise ValueError("a time-based learning-rate schedule needs minutes")
        self.seconds = None if minutes is None else 60.0 * minutes
        self.learning_rate = learning_rate
        self.final_fraction = final_fraction
        self.started = None
        self.finished = None
        self.steps = 0

    def on_train_begin(self, logs=None):
        self.started, self.finished = time.perf_counter(), None

    def on_train_end(self, logs=None):
        # Freeze the clock: a budget read later (an ensemble's first member) reports its own run only.
        self.finished = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if self.learning_rate is not None:
            fraction = min(1.0, self.elapsed_seconds / self.seconds)
            scale = self.final_fraction + (1.0 - self.final_fraction) * 0.5 * (1.0 + np.cos(np.pi * fraction))
            self.model.optimizer.learning_rate.assign(self.learning_rate * scale)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.seconds is not None and self.elapsed_seconds >= self.seconds:
            self.model.stop_training = True

    @property
    def elapsed_seconds(self):
        """Seconds since training began, or of the whole run once it has ended."""
        if self.started is None:
            return 0.0
        return (self.finished if self.finished is not None else time.perf_counter()) - self.started


# --- Lake's official 20-way runs --------------------------------------------------------------------

@dataclass
class LakeRun:
    """One run of Lake's one-shot benchmark: ``support_images[k]`` is ``training/class{k+1}``,
    ``query_images[i]`` is ``test/item{i+1}`` and ``correct_positions[i]`` the index of its class."""

    name: str
    support_images: np.ndarray
    query_images: np.ndarray
    correct_positions: np.ndarray
    support_paths: list
    query_paths: list


def _resolve_in_runs(tree, run_folder, named, labels_path, line_number):
    """Find a file named in class_labels.txt: relative to the runs root (official layout) or to
    the run's own folder."""
    named = PurePosixPath(named.replace("\\", "/"))
    files = set(tree.files)
    for candidate in (run_folder.parent / named, run_folder / named):
        candidate = PurePosixPath(*[part for part in candidate.parts if part not in ("", ".")])
        if candidate in files:
            return candidate
    raise SiameseDataError(
        f"{labels_path}, line {line_number}: names {named}, which is not in {tree.path}"
    )


def read_lake_runs(path, image_size=OMNIGLOT_IMAGE_SIZE, invert=False):
    """Read Lake's one-shot runs (``all_runs.zip`` or its extracted folder) into :class:`LakeRun` s.

    Each run folder holds ``class_labels.txt`` whose lines read ``runNN/test/itemKK.png
    runNN/training/classKK.png`` (paths relative to the runs root or to the run folder), and the
    images it names. Support images are ordered ``class01..classNN``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SiameseDataError: no ``class_labels.txt``, a malformed label line, a line that names a file
            that is not there, an undecodable image, or a truncated archive (messages name the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Omniglot runs not found: {path}")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise SiameseDataError(f"{path}: not a readable zip archive (truncated download or another file type)")
    runs = []
    with _FileTree(path) as tree:
        label_files = sorted((file for file in tree.files if file.name == "class_labels.txt"),
                             key=natural_sort_key)
        if not label_files:
            raise SiameseDataError(f"{path}: no runNN/class_labels.txt found; is this Lake's all_runs layout?")

        def load(relative):
            display = tree.display_path(relative)
            try:
                data = tree.read_bytes(relative)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise SiameseDataError(f"{display}: cannot be read ({error})") from error
            return read_image(data, image_size, channels=1, name=display)

        for labels_file in label_files:
            labels_path = tree.display_path(labels_file)
            run_folder = labels_file.parent
            try:
                text = tree.read_bytes(labels_file).decode("utf-8")
            except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as error:
                raise SiameseDataError(f"{labels_path}: cannot be read ({error})") from error
            query_files, support_of_query = [], []
            for line_number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) != 2:
                    raise SiameseDataError(
                        f"{labels_path}, line {line_number}: expected 'test/itemKK.png training/classKK.png', "
                        f"got {line.strip()!r}"
                    )
                query_files.append(_resolve_in_runs(tree, run_folder, fields[0], labels_path, line_number))
                support_of_query.append(_resolve_in_runs(tree, run_folder, fields[1], labels_path, line_number))
            if not query_files:
                raise SiameseDataError(f"{labels_path}: no label lines")
            support_files = sorted(set(support_of_query), key=natural_sort_key)
            training_folder = support_of_query[0].parent
            # Every training image of the run is a candidate, even one no query belongs to.
            support_files = sorted(set(support_files) | {file for file in tree.files
                                                         if file.parent == training_folder
                                                         and file.suffix.lower() in _IMAGE_SUFFIXES},
                                   key=natural_sort_key)
            position_of = {file: position for position, file in enumerate(support_files)}
            runs.append(LakeRun(
                name=run_folder.name or str(path),
                support_images=np.stack([load(file) for file in support_files]),
                query_images=np.stack([load(file) for file in query_files]),
                correct_positions=np.array([position_of[file] for file in support_of_query], np.int64),
                support_paths=[tree.display_path(file) for file in support_files],
                query_paths=[tree.display_path(file) for file in query_files],
            ))
    if invert:
        for run in runs:
            run.support_images, run.query_images = 1.0 - run.support_images, 1.0 - run.query_images
    return runs


def score_lake_runs(path_or_runs, scorer, image_size=OMNIGLOT_IMAGE_SIZE, invert=False):
    """Score Lake's runs: per-run and mean accuracy of ``scorer`` (:class:`ModelScorer`,
    :class:`PixelScorer`, or a SiameseModel). ``image_size``/``invert`` must match the model's
    training images.

    Returns ``{"per_run": {run: accuracy}, "mean_accuracy", "num_runs", "num_tasks", "n_way"}``.
    """
    from siamese_tf.metrics import n_way_accuracy

    if not hasattr(scorer, "features"):
        scorer = ModelScorer(scorer)
    runs = path_or_runs if isinstance(path_or_runs, list) else read_lake_runs(path_or_runs, image_size, invert)
    per_run = {}
    for run in runs:
        similarities = scorer.similarity(scorer.features(run.query_images), scorer.features(run.support_images))
        per_run[run.name] = n_way_accuracy(similarities, run.correct_positions)
    return {
        "per_run": per_run,
        "mean_accuracy": float(np.mean(list(per_run.values()))),
        "num_runs": len(runs),
        "num_tasks": int(sum(len(run.query_images) for run in runs)),
        "n_way": int(len(runs[0].support_images)),
    }


# --- models and training ------------------------------------------------------------------------

def neighbourhood_loss(class_labels, distances):
    """In-batch soft nearest-neighbour loss on a (B, B) distance matrix (lower = same).

    For each image i, ``p_i = sum_{j same, j != i} exp(-d_ij^2) / sum_{j != i} exp(-d_ij^2)``: the
    chance that a soft nearest neighbour of i among the rest of the batch is of its class, which
    is exactly a one-shot decision with every other image as a support. Returns the mean of
    ``-log p_i`` over images that have a same-class partner.
    """
    from keras import ops

    class_labels = ops.reshape(class_labels, (-1,))
    batch_size = ops.shape(distances)[0]
    same = ops.equal(ops.expand_dims(class_labels, 0), ops.expand_dims(class_labels, 1))
    not_self = ops.logical_not(ops.eye(batch_size, dtype="bool"))
    positive = ops.logical_and(same, not_self)
    logits = -ops.square(distances)
    very_negative = ops.cast(-1e9, logits.dtype)
    all_others = ops.logsumexp(ops.where(not_self, logits, very_negative), axis=1)
    positives = ops.logsumexp(ops.where(positive, logits, very_negative), axis=1)
    has_positive = ops.cast(ops.any(positive, axis=1), logits.dtype)
    return ops.sum((all_others - positives) * has_positive) / ops.maximum(ops.sum(has_positive), 1.0)


def _register_neighbourhood_loss():
    import keras

    @keras.saving.register_keras_serializable(package="siamese_tf")
    class NeighbourhoodLoss(keras.losses.Loss):
        """Keras loss wrapper of :func:`neighbourhood_loss` (y_true: class labels, y_pred: (B, B) distances)."""

        def __init__(self, name="neighbourhood", **kwargs):
            super().__init__(name=name, **kwargs)

        def call(self, y_true, y_pred):
            return neighbourhood_loss(y_true, y_pred)

    return NeighbourhoodLoss


NeighbourhoodLoss = _register_neighbourhood_loss()


def build_koch_model(input_shape=(105, 105, 1), padding="valid"):
    """The faithful reproduction: Koch et al.'s network (38.95 M parameters at 105x105) with the
    L1 head ``sigmoid(w . |a - b| + b)``; train with binary cross-entropy on verification pairs."""
    from siamese_tf.models import build_siamese_model

    return build_siamese_model("koch", "l1", input_shape=input_shape, name="koch_siamese", padding=padding)


def build_conv4_model(input_shape=(28, 28, 1), embedding_dim=64, filters=(64, 64, 64, 64), batch_norm_momentum=0.9):
    """A 4-block conv net (3x3 conv, batch norm, ReLU, 2x2 pool) with a Euclidean distance head.

    ``batch_norm_momentum`` 0.9 instead of Keras's 0.99: short CPU runs take a few hundred steps,
    and with 0.99 the moving statistics used at evaluation would still be mostly their initial
    values by then.
    """
    import keras

    from siamese_tf.models import build_siamese_model

    model = build_siamese_model("small_cnn", "euclidean", input_shape=input_shape, name="conv4_siamese",
                                embedding_dim=embedding_dim, filters=tuple(filters))
    for layer in model.embedding.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(batch_norm_momentum)
    return model


def koch_sgd(learning_rate=0.01, momentum=0.5):
    """SGD with momentum as Koch et al. start it (they raise momentum towards 0.9 and decay the
    learning rate 1% per epoch; see :class:`KochSchedule`)."""
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)


class KochSchedule(_keras_callback_base()):
    """Koch et al.'s schedule: learning rate x0.99 per epoch, momentum raised linearly from its
    start value to ``final_momentum`` over ``momentum_epochs`` epochs (SGD only)."""

    def __init__(self, decay=0.99, final_momentum=0.9, momentum_epochs=20):
        super().__init__()
        self.decay, self.final_momentum, self.momentum_epochs = decay, final_momentum, momentum_epochs
        self._start_momentum = None

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if epoch > 0:
            optimizer.learning_rate.assign(float(optimizer.learning_rate.numpy()) * self.decay)
        if hasattr(optimizer, "momentum"):
            if self._start_momentum is None:
                self._start_momentum = float(optimizer.momentum)
            fraction = min(1.0, epoch / max(1, self.momentum_epochs))
            optimizer.momentum = self._start_momentum + fraction * (self.final_momentum - self._start_momentum)


def train_koch(model, train_set, validation_set, validation_episodes, num_epochs=10, base_pairs_per_epoch=1000,
               distortions_per_pair=8, batch_size=32, optimizer="adam", learning_rate=1e-4, patience=5,
               minutes=None, seed=0, verbose=0):
    """Train a Koch model on :class:`KochPairBatches` with early stopping on one-shot accuracy.

    ``optimizer``: "adam" (default, modern) or "sgd" (Koch et al.: SGD with momentum and
    :class:`KochSchedule`; layer-wise learning rates are not reproduced). Returns
    ``(history, one_shot_callback, time_budget)``.
    """
    from siamese_tf.training import compile_siamese, train_siamese

    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    callbacks = []
    if optimizer == "sgd":
        compile_siamese(model, learning_rate=learning_rate, optimizer=koch_sgd(learning_rate))
        callbacks.append(KochSchedule())
    else:
        compile_siamese(model, learning_rate=learning_rate)
    batches = KochPairBatches(train_set.images, train_set.labels, class_alphabets(train_set), base_pairs_per_epoch,
                              batch_size=batch_size, seed=seed, distortions_per_pair=distortions_per_pair)
    one_shot = OneShotEarlyStopping(validation_set.images, validation_episodes, patience=patience, verbose=verbose)
    budget = TimeBudget(minutes)
    history = train_siamese(model, batches, num_epochs, callbacks=callbacks + [budget, one_shot], verbose=verbose)
    return history, one_shot, budget


def conv4_augmenter(strength=1.0):
    """Random affine distortions for 28x28 characters (no flips: a mirrored letter is another letter).

    ``strength`` scales every range (1.0: rotation 10 degrees, shift 8%, scale 10%, shear 0.15).
    """
    from siamese_tf.augmentations import Augmenter

    if not isinstance(strength, (int, float)) or strength <= 0:
        raise ValueError(f"strength must be a positive number, got {strength!r}")
    return Augmenter(flip=False, brightness=0.0, contrast=0.0, max_rotation=10.0 * strength,
                     max_shift=0.08 * strength, max_scale=0.1 * strength, max_shear=0.15 * strength,
                     component_probability=1.0)


def train_conv4(model, train_set, validation_set, validation_episodes, num_epochs=100, steps_per_epoch=100,
                classes_per_batch=32, images_per_class=4, learning_rate=1e-3, loss="neighbourhood",
                augment=True, patience=None, minutes=None, seed=0, verbose=0, augment_strength=1.0):
    """Train a conv4 model in-batch on P characters x K drawings per batch.

    ``loss``: "neighbourhood" (:func:`neighbourhood_loss`, default), "prototypical", "triplet" or
    "contrastive" (:class:`~siamese_tf.losses.InBatchLoss`). The learning rate follows a cosine decay over
    ``num_epochs * steps_per_epoch`` steps, or over ``minutes`` of wall-clock time when a time
    budget is given (training then stops at the budget or after ``num_epochs``).
    Returns ``(history, one_shot_callback, time_budget)``.
    """
    import keras

    from siamese_tf.losses import InBatchLoss
    from siamese_tf.samplers import ClassBalancedBatches

    if loss == "neighbourhood":
        loss_object = NeighbourhoodLoss()
    elif loss in ("prototypical", "triplet", "contrastive"):
        loss_object = InBatchLoss(loss, mining="batch_hard")
    else:
        raise ValueError(f"loss must be 'neighbourhood', 'prototypical', 'triplet' or 'contrastive', got {loss!r}")
    if minutes is None:
        from siamese_tf.training import cosine_decay_schedule

        schedule = cosine_decay_schedule(learning_rate, num_epochs * steps_per_epoch)
        budget = TimeBudget(None)
    else:  # a time budget: anneal by elapsed time instead of by step count
        schedule, budget = learning_rate, TimeBudget(minutes, learning_rate=learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss_object)
    batches = ClassBalancedBatches(train_set.images, train_set.labels, classes_per_batch=classes_per_batch,
                                   images_per_class=images_per_class, steps_per_epoch=steps_per_epoch, seed=seed,
                                   augment=conv4_augmenter(augment_strength) if augment else None)
    one_shot = OneShotEarlyStopping(validation_set.images, validation_episodes, patience=patience, verbose=verbose)
    history = model.fit(batches.dataset(), epochs=num_epochs, callbacks=[batches.callback(), budget, one_shot],
                        shuffle=False, verbose=verbose)
    return history, one_shot, budget


def images_embedded_per_second(model, images, repeats=3, batch_size=256):
    """Median throughput of :class:`ModelScorer` features (embeddings) on ``images``, after a warm-up."""
    scorer = ModelScorer(model, batch_size=batch_size)
    images = np.asarray(images, np.float32)
    scorer.features(images[:batch_size])
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        scorer.features(images)
        rates.append(len(images) / max(time.perf_counter() - started, 1e-9))
    return float(np.median(rates))
