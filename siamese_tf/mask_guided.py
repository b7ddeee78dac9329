"""Mask-guided Siamese classification (Alqasir, Muselet & Ducottet, VISAPP 2020).

An image is classified by comparing it with its domain's binary masks, one per class (for
chairlifts: the safety bar open or closed). A Siamese network embeds images and masks (masks
repeated to 3 channels, so both branches share weights) into a 2-D space; the contrastive loss
pulls an image towards the mask of its own class and pushes it away from the other mask. At test
time an image takes the class of the nearer of its domain's two masks, which also works on a
domain never seen in training: only its two masks are needed.

Pair labels follow the package convention: **1 = same** (image with the mask of its own class),
0 = different (image with the domain's other mask). Class ids: 0 = closed, 1 = open.

- :func:`image_mask_pairs`, :class:`MaskPairBatches`, :func:`validation_pairs`: the pairs.
- :func:`build_mask_guided_siamese`, :func:`train_mask_guided_siamese`, :func:`predict_with_masks`.
- :func:`build_classifier`, :func:`train_classifier`, :func:`predict_classifier`: the same network
  as a plain softmax classifier (the paper's baseline; it never sees a mask).
- :func:`per_domain_accuracy`, :func:`accuracy_table` (the paper's Table 2),
  :func:`plot_embedding_by_domain` (its Figures 4 and 5).
"""

import keras
import numpy as np
import tensorflow as tf

from siamese_tf.chairlifts import CLASS_NAMES, MaskGuidedData
from siamese_tf.embeddings import mask_guided_sister_embedding
from siamese_tf.heads import DistanceHead
from siamese_tf.models import SiameseModel
from siamese_tf.samplers import DIFFERENT_LABEL, SAME_LABEL
from siamese_tf.training import compile_siamese, train_siamese


def _check_data(data, name="data"):
    if not isinstance(data, MaskGuidedData):
        raise ValueError(f"{name} must be a siamese_tf.chairlifts.MaskGuidedData, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} holds no images")
    return data


# --- pairs --------------------------------------------------------------------------------------

def image_mask_pairs(data):
    """Every image paired with both masks of its own domain: half positive, half negative.

    Returns ``(image_indices, mask_indices, labels)``; ``mask_indices`` index
    ``data.masks.reshape(-1, H, W, 3)`` (``domain * 2 + class``), labels are 1 (same: the mask of
    the image's class) or 0 (different: the domain's other mask). Pairs never cross domains.
    """
    _check_data(data)
    image_indices = np.repeat(np.arange(len(data)), 2)
    mask_classes = np.tile([0, 1], len(data))
    mask_indices = data.domain_ids[image_indices] * 2 + mask_classes
    labels = np.where(mask_classes == data.class_ids[image_indices], SAME_LABEL, DIFFERENT_LABEL)
    return image_indices, mask_indices, labels.astype(np.float32)


def validation_pairs(data):
    """``((images, masks), labels)`` numpy arrays of :func:`image_mask_pairs` (for validation)."""
    image_indices, mask_indices, labels = image_mask_pairs(data)
    flat_masks = data.masks.reshape((-1,) + data.image_shape)
    return (data.images[image_indices], flat_masks[mask_indices]), labels


class MaskPairBatches:
    """Training batches of (image, mask) pairs for :func:`siamese_tf.training.train_siamese`.

    Each epoch holds every image with both of its domain's masks (so exactly 50% positive, 50%
    negative), shuffled anew each epoch from ``seed``. Images and masks stay in one tensor each
    and batches gather from them, so memory does not grow with the number of pairs.
    """

    def __init__(self, data, batch_size=32, seed=0):
        _check_data(data)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.data = data
        self.batch_size = batch_size
        self.seed = int(seed)
        self.image_indices, self.mask_indices, self.labels = image_mask_pairs(data)

    def __len__(self):
        return int(np.ceil(len(self.labels) / self.batch_size))

    def dataset(self):
        images = tf.constant(self.data.images)
        masks = tf.constant(self.data.masks.reshape((-1,) + self.data.image_shape))
        pairs = tf.data.Dataset.from_tensor_slices(
            (self.image_indices.astype(np.int32), self.mask_indices.astype(np.int32), self.labels))
        pairs = pairs.shuffle(len(self.labels), seed=self.seed, reshuffle_each_iteration=True)

        def gather(image_index, mask_index, label):
            return (tf.gather(images, image_index), tf.gather(masks, mask_index)), label

        dataset = pairs.batch(self.batch_size).map(gather)
        options = tf.data.Options()
        options.autotune.enabled = False  # ENVIRONMENT_NOTES: autotune stalls the end of fit()
        return dataset.with_options(options).prefetch(2)

    def callback(self):
        """A no-op callback (the shuffle is seeded by tf.data itself); train_siamese asks for one."""
        return keras.callbacks.Callback()


