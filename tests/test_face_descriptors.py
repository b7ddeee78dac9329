"""Hand-made face descriptors, the learned metric on them, and score fusion (label convention: 1 = same)."""

import numpy as np
import pytest

from siamese_tf.errors import SiameseDataError
from siamese_tf.studies import faces


@pytest.fixture(scope="module")
def orl_faces(shared_data_dir):
    from siamese_tf.datasets import load_identity_folders

    return load_identity_folders(faces.locate_face_data(shared_data_dir), image_size=(64, 64), channels=1,
                                 crop=faces.central_square)


def _split_people(image_set, first_people):
    people = np.arange(image_set.num_classes)
    return image_set.select_classes(people[:first_people]), image_set.select_classes(people[first_people:])


# --- LBP histograms --------------------------------------------------------------------------------------

def test_lbp_histograms_sum_to_one_per_cell_and_a_flat_image_has_one_code():
    rng = np.random.default_rng(0)
    images = np.stack([np.full((32, 32), 100, np.uint8), rng.integers(0, 256, (32, 32)).astype(np.uint8)])
    histograms = faces.lbp_histograms(images, radius=1, grid=4)
    assert histograms.shape == (2, 4 * 4 * faces.LBP_CODES)
    cells = histograms.reshape(2, 16, faces.LBP_CODES)
    np.testing.assert_allclose(cells.sum(axis=2), 1.0, rtol=1e-6)
    flat_codes = {int(np.argmax(cell)) for cell in cells[0]}
    assert len(flat_codes) == 1 and np.all(cells[0].max(axis=1) == 1.0)  # every pixel: "no neighbour darker"
    assert (cells[1] > 0).sum(axis=1).min() > 5  # noise spreads over many codes


def test_lbp_histograms_ignore_brightness_and_contrast_but_not_mirroring():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 120, (1, 40, 40)).astype(np.uint8)
    brighter = (image.astype(np.int64) * 2 + 7).astype(np.uint8)  # monotone: the same comparisons
    np.testing.assert_array_equal(faces.lbp_histograms(image, 2, 5), faces.lbp_histograms(brighter, 2, 5))
    assert not np.array_equal(faces.lbp_histograms(image, 2, 5), faces.lbp_histograms(image[:, :, ::-1], 2, 5))


@pytest.mark.parametrize("kwargs, message", [
    ({"radius": 0}, "radius must be an integer of at least 1, got 0"),
    ({"grid": 2.5}, "grid must be an integer of at least 1, got 2.5"),
    ({"grid": 15}, "too small for radius 1 and a 15x15 grid"),
])
def test_lbp_histograms_name_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        faces.lbp_histograms(np.zeros((1, 16, 16), np.uint8), **kwargs)


def test_lbp_histograms_want_gray_images():
    with pytest.raises(ValueError, match=r"shape \(N, H, W\), got \(1, 16, 16, 3\)"):
        faces.lbp_histograms(np.zeros((1, 16, 16, 3), np.uint8))


# --- the descriptor ----------------------------------------------------------------------------------------

def test_descriptor_in_threads_equals_each_face_alone(orl_faces, monkeypatch):
    from siamese_tf.studies.faces import descriptors

    images = orl_faces.images[:48]
    descriptor = faces.FaceDescriptor()
    alone = np.concatenate([descriptor(image[None]) for image in images])
    monkeypatch.setattr(descriptors, "DESCRIBE_THREADS", 3)  # 48 faces: three slices in three threads
    threaded = descriptor(images)
    np.testing.assert_array_equal(threaded, alone)
    assert len({row.tobytes() for row in threaded}) == 48  # every row written, each its own face


def test_face_descriptor_size_and_mirroring(orl_faces):
    images = orl_faces.images[:3]
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    descriptor = faces.FaceDescriptor()
    described = descriptor(images)
    assert described.shape == (3, 3 * 64 * faces.LBP_CODES + 1764)  # the size the docstring gives
    # With mirroring a face and its mirror image get the same descriptor; without, they do not.
    np.testing.assert_allclose(descriptor(mirrored), described, atol=1e-5)
    one_sided = faces.FaceDescriptor(mirror=False)
    assert np.abs(one_sided(mirrored) - one_sided(images)).max() > 0.01


