# %% [markdown]
# # 05 · Evaluation and choosing thresholds
#
# A Siamese network outputs a score; an application needs a yes/no. The seeds' app used two
# thresholds: a **detection threshold** (does the input match *one* of the person's validation
# images?) and a **verification threshold** (does it match enough of them?). This notebook measures
# a trained network on people it never saw and chooses both thresholds properly:
#
# - ROC curve, area under it (AUC), equal error rate (EER), score histograms;
# - thresholds chosen on the *validation* people only, by accuracy, EER or a target false accept
#   rate, and stored inside the model;
# - the test people used once, at the end; N-way one-shot identification on them.
#
# **Run time** on a 2-core CPU without a GPU: full run about 1 minute, training included; smoke run
# (`SIAMESE_TF_SMOKE=1`, what CI runs) about 15 s. Label convention everywhere: **1 = same person, 0 = different**.

# %%
import os

# Before TensorFlow and OpenCV load: keep their C++ log lines out of the notebook.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# %matplotlib inline
# %config InlineBackend.figure_formats = ["jpeg"]

import tempfile
from pathlib import Path

import numpy as np

from siamese_tf import metrics, settings
from siamese_tf.augmentations import Augmenter
from siamese_tf.datasets import load_identity_folders, split_by_identity
from siamese_tf.models import build_siamese_model, load_model, save_model
from siamese_tf.plots import plot_n_way_task, plot_roc, plot_score_histogram
from siamese_tf.samplers import ClassBalancedBatches, make_pairs, sample_n_way_tasks
from siamese_tf.studies.faces import locate_face_data, reference_rule_scores
from siamese_tf.training import compile_siamese, train_siamese
from siamese_tf.verification import choose_verification_threshold

# %% [markdown]
# ## Parameters
#
# The notebook trains its own network (the in-batch recipe of `04_training.ipynb`, section 8: a
# distance head, contrastive loss), so it runs on its own. To evaluate a model you saved instead,
# replace the training cell by `model = load_model("../models/face_verification.keras")`, trained on
# the same split.

# %%
HEAD = "euclidean"                        # similarity = -distance; "l1" gives probabilities
IMAGE_SIZE = (56, 46)
EMBEDDING_DIM = 64
NUM_EPOCHS = settings.pick(8, 2)
STEPS_PER_EPOCH = settings.pick(32, 4)
VALIDATION_PAIRS = settings.pick(800, 120)
TEST_PAIRS = settings.pick(2000, 200)
TARGET_FAR = 0.01                         # for the "far" threshold: at most 1 impostor in 100 accepted
REFERENCE_IMAGES = 5                      # the app's validation images per person
N_WAY = 10
NUM_TASKS = settings.pick(1000, 50)
SEED = 0
MODELS_DIR = settings.pick(Path(os.environ.get("SIAMESE_TF_MODELS_DIR", "../models")),  # the repository's models/
                         Path(tempfile.mkdtemp(prefix="siamese_course_models_")))       # smoke runs keep nothing

# %% [markdown]
# ## 1. Data and a trained network
#
# The same split by person as in `02` and `04`: 16 training, 4 validation, 10 test people.

# %%
faces = load_identity_folders(locate_face_data(), image_size=IMAGE_SIZE)
train, validation, test = split_by_identity(faces, fractions=(16 / 30, 4 / 30, 10 / 30), seed=SEED)
print(f"validation people: {', '.join(validation.class_names)} | test people: {', '.join(test.class_names)}")

# %%
# NBVAL_IGNORE_OUTPUT
settings.seed_everything(SEED)
model = build_siamese_model("small_cnn", HEAD, (*IMAGE_SIZE, 1), embedding_dim=EMBEDDING_DIM, normalize=True,
                            name="face_verification")
compile_siamese(model, mode="in_batch")
batches = ClassBalancedBatches(train.images, train.labels, classes_per_batch=8, images_per_class=4,
                               steps_per_epoch=STEPS_PER_EPOCH, seed=SEED, augment=Augmenter())
history = train_siamese(model, batches, NUM_EPOCHS, verbose=2)

# %% [markdown]
# ## 2. Scores on validation and test pairs
#
# `similarity_pairs` turns head outputs into similarities, higher = same: a probability head's
# output as it is, a distance negated. Everything below works on that scale.

# %%
(validation_first, validation_second), validation_labels = make_pairs(
    validation.images, validation.labels, VALIDATION_PAIRS, seed=SEED)
(test_first, test_second), test_labels = make_pairs(test.images, test.labels, TEST_PAIRS, seed=SEED + 1)
validation_similarities = model.similarity_pairs(validation_first, validation_second)
test_similarities = model.similarity_pairs(test_first, test_second)
assert validation_labels.mean() == 0.5 and test_labels.mean() == 0.5
print("validation and test pairs: half of each are same-person pairs (label 1)")

# %% [markdown]
# ## 3. ROC, AUC and EER
#
# Every threshold trades false accepts (an impostor gets in: the false accept rate, FAR) against
# false rejects (you are turned away: FRR). The ROC curve shows all the trades at once; its area
# (AUC) is the chance that a random same pair scores above a random different pair. The equal error
# rate is the point where FAR = FRR: one number to compare models by.