# --- the Siamese model --------------------------------------------------------------------------

def build_mask_guided_siamese(image_shape=(64, 64, 3), embedding_dim=2, learning_rate=1e-3, margin=1.0,
                              name="mask_guided_siamese"):
    """The paper's Siamese network: the sister embedding, Euclidean distance, contrastive loss.

    Returns a compiled :class:`~siamese_tf.models.SiameseModel` whose head outputs distances
    (lower = same).
    """
    embedding = mask_guided_sister_embedding(tuple(image_shape), embedding_dim=embedding_dim)
    model = SiameseModel(embedding, DistanceHead("euclidean", name="head"), name=name)
    return compile_siamese(model, learning_rate=learning_rate, margin=margin)


def train_mask_guided_siamese(model, train_data, num_epochs, validation_data=None, batch_size=32, seed=0,
                              verbose=0, callbacks=(), method="shared_masks", on_epoch_end=None):
    """Train on all image/mask pairs of ``train_data`` (every image with both of its domain's masks).

    Two methods give the same objective (the mean contrastive loss over all pairs, half of them
    positive):

    - ``"shared_masks"`` (default, about twice as fast): each step embeds a batch of images once
      and all masks once, then scores every image against its own domain's two masks. Returns a
      dict ``{"loss": [...], "val_loss": [...]}`` per epoch; ``on_epoch_end(epoch, logs)`` is
      called after each epoch (progress, evaluation).
    - ``"pairs"``: :class:`MaskPairBatches` through :func:`siamese_tf.training.train_siamese`
      (two embedding passes per pair, Keras callbacks, checkpoints); returns the Keras History.
    """
    if method == "pairs":
        batches = MaskPairBatches(train_data, batch_size=batch_size, seed=seed)
        validation = None
        if validation_data is not None and len(validation_data):
            validation = validation_pairs(validation_data)
        return train_siamese(model, batches, num_epochs, validation_pairs=validation, verbose=verbose,
                             callbacks=callbacks)
    if method != "shared_masks":
        raise ValueError(f"Unknown training method {method!r}; choose 'shared_masks' or 'pairs'")
    _check_data(train_data, "train_data")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    if getattr(model, "optimizer", None) is None or not hasattr(model.loss, "margin"):
        raise ValueError("Compile the model with a contrastive loss first (build_mask_guided_siamese does)")
    margin = float(model.loss.margin)
    train_step, loss_of = _shared_mask_steps(model, margin)
    train_masks = tf.constant(train_data.masks.reshape((-1,) + train_data.image_shape))
    dataset = _image_dataset(train_data, batch_size, seed)
    history = {"loss": [], "val_loss": []}
    for epoch in range(num_epochs):
        losses, weights = [], []
        for images, class_ids, domain_ids in dataset:
            losses.append(float(train_step(images, class_ids, domain_ids, train_masks)))
            weights.append(int(images.shape[0]))
        logs = {"loss": float(np.average(losses, weights=weights))}
        if validation_data is not None and len(validation_data):
            logs["val_loss"] = shared_mask_loss(model, validation_data, batch_size=128, _loss_of=loss_of)
            history["val_loss"].append(logs["val_loss"])
        history["loss"].append(logs["loss"])
        if verbose:
            print(f"epoch {epoch + 1}/{num_epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)
    return history


def _image_dataset(data, batch_size, seed=None):
    dataset = tf.data.Dataset.from_tensor_slices(
        (data.images, data.class_ids.astype(np.int32), data.domain_ids.astype(np.int32)))
    if seed is not None:
        dataset = dataset.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False  # ENVIRONMENT_NOTES: autotune stalls
    return dataset.batch(batch_size).with_options(options).prefetch(2)


def _shared_mask_steps(model, margin):
    """Compiled loss and training step of the ``"shared_masks"`` method for ``model``."""
    from siamese_tf.losses import contrastive_loss

    def loss_of(images, class_ids, domain_ids, flat_masks, training):
        image_embeddings = model.embedding(images, training=training)
        mask_embeddings = model.embedding(flat_masks, training=training)
        own = tf.gather(mask_embeddings, domain_ids * 2 + class_ids)
        other = tf.gather(mask_embeddings, domain_ids * 2 + 1 - class_ids)
        same = contrastive_loss(tf.ones_like(class_ids), model.head(image_embeddings, own), margin)
        different = contrastive_loss(tf.zeros_like(class_ids), model.head(image_embeddings, other), margin)
        return 0.5 * (tf.reduce_mean(same) + tf.reduce_mean(different))

    variables = model.embedding.trainable_variables

    @tf.function(reduce_retracing=True)
    def train_step(images, class_ids, domain_ids, flat_masks):
        with tf.GradientTape() as tape:
            loss = loss_of(images, class_ids, domain_ids, flat_masks, True)
        model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return train_step, tf.function(loss_of, reduce_retracing=True)


def shared_mask_loss(model, data, batch_size=128, _loss_of=None):
    """The mean contrastive loss over all image/mask pairs of ``data`` (label 1 = same), no training.

    Equals what ``model.evaluate`` gives on :func:`validation_pairs` (checked in the tests).
    """
    _check_data(data)
    loss_of = _loss_of or _shared_mask_steps(model, float(getattr(model.loss, "margin", 1.0)))[1]
    flat_masks = tf.constant(data.masks.reshape((-1,) + data.image_shape))
    total = 0.0
    for images, class_ids, domain_ids in _image_dataset(data, batch_size):
        total += float(loss_of(images, class_ids, domain_ids, flat_masks, False)) * int(images.shape[0])
    return total / len(data)


def mask_distances(model, data, batch_size=128):
    """(N, 2) Euclidean distances of each image to its domain's closed and open masks."""
    _check_data(data)
    image_embeddings = model.embed(data.images, batch_size)
    mask_embeddings = model.embed(data.masks.reshape((-1,) + data.image_shape), batch_size)
    mask_embeddings = mask_embeddings.reshape(len(data.domain_names), 2, -1)
    own_masks = mask_embeddings[data.domain_ids]  # (N, 2, D)
    return np.linalg.norm(image_embeddings[:, None, :] - own_masks, axis=-1)


def predict_with_masks(model, data, batch_size=128):
    """Class ids (0 = closed, 1 = open): the nearer of the image's own domain's two masks."""
    return np.argmin(mask_distances(model, data, batch_size), axis=1)


# --- the classifier baseline --------------------------------------------------------------------

def build_classifier(image_shape=(64, 64, 3), learning_rate=1e-3, name="mask_free_classifier"):
    """The same sister network, its 2-D output read as class logits (softmax): no masks at all."""
    trunk = mask_guided_sister_embedding(tuple(image_shape), embedding_dim=len(CLASS_NAMES), name="trunk")
    outputs = keras.layers.Softmax(name="class_probabilities")(trunk.outputs[0])
    model = keras.Model(trunk.inputs[0], outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _class_dataset(data, batch_size, seed=None):
    dataset = tf.data.Dataset.from_tensor_slices((data.images, data.class_ids.astype(np.int32)))
    if seed is not None:
        dataset = dataset.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.batch(batch_size).with_options(options).prefetch(2)


def train_classifier(model, train_data, num_epochs, validation_data=None, batch_size=32, seed=0, verbose=0,
                     callbacks=()):
    """Train the softmax baseline on images and class ids; returns the Keras History.

    One classifier epoch sees each image once while a Siamese epoch sees it twice (with both
    masks); pass twice the epochs for equal image presentations.
    """
    _check_data(train_data, "train_data")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    validation = None
    if validation_data is not None and len(validation_data):
        validation = _class_dataset(validation_data, 128)
    return model.fit(_class_dataset(train_data, batch_size, seed), epochs=num_epochs, validation_data=validation,
                     shuffle=False, verbose=verbose, callbacks=list(callbacks))


def predict_classifier(model, data, batch_size=128):
    """Class ids (0 = closed, 1 = open) from the softmax baseline."""
    _check_data(data)
    outputs = [np.asarray(model(data.images[start:start + batch_size], training=False))
               for start in range(0, len(data), batch_size)]
    return np.argmax(np.concatenate(outputs), axis=1)


# --- evaluation ---------------------------------------------------------------------------------

def per_domain_accuracy(data, predicted_class_ids):
    """Accuracy per domain (the paper's Table 2) and the mean over domains.

    Returns ``(rows, summary)``: rows are dicts {domain, images, open, accuracy,
    balanced_accuracy} for each domain that has images; summary holds ``mean_accuracy`` (the
    unweighted mean over domains, as the paper averages its chairlifts), ``mean_balanced_accuracy``
    and ``overall_accuracy`` (pooled over images).
    """
    _check_data(data)
    predicted = np.asarray(predicted_class_ids).reshape(-1)
    if len(predicted) != len(data):
        raise ValueError(f"got {len(predicted)} predictions for {len(data)} images")
    correct = predicted == data.class_ids
    rows = []
    for domain_id, name in enumerate(data.domain_names):
        in_domain = data.domain_ids == domain_id
        if not in_domain.any():
            continue
        recalls = [float(np.mean(correct[in_domain & (data.class_ids == c)]))
                   for c in (0, 1) if np.any(in_domain & (data.class_ids == c))]
        rows.append({
            "domain": name,
            "images": int(in_domain.sum()),
            "open": int(np.sum(in_domain & (data.class_ids == 1))),
            "accuracy": float(np.mean(correct[in_domain])),
            "balanced_accuracy": float(np.mean(recalls)),
        })
    summary = {
        "mean_accuracy": float(np.mean([row["accuracy"] for row in rows])),
        "mean_balanced_accuracy": float(np.mean([row["balanced_accuracy"] for row in rows])),
        "overall_accuracy": float(np.mean(correct)),
    }
    return rows, summary


def accuracy_table(results):
    """A Markdown table, one row per domain, one accuracy column per method.

    ``results`` maps a method name to the ``rows`` of :func:`per_domain_accuracy` (same domains).
    """
    if not results:
        raise ValueError("results is empty; pass {method name: rows from per_domain_accuracy}")
    methods = list(results)
    first = results[methods[0]]
    header = "| domain | images | open | " + " | ".join(methods) + " |"
    lines = [header, "|" + "---|" * (3 + len(methods))]
    by_method = {m: {row["domain"]: row for row in results[m]} for m in methods}
    for row in first:
        cells = [f"{100 * by_method[m][row['domain']]['accuracy']:.1f}" for m in methods]
        lines.append(f"| {row['domain']} | {row['images']} | {row['open']} | " + " | ".join(cells) + " |")
    means = [f"**{100 * np.mean([r['accuracy'] for r in results[m]]):.2f}**" for m in methods]
    lines.append("| **mean** | | | " + " | ".join(means) + " |")
    return "\n".join(lines)


def plot_embedding_by_domain(model, data, domain_ids=None, columns=3, max_points=200, path=None):
    """The 2-D embedding of each domain: images as dots by class, the two masks as triangles.

    The paper's Figures 4 and 5. Needs a 2-D embedding (``embedding_dim=2``). Returns the Figure.
    """
    from siamese_tf import plots  # noqa: F401  (chooses a headless backend when needed)
    from matplotlib.figure import Figure

    _check_data(data)
    if domain_ids is None:
        domain_ids = np.unique(data.domain_ids)
    domain_ids = [int(d) for d in np.atleast_1d(domain_ids)]
    image_embeddings = model.embed(data.images)
    if image_embeddings.shape[1] != 2:
        raise ValueError(f"plot_embedding_by_domain needs a 2-D embedding, got {image_embeddings.shape[1]} dimensions")
    mask_embeddings = model.embed(data.masks.reshape((-1,) + data.image_shape)).reshape(-1, 2, 2)
    rows = int(np.ceil(len(domain_ids) / columns))
    figure = Figure(figsize=(3.2 * min(columns, len(domain_ids)), 3.0 * rows))
    colors = ("tab:blue", "tab:orange")
    for position, domain_id in enumerate(domain_ids):
        axes = figure.add_subplot(rows, min(columns, len(domain_ids)), position + 1)
        for class_id, class_name in enumerate(CLASS_NAMES):
            chosen = np.flatnonzero((data.domain_ids == domain_id) & (data.class_ids == class_id))[:max_points]
            axes.scatter(image_embeddings[chosen, 0], image_embeddings[chosen, 1], s=8, alpha=0.6,
                         color=colors[class_id], label=f"{class_name} images")
            axes.scatter(*mask_embeddings[domain_id, class_id], marker="^", s=160, color=colors[class_id],
                         edgecolor="black", linewidth=1.2, label=f"{class_name} mask")
        axes.set_title(data.domain_names[domain_id], fontsize=9)
        axes.tick_params(labelsize=7)
        if position == 0:
            axes.legend(fontsize=6, loc="best")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


# --- the whole experiment -----------------------------------------------------------------------

def run_chairlift_comparison(num_seen_domains=12, num_unseen_domains=4, train_per_domain=100,
                             validation_per_domain=20, test_per_domain=60, image_size=(48, 48), siamese_epochs=16,
                             classifier_epochs=16, batch_size=32, learning_rate=1e-3, margin=1.0, seed=0,
                             data=None, progress=True, verbose=0):
    """Generate chairlifts, train the mask-guided Siamese network and the softmax baseline, test both.

    Both models train on the seen domains' training images only; both are tested on the seen
    domains' test images and on the test images of ``num_unseen_domains`` chairlifts never seen
    in training (the Siamese model only needs their two masks). ``data`` reuses a
    :func:`~siamese_tf.chairlifts.generate_chairlift_data` result with at least
    ``num_seen_domains + num_unseen_domains`` domains (the first ones are the seen ones).

    Returns a dict: ``data`` (splits), ``seen`` / ``unseen`` domain ids, ``siamese`` and
    ``classifier`` models, ``siamese_history`` / ``classifier_history`` (loss lists), ``results``
    ``{"seen"|"unseen": {"siamese"|"classifier": {"rows": [...], "summary": {...}}}}`` and
    ``seconds_per_epoch``.
    """
    import time

    from siamese_tf.chairlifts import generate_chairlift_data
    from siamese_tf.settings import seed_everything

    total_domains = num_seen_domains + num_unseen_domains
    if data is None:
        data = generate_chairlift_data(total_domains, train_per_domain, validation_per_domain, test_per_domain,
                                       image_size=image_size, seed=seed, progress=progress)
    if len(data["train"].domain_names) < total_domains:
        raise ValueError(f"data holds {len(data['train'].domain_names)} domains; {total_domains} are needed")
    seen, unseen = list(range(num_seen_domains)), list(range(num_seen_domains, total_domains))
    train = data["train"].select_domains(seen)
    validation = data["validation"].select_domains(seen)
    tests = {"seen": data["test"].select_domains(seen)}
    if unseen:
        tests["unseen"] = data["test"].select_domains(unseen)
    image_shape = train.image_shape

    seed_everything(seed)
    siamese = build_mask_guided_siamese(image_shape, learning_rate=learning_rate, margin=margin)
    start = time.perf_counter()
    siamese_history = train_mask_guided_siamese(siamese, train, siamese_epochs, validation_data=validation,
                                                batch_size=batch_size, seed=seed, verbose=verbose)
    siamese_seconds = (time.perf_counter() - start) / siamese_epochs

    seed_everything(seed)
    classifier = build_classifier(image_shape, learning_rate=learning_rate)
    start = time.perf_counter()
    history = train_classifier(classifier, train, classifier_epochs, validation_data=validation,
                               batch_size=batch_size, seed=seed, verbose=verbose)
    classifier_seconds = (time.perf_counter() - start) / classifier_epochs

    results = {}
    for name, test in tests.items():
        results[name] = {}
        for method, predicted in (("siamese", predict_with_masks(siamese, test)),
                                  ("classifier", predict_classifier(classifier, test))):
            rows, summary = per_domain_accuracy(test, predicted)
            results[name][method] = {"rows": rows, "summary": summary}
    return {
        "data": data, "seen": seen, "unseen": unseen, "siamese": siamese, "classifier": classifier,
        "siamese_history": siamese_history,
        "classifier_history": {key: list(map(float, values)) for key, values in history.history.items()},
        "results": results,
        "seconds_per_epoch": {"siamese": siamese_seconds, "classifier": classifier_seconds},
    }