@pytest.mark.parametrize("kwargs, message", [
    ({"radii": ()}, "radii must name at least one LBP radius"),
    ({"radii": (1, 0)}, "each radius must be an integer of at least 1, got 0"),
    ({"hog_cell": 1}, "hog_cell must be an integer of at least 2, got 1"),
])
def test_face_descriptor_names_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        faces.FaceDescriptor(**kwargs)


# --- the learned metric --------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric_name", faces.METRICS)
def test_the_learned_metric_beats_its_raw_descriptor_and_pixels_on_people_it_never_saw(orl_faces, metric_name):
    from siamese_tf.metrics import roc_auc
    from siamese_tf.samplers import make_pairs

    train_people, new_people = _split_people(orl_faces, 20)
    metric = faces.LearnedMetricScorer(num_components=60, metric=metric_name).fit(train_people)
    (first, second), labels = make_pairs(new_people.images, new_people.labels, 1000, seed=0)
    aucs = {}
    for name, scorer in (("metric", metric), ("pixels", faces.PixelPairScorer()),
                         ("hog", faces.HogPairScorer())):
        aucs[name] = roc_auc(scorer.similarity(scorer.features(first), scorer.features(second)), labels)
    print(f"ORL, 10 people never fitted on, AUC ({metric_name}):",
          {name: round(value, 3) for name, value in aucs.items()})
    assert aucs["metric"] > max(aucs["pixels"], aucs["hog"]) + 0.01
    assert aucs["metric"] > 0.9


@pytest.mark.parametrize("metric_name", faces.METRICS)
def test_the_learned_metric_round_trips_through_npz(orl_faces, tmp_path, metric_name):
    train_people, new_people = _split_people(orl_faces, 20)
    metric = faces.LearnedMetricScorer(faces.FaceDescriptor(radii=(1, 2), mirror=False), num_components=30,
                                       regularization=0.01, metric=metric_name, num_iterations=3).fit(train_people)
    path = metric.save(tmp_path / "metric.npz")
    assert path.stat().st_mode & 0o777 == 0o600 and sorted(tmp_path.iterdir()) == [path]  # private, no leftovers
    loaded = faces.LearnedMetricScorer.load(path)
    assert loaded.descriptor == metric.descriptor and loaded.num_components == 30 and loaded.regularization == 0.01
    assert loaded.metric == metric_name and loaded.num_iterations == 3
    features = metric.features(new_people.images[:6])
    np.testing.assert_allclose(loaded.features(new_people.images[:6]), features, rtol=1e-5, atol=1e-5)
    similarities = metric.similarity(features[:3], features[3:])
    np.testing.assert_allclose(loaded.similarity(features[:3], features[3:]), similarities, rtol=1e-4, atol=1e-4)
    if metric_name == "wccn":  # compared by cosine: unit-length projections
        np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)


def test_a_metric_saved_before_the_joint_bayesian_option_loads_as_wccn(orl_faces, tmp_path):
    train_people, new_people = _split_people(orl_faces, 20)
    metric = faces.LearnedMetricScorer(faces.FaceDescriptor(radii=(1,), mirror=False), num_components=20,
                                       metric="wccn").fit(train_people)
    path = metric.save(tmp_path / "metric.npz")
    with np.load(path) as stored:  # the keys an older siamese_tf wrote
        np.savez(path, **{key: stored[key] for key in ("mean", "projection", "radii", "grid", "hog_cell", "mirror",
                                                       "regularization")})
    loaded = faces.LearnedMetricScorer.load(path)
    assert loaded.metric == "wccn"
    np.testing.assert_allclose(loaded.features(new_people.images[:2]), metric.features(new_people.images[:2]),
                               rtol=1e-5, atol=1e-6)


# --- the joint Bayesian model ----------------------------------------------------------------------------------

def _joint_bayesian_draws(num_people, photos_per_person, person_covariance, variation_covariance, seed=0):
    rng = np.random.default_rng(seed)
    dimension = len(person_covariance)
    identities = rng.multivariate_normal(np.zeros(dimension), person_covariance, num_people)
    labels = np.repeat(np.arange(num_people), photos_per_person)
    variations = rng.multivariate_normal(np.zeros(dimension), variation_covariance, len(labels))
    return identities[labels] + variations, labels