# %%
# NBVAL_IGNORE_OUTPUT
for name, similarities, labels in (("validation", validation_similarities, validation_labels),
                                   ("test", test_similarities, test_labels)):
    equal_error, _ = metrics.equal_error_rate(similarities, labels)
    print(f"{name:10s} AUC {metrics.roc_auc(similarities, labels):.3f} | EER {equal_error:.3f}")
plot_roc({"validation people": (validation_similarities, validation_labels),
          "test people": (test_similarities, test_labels)})

# %% [markdown]
# ## 4. Choosing the detection threshold, on validation people only
#
# The threshold is a setting of the model, so it must be chosen like any other setting: on data
# that the final test does not use. Choosing it on the test pairs would make the test report how
# well the threshold fits *those* pairs. Three ways to choose:
#
# - `"accuracy"`: the most validation pairs right;
# - `"eer"`: where false accepts and false rejects are equally frequent;
# - `"far"`: the most true accepts while at most `TARGET_FAR` of impostors get in (security first).

# %%
# NBVAL_IGNORE_OUTPUT
choices = {}
for method in ("accuracy", "eer", "far"):
    choices[method] = metrics.choose_threshold(validation_similarities, validation_labels, method=method,
                                               target_far=TARGET_FAR if method == "far" else None)
    on_test = metrics.binary_metrics(test_similarities, test_labels, choices[method])
    print(f"{method:8s} threshold {choices[method]:+.3f} -> on test people: accuracy {on_test['accuracy']:.3f}, "
          f"FAR {on_test['false_accept_rate']:.3f}, FRR {on_test['false_reject_rate']:.3f}")

# %% [markdown]
# Four validation people make an easy, small exam: their scores usually separate better than the
# test people's, so a threshold chosen on them can be a little off for new people. A real system
# calibrates on many more people than it takes to train a course model.

# %%
# NBVAL_IGNORE_OUTPUT
plot_score_histogram(validation_similarities, validation_labels, threshold=choices["accuracy"])

# %% [markdown]
# `metrics.calibrate` does the choice and stores it in `model.thresholds`, which is saved inside the
# `.keras` file, so an application loads the model and its thresholds together.

# %%
detection_threshold = metrics.calibrate(model, validation_first, validation_second, validation_labels,
                                        method="accuracy")
print(sorted(model.thresholds), "| method:", model.thresholds["method"])
assert model.thresholds["detection"] == detection_threshold

# %% [markdown]
# ## 5. The verification threshold: N validation images
#
# The app compares the input with each of the person's `REFERENCE_IMAGES` validation images,
# counts the *detections* (similarity above the detection threshold) and verifies the input when
# the fraction of detections exceeds the verification threshold. One lucky match is not enough;
# neither must every photo match.
#
# `reference_rule_scores` plays that game on the validation people: each person's first 5 photos
# are the references, each of their other photos is a genuine attempt (label 1), and as many photos
# of the other people are impostor attempts (label 0). We pick the fraction that gets most attempts
# right.

# %%
validation_fractions, validation_attempts = reference_rule_scores(
    model, validation, REFERENCE_IMAGES, detection_threshold, seed=SEED)
verification_threshold = choose_verification_threshold(validation_fractions, validation_attempts)
model.thresholds["verification"] = verification_threshold
print(f"{len(validation_attempts)} validation attempts ({int(validation_attempts.sum())} genuine)")
print(sorted(model.thresholds))

# %%
# NBVAL_IGNORE_OUTPUT
print(f"detection threshold {detection_threshold:+.3f}, verification threshold {verification_threshold:.2f}")
test_fractions, test_attempts = reference_rule_scores(model, test, REFERENCE_IMAGES, detection_threshold, seed=SEED)
on_test = metrics.binary_metrics(test_fractions, test_attempts, verification_threshold)
print(f"test people, {len(test_attempts)} attempts: accuracy {on_test['accuracy']:.3f}, "
      f"FAR {on_test['false_accept_rate']:.3f}, FRR {on_test['false_reject_rate']:.3f}")

# %% [markdown]
# ## 6. The test people, once
#
# `evaluate_verification` gives the whole report for the stored detection threshold.

# %%
# NBVAL_IGNORE_OUTPUT
report = metrics.evaluate_verification(model, test_first, test_second, test_labels)
{name: round(value, 3) for name, value in report.items()}

# %% [markdown]
# ## 7. N-way one-shot identification
#
# The other classic use of a Siamese network (Koch et al. 2015): show it one photo each of N
# people it has never seen and a new photo of one of them; it answers with the most similar one.
# Chance is 1/N.

# %%
# NBVAL_IGNORE_OUTPUT
metrics.evaluate_n_way(model, test.images, test.labels, n_way=N_WAY, num_tasks=NUM_TASKS, seed=SEED)

# %%
# NBVAL_IGNORE_OUTPUT
query, supports, correct = sample_n_way_tasks(test.labels, N_WAY, 1, seed=SEED + 3)
task_embeddings = model.embed(np.concatenate([test.images[query], test.images[supports[0]]]))
task_similarities = model.similarity_to_library(task_embeddings[:1], task_embeddings[1:])[0]
plot_n_way_task(test.images[query[0]], test.images[supports[0]], task_similarities, int(correct[0]))

# %% [markdown]
# ## 8. Save the model with its thresholds

# %%
model_path = save_model(model, MODELS_DIR / "face_verification_calibrated.keras")
reloaded = load_model(model_path)
assert reloaded.thresholds == model.thresholds
print(model_path.name, "holds", sorted(reloaded.thresholds))
