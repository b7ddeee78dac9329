# %% [markdown]
# # 03 · The L1 distance layer, from scratch
#
# The heart of the seed notebooks' Siamese network is a tiny custom Keras layer, `L1Dist`: it takes
# the embeddings of the two images and returns their absolute difference, feature by feature. A
# dense layer with a sigmoid turns that into the probability that both images show the same person
# (Koch et al. 2015: `p = sigmoid(sum_j alpha_j |h1_j - h2_j| + bias)`).
#
# This is the one notebook where we write the code ourselves, as the lesson: we build the layer,
# check it by hand, check its gradient, use it in a model, and then assert that it agrees exactly
# with the package's `siamese_tf.layers.L1Dist` and `siamese_tf.heads.L1SimilarityHead`.
#
# **Run time** on a 2-core CPU without a GPU: full run about 20 s; smoke run (`SIAMESE_TF_SMOKE=1`, what CI
# runs) about 15 s. Label convention everywhere: **1 = same person, 0 = different**.

# %%
import os

# Before TensorFlow and OpenCV load: keep their C++ log lines out of the notebook.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# %matplotlib inline
# %config InlineBackend.figure_formats = ["jpeg"]

import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from siamese_tf import settings
from siamese_tf.embeddings import small_cnn_embedding
from siamese_tf.heads import L1SimilarityHead
from siamese_tf.layers import L1Dist
from siamese_tf.models import SiameseModel, load_model, save_model
from siamese_tf.samplers import PairBatches, make_pairs
from siamese_tf.studies.faces import load_lfw, locate_lfw, read_lfw_people

# %% [markdown]
# ## Parameters
#
# Only the short training run at the end shrinks in smoke mode.

# %%
IMAGE_SIZE = (64, 64)                    # gray centre crops of LFW photos, as in 02 and 04
EMBEDDING_DIM = 64
FACE_PEOPLE = 200                        # LFW people of fold 1 for the face pairs below
TRAINING_STEPS = settings.pick(30, 3)    # batches of the short training run
BATCH_SIZE = 32
SEED = 0

settings.seed_everything(SEED)           # same initial weights on every run


# %% [markdown]
# ## 1. The layer
#
# A Keras layer needs one method, `call`. Ours takes the two embeddings and returns `|a - b|`,
# written with `keras.ops` so that it runs on any Keras backend. It has no weights: all the learning
# happens in the embedding network before it and the dense layer after it.

# %%
class CourseL1Dist(keras.layers.Layer):
    """Element-wise L1 distance |a - b| between two embeddings of the same shape."""

    def call(self, anchor_embedding, validation_embedding):
        return ops.abs(anchor_embedding - validation_embedding)


# %% [markdown]
# ## 2. Check it by hand
#
# Two four-feature embeddings, and their distance worked out on paper:
# `|1 - 0.5| = 0.5`, `|-2 - 2| = 4`, `|3.5 - 3.5| = 0`, `|0 - (-1)| = 1`.

# %%
anchor = np.array([[1.0, -2.0, 3.5, 0.0]], dtype="float32")
other = np.array([[0.5, 2.0, 3.5, -1.0]], dtype="float32")
by_hand = np.array([[0.5, 4.0, 0.0, 1.0]], dtype="float32")

course_layer = CourseL1Dist()
ours = ops.convert_to_numpy(course_layer(anchor, other))
print(ours)
assert np.array_equal(ours, by_hand)

# %% [markdown]
# ## 3. Check it against the package
#
# `siamese_tf.layers.L1Dist` is the same idea, hardened: it accepts `layer(a, b)` or
# `layer([a, b])`, rejects anything but two tensors of one shape with a message that says so, and is
# registered for saving. On the same inputs the two must agree exactly, on the hand example and on
# random embeddings; a distance is also symmetric and zero between an embedding and itself.

# %%
package_layer = L1Dist()
assert np.array_equal(ops.convert_to_numpy(package_layer(anchor, other)), by_hand)
assert np.array_equal(ops.convert_to_numpy(package_layer([anchor, other])), by_hand)

rng = np.random.default_rng(SEED)
first = rng.normal(size=(8, EMBEDDING_DIM)).astype("float32")
second = rng.normal(size=(8, EMBEDDING_DIM)).astype("float32")
ours = ops.convert_to_numpy(course_layer(first, second))
theirs = ops.convert_to_numpy(package_layer(first, second))
assert np.array_equal(ours, theirs)
assert np.array_equal(ours, ops.convert_to_numpy(course_layer(second, first)))
assert not ops.convert_to_numpy(course_layer(first, first)).any()
print("CourseL1Dist == siamese_tf.layers.L1Dist on", ours.shape, "embeddings")

# %%
try:
    package_layer(first, second[:, :10])
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 4. The gradient
#
# Training pushes gradients through the layer. The derivative of `|a - b|` with respect to `a` is
# the sign of `a - b`: +1, -1, and at the tie in feature 3 TensorFlow uses 0. So for the
# hand example we expect `[1, -1, 0, 1]`, from both layers.

