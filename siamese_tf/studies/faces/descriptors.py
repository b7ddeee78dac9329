"""Hand-made face descriptors with a learned metric, and score fusion with a network.

A raw descriptor compared with a fixed distance is a weak face verifier (HOG scores AUC 0.71 on
LFW). What makes descriptors work on LFW is a metric learned on the training people:
:class:`LearnedMetricScorer` turns each face into local binary pattern (LBP) histograms at three
radii plus HOG (:class:`FaceDescriptor`), whitens them with PCA, then compares two faces with the
joint Bayesian model (:func:`fit_joint_bayesian`: a face is a person's identity plus a variation,
both Gaussian; the similarity is the log-likelihood ratio of "same person"), or with the cosine
after within-person whitening (WCCN). Fitting takes about a minute on 2 cores (no gradient descent).

A descriptor and a trained network make different mistakes, so their scores add up well:
:class:`FusedPairScorer` standardises each scorer's similarities (mean and spread measured on
balanced pairs of the training people) and sums them with weights. On LFW's fold 8 (models
fitted on folds 1-7) the network alone scored AUC 0.937, the joint Bayesian metric 0.954 (WCCN:
0.916), their equal-weight fusion 0.972 (with WCCN: 0.968).

A threshold chosen on the training people's own pairs is too strict for strangers: the metric
scores the pairs of the people it was fitted on far better. :func:`cross_fitted_fold_similarities`
scores each training fold's pairs with a metric fitted without that fold's people, and
:meth:`FusedPairScorer.combine` fuses those with the network's scores, so the threshold is chosen
on scores like the test people's (fold 8: fused accuracy 0.882 -> 0.903).

Every scorer here has ``features(images)`` and ``similarity(a_features, b_features)`` (higher =
same; label convention 1 = same), so the LFW protocol (:func:`lfw_fold_report`) and the
cross-dataset check take them like the baselines.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from siamese_tf.errors import SiameseDataError
from siamese_tf.settings import make_private, progress_bar
from siamese_tf.studies.faces.evaluation import HogPairScorer, check_pair_features, to_gray

if TYPE_CHECKING:
    from siamese_tf.datasets import ImageSet
    from siamese_tf.models import SiameseModel
    from siamese_tf.studies.faces.data import LFWPairs

__all__ = [
    "DESCRIBE_THREADS",
    "LBP_CODES",
    "FINE_FACE_DESCRIPTOR",
    "LFW_FACE_DESCRIPTORS",
    "METRICS",
    "EmbeddingScorer",
    "FaceDescriptor",
    "FusedPairScorer",
    "LearnedMetricScorer",
    "cross_fitted_fold_similarities",
    "fit_joint_bayesian",
    "joint_bayesian_matrices",
    "fuse_with_descriptor_metric",
    "joint_bayesian_similarity",
    "lbp_histograms",
]

# Threads describing slices of the images at once (FaceDescriptor; the libraries it calls release
# the interpreter lock).
DESCRIBE_THREADS = min(8, os.cpu_count() or 1)

LBP_CODES = 59  # the 58 uniform patterns of 8 neighbours (at most two 0/1 changes) and one bin for all others


def _unit_rows(values):
    values = np.asarray(values, dtype=np.float64)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values / np.where(norms > 0, norms, 1.0)


def _cosine(a_features, b_features):
    a_features, b_features = check_pair_features(a_features, b_features)
    return (_unit_rows(a_features) * _unit_rows(b_features)).sum(axis=1)


def _check_whole(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def lbp_histograms(gray_images: ArrayLike, radius: int = 1, grid: int = 8) -> np.ndarray:
    """Uniform LBP histograms of each cell of a ``grid`` x ``grid`` split of each image.

    Each pixel gets the 8-bit code of which of its 8 neighbours at ``radius`` pixels are at least
    as bright (scikit-image's ``local_binary_pattern``, ``"nri_uniform"``: 59 codes). Each cell's
    histogram sums to 1, so the result does not depend on the image size. The ``radius``-pixel border,
    whose neighbours fall outside the image, is left out.

    Args:
        gray_images: (N, H, W) gray images (any range; only comparisons count).
        radius: neighbour distance in pixels.
        grid: cells per side.

    Returns:
        float32 array (N, grid * grid * 59), cells in row-major order.
    """
    from skimage.feature import local_binary_pattern

    radius = _check_whole("radius", radius, 1)
    grid = _check_whole("grid", grid, 1)
    gray_images = np.asarray(gray_images)
    if gray_images.ndim != 3:
        raise ValueError(f"gray_images must have shape (N, H, W), got {gray_images.shape}")
    height, width = gray_images.shape[1:]
    if min(height, width) < grid + 2 * radius:
        raise ValueError(f"images of {height}x{width} pixels are too small for radius {radius} and a "
                         f"{grid}x{grid} grid")
    # Border pixels lack neighbours inside the image (scikit-image would read them as 0): they are left out.
    inner_height, inner_width = height - 2 * radius, width - 2 * radius
    rows = np.minimum(np.arange(inner_height) * grid // inner_height, grid - 1)
    columns = np.minimum(np.arange(inner_width) * grid // inner_width, grid - 1)
    cell_of_pixel = (rows[:, None] * grid + columns[None, :]) * LBP_CODES
    pixels_per_cell = np.bincount(cell_of_pixel.ravel() // LBP_CODES, minlength=grid * grid).astype(np.float32)
    histograms = np.zeros((len(gray_images), grid * grid * LBP_CODES), dtype=np.float32)
    for index, image in enumerate(gray_images):
        codes = local_binary_pattern(np.ascontiguousarray(image), 8, radius, method="nri_uniform").astype(np.int64)
        inner = codes[radius:height - radius, radius:width - radius]
        counts = np.bincount((cell_of_pixel + inner).ravel(), minlength=grid * grid * LBP_CODES)
        histograms[index] = counts / np.repeat(pixels_per_cell, LBP_CODES)
    return histograms


@dataclass(frozen=True)
class FaceDescriptor:
    """LBP histograms at several radii (square-rooted, so that Euclidean geometry suits histograms)
    followed by HOG, from gray images; with ``mirror``, the average of the image's descriptor and its
    left-right mirror's (faces are near symmetric, and a mirrored photo is the same person).

    At 64x64 with the defaults: 3 x 64 cells x 59 codes + 1,764 HOG numbers = 13,092 numbers.
    The radii, grid and mirroring were chosen on LFW's fold 8 (folds 1-7 fitted).
    ``image_size``: the side every image is resized to first (``cv2.INTER_AREA``; None: described
    as given), so that descriptors of several sizes can share one set of images, e.g.
    :data:`FINE_FACE_DESCRIPTOR` on 128x128 faces beside the default on the same faces at 64x64.
    """

    radii: tuple[int, ...] = (1, 2, 3)
    grid: int = 8
    hog_cell: int = 8
    mirror: bool = True
    image_size: int | None = None

    def __post_init__(self) -> None:
        if not self.radii:
            raise ValueError("radii must name at least one LBP radius")
        for radius in self.radii:
            _check_whole("each radius", radius, 1)
        _check_whole("grid", self.grid, 1)
        _check_whole("hog_cell", self.hog_cell, 2)
        if self.image_size is not None:
            _check_whole("image_size", self.image_size, 16)

    def _one_side(self, gray):
        pixels = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
        parts = [np.sqrt(lbp_histograms(pixels, radius, self.grid)) for radius in self.radii]
        parts.append(HogPairScorer(cell=self.hog_cell).features(gray))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def __call__(self, images: ArrayLike) -> np.ndarray:
        """(N, D) descriptors of (N, H, W, C) images with values in [0, 1] (C = 1 or 3)."""
        if self.image_size is not None:
            from siamese_tf.datasets import resize_images

            images = resize_images(images, (self.image_size, self.image_size))
        gray = to_gray(images)
        if len(gray) == 0:
            raise ValueError("no images to describe")
        # scikit-image's LBP codes (85% of the time), OpenCV's HOG and NumPy run without holding the
        # interpreter lock, so slices of the images are described in threads (2.1-2.2x on 2 cores);
        # each image's row does not depend on the others, so the result is the same as in one go.
        slices = np.array_split(np.arange(len(gray)), min(DESCRIBE_THREADS, max(1, len(gray) // 16)))
        if len(slices) == 1:
            return self._both_sides(gray)
        with ThreadPoolExecutor(max_workers=len(slices)) as executor:
            return np.concatenate(list(executor.map(lambda rows: self._both_sides(gray[rows]), slices)))

    def _both_sides(self, gray):
        described = self._one_side(gray)
        if self.mirror:
            described = (described + self._one_side(np.ascontiguousarray(gray[:, :, ::-1]))) / 2
        return described


# A second, finer descriptor for faces loaded at 128x128 (cells of about 11 pixels, HOG cells of
# 16): fused beside the default one at 64x64 it raised the LFW benchmark's validation accuracy
# (folds 7 and 8) from 0.914 to 0.920, AUC 0.971 to 0.973 (2026-12-05); alone it is no better.
FINE_FACE_DESCRIPTOR = FaceDescriptor(grid=12, hog_cell=16, image_size=128)
# The LFW benchmark's fused scorer: one metric on each, sharing the descriptor half.
LFW_FACE_DESCRIPTORS = (FaceDescriptor(image_size=64), FINE_FACE_DESCRIPTOR)

METRICS = ("joint_bayesian", "wccn")


def _person_statistics(coordinates, labels):
    """The rows of people with two or more images, their person indices (0..P-1) and each person's mean."""
    counts = np.bincount(labels)
    repeated = counts[labels] >= 2
    coordinates = coordinates[repeated]
    _, people = np.unique(labels[repeated], return_inverse=True)
    sums = np.zeros((people.max() + 1, coordinates.shape[1]))
    np.add.at(sums, people, coordinates)
    return coordinates, people, sums / np.bincount(people)[:, None]


def fit_joint_bayesian(coordinates: ArrayLike, labels: ArrayLike, num_iterations: int = 10
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Fit the joint Bayesian face model (Chen et al., ECCV 2012) and return its ``(A, G)``.

    Each face is modelled as ``x = person + variation``, two independent Gaussians with covariances
    ``S_person`` and ``S_variation``; the log-likelihood ratio of "same person" against "different
    people" for two faces is then ``x1' A x1 + x2' A x2 - 2 x1' G x2`` (:func:`joint_bayesian_similarity`).
    The covariances start from the scatter of the people's means and around them (a mean of n
    photos keeps 1/n of the variation), then ``num_iterations`` steps of the paper's
    expectation-maximisation re-estimate them from the expected identities and variations. That
    update leaves out the posterior spread, so it keeps the variation covariance smaller than the
    maximum-likelihood one; on LFW's fold 8 the exact update scored lower (AUC 0.939-0.944 alone
    against 0.954). Only people with two or more images are used. The similarity is
    twice the log-likelihood ratio, up to a constant (the paper's ``r``).

    Args:
        coordinates: (N, D) centred features (e.g. PCA coordinates).
        labels: (N,) person of each row.

    Returns:
        ``A`` and ``G``, both (D, D).

    Raises:
        SiameseDataError: fewer than 2 people with two or more images.
    """
    coordinates = np.asarray(coordinates, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if coordinates.ndim != 2 or len(coordinates) != len(labels):
        raise ValueError(f"coordinates must be (N, D) with one label per row, got {coordinates.shape} and "
                         f"{len(labels)} labels")
    _check_whole("num_iterations", num_iterations, 0)
    _, labels = np.unique(labels, return_inverse=True)
    coordinates, people, means = _person_statistics(coordinates, labels)
    if len(means) < 2:
        raise SiameseDataError(f"the joint Bayesian model needs at least 2 people with two or more images; "
                               f"got {len(means)}")
    counts = np.bincount(people)
    sums = means * counts[:, None]
    person_covariance = np.cov(means.T)
    variation_covariance = np.cov((coordinates - means[people]).T)
    for _ in range(num_iterations):
        # The paper's update: the expected identity of each person and variation of each photo under
        # the current model (in closed form for each group of people with the same number of photos),
        # then the covariances of these point estimates.
        variation_inverse = np.linalg.inv(variation_covariance)
        identities, variations = np.zeros_like(means), np.zeros_like(coordinates)
        for count in np.unique(counts):
            group = np.flatnonzero(counts == count)
            cross = -np.linalg.solve(count * person_covariance + variation_covariance,
                                     person_covariance) @ variation_inverse
            identities[group] = sums[group] @ (person_covariance @ (variation_inverse + count * cross)).T
            members = np.isin(people, group)
            variations[members] = coordinates[members] + sums[people[members]] @ (variation_covariance @ cross).T
        person_covariance, variation_covariance = np.cov(identities.T), np.cov(variations.T)
    return joint_bayesian_matrices(person_covariance, variation_covariance)


def joint_bayesian_matrices(person_covariance: ArrayLike, variation_covariance: ArrayLike
                            ) -> tuple[np.ndarray, np.ndarray]:
    """``(A, G)`` of the joint Bayesian similarity for the model ``x = person + variation`` with
    these two covariances: ``F = S_variation^-1``, ``G = -(2 S_person + S_variation)^-1 S_person F``,
    ``A = (S_person + S_variation)^-1 - (F + G)``."""
    person_covariance = np.asarray(person_covariance, dtype=np.float64)
    variation_covariance = np.asarray(variation_covariance, dtype=np.float64)
    if (person_covariance.shape != variation_covariance.shape or person_covariance.ndim != 2
            or person_covariance.shape[0] != person_covariance.shape[1]):
        raise ValueError(f"the two covariances must be square matrices of one size, got {person_covariance.shape} "
                         f"and {variation_covariance.shape}")
    variation_inverse = np.linalg.inv(variation_covariance)
    cross = -np.linalg.solve(2 * person_covariance + variation_covariance, person_covariance) @ variation_inverse
    own = np.linalg.inv(person_covariance + variation_covariance) - (variation_inverse + cross)
    return own, cross


def _row_quadratic(left, matrix, right):
    """``left[i] @ matrix @ right[i]`` for every row ``i``."""
    return np.einsum("ij,jk,ik->i", left, matrix, right)


def joint_bayesian_similarity(own: np.ndarray, cross: np.ndarray, a_features: ArrayLike,
                              b_features: ArrayLike) -> np.ndarray:
    """``a' A a + b' A b - 2 a' G b`` for each pair of rows, with ``(A, G)`` from :func:`fit_joint_bayesian`:
    twice the log-likelihood ratio of "same person" against "different people", plus a constant
    (higher = same; label convention 1 = same)."""
    a_features, b_features = check_pair_features(a_features, b_features)
    a_features, b_features = np.asarray(a_features, np.float64), np.asarray(b_features, np.float64)
    return (_row_quadratic(a_features, own, a_features) + _row_quadratic(b_features, own, b_features)
            - 2 * _row_quadratic(a_features, cross, b_features))


class LearnedMetricScorer:
    """A :class:`FaceDescriptor` reduced by PCA whitening, then compared with a metric fitted on
    training people (higher = same).

    ``metric``:

    - ``"joint_bayesian"`` (default): the joint Bayesian model (:func:`fit_joint_bayesian`); the
      similarity is (twice) the log-likelihood ratio of "same person". On LFW's fold 8 (folds 1-7 fitted)
      it scored AUC 0.954 alone and 0.972 fused with the network, against 0.916 and 0.968 for WCCN.
    - ``"wccn"``: within-class covariance normalisation, so that the directions in which photos
      of one person vary count least (``regularization`` is added to the within-person covariance
      before it is inverted); the similarity is the cosine of the projections.

    ``num_components`` PCA directions are kept (200-400 within 0.001 AUC on fold 8, 800 worse; it
    must be below the number of training images). Call :meth:`fit` first; :meth:`save` and
    :meth:`load` keep a fitted metric (an ``.npz``).
    """

    def __init__(self, descriptor: FaceDescriptor | None = None, num_components: int = 400,
                 regularization: float = 1e-3, metric: str = "joint_bayesian", num_iterations: int = 10) -> None:
        self.descriptor = descriptor or FaceDescriptor()
        self.num_components = _check_whole("num_components", num_components, 1)
        if not isinstance(regularization, (int, float)) or isinstance(regularization, bool) or regularization <= 0:
            raise ValueError(f"regularization must be a positive number, got {regularization!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.regularization = float(regularization)
        self.metric = metric
        self.num_iterations = _check_whole("num_iterations", num_iterations, 0)
        self.mean_: np.ndarray | None = None
        self.projection_: np.ndarray | None = None
        self.own_: np.ndarray | None = None  # joint Bayesian A
        self.cross_: np.ndarray | None = None  # joint Bayesian G

    @property
    def fitted(self) -> bool:
        return self.projection_ is not None and (self.metric != "joint_bayesian" or self.own_ is not None)

    def fit(self, image_set: ImageSet) -> LearnedMetricScorer:
        """Fit PCA on every image of ``image_set`` and the metric on its people with two or more images.

        Raises:
            SiameseDataError: fewer than 2 people with two or more images, or too few images for
                ``num_components``.
        """
        labels = np.asarray(image_set.labels)
        self._check_training_labels(labels)
        return self.fit_descriptors(self.descriptor(image_set.images), labels)

    def _check_training_labels(self, labels):
        counts = np.bincount(labels)
        if (counts >= 2).sum() < 2:
            raise SiameseDataError(f"a learned metric needs at least 2 people with two or more images; "
                                   f"this set has {(counts >= 2).sum()}")
        if self.num_components >= len(labels):
            raise SiameseDataError(f"num_components ({self.num_components}) must be below the number of "
                                   f"training images ({len(labels)})")

    def fit_descriptors(self, described: ArrayLike, labels: ArrayLike) -> LearnedMetricScorer:
        """:meth:`fit` on descriptors already computed (``self.descriptor(images)``, one row per
        image) with each row's person: fitting several metrics on subsets of one set of images
        (:func:`cross_fitted_fold_similarities`) describes every image once."""
        from sklearn.decomposition import PCA

        # float32: the descriptors are float32 already, and PCA on them takes half the time and
        # memory of float64 (on LFW's training folds at 128x128: 14 s against 33 s, 0.8 GB against 1.6 GB).
        described = np.asarray(described, dtype=np.float32)
        labels = np.asarray(labels).reshape(-1)
        if described.ndim != 2 or len(described) != len(labels):
            raise ValueError(f"described must be (N, D) with one label per row, got {described.shape} and "
                             f"{len(labels)} labels")
        self._check_training_labels(labels)
        if self.num_components > described.shape[1]:
            raise ValueError(f"num_components ({self.num_components}) exceeds the descriptor's "
                             f"{described.shape[1]} numbers")
        pca = PCA(self.num_components, whiten=True, random_state=0).fit(described)
        whitened = pca.transform(described).astype(np.float64)
        self.mean_ = pca.mean_.astype(np.float64)
        self.projection_ = (pca.components_.T / np.sqrt(pca.explained_variance_)).astype(np.float64)
        if self.metric == "joint_bayesian":
            self.own_, self.cross_ = fit_joint_bayesian(whitened, labels, self.num_iterations)
        else:
            repeated, people, means = _person_statistics(whitened, labels)
            within = np.cov((repeated - means[people]).T) + self.regularization * np.eye(self.num_components)
            values, vectors = np.linalg.eigh(within)
            # One affine map: centre, PCA-whiten, then WCCN.
            self.projection_ = self.projection_ @ (vectors @ np.diag(values ** -0.5) @ vectors.T)
        return self

    def features(self, images: ArrayLike) -> np.ndarray:
        """(N, num_components): PCA coordinates (joint Bayesian) or unit-length projections (WCCN)."""
        if not self.fitted:
            raise RuntimeError("LearnedMetricScorer is not fitted: call fit(training_image_set) first")
        return self.features_of_descriptors(self.descriptor(images))

    def features_of_descriptors(self, described: ArrayLike) -> np.ndarray:
        """:meth:`features` of descriptors already computed (``self.descriptor(images)``)."""
        if not self.fitted:
            raise RuntimeError("LearnedMetricScorer is not fitted: call fit(training_image_set) first")
        projected = (np.asarray(described, dtype=np.float64) - self.mean_) @ self.projection_
        return (projected if self.metric == "joint_bayesian" else _unit_rows(projected)).astype(np.float32)

    def similarity(self, a_features: np.ndarray, b_features: np.ndarray) -> np.ndarray:
        if self.metric == "joint_bayesian":
            if not self.fitted:
                raise RuntimeError("LearnedMetricScorer is not fitted: call fit(training_image_set) first")
            return joint_bayesian_similarity(self.own_, self.cross_, a_features, b_features)
        return _cosine(a_features, b_features)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted metric and its descriptor settings to ``path`` (``.npz``, owner-only)."""
        if not self.fitted:
            raise RuntimeError("nothing to save: the metric is not fitted")
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"a learned metric is saved as .npz, got {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target, private, then moved in: no half-written metric on a crash.
        temporary = path.with_name(f".{path.name}.partial.npz")
        # float32 halves the file (13,092 x 400 numbers at the defaults: 21 MB); features agree to 1e-6.
        extra = ({"own": self.own_.astype(np.float32), "cross": self.cross_.astype(np.float32)}
                 if self.metric == "joint_bayesian" else {})
        np.savez(temporary, mean=self.mean_.astype(np.float32), projection=self.projection_.astype(np.float32),
                 radii=np.asarray(self.descriptor.radii),
                 grid=self.descriptor.grid, hog_cell=self.descriptor.hog_cell, mirror=self.descriptor.mirror,
                 image_size=self.descriptor.image_size or 0,
                 regularization=self.regularization, metric=self.metric, num_iterations=self.num_iterations,
                 **extra)
        make_private(temporary)  # fitted on faces: personal data, like the models
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LearnedMetricScorer:
        """A fitted metric written by :meth:`save` (one saved before ``metric`` existed is WCCN)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no learned metric at {str(path)!r}")
        with np.load(path) as stored:
            # 0 (or absent, before 2026-12-05): images described at the size given.
            image_size = int(stored["image_size"]) if "image_size" in stored else 0
            descriptor = FaceDescriptor(tuple(int(radius) for radius in stored["radii"]), int(stored["grid"]),
                                        int(stored["hog_cell"]), bool(stored["mirror"]), image_size or None)
            metric = str(stored["metric"]) if "metric" in stored else "wccn"
            num_iterations = int(stored["num_iterations"]) if "num_iterations" in stored else 10
            scorer = cls(descriptor, stored["projection"].shape[1], float(stored["regularization"]), metric,
                         num_iterations)
            scorer.mean_ = stored["mean"].astype(np.float64)
            scorer.projection_ = stored["projection"].astype(np.float64)
            if metric == "joint_bayesian":
                scorer.own_ = stored["own"].astype(np.float64)
                scorer.cross_ = stored["cross"].astype(np.float64)
        return scorer

    def __repr__(self) -> str:
        return (f"LearnedMetricScorer({self.descriptor}, num_components={self.num_components}, "
                f"metric={self.metric!r}, fitted={self.fitted})")


class EmbeddingScorer:
    """A trained :class:`~siamese_tf.models.SiameseModel`'s embedding as a ``features`` scorer:
    cosine of the embeddings; with ``mirror`` the embedding of each face is the sum of its own and
    its mirror's unit-length embeddings (test-time flip: +0.5 points on LFW's fold 8). Images of
    another size than the network's input are resized to it first (:func:`siamese_tf.datasets.resize_images`),
    so it can share larger images with a finer descriptor in a :class:`FusedPairScorer`.
    """

    def __init__(self, model: SiameseModel, mirror: bool = True, batch_size: int = 256) -> None:
        if not hasattr(model, "embed"):
            raise ValueError(f"EmbeddingScorer needs a SiameseModel (with embed()), got {type(model).__name__}")
        self.model, self.mirror = model, bool(mirror)
        self.batch_size = _check_whole("batch_size", batch_size, 1)

    def features(self, images: ArrayLike) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        input_size = tuple(self.model.input_image_shape[:2])
        if images.ndim == 4 and images.shape[1:3] != input_size:
            from siamese_tf.datasets import resize_images

            images = resize_images(images, input_size)
        embedded = _unit_rows(self.model.embed(images, self.batch_size))
        if self.mirror:
            embedded = embedded + _unit_rows(self.model.embed(np.ascontiguousarray(images[:, :, ::-1]),
                                                              self.batch_size))
        return embedded.astype(np.float32)

    def similarity(self, a_features: np.ndarray, b_features: np.ndarray) -> np.ndarray:
        return _cosine(a_features, b_features)


class FusedPairScorer:
    """Weighted sum of several scorers' standardised similarities (higher = same).

    Each part must have ``features`` and ``similarity``; its features are concatenated (so each
    image is described once) and split again to compare. :meth:`fit` measures the mean and spread
    of each part's similarities on balanced pairs of training people, so that parts on different
    scales (a cosine, a chi-square distance) weigh what ``weights`` says (default: equally).
    """

    def __init__(self, scorers: Mapping[str, Any], weights: Mapping[str, float] | Sequence[float] | None = None
                 ) -> None:
        if not scorers:
            raise ValueError("FusedPairScorer needs at least one scorer")
        for name, scorer in scorers.items():
            if not (hasattr(scorer, "features") and hasattr(scorer, "similarity")):
                raise ValueError(f"scorer {name!r} ({type(scorer).__name__}) has no features()/similarity(): wrap a "
                                 f"SiameseModel in EmbeddingScorer")
        self.scorers = dict(scorers)
        if weights is None:
            weights = {name: 1.0 / len(scorers) for name in scorers}
        elif not isinstance(weights, Mapping):
            weights = list(weights)
            if len(weights) != len(scorers):
                raise ValueError(f"{len(weights)} weights for {len(scorers)} scorers")
            weights = dict(zip(scorers, weights))
        if set(weights) != set(scorers):
            raise ValueError(f"weights name {sorted(weights)}, scorers are {sorted(scorers)}")
        if any(not np.isfinite(value) or value < 0 for value in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"weights must be non-negative and not all zero, got {dict(weights)}")
        self.weights = {name: float(weights[name]) for name in scorers}
        self.scales: dict[str, tuple[float, float]] | None = None
        self._widths: dict[str, int] = {}

    def fit(self, image_set: ImageSet, num_pairs: int = 2000, seed: int = 0) -> FusedPairScorer:
        """Measure each part's similarity mean and standard deviation on ``num_pairs`` balanced
        pairs of ``image_set`` (training people)."""
        from siamese_tf.samplers import make_pairs

        (first, second), _ = make_pairs(image_set.images, image_set.labels, num_pairs, seed=seed)
        scales, widths = {}, {}
        for name, scorer in self.scorers.items():
            first_features = scorer.features(first)
            values = np.asarray(scorer.similarity(first_features, scorer.features(second)), np.float64)
            spread = float(values.std())
            if not spread > 0:
                raise SiameseDataError(f"scorer {name!r} gives every training pair the same similarity: "
                                       f"it cannot be standardised")
            scales[name], widths[name] = (float(values.mean()), spread), np.shape(first_features)[1]
        self.scales, self._widths = scales, widths
        return self

    def features(self, images: ArrayLike) -> np.ndarray:
        if self.scales is None:
            raise RuntimeError("FusedPairScorer is not fitted: call fit(training_image_set) first")
        return np.concatenate([np.asarray(scorer.features(images), dtype=np.float32)
                               for scorer in self.scorers.values()], axis=1)

    def part_similarities(self, a_features: np.ndarray, b_features: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's own (unstandardised) similarities, by scorer name."""
        a_features, b_features = check_pair_features(a_features, b_features)
        if not self._widths or sum(self._widths.values()) != a_features.shape[1]:
            raise ValueError(f"features of width {a_features.shape[1]} were not made by this scorer's features()")
        result, start = {}, 0
        for name, scorer in self.scorers.items():
            stop = start + self._widths[name]
            result[name] = np.asarray(scorer.similarity(a_features[:, start:stop], b_features[:, start:stop]))
            start = stop
        return result

    def similarity(self, a_features: np.ndarray, b_features: np.ndarray) -> np.ndarray:
        if self.scales is None:
            raise RuntimeError("FusedPairScorer is not fitted: call fit(training_image_set) first")
        return self.combine(self.part_similarities(a_features, b_features))

    def combine(self, part_similarities: Mapping[str, ArrayLike]) -> np.ndarray:
        """The fused similarity from each part's own similarities (by scorer name, as
        :meth:`part_similarities` gives them): standardised with the fitted scales and weighted.

        For scores a part computed elsewhere, e.g. a descriptor metric's cross-fitted similarities
        (:func:`cross_fitted_fold_similarities`) when choosing a threshold.
        """
        if self.scales is None:
            raise RuntimeError("FusedPairScorer is not fitted: call fit(training_image_set) first")
        if set(part_similarities) != set(self.scorers):
            raise ValueError(f"part similarities name {sorted(part_similarities)}, the parts are "
                             f"{sorted(self.scorers)}")
        parts = {name: np.asarray(values, dtype=np.float64).reshape(-1) for name, values in part_similarities.items()}
        if len({len(values) for values in parts.values()}) != 1:
            raise ValueError(f"the parts score different numbers of pairs: "
                             f"{ {name: len(values) for name, values in parts.items()} }")
        total = sum(self.weights.values())
        return sum(self.weights[name] / total * (parts[name] - self.scales[name][0]) / self.scales[name][1]
                   for name in self.scorers)

    def __repr__(self) -> str:
        return f"FusedPairScorer({sorted(self.scorers)}, weights={self.weights})"


