# %% [markdown]
# # 04 · Training a Siamese network
#
# The seeds train their Siamese network on (anchor, other) pairs with binary cross-entropy: the L1
# head outputs the probability that the pair is the same person, and the label says whether it is.
# This notebook trains that network on ORL faces with `siamese_tf.training`:
#
# - one parameter picks the head, and with it the loss: `"l1"` (probability, binary cross-entropy,
#   as the seeds) or `"euclidean"` / `"cosine"` (a distance, contrastive loss);
# - training runs on the GPU when there is one, and checkpoints every epoch: we pull the plug
#   half-way and resume exactly where it stopped;
# - training curves, a first look at people the network never saw, and the saved model;
# - an option that scores far more pairs per step: in-batch training.
#
# **Run time** on a 2-core CPU without a GPU: full run about 4.5 minutes; smoke run (`SIAMESE_TF_SMOKE=1`, what CI
# runs) about 20 s. Label convention everywhere: **1 = same person, 0 = different**.

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
import tensorflow as tf

from siamese_tf import metrics, settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.datasets import load_identity_folders, split_by_identity
from siamese_tf.models import build_siamese_model, save_model
from siamese_tf.plots import plot_roc, plot_score_histogram, plot_training_curves
from siamese_tf.samplers import ClassBalancedBatches, PairBatches, make_pairs
from siamese_tf.studies.faces import locate_face_data
from siamese_tf.training import compile_siamese, train_siamese

# %% [markdown]
# ## Parameters
#
# A step of 32 pairs takes 0.4 to 0.7 s on this 2-core CPU, so the full run trains for a few
# minutes; smoke mode trains a handful of steps, only to prove that everything runs.

# %%
HEAD = "l1"                 # "l1": sigmoid(Dense(|a - b|)) + binary cross-entropy (the seeds)
                            # "euclidean" or "cosine": a distance + the contrastive loss
EMBEDDING = "small_cnn"     # "koch" is the seeds' 39-million-parameter network: too slow for a CPU course
IMAGE_SIZE = (56, 46)
EMBEDDING_DIM = 64
NUM_EPOCHS = settings.pick(8, 2)
STOP_AFTER_EPOCHS = settings.pick(4, 1)   # the simulated crash
PAIRS_PER_EPOCH = settings.pick(1024, 64)
BATCH_SIZE = 32
VALIDATION_PAIRS = settings.pick(400, 64)
TEST_PAIRS = settings.pick(1000, 100)
LEARNING_RATE = 1e-3
IN_BATCH_HEAD = "euclidean"               # the option at the end
IN_BATCH_STEPS_PER_EPOCH = settings.pick(32, 4)
SEED = 0
MODELS_DIR = settings.pick(Path(os.environ.get("SIAMESE_TF_MODELS_DIR", "../models")),  # the repository's models/
                         Path(tempfile.mkdtemp(prefix="siamese_course_models_")))       # smoke runs keep nothing
CHECKPOINT_DIR = MODELS_DIR / "face_verification_checkpoints"

# %% [markdown]
# ## 1. Devices
#
# TensorFlow places the work on a GPU by itself when it sees one; nothing in the code changes.

# %%
# NBVAL_IGNORE_OUTPUT
print("TensorFlow", tf.__version__, "| Keras", keras.__version__)
print("devices:", ", ".join(device.name for device in tf.config.list_logical_devices()))
gpus = tf.config.list_physical_devices("GPU")
print(f"training on {len(gpus)} GPU(s)" if gpus else "no GPU: training runs on the CPU")

# %% [markdown]
# ## 2. Data
#
# ORL faces, split by person (as in `02_preprocessing_and_pairs.ipynb`): the network trains on 16
# people, the 4 validation people watch over training, and the 10 test people stay unseen until
# the end.

# %%
settings.seed_everything(SEED)
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE)
train, validation, test = split_by_identity(faces, fractions=(16 / 30, 4 / 30, 10 / 30), seed=SEED)
print("train:", ", ".join(train.class_names))
print("validation:", ", ".join(validation.class_names))
print("test:", ", ".join(test.class_names))

# %%
train_batches = PairBatches(train.images, train.labels, PAIRS_PER_EPOCH, BATCH_SIZE, seed=SEED, augment=Augmenter())
validation_pairs = make_pairs(validation.images, validation.labels, VALIDATION_PAIRS, seed=SEED)
test_pairs = make_pairs(test.images, test.labels, TEST_PAIRS, seed=SEED + 1)


# %% [markdown]
# ## 3. Model and loss
#
# `build_siamese_model` joins an embedding network and a head; `compile_siamese` picks the loss that
# fits the head: binary cross-entropy for a probability, the contrastive loss for a distance.