def _gaussian_log_density(values, covariance):
    _, log_determinant = np.linalg.slogdet(covariance)
    return -0.5 * (np.einsum("ij,jk,ik->i", values, np.linalg.inv(covariance), values) + log_determinant
                   + len(covariance) * np.log(2 * np.pi))


def test_the_joint_bayesian_similarity_is_twice_the_log_likelihood_ratio_of_same_against_different():
    """x = person + variation: a pair of one person is Gaussian with cross-covariance S_person, a pair of
    two people has none. The similarity must equal 2 (log p(pair | same) - log p(pair | different)) + c."""
    person = np.array([[2.0, 0.5], [0.5, 1.0]])
    variation = np.array([[0.5, -0.1], [-0.1, 0.3]])
    own, cross = faces.joint_bayesian_matrices(person, variation)
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    total = person + variation
    same = np.block([[total, person], [person, total]])
    different = np.block([[total, np.zeros((2, 2))], [np.zeros((2, 2)), total]])
    joined = np.concatenate([first, second], axis=1)
    log_ratio = _gaussian_log_density(joined, same) - _gaussian_log_density(joined, different)
    similarities = faces.joint_bayesian_similarity(own, cross, first, second)
    # The ratio also holds a constant (the determinants), which does not change any ranking.
    np.testing.assert_allclose(similarities - similarities.mean(), 2 * (log_ratio - log_ratio.mean()), atol=1e-9)
    # Written out for one pair: a'Aa + b'Ab - 2a'Gb.
    by_hand = first[0] @ own @ first[0] + second[0] @ own @ second[0] - 2 * first[0] @ cross @ second[0]
    assert similarities[0] == pytest.approx(by_hand)


def test_a_fitted_joint_bayesian_model_ranks_pairs_like_the_true_one():
    from siamese_tf.metrics import roc_auc

    person, variation = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([[0.5, -0.1], [-0.1, 0.3]])
    coordinates, labels = _joint_bayesian_draws(3000, 4, person, variation)
    true_model = faces.joint_bayesian_matrices(person, variation)
    errors = {}
    for iterations in (0, 10):
        own, cross = faces.fit_joint_bayesian(coordinates, labels, num_iterations=iterations)
        errors[iterations] = np.abs(own - true_model[0]).max() + np.abs(cross - true_model[1]).max()
    assert errors[10] < 0.9 * errors[0]  # the EM steps move towards the model the data came from
    # New people, never fitted on: half the pairs share a person.
    new_faces, new_labels = _joint_bayesian_draws(1000, 2, person, variation, seed=5)
    first, second = new_faces[0::2], new_faces[1::2]
    second = np.concatenate([second[:500], second[500:][::-1]])
    same = np.r_[np.ones(500), np.zeros(500)]
    fitted_auc = roc_auc(faces.joint_bayesian_similarity(own, cross, first, second), same)
    true_auc = roc_auc(faces.joint_bayesian_similarity(*true_model, first, second), same)
    assert fitted_auc > true_auc - 0.01 and true_auc > 0.8


def test_joint_bayesian_fitting_names_what_is_wrong():
    with pytest.raises(SiameseDataError, match="at least 2 people with two or more images; got 1"):
        faces.fit_joint_bayesian(np.ones((3, 2)), [0, 0, 1])
    with pytest.raises(ValueError, match=r"one label per row, got \(3, 2\) and 2 labels"):
        faces.fit_joint_bayesian(np.ones((3, 2)), [0, 0])
    with pytest.raises(ValueError, match="num_iterations must be an integer of at least 0, got -1"):
        faces.fit_joint_bayesian(np.ones((4, 2)), [0, 0, 1, 1], num_iterations=-1)
    with pytest.raises(ValueError, match=r"square matrices of one size, got \(2, 2\) and \(3, 3\)"):
        faces.joint_bayesian_matrices(np.eye(2), np.eye(3))


