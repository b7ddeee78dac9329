import keras
import numpy as np
import pytest

from siamese_tf.layers import CosineDistance, EuclideanDistance, L1Dist, L2Normalization


def test_l1dist_matches_hand_computed_values():
    first = np.array([[1.0, -2.0, 3.0]], dtype="float32")
    second = np.array([[0.5, 2.0, 3.0]], dtype="float32")
    result = keras.ops.convert_to_numpy(L1Dist()(first, second))
    np.testing.assert_allclose(result, [[0.5, 4.0, 0.0]])


def test_l1dist_accepts_a_list_and_keeps_the_shape():
    first = np.ones((4, 7), "float32")
    second = np.zeros((4, 7), "float32")
    result = L1Dist()([first, second])
    assert tuple(result.shape) == (4, 7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(result), 1.0)


def test_l1dist_in_a_functional_model_reports_its_output_shape():
    first = keras.Input((5,))
    second = keras.Input((5,))
    output = L1Dist(name="distance")(first, second)
    assert tuple(output.shape) == (None, 5)
    model = keras.Model([first, second], output)
    assert model.get_layer("distance").__class__ is L1Dist


def test_l1dist_rejects_shape_mismatch_naming_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        L1Dist()(np.ones((2, 3), "float32"), np.ones((2, 4), "float32"))


@pytest.mark.parametrize("inputs", [[np.ones((1, 2))], [np.ones((1, 2))] * 3])
def test_l1dist_rejects_wrong_number_of_inputs(inputs):
    with pytest.raises(ValueError, match="exactly two tensors"):
        L1Dist()(inputs)


def test_l1dist_config_round_trip_and_serialization():
    layer = L1Dist(name="l1_distance", dtype="float32")
    config = layer.get_config()
    restored = L1Dist.from_config(config)
    assert restored.name == "l1_distance"
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "siamese_tf>L1Dist"
    assert isinstance(keras.saving.deserialize_keras_object(serialized), L1Dist)


def test_euclidean_and_cosine_layers_hand_computed():
    first = np.array([[3.0, 0.0]], "float32")
    second = np.array([[0.0, 4.0]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(EuclideanDistance()(first, second)), [5.0], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(CosineDistance()(first, second)), [1.0], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(CosineDistance()(first, 2 * first)), [0.0], atol=1e-6)


def test_l2_normalization_gives_unit_vectors_and_round_trips():
    layer = L2Normalization(axis=-1)
    result = keras.ops.convert_to_numpy(layer(np.array([[3.0, 4.0]], "float32")))
    np.testing.assert_allclose(result, [[0.6, 0.8]], rtol=1e-6)
    assert L2Normalization.from_config(layer.get_config()).axis == -1
    with pytest.raises(ValueError, match="epsilon"):
        L2Normalization(epsilon=0)


def test_cosine_proxies_give_cosines_to_each_class_proxy(tmp_path):
    import keras

    from siamese_tf.layers import CosineProxies

    layer = CosineProxies(3)
    embeddings = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)
    layer.build((None, 2))
    proxies = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], np.float32)
    layer.proxies.assign(proxies)
    unit_proxies = proxies / np.linalg.norm(proxies, axis=0, keepdims=True)
    expected = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)) @ unit_proxies
    np.testing.assert_allclose(np.asarray(layer(embeddings)), expected, rtol=1e-6)
    assert np.asarray(layer(embeddings))[0, 0] == pytest.approx(0.6)  # 3 / 5 by hand
    model = keras.Sequential([keras.Input((2,)), layer])
    model.save(tmp_path / "proxies.keras")
    restored = keras.saving.load_model(tmp_path / "proxies.keras")
    np.testing.assert_allclose(np.asarray(restored(embeddings)), expected, rtol=1e-6)


def test_cosine_proxies_need_two_classes():
    from siamese_tf.layers import CosineProxies

    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        CosineProxies(1)


