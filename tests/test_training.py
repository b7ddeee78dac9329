import math
import re

import keras
import numpy as np
import pytest

from siamese_tf import settings
from siamese_tf.models import build_siamese_model
from siamese_tf.samplers import PairBatches, make_pairs
from siamese_tf.training import check_minutes, compile_siamese, default_loss, pairs_to_dataset, train_siamese


def _toy_data(seed=0, num_classes=4, per_class=6, size=12):
    """Each class is a bright square at its own place, plus noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(num_classes):
        for _ in range(per_class):
            image = rng.random((size, size, 1)) * 0.2
            row, column = divmod(label, 2)
            image[row * 6:row * 6 + 6, column * 6:column * 6 + 6] += 0.8
            images.append(image)
            labels.append(label)
    return np.clip(np.array(images, "float32"), 0, 1), np.array(labels)


def _model(head="l1"):
    return build_siamese_model("small_cnn", head, (12, 12, 1), embedding_dim=8, filters=(8, 8))


class _StopAfter(keras.callbacks.Callback):
    """Simulates a crash (Ctrl-C, a lost machine) at the end of an epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.stop_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.stop_epoch:
            raise KeyboardInterrupt(f"simulated stop after epoch {epoch}")


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def test_resumed_training_ends_where_an_uninterrupted_run_ends(tmp_path):
    images, labels = _toy_data()
    validation = make_pairs(images, labels, 16, seed=5)

    def fresh_run():
        settings.seed_everything(7)
        model = compile_siamese(_model(), learning_rate=1e-2)
        return model, PairBatches(images, labels, pairs_per_epoch=32, batch_size=8, seed=3)

    model, batches = fresh_run()
    train_siamese(model, batches, 4, validation_pairs=validation, checkpoint_dir=tmp_path / "straight", verbose=0)
    uninterrupted = _weights(model)

    model, batches = fresh_run()
    with pytest.raises(KeyboardInterrupt):
        train_siamese(model, batches, 4, validation_pairs=validation, checkpoint_dir=tmp_path / "resumed",
                      callbacks=[_StopAfter(1)], verbose=0)
    model, batches = fresh_run()  # a new process would rebuild everything from scratch
    history = train_siamese(model, batches, 4, validation_pairs=validation, checkpoint_dir=tmp_path / "resumed",
                            verbose=0)
    assert len(history.history["loss"]) == 2  # only epochs 3 and 4 ran again
    for resumed, straight in zip(_weights(model), uninterrupted):
        np.testing.assert_allclose(resumed, straight, rtol=1e-4, atol=1e-5)
    assert (tmp_path / "resumed" / "best.keras").exists()


@pytest.mark.parametrize("head", ["l1", "euclidean"])
def test_training_separates_same_from_different_pairs(head):
    settings.seed_everything(0)
    images, labels = _toy_data()
    model = compile_siamese(_model(head), learning_rate=1e-2)
    (first, second), pair_labels = make_pairs(images, labels, 64, seed=1)
    before = model.similarity_pairs(first, second)
    train_siamese(model, PairBatches(images, labels, pairs_per_epoch=128, batch_size=16, seed=0), 5, verbose=0)
    after = model.similarity_pairs(first, second)
    gap_before = before[pair_labels == 1].mean() - before[pair_labels == 0].mean()
    gap_after = after[pair_labels == 1].mean() - after[pair_labels == 0].mean()
    assert gap_after > gap_before and gap_after > 0


def test_default_loss_follows_head_and_mode():
    assert default_loss(_model("l1")).name == "binary_crossentropy"
    assert default_loss(_model("euclidean")).name == "contrastive_loss"
    assert default_loss(_model("euclidean"), mode="in_batch", loss="triplet").kind == "triplet"
    with pytest.raises(ValueError, match="'contrastive' does not fit a head that outputs a probability"):
        default_loss(_model("l1"), loss="contrastive")
    with pytest.raises(ValueError, match="'triplet' needs mode='in_batch'"):
        default_loss(_model("euclidean"), loss="triplet")
    with pytest.raises(ValueError, match="'sideways'"):
        default_loss(_model("l1"), mode="sideways")


def test_train_requires_compiled_model_and_aligned_pairs():
    images, labels = _toy_data()
    with pytest.raises(ValueError, match="Compile the model first"):
        train_siamese(_model(), PairBatches(images, labels, 8, 4), 1)
    with pytest.raises(ValueError, match="3 first images, 2 second images and 3 labels"):
        pairs_to_dataset(((images[:3], images[:2]), labels[:3]))