def test_the_learned_metric_explains_what_it_needs(orl_faces, tmp_path):
    metric = faces.LearnedMetricScorer(num_components=30)
    with pytest.raises(RuntimeError, match="not fitted: call fit"):
        metric.features(orl_faces.images[:2])
    with pytest.raises(RuntimeError, match="nothing to save"):
        metric.save(tmp_path / "metric.npz")
    one_image_each = orl_faces.select_classes([0, 1, 2])
    keep = np.r_[0:1, 10:11, 20:21]  # ORL holds 10 images per person, in order
    from siamese_tf.datasets import ImageSet

    singles = ImageSet(one_image_each.images[keep], one_image_each.labels[keep], one_image_each.class_names,
                       [one_image_each.paths[index] for index in keep])
    with pytest.raises(SiameseDataError, match="at least 2 people with two or more images; this set has 0"):
        metric.fit(singles)
    with pytest.raises(SiameseDataError, match=r"num_components \(400\) must be below the number of training "
                                               r"images \(30\)"):
        faces.LearnedMetricScorer().fit(one_image_each)
    with pytest.raises(ValueError, match="regularization must be a positive number, got 0"):
        faces.LearnedMetricScorer(regularization=0)
    with pytest.raises(ValueError, match=r"metric must be one of \('joint_bayesian', 'wccn'\), got 'lda'"):
        faces.LearnedMetricScorer(metric="lda")
    with pytest.raises(FileNotFoundError, match="no learned metric at"):
        faces.LearnedMetricScorer.load(tmp_path / "missing.npz")
    metric.fit(orl_faces.select_classes(list(range(10))))
    with pytest.raises(ValueError, match=r"saved as \.npz, got '.*metric\.keras'"):
        metric.save(tmp_path / "metric.keras")


# --- fusion ---------------------------------------------------------------------------------------------------

def test_the_fused_similarity_is_the_weighted_mean_of_standardised_parts(orl_faces):
    from siamese_tf.samplers import make_pairs

    train_people, new_people = _split_people(orl_faces, 20)
    parts = {"pixels": faces.PixelPairScorer(), "hog": faces.HogPairScorer()}
    fused = faces.FusedPairScorer(parts, weights=[3.0, 1.0]).fit(train_people, num_pairs=300)
    (first, second), _ = make_pairs(new_people.images, new_people.labels, 50, seed=2)
    a_features, b_features = fused.features(first), fused.features(second)
    by_hand = 0.0
    for name, weight in (("pixels", 0.75), ("hog", 0.25)):
        own = parts[name].similarity(parts[name].features(first), parts[name].features(second))
        mean, spread = fused.scales[name]
        by_hand = by_hand + weight * (own - mean) / spread
    np.testing.assert_allclose(fused.similarity(a_features, b_features), by_hand, rtol=1e-5, atol=1e-6)
    # combine() fuses part similarities computed elsewhere the same way.
    np.testing.assert_allclose(fused.combine(fused.part_similarities(a_features, b_features)), by_hand,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"part similarities name \['hog'\], the parts are \['hog', 'pixels'\]"):
        fused.combine({"hog": by_hand})
    with pytest.raises(ValueError, match="different numbers of pairs"):
        fused.combine({"hog": by_hand, "pixels": by_hand[:3]})
    # The scales were measured on the training people's pairs: standardised there, mean 0 and spread 1.
    (train_first, train_second), _ = make_pairs(train_people.images, train_people.labels, 300, seed=0)
    own = parts["hog"].similarity(parts["hog"].features(train_first), parts["hog"].features(train_second))
    mean, spread = fused.scales["hog"]
    assert abs(((own - mean) / spread).mean()) < 1e-6 and abs(((own - mean) / spread).std() - 1) < 1e-6