def fuse_with_descriptor_metric(model: SiameseModel | Mapping[str, SiameseModel], train_set: ImageSet,
                                num_components: int = 400, num_pairs: int = 2000, mirror: bool = True,
                                metric: str = "joint_bayesian",
                                descriptors: Sequence[FaceDescriptor] | None = None,
                                progress: bool = False) -> FusedPairScorer:
    """``model``'s similarity and a :class:`LearnedMetricScorer` (joint Bayesian) fitted on
    ``train_set`` (the people the model trained on), standardised on their pairs and averaged: the
    LFW benchmark's scorer (two networks since 2026-12-04, chosen on validation folds 7 and 8).

    ``model`` is one network (parts ``"network"`` and ``"descriptor"``, half each) or a mapping of
    names to networks (an ensemble: the network half is shared equally among them, e.g.
    ``{"contrastive": a, "class_proxy": b}`` gives each a quarter and the descriptor metric half).
    ``num_components`` must be below the number of training images (use a few dozen for a small
    set). The metric is ``result.scorers["descriptor"]`` (save it with its ``save``) and the networks
    the other parts (:class:`EmbeddingScorer`; ``mirror``: with test-time flips).
    ``metric``: see :class:`LearnedMetricScorer`.

    ``descriptors``: one metric per descriptor (default: one :class:`FaceDescriptor`), sharing the
    descriptor half equally, named ``"descriptor"``, ``"descriptor_2"``, ...; the LFW benchmark fuses
    :data:`LFW_FACE_DESCRIPTORS` (``FaceDescriptor(image_size=64)`` and :data:`FINE_FACE_DESCRIPTOR`)
    on faces loaded at 128x128 (the networks and the first descriptor see them resized to 64x64).

    ``progress``: a progress bar over the metrics (on LFW's training folds each takes minutes).
    """
    models = dict(model) if isinstance(model, Mapping) else {"network": model}
    if not models or any(name.startswith("descriptor") for name in models):
        raise ValueError(f"give one network or a mapping of names (not starting with 'descriptor') to networks, "
                         f"got {sorted(models)}")
    descriptors = [FaceDescriptor()] if descriptors is None else list(descriptors)
    if not descriptors or not all(isinstance(descriptor, FaceDescriptor) for descriptor in descriptors):
        raise ValueError(f"descriptors must be one or more FaceDescriptor, got {descriptors!r}")
    metrics = {("descriptor" if index == 0 else f"descriptor_{index + 1}"):
               LearnedMetricScorer(descriptor, num_components=num_components, metric=metric).fit(train_set)
               for index, descriptor in enumerate(progress_bar(descriptors, desc=f"fitting descriptor metrics on "
                                                               f"{len(train_set)} faces", unit="metric",
                                                               disable=not progress))}
    parts = {name: EmbeddingScorer(network, mirror=mirror) for name, network in models.items()}
    weights = {**{name: 0.5 / len(parts) for name in parts}, **{name: 0.5 / len(metrics) for name in metrics}}
    fused = FusedPairScorer({**parts, **metrics}, weights=weights)
    return fused.fit(train_set, num_pairs=num_pairs)


