import numpy as np
import pytest

from siamese_tf.libraries import TemplateLibrary
from siamese_tf.models import build_siamese_model


@pytest.fixture(scope="module", params=["l1", "euclidean"])
def model(request):
    return build_siamese_model("small_cnn", request.param, (16, 16, 1), embedding_dim=8, filters=(4, 4))


@pytest.fixture(scope="module")
def templates():
    rng = np.random.default_rng(0)
    images = rng.random((9, 16, 16, 1)).astype("float32")
    labels = np.array([0, 1, 2, 3, 1, 2, 4, 4, 0])  # several templates for some classes (few-shot)
    return images, labels


def test_class_scores_are_the_best_template_of_each_class(model, templates):
    images, labels = templates
    library = TemplateLibrary.from_images(model, images, labels)
    queries = model.embed(images[:3] * 0.9)
    per_template = library.similarities(queries)
    per_class = library.class_similarities(queries)
    for label in range(5):
        np.testing.assert_allclose(per_class[:, label], per_template[:, labels == label].max(axis=1), rtol=1e-6)


def test_match_ranks_classes_like_a_brute_force_sort(model, templates):
    images, labels = templates
    library = TemplateLibrary.from_images(model, images, labels)
    queries = np.random.default_rng(1).random((4, 16, 16, 1)).astype("float32")
    matches = library.match(queries, top_k=3)
    per_class = library.class_similarities(model.embed(queries))
    expected = np.argsort(-per_class, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(matches.labels, expected)
    assert matches.similarities.shape == (4, 3)
    assert np.all(np.diff(matches.similarities, axis=1) <= 0)
    assert all(labels[index] == label for row_i, row_l in zip(matches.indices, matches.labels)
               for index, label in zip(row_i, row_l))


def test_a_template_matches_itself_first_with_a_distance_head(templates):
    distance_model = build_siamese_model("small_cnn", "euclidean", (16, 16, 1), embedding_dim=8, filters=(4, 4))
    images, labels = templates
    library = TemplateLibrary.from_images(distance_model, images[:5], labels[:5] * 0 + np.arange(5))
    accuracy = library.top_k_accuracy(images[:5], np.arange(5), ks=(1, 2))
    assert accuracy == {"top_1": 1.0, "top_2": 1.0}


def test_save_load_round_trip_and_errors(tmp_path, model, templates):
    images, labels = templates
    library = TemplateLibrary.from_images(model, images, labels, class_names=list("abcde"))
    path = library.save(tmp_path / "library.npz")
    restored = TemplateLibrary.load(path, model)
    np.testing.assert_array_equal(restored.labels, labels)
    assert restored.class_names == list("abcde")
    other = build_siamese_model("small_cnn", "l1", (16, 16, 1), embedding_dim=5, filters=(4, 4))
    with pytest.raises(ValueError, match="8-d embeddings but the model makes 5-d"):
        TemplateLibrary.load(path, other)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        TemplateLibrary.load(tmp_path / "missing.npz", model)
    with pytest.raises(ValueError, match="top_k"):
        library.match(images, top_k=0)


def test_add_grows_the_library(model, templates):
    images, labels = templates
    library = TemplateLibrary.from_images(model, images[:4], labels[:4])
    library.add(images[4:], labels[4:])
    assert len(library) == len(images)
    with pytest.raises(ValueError, match="5 new templates but 2 labels"):
        library.add(images[4:], labels[:2])


def test_one_template_per_class_in_any_label_order(model, templates):
    images, _ = templates
    labels = np.array([3, 0, 4, 1, 2])  # unique labels, not in template order
    library = TemplateLibrary.from_images(model, images[:5], labels)
    queries = model.embed(images[5:8])
    per_template = library.similarities(queries)
    per_class = library.class_similarities(queries)
    np.testing.assert_allclose(per_class[:, labels], per_template, rtol=1e-6)
    matches = library.match(query_embeddings=queries, top_k=2)
    np.testing.assert_array_equal(labels[matches.indices], matches.labels)


def test_library_scores_equal_the_keras_head(model, templates):
    from siamese_tf import heads

    images, labels = templates
    library = TemplateLibrary.from_images(model, images, labels)
    queries = model.embed(images[:4] * 0.8)
    expected = heads.to_similarity(heads.score_library(model.head, queries, library.embeddings), model.head)
    np.testing.assert_allclose(library.similarities(queries), expected, rtol=1e-4, atol=1e-5)