# %%
def new_model():
    model = build_siamese_model(EMBEDDING, HEAD, (*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM,
                                name="face_verification")
    return compile_siamese(model, learning_rate=LEARNING_RATE)


model = new_model()
print(f"{model.count_params():,} parameters | head output: {model.output_kind} | loss: {model.loss.name}")


# %% [markdown]
# ## 4. Train, stop, resume
#
# `train_siamese(..., checkpoint_dir=...)` backs the model and optimizer up at the end of every
# epoch and keeps the best model (lowest validation loss) as `best.keras`. To see the backup at
# work we stop the run after `STOP_AFTER_EPOCHS` epochs, as a crash or a closed laptop would (the
# small callback below raises `KeyboardInterrupt`, which is also what the notebook's stop button
# does).

# %%
class StopAfterEpochs(keras.callbacks.Callback):
    """Interrupt training once `epochs` epochs have finished (and been backed up)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epochs:
            raise KeyboardInterrupt(f"simulated stop after {epoch} epochs")


# %%
# NBVAL_IGNORE_OUTPUT
try:
    train_siamese(model, train_batches, NUM_EPOCHS, validation_pairs=validation_pairs,
                  checkpoint_dir=CHECKPOINT_DIR, callbacks=[StopAfterEpochs(STOP_AFTER_EPOCHS)], verbose=2)
except KeyboardInterrupt as stop:
    print("stopped:", stop)
epochs_before_the_stop = model.history.history

# %%
print(sorted(path.name for path in CHECKPOINT_DIR.iterdir()))

# %% [markdown]
# A new process knows nothing of the old model, so we build everything again from scratch and call
# `train_siamese` with the same `checkpoint_dir`: it restores weights, optimizer and epoch number
# from `backup/` and runs only the missing epochs. `PairBatches` draws epoch `e` from `(seed, e)`,
# so the resumed run sees the very pairs the uninterrupted one would have seen. When training
# ends normally the backup is removed; `best.keras` stays.
#
# `run.json` beside the backup says which run it belongs to (a fingerprint of the data, the
# shapes, the network, head, loss and batches). Change any of them and `train_siamese` refuses to
# resume, naming what differs, instead of quietly continuing an old run; `fresh=True` discards the
# old backup. A resumed run prints "resuming from epoch N".

# %%
# NBVAL_IGNORE_OUTPUT
model = new_model()
train_batches = PairBatches(train.images, train.labels, PAIRS_PER_EPOCH, BATCH_SIZE, seed=SEED, augment=Augmenter())
resumed = train_siamese(model, train_batches, NUM_EPOCHS, validation_pairs=validation_pairs,
                        checkpoint_dir=CHECKPOINT_DIR, verbose=2)

# %%
assert len(resumed.history["loss"]) == NUM_EPOCHS - STOP_AFTER_EPOCHS  # only the missing epochs ran
print(sorted(path.name for path in CHECKPOINT_DIR.iterdir()))

# %% [markdown]
# ## 5. Training curves
#
# Both halves of the run together. Training loss should fall; the validation curves are measured on
# people the network does not train on, so they are the honest ones (and noisy: 4 people).

# %%
# NBVAL_IGNORE_OUTPUT
history = {key: epochs_before_the_stop[key] + resumed.history[key] for key in resumed.history}
plot_training_curves(history)

# %% [markdown]
# ## 6. A first look at unseen people
#
# Similarities (higher = same) of the test pairs: same-person pairs should sit to the right of
# different-person pairs. How well they separate, as the area under the ROC curve (1.0 = perfectly,
# 0.5 = a coin). Choosing a decision threshold is the topic of `05_evaluation_and_thresholds.ipynb`.

# %%
# NBVAL_IGNORE_OUTPUT
(test_first, test_second), test_labels = test_pairs
test_similarities = model.similarity_pairs(test_first, test_second)
print(f"test ROC AUC: {metrics.roc_auc(test_similarities, test_labels):.3f}")
plot_score_histogram(test_similarities, test_labels)

# %% [markdown]
# ## 7. Save
#
# One `.keras` file holds the embedding network, the head and (after `05`) the chosen thresholds.
# The command line uses it directly:
#
# ```bash
# python -m siamese_tf verify --model models/face_verification.keras --image me.jpg \
#     --references data/verification_images
# ```

# %%
model_path = save_model(model, MODELS_DIR / "face_verification.keras")
print(model_path.name, "saved")

# %% [markdown]
# ## 8. Option: in-batch training
#
# Pair training embeds two images for every pair it scores: 32 pairs cost 64 embeddings. In-batch
# training embeds a batch of single images once (here 8 people x 4 photos) and scores **every** pair
# in it: 32 embeddings give 496 pairs, 112 of them same-person pairs. `ClassBalancedBatches` serves
# such batches and `compile_siamese(..., mode="in_batch")` picks the matching loss. With a distance
# head (contrastive loss on unit-length embeddings) this recipe usually learns far faster on a CPU;
# we train it for as many steps as the run above and compare both on the test people.

# %%
in_batch_batches = ClassBalancedBatches(train.images, train.labels, classes_per_batch=8, images_per_class=4,
                                        steps_per_epoch=IN_BATCH_STEPS_PER_EPOCH, seed=SEED, augment=Augmenter())
print(f"{in_batch_batches.batch_size} images -> {in_batch_batches.pairs_per_batch} pairs per step")
in_batch_model = build_siamese_model(EMBEDDING, IN_BATCH_HEAD, (*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM,
                                     normalize=True, name="face_verification_in_batch")
compile_siamese(in_batch_model, learning_rate=LEARNING_RATE, mode="in_batch")
print(f"head output: {in_batch_model.output_kind} | loss: {in_batch_model.loss.name}")

# %%
# NBVAL_IGNORE_OUTPUT
in_batch_history = train_siamese(in_batch_model, in_batch_batches, NUM_EPOCHS, verbose=2)

# %%
# NBVAL_IGNORE_OUTPUT
in_batch_similarities = in_batch_model.similarity_pairs(test_first, test_second)
for name, similarities in (("pairs, " + HEAD, test_similarities),
                          ("in-batch, " + IN_BATCH_HEAD, in_batch_similarities)):
    equal_error, _ = metrics.equal_error_rate(similarities, test_labels)
    print(f"{name:22s} test AUC {metrics.roc_auc(similarities, test_labels):.3f}, equal error rate {equal_error:.3f}")
plot_roc({f"pairs, {HEAD}": (test_similarities, test_labels),
          f"in-batch, {IN_BATCH_HEAD}": (in_batch_similarities, test_labels)}, title="ROC on the 10 test people")

# %%
print(save_model(in_batch_model, MODELS_DIR / "face_verification_in_batch.keras").name, "saved")