def cross_fitted_fold_similarities(metric: LearnedMetricScorer, image_set: ImageSet, pairs: LFWPairs,
                                   fold_people: Mapping[int, Collection[str]], progress: bool = False
                                   ) -> dict[int, np.ndarray]:
    """Each fold's pair similarities from a metric fitted without that fold's people.

    A learned metric scores the pairs of the people it was fitted on far better than strangers'
    (the joint Bayesian metric: accuracy 0.956 on LFW's training folds against 0.863 on the
    held-out fold 8), so a threshold chosen on its own training pairs is too strict for new people.
    Here, for every fold ``k`` of ``fold_people`` (fold number -> its people), a copy of ``metric``
    (same settings; ``metric`` itself is not changed) is fitted on the other folds' people and
    scores fold ``k``'s pairs: scores like those of the test fold's people, from the training
    folds alone. Each image is described once. On fold 8 (folds 1-7 fitted), choosing the fused
    scorer's threshold with these scores for its metric part raised its accuracy from 0.882 to
    0.903 (the best threshold there: 0.910).

    Args:
        metric: the settings to fit (descriptor, components, metric, iterations).
        image_set: images of every person of ``fold_people`` (:func:`load_lfw`).
        pairs: the folds' pairs (:func:`read_lfw_pairs`).
        fold_people: two or more folds, each to the names of its people.
        progress: a progress bar over the folds (describing, then one fit per fold: minutes each
            on LFW's training folds).

    Returns:
        fold number -> similarities of its pairs (in the pairs file's order).

    Raises:
        ValueError: fewer than two folds, a person in two folds, or a fold's pair naming a person
            outside that fold.
        SiameseDataError: a person or a pair's image that ``image_set`` does not hold.
    """
    from siamese_tf.studies.faces.data import LFWPairs, fold_pair_indices

    if not isinstance(pairs, LFWPairs):
        raise ValueError(f"pairs must be the LFWPairs of read_lfw_pairs, got {type(pairs).__name__}")
    folds = {int(number): sorted(set(names)) for number, names in fold_people.items()}
    if len(folds) < 2:
        raise ValueError(f"cross-fitting needs two or more folds, got {sorted(folds)}")
    seen: dict[str, int] = {}
    for number, names in folds.items():
        pairs.check_fold(number)
        for name in names:
            if name in seen:
                raise ValueError(f"{name} is in fold {seen[name]} and fold {number}: folds must not share people")
            seen[name] = number
    missing = sorted(set(seen) - set(image_set.class_names))
    if missing:
        raise SiameseDataError(f"{len(missing)} people of the folds are not in the image set, e.g. {missing[:3]}")
    index = {name: label for label, name in enumerate(image_set.class_names)}
    wanted = np.flatnonzero(np.isin(image_set.labels, [index[name] for name in seen]))
    rows = np.full(len(image_set), -1)
    rows[wanted] = np.arange(len(wanted))
    # One step for describing every image, then one per fold (a fit and its fold's pairs).
    result = {}
    descriptor = metric.descriptor
    size = f"{descriptor.image_size}px" if descriptor.image_size else "as given"
    with progress_bar(total=len(folds) + 1, desc=f"cross-fitting the metric ({size}, grid {descriptor.grid})",
                      unit="step", disable=not progress) as bar:
        described = metric.descriptor(image_set.images[wanted])
        bar.update()
        fold_of_image = np.array([seen[image_set.class_names[label]] for label in image_set.labels[wanted]])
        for number in folds:
            first, second, _ = fold_pair_indices(image_set, pairs, number)
            outside = sorted({image_set.class_names[image_set.labels[i]] for i in np.concatenate([first, second])}
                             - set(folds[number]))
            if outside:
                raise ValueError(f"fold {number}'s pairs name people outside its people list, e.g. {outside[:3]}")
            fitting = fold_of_image != number
            fold_metric = LearnedMetricScorer(metric.descriptor, metric.num_components, metric.regularization,
                                              metric.metric, metric.num_iterations)
            fold_metric.fit_descriptors(described[fitting], image_set.labels[wanted][fitting])
            first_features = fold_metric.features_of_descriptors(described[rows[first]])
            second_features = fold_metric.features_of_descriptors(described[rows[second]])
            result[number] = np.asarray(fold_metric.similarity(first_features, second_features))
            bar.update()
    return result