def test_class_balanced_batches_are_p_by_k_and_reproducible():
    from siamese_tf.samplers import ClassBalancedBatches

    images, labels = _toy_data(per_class=3)
    batches = ClassBalancedBatches(images, labels, classes_per_batch=3, images_per_class=4, steps_per_epoch=2, seed=1)
    batch_images, batch_labels = batches.batch(0, 1)
    assert batch_images.shape == (12, 12, 12, 1) and batches.pairs_per_batch == 66
    values, counts = np.unique(batch_labels, return_counts=True)
    assert len(values) == 3 and set(counts) == {4}
    np.testing.assert_array_equal(batches.batch(0, 1)[1], batch_labels)
    assert not np.array_equal(batches.batch(1, 1)[0], batch_images)
    with pytest.raises(ValueError, match="classes_per_batch=5 but only 4 classes"):
        ClassBalancedBatches(images, labels, classes_per_batch=5)


@pytest.mark.parametrize("head, loss", [("l1", None), ("euclidean", "contrastive"), ("euclidean", "triplet")])
def test_in_batch_training_learns_and_saves_the_same_model(tmp_path, head, loss):
    from siamese_tf.models import load_model, save_model
    from siamese_tf.samplers import ClassBalancedBatches

    settings.seed_everything(0)
    images, labels = _toy_data()
    model = compile_siamese(_model(head), learning_rate=1e-2, mode="in_batch", loss=loss)
    (first, second), pair_labels = make_pairs(images, labels, 64, seed=1)
    before = model.similarity_pairs(first, second)
    batches = ClassBalancedBatches(images, labels, classes_per_batch=4, images_per_class=3, steps_per_epoch=10)
    train_siamese(model, batches, 3, verbose=0)
    after = model.similarity_pairs(first, second)
    gap_before = before[pair_labels == 1].mean() - before[pair_labels == 0].mean()
    gap_after = after[pair_labels == 1].mean() - after[pair_labels == 0].mean()
    assert gap_after > gap_before and gap_after > 0
    restored = load_model(save_model(model, tmp_path / "in_batch.keras"))
    np.testing.assert_allclose(restored.similarity_pairs(first, second), after, rtol=1e-5, atol=1e-6)


def test_mode_mismatch_between_compile_and_batches_is_an_error():
    from siamese_tf.samplers import ClassBalancedBatches

    images, labels = _toy_data()
    model = compile_siamese(_model(), mode="pairs")
    with pytest.raises(ValueError, match="compiled for mode='pairs' but got ClassBalancedBatches"):
        train_siamese(model, ClassBalancedBatches(images, labels, 2, 2, 1), 1)


def test_in_batch_validation_uses_the_same_frozen_batches_every_epoch():
    from siamese_tf.samplers import ClassBalancedBatches

    settings.seed_everything(0)
    images, labels = _toy_data()
    validation = ClassBalancedBatches(images, labels, 3, 2, steps_per_epoch=2, seed=9)
    frozen = validation.frozen_dataset(epoch=0)
    passes = [[labels_batch.numpy() for _, labels_batch in frozen] for _ in range(2)]
    for first_pass, second_pass in zip(*passes):
        np.testing.assert_array_equal(first_pass, second_pass)
    np.testing.assert_array_equal(passes[0][1], validation.batch(0, 1)[1])

    model = compile_siamese(_model("euclidean"), mode="in_batch")
    train = ClassBalancedBatches(images, labels, 2, 3, steps_per_epoch=2)
    history = train_siamese(model, train, 2, validation_pairs=validation, verbose=0)
    assert len(history.history["val_loss"]) == 2
    with pytest.raises(ValueError, match="validates on ClassBalancedBatches"):
        train_siamese(model, train, 1, validation_pairs=make_pairs(images, labels, 8), verbose=0)