# %%
anchor_tensor = tf.constant(anchor)
for layer in (course_layer, package_layer):
    with tf.GradientTape() as tape:
        tape.watch(anchor_tensor)
        total = tf.reduce_sum(layer(anchor_tensor, tf.constant(other)))
    gradient = tape.gradient(total, anchor_tensor).numpy()
    print(f"{type(layer).__name__:12s} gradient: {gradient}")
    assert np.array_equal(gradient, [[1.0, -1.0, 0.0, 1.0]])

# %% [markdown]
# ## 5. The seed's Siamese model, with our layer
#
# Two image inputs go through **one** embedding network (the same weights for both: that is what
# makes it Siamese), our layer measures the distance, and a dense sigmoid layer gives the
# probability of "same". Keras traces `call` with symbolic inputs to find the output shape, so a
# two-input layer needs no `compute_output_shape` (if you write one, its arguments must be named
# after `call`'s: `anchor_embedding_shape`, `validation_embedding_shape`).

# %%
embedding = small_cnn_embedding((*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM)
anchor_input = keras.Input((*IMAGE_SIZE, 1), name="anchor_image")
validation_input = keras.Input((*IMAGE_SIZE, 1), name="validation_image")
distances = CourseL1Dist(name="l1_distance")(embedding(anchor_input), embedding(validation_input))
probability = keras.layers.Dense(1, activation="sigmoid", name="classifier")(distances)
course_model = keras.Model([anchor_input, validation_input], probability, name="course_siamese")
print("distances:", distances.shape, "| probability:", probability.shape)
print(f"{course_model.count_params():,} parameters, {embedding.count_params():,} of them in the embedding")

# %% [markdown]
# The package builds the same network as `SiameseModel(embedding, L1SimilarityHead())`: the head
# is our layer plus the dense sigmoid layer, kept apart from the embedding so that a gallery can be
# embedded once. Give it the same embedding network and the same dense weights, and it must score
# real face pairs exactly as our model does.

# %%
head = L1SimilarityHead()
package_model = SiameseModel(embedding, head)  # the same embedding object: shared weights
head.classifier.set_weights(course_model.get_layer("classifier").get_weights())

files = locate_lfw()
faces = load_lfw(files.images, image_size=IMAGE_SIZE,
                 people=sorted(name for name, _ in read_lfw_people(files.people)[0])[:FACE_PEOPLE])
(first_images, second_images), pair_labels = make_pairs(faces.images, faces.labels, 16, seed=SEED)
course_scores = ops.convert_to_numpy(course_model([first_images, second_images], training=False))[:, 0]
package_scores = package_model.score_pairs(first_images, second_images)
assert np.allclose(course_scores, package_scores, atol=1e-6)
assert np.all(np.abs(package_scores - 0.5) < 0.1)  # untrained: no opinion yet
print(len(package_scores), "face pairs scored alike, all close to 0.5 before training")

# %% [markdown]
# ## 6. It trains
#
# A few steps with binary cross-entropy (label 1 = same) on pairs from `PairBatches`, exactly as
# the seeds train. `04_training.ipynb` does this properly with the package's `compile_siamese` and
# `train_siamese`; here we only want to see the loss move.

# %%
# NBVAL_IGNORE_OUTPUT
course_model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
batches = PairBatches(faces.images, faces.labels, TRAINING_STEPS * BATCH_SIZE, BATCH_SIZE, seed=SEED)
history = course_model.fit(batches.dataset(), epochs=2, shuffle=False, verbose=0)
print("loss per epoch:", np.round(history.history["loss"], 3))

# %% [markdown]
# Training changed the shared embedding network, so the package model (same embedding, dense
# weights copied again) still agrees with ours.

# %%
head.classifier.set_weights(course_model.get_layer("classifier").get_weights())
course_scores = ops.convert_to_numpy(course_model([first_images, second_images], training=False))[:, 0]
assert np.allclose(course_scores, package_model.score_pairs(first_images, second_images), atol=1e-5)

# %% [markdown]
# ## 7. Saving a model with a custom layer
#
# A `.keras` file stores each layer's class name and config. To load it again Keras must find the
# class: `siamese_tf` registers its layers (`@keras.saving.register_keras_serializable`), so a saved
# `SiameseModel` loads with no extra arguments. Our `CourseL1Dist` is not registered; a model using
# it loads only with `custom_objects={"CourseL1Dist": CourseL1Dist}`.

# %%
print(keras.saving.get_registered_name(L1Dist), "|", keras.saving.get_registered_name(L1SimilarityHead))
path = save_model(package_model, Path(tempfile.mkdtemp()) / "course_03.keras")
reloaded = load_model(path)
assert np.allclose(reloaded.score_pairs(first_images, second_images),
                   package_model.score_pairs(first_images, second_images), atol=1e-6)
print(type(reloaded).__name__, "reloaded; scores unchanged")