def test_fusion_with_the_network_keeps_the_label_convention(orl_faces):
    """Higher fused similarity = same person (1 = same): genuine pairs rank above impostor pairs."""
    from siamese_tf import settings
    from siamese_tf.metrics import roc_auc
    from siamese_tf.models import build_siamese_model
    from siamese_tf.samplers import make_pairs

    train_people, new_people = _split_people(orl_faces, 20)
    settings.seed_everything(0)  # the untrained network's weights: one draw, not a new one per run
    model = build_siamese_model("small_cnn", "euclidean", (64, 64, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    network = faces.EmbeddingScorer(model)
    image = orl_faces.images[:1]
    np.testing.assert_allclose(network.features(np.ascontiguousarray(image[:, :, ::-1])), network.features(image),
                               rtol=1e-4, atol=1e-5)  # a face and its mirror image embed alike
    metric = faces.LearnedMetricScorer(num_components=40).fit(train_people)
    fused = faces.FusedPairScorer({"network": network, "descriptor": metric}).fit(train_people, num_pairs=200)
    (first, second), labels = make_pairs(new_people.images, new_people.labels, 400, seed=3)
    similarities = fused.similarity(fused.features(first), fused.features(second))
    # Ranked against labels 1 = same (scale-free: the joint Bayesian log-likelihood ratio is heavy-tailed,
    # so a gap of means in standard deviations depends on the draw). An untrained network adds noise only.
    print("fused AUC, untrained network + metric:", round(roc_auc(similarities, labels), 3))
    assert roc_auc(similarities, labels) > 0.85
    assert similarities[labels == 1].mean() > similarities[labels == 0].mean()
    assert set(fused.part_similarities(fused.features(first[:3]), fused.features(second[:3]))) == {
        "network", "descriptor"}


def test_fusing_several_networks_shares_the_network_half_among_them(orl_faces):
    from siamese_tf import settings
    from siamese_tf.models import build_siamese_model

    train_people, _ = _split_people(orl_faces, 20)
    settings.seed_everything(0)
    first, second = (build_siamese_model("small_cnn", head, (64, 64, 1), embedding_dim=8, filters=(4, 4, 4, 4))
                     for head in ("euclidean", "cosine"))
    fused = faces.fuse_with_descriptor_metric({"contrastive": first, "class_proxy": second}, train_people,
                                              num_components=40, num_pairs=200)
    assert list(fused.scorers) == ["contrastive", "class_proxy", "descriptor"]
    assert fused.weights == {"contrastive": 0.25, "class_proxy": 0.25, "descriptor": 0.5}
    assert fused.scorers["class_proxy"].model is second
    single = faces.fuse_with_descriptor_metric(first, train_people, num_components=40, num_pairs=200)
    assert single.weights == {"network": 0.5, "descriptor": 0.5}
    with pytest.raises(ValueError, match=r"not starting with 'descriptor'\) to networks, got \['descriptor_2'\]"):
        faces.fuse_with_descriptor_metric({"descriptor_2": first}, train_people, num_components=40)
    with pytest.raises(ValueError, match=r"got \[\]"):
        faces.fuse_with_descriptor_metric({}, train_people, num_components=40)


def test_several_descriptors_share_the_descriptor_half_each_at_its_own_size(orl_faces, tmp_path):
    from siamese_tf import settings
    from siamese_tf.datasets import resize_images
    from siamese_tf.models import build_siamese_model

    train_people, test_people = _split_people(orl_faces, 20)
    settings.seed_everything(0)
    network = build_siamese_model("small_cnn", "euclidean", (32, 32, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    coarse, fine = faces.FaceDescriptor(grid=4, hog_cell=8, image_size=32), faces.FaceDescriptor(image_size=64)
    fused = faces.fuse_with_descriptor_metric(network, train_people, num_components=40, num_pairs=200,
                                              descriptors=[coarse, fine])
    assert list(fused.scorers) == ["network", "descriptor", "descriptor_2"]
    assert fused.weights == {"network": 0.5, "descriptor": 0.25, "descriptor_2": 0.25}
    assert fused.scorers["descriptor"].descriptor is coarse and fused.scorers["descriptor_2"].descriptor is fine
    images = test_people.images[:6]  # 64x64: the 32x32 network and the coarse descriptor resize them
    small = resize_images(images, (32, 32))
    assert small.shape == (6, 32, 32, 1)
    np.testing.assert_allclose(fused.scorers["network"].features(images), fused.scorers["network"].features(small),
                               atol=1e-6)
    np.testing.assert_allclose(coarse(images), faces.FaceDescriptor(grid=4, hog_cell=8)(small), atol=1e-6)
    assert coarse(images).shape != fine(images).shape  # each its own grid
    similarities = fused.similarity(fused.features(images), fused.features(images[::-1]))
    assert similarities.shape == (6,) and np.all(np.isfinite(similarities))
    # A saved metric keeps the size its descriptor resizes to.
    loaded = faces.LearnedMetricScorer.load(fused.scorers["descriptor"].save(tmp_path / "coarse.npz"))
    assert loaded.descriptor == coarse
    np.testing.assert_allclose(loaded.features(images), fused.scorers["descriptor"].features(images), atol=1e-4)
    with pytest.raises(ValueError, match="image_size must be an integer of at least 16, got 8"):
        faces.FaceDescriptor(image_size=8)
    with pytest.raises(ValueError, match="descriptors must be one or more FaceDescriptor"):
        faces.fuse_with_descriptor_metric(network, train_people, num_components=40, descriptors=[])


def test_fusion_names_what_is_wrong(orl_faces):
    from siamese_tf.models import build_siamese_model

    pixels, hog = faces.PixelPairScorer(), faces.HogPairScorer()
    with pytest.raises(ValueError, match="at least one scorer"):
        faces.FusedPairScorer({})
    model = build_siamese_model("small_cnn", "euclidean", (64, 64, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    with pytest.raises(ValueError, match="scorer 'net' .*wrap a SiameseModel in EmbeddingScorer"):
        faces.FusedPairScorer({"net": model})
    with pytest.raises(ValueError, match="1 weights for 2 scorers"):
        faces.FusedPairScorer({"pixels": pixels, "hog": hog}, weights=[1.0])
    with pytest.raises(ValueError, match=r"weights name \['hog', 'pixel'\]"):
        faces.FusedPairScorer({"pixels": pixels, "hog": hog}, weights={"pixel": 1.0, "hog": 1.0})
    with pytest.raises(ValueError, match="non-negative and not all zero"):
        faces.FusedPairScorer({"pixels": pixels, "hog": hog}, weights=[1.0, -1.0])
    fused = faces.FusedPairScorer({"pixels": pixels, "hog": hog})
    with pytest.raises(RuntimeError, match="not fitted"):
        fused.features(orl_faces.images[:2])
    fused.fit(orl_faces, num_pairs=100)
    features = fused.features(orl_faces.images[:2])
    with pytest.raises(ValueError, match="width 5 were not made by this scorer"):
        fused.similarity(features[:, :5], features[:, :5])
    with pytest.raises(ValueError, match="EmbeddingScorer needs a SiameseModel"):
        faces.EmbeddingScorer(pixels)


# --- cross-fitted scores for choosing a threshold ------------------------------------------------------------

@pytest.fixture(scope="module")
def lfw_folds_8_and_9(shared_data_dir):
    """LFW's folds 8 and 9 at 32x32: every person of both folds, their pairs, and each fold's people."""
    files = faces.locate_lfw(shared_data_dir)
    pairs = faces.read_lfw_pairs(files.pairs)
    people = faces.read_lfw_people(files.people)
    fold_people = {fold: [name for name, _ in people[fold - 1]] for fold in (8, 9)}
    images = faces.load_lfw(files.images, image_size=(32, 32), people=set(fold_people[8]) | set(fold_people[9]))
    return images, pairs, fold_people


def _small_metric():
    return faces.LearnedMetricScorer(faces.FaceDescriptor(radii=(1,), grid=4, mirror=False), num_components=20)


def test_fitting_on_descriptors_is_fitting_on_images(orl_faces):
    train_people, new_people = _split_people(orl_faces, 20)
    from_images = _small_metric().fit(train_people)
    template = _small_metric()
    from_descriptors = template.fit_descriptors(template.descriptor(train_people.images), train_people.labels)
    described = template.descriptor(new_people.images[:4])
    np.testing.assert_allclose(from_descriptors.features_of_descriptors(described),
                               from_images.features(new_people.images[:4]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"one label per row, got \(3, 2\) and 2 labels"):
        _small_metric().fit_descriptors(np.zeros((3, 2)), [0, 1])
    with pytest.raises(SiameseDataError, match="at least 2 people with two or more images; this set has 1"):
        _small_metric().fit_descriptors(np.zeros((30, 200)), [0] * 29 + [1])


def test_cross_fitted_scores_come_from_a_metric_fitted_without_the_fold(lfw_folds_8_and_9):
    from siamese_tf.metrics import roc_auc

    images, pairs, fold_people = lfw_folds_8_and_9
    metric = _small_metric()
    cross_fitted = faces.cross_fitted_fold_similarities(metric, images, pairs, fold_people)
    assert sorted(cross_fitted) == [8, 9] and all(len(values) == 600 for values in cross_fitted.values())
    assert not metric.fitted  # the template's settings were used, the template itself left alone
    # Fold 8's pairs scored by a metric fitted on fold 9's people only, by hand.
    fold_9 = images.select_classes([images.class_names.index(name) for name in sorted(fold_people[9])])
    by_hand = faces.score_lfw_folds(_small_metric().fit(fold_9), images, pairs, [8])[8]
    assert np.corrcoef(cross_fitted[8], by_hand)[0, 1] > 0.999
    assert roc_auc(cross_fitted[8], pairs.labels(8)) > 0.6  # 1 = same: genuine pairs score higher
    # Fitted on fold 8's own people too, a metric with more directions scores fold 8's genuine pairs far
    # higher: the in-sample scores a threshold must not be chosen on.
    wide = faces.LearnedMetricScorer(faces.FaceDescriptor(radii=(1,), grid=4, mirror=False), num_components=100)
    out_of_sample = faces.cross_fitted_fold_similarities(wide, images, pairs, fold_people)[8]
    both = images.select_classes(np.arange(images.num_classes))
    in_sample = faces.score_lfw_folds(wide.fit(both), images, pairs, [8])[8]
    genuine, impostor = pairs.labels(8) == 1, pairs.labels(8) == 0

    def separation(values):
        return (np.median(values[genuine]) - np.median(values[impostor])) / values[impostor].std()

    print(f"fold 8, genuine-impostor separation: in-sample {separation(in_sample):.2f}, "
          f"cross-fitted {separation(out_of_sample):.2f}")
    assert separation(in_sample) > separation(out_of_sample) + 0.2


def test_cross_fitting_shows_progress_only_when_asked(lfw_folds_8_and_9, capsys):
    images, pairs, fold_people = lfw_folds_8_and_9
    quiet = faces.cross_fitted_fold_similarities(_small_metric(), images, pairs, fold_people)
    assert capsys.readouterr().err == ""
    shown = faces.cross_fitted_fold_similarities(_small_metric(), images, pairs, fold_people, progress=True)
    bar = capsys.readouterr().err
    # one step for describing, one per fold, on stderr; the scores are the same either way
    assert f"cross-fitting the metric (as given, grid {_small_metric().descriptor.grid})" in bar and "3/3" in bar
    for number in (8, 9):
        np.testing.assert_array_equal(quiet[number], shown[number])


def test_cross_fitting_names_what_is_wrong(lfw_folds_8_and_9):
    images, pairs, fold_people = lfw_folds_8_and_9
    with pytest.raises(ValueError, match=r"two or more folds, got \[8\]"):
        faces.cross_fitted_fold_similarities(_small_metric(), images, pairs, {8: fold_people[8]})
    shared = fold_people[8][0]
    with pytest.raises(ValueError, match=f"{shared} is in fold 8 and fold 9"):
        faces.cross_fitted_fold_similarities(_small_metric(), images, pairs,
                                             {8: fold_people[8], 9: [*fold_people[9], shared]})
    with pytest.raises(ValueError, match="fold 8's pairs name people outside its people list"):
        faces.cross_fitted_fold_similarities(_small_metric(), images, pairs,
                                             {8: fold_people[8][:100], 9: fold_people[9]})
    missing = r"1 people of the folds are not in the image set, e.g. \['Nobody_Here'\]"
    with pytest.raises(SiameseDataError, match=missing):
        faces.cross_fitted_fold_similarities(_small_metric(), images, pairs,
                                             {8: fold_people[8], 9: [*fold_people[9], "Nobody_Here"]})
    with pytest.raises(ValueError, match="LFWPairs of read_lfw_pairs, got list"):
        faces.cross_fitted_fold_similarities(_small_metric(), images, [], fold_people)