def test_class_proxy_training_separates_classes_and_checks_its_input():
    from siamese_tf.embeddings import get_embedding
    from siamese_tf.training import TimeLimit, train_with_class_proxies

    rng = np.random.default_rng(0)
    # Four classes of noisy bright/dark quadrants: learnable in a few steps.
    labels = np.repeat(np.arange(4), 16)
    images = rng.uniform(0.0, 0.2, (64, 16, 16, 1)).astype(np.float32)
    for index, label in enumerate(labels):
        row, column = divmod(int(label), 2)
        images[index, row * 8:(row + 1) * 8, column * 8:(column + 1) * 8] += 0.8
    embedding = get_embedding("small_cnn", (16, 16, 1), embedding_dim=8, filters=(8, 8, 8, 8))
    history = train_with_class_proxies(embedding, images, labels, num_epochs=15, batch_size=16, learning_rate=1e-2,
                                       verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    features = embedding.predict_on_batch(images)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    similarity = features @ features.T
    same = labels[:, None] == labels[None, :]
    assert similarity[same].mean() > similarity[~same].mean() + 0.3
    with pytest.raises(ValueError, match="batch_size must be an integer from 2 to the 64 images, got 100"):
        train_with_class_proxies(embedding, images, labels, num_epochs=1, batch_size=100)
    with pytest.raises(ValueError, match="at least 2 classes"):
        train_with_class_proxies(embedding, images, np.zeros(64, int), num_epochs=1, batch_size=16)
    with pytest.raises(ValueError, match="minutes must be a positive number of minutes, got 0"):
        TimeLimit(0)
    with pytest.raises(ValueError, match="minutes must be a positive number of minutes, got None"):
        TimeLimit(None)


def test_class_proxy_training_takes_larger_images_cropped_in_the_graph():
    from siamese_tf.embeddings import get_embedding
    from siamese_tf.training import build_proxy_trainer, train_with_class_proxies

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 8)
    images = rng.random((32, 20, 20, 1), dtype=np.float32)
    embedding = get_embedding("small_cnn", (16, 16, 1), embedding_dim=8, filters=(8, 8, 8, 8))
    crop = keras.layers.RandomCrop(16, 16, seed=0)
    trainer = build_proxy_trainer(embedding, 4, crop, input_shape=(20, 20, 1))
    assert tuple(trainer.input_shape[1:]) == (20, 20, 1) and tuple(trainer.output_shape) == (None, 4)
    history = train_with_class_proxies(embedding, images, labels, num_epochs=2, batch_size=8, augmentation=crop,
                                       verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    # Without a crop the 20x20 images do not fit the 16x16 network.
    with pytest.raises(ValueError):
        train_with_class_proxies(embedding, images, labels, num_epochs=1, batch_size=8, verbose=0)


def test_time_limit_anneals_by_the_clock_and_stops(monkeypatch):
    from siamese_tf import training

    clock = [100.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: clock[0])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    limit = training.TimeLimit(minutes=1.0, learning_rate=0.01, final_fraction=0.1)
    limit.set_model(model)
    limit.on_train_begin()
    limit.on_train_batch_begin(0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    clock[0] += 30.0  # half the budget: cosine at its midpoint
    limit.on_train_batch_begin(1)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    limit.on_train_batch_end(1)
    assert not model.stop_training
    clock[0] += 30.0
    limit.on_train_batch_begin(2)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
    limit.on_train_batch_end(2)
    assert model.stop_training


def _learning_rates(budget, model, num_steps, clock=None, seconds_per_step=0.0):
    """The optimizer's rate at each of ``num_steps`` batches run under ``budget``, the clock moved after each."""
    rates = []
    for step in range(num_steps):
        budget.on_train_batch_begin(step)
        rates.append(float(model.optimizer.learning_rate))
        budget.on_train_batch_end(step)
        if clock is not None:
            clock[0] += seconds_per_step
    return rates


def test_a_run_that_reaches_its_step_cap_first_still_ends_annealed(monkeypatch):
    from siamese_tf import training

    clock = [0.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: clock[0])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    # A 30-minute budget, but the run's epochs hold only 4 steps, 1 minute apart.
    limit = training.TimeLimit(minutes=30.0, learning_rate=1.0, final_fraction=0.05, total_steps=4)
    limit.set_model(model)
    limit.on_train_begin()
    rates = _learning_rates(limit, model, num_steps=4, clock=clock, seconds_per_step=60.0)
    # By steps: fractions 0, 1/3, 2/3, 1 (the clock is at most 3/30 along): the last step at 5%.
    expected = [0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * fraction)) for fraction in (0, 1 / 3, 2 / 3, 1)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert rates[-1] == pytest.approx(0.05) and not model.stop_training  # the epochs end it, not the clock
    # The clock still leads when it is further along than the steps.
    clock[0] = 0.0
    limit.on_train_begin()
    limit.steps = 0
    clock[0] = 15 * 60.0
    limit.on_train_batch_begin(0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05 + 0.95 * 0.5)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"total_steps must be a positive integer or None, got {bad!r}"):
            training.TimeBudget(1.0, total_steps=bad)
    # Without a clock the steps alone carry the cosine; with neither there is nothing to follow.
    steps_only = training.TimeBudget(None, learning_rate=1.0, total_steps=3)
    steps_only.set_model(model)
    steps_only.on_train_begin()
    rates = _learning_rates(steps_only, model, num_steps=3)
    np.testing.assert_allclose(rates, [1.0, 0.525, 0.05], rtol=1e-6)
    with pytest.raises(ValueError, match="a learning-rate schedule needs minutes or total_steps to follow"):
        training.TimeBudget(None, learning_rate=1.0)