def test_cosines_of_small_float16_components_are_measured_in_float32():
    from siamese_tf.distances import cosine_distance, pairwise_cosine, unit_vectors
    from siamese_tf.layers import CosineProxies

    # 64 components of 2e-4: their squares underflow in float16, so a float16 length was 0 or
    # badly rounded (a vector came out 0.33 away from itself).
    small = np.full((2, 64), 2e-4, np.float16)
    small[1, :32] = -2e-4
    assert keras.backend.standardize_dtype(unit_vectors(small).dtype) == "float16"
    np.testing.assert_allclose(np.linalg.norm(np.asarray(unit_vectors(small), np.float32), axis=1), 1.0, atol=2e-3)
    np.testing.assert_allclose(np.asarray(cosine_distance(small, small), np.float32), [0.0, 0.0], atol=2e-3)
    np.testing.assert_allclose(np.asarray(pairwise_cosine(small, small), np.float32), [[0, 1], [1, 0]], atol=2e-3)
    half, full = CosineProxies(3, dtype="float16"), CosineProxies(3)
    half.build((None, 64))
    full.build((None, 64))
    proxies = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    half.proxies.assign(proxies)
    full.proxies.assign(proxies)
    np.testing.assert_allclose(np.asarray(half(small), np.float32), np.asarray(full(small.astype(np.float32))),
                               atol=5e-3)
    np.testing.assert_array_equal(np.asarray(unit_vectors(np.zeros((1, 4), np.float32))), np.zeros((1, 4)))



def test_fused_batch_normalization_trains_like_keras_batch_normalization(tmp_path, monkeypatch):
    import tensorflow as tf

    from siamese_tf.layers import FusedBatchNormalization

    rng = np.random.default_rng(0)
    batch = tf.constant(rng.normal(2.0, 3.0, size=(8, 5, 5, 4)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(8, 5, 5, 4)).astype(np.float32))  # d(loss)/d(outputs)
    gamma, beta = rng.uniform(0.5, 2.0, 4).astype(np.float32), np.arange(4, dtype=np.float32)
    calls = []
    kernel = tf.compat.v1.nn.fused_batch_norm
    monkeypatch.setattr(tf.compat.v1.nn, "fused_batch_norm",
                        lambda *args, **kwargs: calls.append(1) or kernel(*args, **kwargs))
    results = {}
    for name, layer in (("fused", FusedBatchNormalization(momentum=0.9)),
                        ("keras", keras.layers.BatchNormalization(momentum=0.9))):
        layer.build(batch.shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
        with tf.GradientTape() as tape:
            tape.watch(batch)
            loss = tf.reduce_sum(layer(batch, training=True) * upstream)
        gradients = tape.gradient(loss, [batch, layer.gamma, layer.beta])
        results[name] = [layer(batch, training=True).numpy(), *[gradient.numpy() for gradient in gradients],
                         layer.moving_mean.numpy(), layer.moving_variance.numpy(), layer(batch, training=False).numpy()]
        if name == "fused":
            assert len(calls) == 2  # both training calls took the fused kernel, inference did not
    for fused_values, keras_values in zip(results["fused"], results["keras"]):
        np.testing.assert_allclose(fused_values, keras_values, rtol=1e-4, atol=1e-4)
    # by hand: one training call moves the moving mean a tenth of the way to the batch mean
    np.testing.assert_allclose(results["fused"][4], 0.19 * batch.numpy().mean(axis=(0, 1, 2)), rtol=1e-4)


def test_fused_batch_normalization_falls_back_to_keras_and_round_trips(tmp_path):
    from siamese_tf.layers import FusedBatchNormalization

    flat = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)  # 2-D: not the fused case
    fused, plain = FusedBatchNormalization(), keras.layers.BatchNormalization()
    np.testing.assert_allclose(np.asarray(fused(flat, training=True)), np.asarray(plain(flat, training=True)),
                               rtol=1e-5, atol=1e-5)
    model = keras.Sequential([keras.Input((4, 4, 2)), FusedBatchNormalization(momentum=0.8, name="bn")])
    model.save(tmp_path / "bn.keras")
    restored = keras.saving.load_model(tmp_path / "bn.keras")
    assert isinstance(restored.get_layer("bn"), FusedBatchNormalization)
    assert restored.get_layer("bn").get_config() == model.get_layer("bn").get_config()