def test_a_per_epoch_time_budget_lets_the_epoch_finish_and_says_it_stopped_for_time(monkeypatch):
    from siamese_tf import training

    clock = [0.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: clock[0])
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False  # what fit() sets before the first epoch
    budget = training.TimeBudget(minutes=1.0, per_epoch=True)
    budget.set_model(model)
    budget.on_train_begin()
    clock[0] = 61.0
    budget.on_train_batch_end(0)
    assert not model.stop_training and budget.steps == 1  # mid-epoch: the epoch goes on
    budget.on_epoch_end(0)
    assert model.stop_training and budget.stopped_for_time
    for bad in (0, -1.0, "5", float("nan"), float("inf"), True):
        message = f"minutes must be a positive number of minutes or None, got {bad!r}"
        with pytest.raises(ValueError, match=re.escape(message)):
            training.TimeBudget(bad)
    with pytest.raises(ValueError, match="final_fraction must lie in"):
        training.TimeBudget(1.0, final_fraction=1.5)


def test_check_minutes_keeps_usable_budgets_and_names_every_bad_one():
    assert check_minutes(None) is None
    for good, expected in ((24, 24.0), (0.5, 0.5), (np.float32(2.5), 2.5), (np.int64(3), 3.0)):
        value = check_minutes(good)
        assert value == expected and type(value) is float
    for bad in (0, -3, float("nan"), float("inf"), True, "24", [5]):
        message = f"minutes must be a positive number of minutes or None, got {bad!r}"
        with pytest.raises(ValueError, match=re.escape(message)):
            check_minutes(bad)
    with pytest.raises(ValueError, match=re.escape("minutes must be a positive number of minutes, got None")):
        check_minutes(None, allow_none=False)


def test_progress_bars_turn_into_one_line_per_epoch_when_output_goes_to_a_file(monkeypatch):
    import io
    import sys

    from siamese_tf.settings import progress_verbosity

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert progress_verbosity("auto") == 2
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert progress_verbosity("auto") == 1
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", object())  # a notebook: the live bar renders there
    assert progress_verbosity("auto") == 1
    assert progress_verbosity(0) == 0 and progress_verbosity(2) == 2
    with pytest.raises(ValueError, match="verbose must be 'auto', 0, 1 or 2, got 'loud'"):
        progress_verbosity("loud")


def test_progress_bars_of_long_steps_write_plain_lines_to_a_log_and_live_bars_to_a_terminal(monkeypatch):
    import io
    import sys

    from siamese_tf.settings import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    for stream, live in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        assert list(progress_bar(range(3), desc="cross-fitting", unit="fold")) == [0, 1, 2]
        written = stream.getvalue()
        assert "cross-fitting" in written and "3/3" in written
        # a log gets whole lines (the first and the last here: at most one every 30 seconds between),
        # a terminal the carriage-return updates of a live bar
        assert ("\r" in written) == live
        if not live:
            lines = written.splitlines()
            assert written.endswith("\n") and len(lines) == 2 and "0/3" in lines[0] and "3/3" in lines[1]
    # a caller's faster refresh (for a live bar) does not flood a log
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert list(progress_bar(range(50), desc="CAPTCHAs", mininterval=0.0)) == list(range(50))
    assert len(sys.stderr.getvalue().splitlines()) == 2
    # nor does tqdm's monitor thread, which redraws a bar idle for maxinterval seconds (a line every
    # 10-20 s in a log of 15-second steps before)
    with progress_bar(total=8, desc="cross-fitting", maxinterval=5.0) as bar:
        assert bar.mininterval >= 30 and bar.maxinterval >= 30
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert list(progress_bar(range(2), desc="quiet", disable=True)) == [0, 1] and sys.stderr.getvalue() == ""
