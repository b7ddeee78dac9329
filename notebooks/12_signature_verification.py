# %% [markdown]
# # 12 · Offline signature verification: SigNet, DeepSign and MobileNetV2 on unseen writers
#
# **What this notebook teaches.** Wang & Ko's *DeepSign* (with the SigNet baseline of Dey et al.
# 2017) verify a questioned signature against a genuine one with a Siamese network trained by the
# contrastive loss. We follow their recipe on the shared 50-writer set (Dutch SigComp2011 writers,
# Kaggle "sign_data"):
#
# 1. the paper's preprocessing, step by step: grayscale, Otsu binary threshold, median blur, resize, invert (ink = 1);
#    by default the ink then keeps its grey levels (`KEEP_GRAY`), which generalised much better here;
# 2. **writer-disjoint** train / validation / test writers, and the paper's pairs: genuine-genuine (label 1)
#    and every skilled forgery against every genuine signature of its writer (label 0);
# 3. three branches: SigNet (6.46 M parameters at 155x220), DeepSign (SqueezeNet Fire blocks, global average
#    pooling, 128-d L2-normalised, ~257 k parameters) and MobileNetV2 with a 1->3 channel adapter
#    (**randomly initialised**: there is no network here for ImageNet weights);
# 4. contrastive loss on Euclidean distance (margin 1), the threshold chosen on validation writers by maximum
#    accuracy, then accuracy, precision, recall and AUROC on test writers; ROC curves, model sizes
#    (the paper's Table 4) and a gallery of low / middle / high distance pairs.
#
# **Run times** (2 CPU cores): a full run *trains* the three branches for at most 6 minutes each (about 20
# min in all). With `REUSE_BENCHMARK_MODELS = True` (off by default) it loads instead the models that
# `benchmarks/signature_verification.py` trained with the same input size and preprocessing, from
# `models/signatures/` (under a minute; the stored outputs below were made that way). The smoke run
# (`SIAMESE_TF_SMOKE=1`, DeepSign and SigNet only, one step each) takes about a minute.
#
# **What the stored full run shows.** DeepSign clears the bar (accuracy 0.90, AUROC 0.95, under
# 1 MB) on these 10 unseen writers: 0.968 / 0.995, and its float16 copy (0.67 MB) scores the same. The
# last section has the figures of all three branches, the other writer splits and the caveats.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np

from siamese_tf import load_model, plots, settings
from siamese_tf.embeddings import get_embedding
from siamese_tf.studies import signatures

# Figures as JPEG at 72 dpi: with its outputs the notebook stays well under 500 KB.
# %config InlineBackend.figure_formats = ["jpeg"]
plt.rcParams["figure.dpi"] = 72

# %% [markdown]
# ## Parameters
# Everything that changes between a full run and a smoke run is here.
#
# `REUSE_BENCHMARK_MODELS` (off by default) loads the models that `benchmarks/signature_verification.py` saved in
# `models/signatures/` (with its JSON in the reports folder) instead of training here, for each branch the
# benchmark trained with the same `IMAGE_SIZE` and `KEEP_GRAY`. The stored outputs of this notebook were
# produced with `REUSE_BENCHMARK_MODELS = True`, from the benchmark's models of 2026-11-30, trained with the
# recipe of that day (`--max-minutes 5 --epochs 60 --augment 3 --writer-transforms none`; the benchmark's defaults
# have since moved to the writer-fold cross-validation's recipe, see `benchmarks/RESULTS.md`).

# %%
DATA_DIR = settings.data_dir()                           # holds signatures/ (SIAMESE_TF_DATA_DIR)
ARCHIVE = DATA_DIR / "signatures" / "signatures_50writers.zip"
IMAGE_SIZE = settings.pick((72, 108), (68, 100))         # (height, width); SigNet's own is 155x220, too slow here
MODELS = settings.pick(["deepsign", "signet", "mobilenet_v2"], ["deepsign", "signet"])  # MobileNetV2 builds slowly
EPOCHS = settings.pick(40, 1)                            # upper bound; MAX_MINUTES usually stops first
STEPS_PER_EPOCH = settings.pick(15, 1)                   # batches of 6 writers x (6 genuine + 4 forgeries)
MAX_MINUTES = settings.pick(6.0, None)                   # training time per branch
RANDOM_FORGERY_WEIGHT = 0.5                              # other writers' genuine signatures as extra negatives
REUSE_BENCHMARK_MODELS = False                           # True: load models/signatures/*.keras from the benchmark
SEED = 0
MODELS_DIR = settings.models_dir() / "signatures"
KEEP_GRAY = True                                         # ink keeps its grey levels; False: the paper's binary image
COSINE_DECAY = True                                      # learning rate annealed along a cosine over all epochs
KEEP_EPOCH = "last"                                      # or "best": the epoch with the best validation AUROC
# affine jitter for training images, never mirrored (a mirrored signature is not a signature)
SIGNATURE_JITTER = signatures.signature_augmenter(signatures.SIGNATURE_AUGMENT_STRENGTH)
BENCHMARK_REPORT = settings.reports_dir() / "signature_verification.json"

# %% [markdown]
# ## 1 · Preprocessing, step by step
#
# One genuine signature straight from the zip. Otsu's method puts the threshold between the ink and paper
# modes of the histogram; the 3x3 median removes isolated specks the threshold keeps; we crop to the ink's
# bounding box (our addition: the scans have wide, uneven margins), resize to the model input and invert
# so that ink is 1 and paper 0 (what the network sees).

# %%
# NBVAL_IGNORE_OUTPUT
with zipfile.ZipFile(ARCHIVE) as archive:
    member = sorted(name for name in archive.namelist() if name.endswith(".png") and "/001/" in name)[0]
    raw = cv2.imdecode(np.frombuffer(archive.read(member), np.uint8), cv2.IMREAD_GRAYSCALE)
result, steps = signatures.preprocess_signature(raw, IMAGE_SIZE, return_steps=True, name=member)
print(member, "raw", raw.shape, raw.dtype, "-> model input", result.shape, result.dtype)
assert result.shape == IMAGE_SIZE + (1,) and set(np.unique(steps["binary"])) <= {0, 255}

# %%
# NBVAL_IGNORE_OUTPUT
figure, axes = plt.subplots(2, 3, figsize=(11, 4.5))
for axis, (title, image) in zip(axes.ravel(), steps.items()):
    axis.imshow(image, cmap="gray", vmin=0, vmax=1 if image.dtype != np.uint8 else 255)
    axis.set_title(f"{title} {image.shape[1]}x{image.shape[0]}", fontsize=9)
    axis.axis("off")
figure.tight_layout()

# %% [markdown]
# ## 2 · All writers, writer-disjoint splits and the paper's pairs
#
# `load_signatures` reads the zip directly (it also reads CEDAR's `full_org/` + `full_forg/` layout). Files it
# cannot use (unreadable, blank, aspect ratio far from the input's) are skipped with a warning and counted;
# writers with fewer than 2 genuine signatures or no forgeries are left out and counted. Splitting is by
# writer — the source's own "test" folder repeats training writers, so any other split leaks.

# %%
# NBVAL_IGNORE_OUTPUT
started = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    everything = signatures.load_signatures(ARCHIVE, image_size=IMAGE_SIZE, keep_gray=KEEP_GRAY)
print(f"loaded in {time.perf_counter() - started:.1f} s; warnings: {len(caught)}")

# %%
train_set, validation_set, test_set = signatures.split_writers(everything, (0.6, 0.2, 0.2), seed=SEED)
signatures.check_writers_disjoint(train_set, validation_set, test_set)   # raises if a writer is in two splits
print(f"{everything.num_writers} writers, {len(everything)} images; skipped files: {len(everything.skipped)}, "
      f"writers left out: {len(everything.excluded_writers)}")
for split_name, part in (("train", train_set), ("validation", validation_set), ("test", test_set)):
    labels = signatures.signature_pairs(part)[2]
    print(f"{split_name:>10}: {part.num_writers} writers, {len(part)} images, "
          f"{int(labels.sum())} genuine-genuine pairs, {int((labels == 0).sum())} genuine-forgery pairs")
assert not set(train_set.writer_names) & set(test_set.writer_names)

# %%
# NBVAL_IGNORE_OUTPUT
first, second, labels = signatures.signature_pairs(test_set)
show = np.r_[np.flatnonzero(labels == 1)[:4], np.flatnonzero(labels == 0)[:4]]
plots.plot_pairs(test_set.images[first[show]], test_set.images[second[show]], labels[show], max_pairs=8)

# %% [markdown]
# ## 3 · The three branches and the paper's Table 4
#
# Parameter counts do not depend on the input size for DeepSign and MobileNetV2 (global average pooling);
# SigNet's first dense layer does, so it is counted at its own 155x220 as well. Local response
# normalisation, which SigNet uses, has no weights.

# %%
# NBVAL_IGNORE_OUTPUT
table = {}
for name in MODELS:
    kwargs = {"alpha": 1.0} if name == "mobilenet_v2" else {}
    at_paper_size = get_embedding(name, (155, 220, 1), **kwargs).count_params()
    at_training_size = get_embedding(name, IMAGE_SIZE + (1,), **kwargs).count_params()
    table[name] = (at_paper_size, at_training_size)
    print(f"{name:>13}: {at_paper_size:>10,} parameters at 155x220, {at_training_size:>10,} at "
          f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}")
print("paper: SigNet 6.46 M; DeepSign 256,992 (1.1 MB)")
assert table["signet"][0] == 6_460_864 and abs(table["deepsign"][0] - 256_992) < 0.01 * 256_992


# %% [markdown]
# ## 4 · Training with skilled forgeries as the negatives
#
# Each batch holds 6 training writers with 6 genuine signatures and 4 forgeries each; every image is
# embedded once and the contrastive loss (margin 1) scores all genuine-genuine pairs of a writer (pull
# together) and all genuine-forgery pairs of a writer (push beyond the margin) — the paper's pairs, 234 of
# them per 60 embeddings, against 30 in pair mode. Genuine signatures of *other* writers are extra negatives
# with weight 0.5. Strong affine jitter (rotation up to 15 degrees, shift 15%, scale 30%, shear 0.3; never mirrored):
# with only 30 training writers the branch learns their forgeries by heart, and this jitter is what
# kept it general on unseen writers. The learning rate follows a cosine decay, and the last epoch is
# kept: the validation AUROC of every epoch is measured and plotted, but with 10 validation writers the
# "best" epoch is a noisy pick.

# %%
# NBVAL_IGNORE_OUTPUT
def benchmark_record(name):
    # The benchmark's models are reused only when they were trained on the same kind of input.
    if not (REUSE_BENCHMARK_MODELS and BENCHMARK_REPORT.exists() and (MODELS_DIR / f"{name}.keras").exists()):
        return None
    report = json.loads(BENCHMARK_REPORT.read_text())
    config = report["config"]
    if (report.get("smoke") or config["image_size"] != list(IMAGE_SIZE) or config.get("keep_gray") != KEEP_GRAY
            or name not in report["models"]):
        return None
    return report["models"][name]

models, records = {}, {}
for name in MODELS:
    record = benchmark_record(name)
    if record is not None:
        models[name] = load_model(MODELS_DIR / f"{name}.keras")
        records[name] = {"loss": record["loss_per_epoch"], "val_auc": record["validation_auroc_per_epoch"],
                         **record["training"]}
        print(f"{name}: loaded the benchmark's model ({records[name]['epochs_run']} epochs, "
              f"{records[name]['seconds']:.0f} s of training, best validation epoch {records[name]['best_epoch']}, "
              f"kept: {records[name].get('kept', 'best')})")
        continue
    models[name], records[name] = signatures.train_signature_branch(
        name, train_set, validation_set, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH,
        random_forgery_weight=RANDOM_FORGERY_WEIGHT, max_minutes=MAX_MINUTES, seed=SEED,
        augment=SIGNATURE_JITTER, cosine_decay=COSINE_DECAY, keep=KEEP_EPOCH, log=None)
    print(f"{name}: trained {records[name]['epochs_run']} epochs in {records[name]['seconds']:.0f} s, "
          f"best validation AUROC at epoch {records[name]['best_epoch']}, kept: {KEEP_EPOCH}")
print("MobileNetV2 weights:", "random initialisation (no ImageNet weights without a network)")

# %%
# NBVAL_IGNORE_OUTPUT
figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, record in records.items():
    epochs = np.arange(1, len(record["loss"]) + 1)
    axes[0].plot(epochs, record["loss"], label=name)
    axes[1].plot(epochs, record["val_auc"], label=name)
axes[0].set(title="training loss (in-batch contrastive)", xlabel="epoch")
axes[1].set(title="validation-writer AUROC", xlabel="epoch")
for axis in axes:
    axis.legend()
    axis.grid(alpha=0.3)
figure.tight_layout()

# %% [markdown]
# ## 5 · Evaluation on unseen writers
#
# The threshold is the distance that maximises accuracy on the validation writers' pairs; accuracy,
# precision and recall use it on the test writers' pairs, AUROC needs no threshold. Sizes: parameters,
# float32 weights and the `.keras` file of the whole Siamese model (without optimizer state).

# %%
# NBVAL_IGNORE_OUTPUT
results, curves = {}, {}
sizes_dir = Path(tempfile.mkdtemp())  # the saved copies are only weighed
for name, model in models.items():
    figures, similarities, labels = signatures.evaluate_signature_model(model, validation_set, test_set)
    sizes = signatures.model_size(model, sizes_dir / f"{name}.keras")
    results[name] = {**figures, **sizes}
    curves[name] = (similarities, labels)
print(f"{'model':>13} {'accuracy':>9} {'precision':>9} {'recall':>7} {'AUROC':>6} {'EER':>6} "
      f"{'threshold':>9} {'parameters':>11} {'.keras MB':>9}")
for name, row in results.items():
    print(f"{name:>13} {row['accuracy']:9.3f} {row['precision']:9.3f} {row['recall']:7.3f} {row['auc']:6.3f} "
          f"{row['eer']:6.3f} {row['distance_threshold']:9.3f} {row['parameters']:11,} {row['file_megabytes']:9.2f}")
print("bar: accuracy >= 0.90 and AUROC >= 0.95 with a model under 1 MB")

# %%
for name, row in results.items():
    assert 0.0 <= row["auc"] <= 1.0 and row["file_bytes"] > 4 * row["parameters"] * 0.9, name

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_roc(curves, title="Unseen writers: genuine-genuine vs genuine-forgery")

# %% [markdown]
# ### Gallery: the lowest, middle and highest distances (DeepSign, test writers)
#
# Each column is a pair (genuine on top); the title gives the label and the distance. Green = genuine pair,
# red = forgery pair.

# %%
# NBVAL_IGNORE_OUTPUT
similarities, labels = curves["deepsign"]
first, second, _ = signatures.signature_pairs(test_set)
groups = signatures.distance_gallery_indices(-similarities, per_group=4)
for group_name, chosen in groups.items():
    print(group_name, "distances:", np.round(-similarities[chosen], 3), "labels:", labels[chosen])
chosen = np.concatenate(list(groups.values()))
plots.plot_pairs(test_set.images[first[chosen]], test_set.images[second[chosen]], labels[chosen],
                 -similarities[chosen], max_pairs=len(chosen))

# %% [markdown]
# ## 6 · What the numbers say
#
# Stored full run: models from `benchmarks/signature_verification.py` (72x108 grey-level inputs, strong
# jitter, cosine decay, last epoch kept, at most 5 minutes of training per branch on 2 CPU cores; test = 10
# unseen writers of split seed 0, 870 genuine and 1,536 forgery pairs):
#
# | branch | parameters | `.keras` (float16 copy) | epochs (x20 steps) | test accuracy | AUROC |
# |---|---|---|---|---|---|
# | DeepSign | 256,416 | 1.18 MB (0.67 MB) | 60 | 0.968 | 0.995 |
# | SigNet (at 72x108; 6.46 M at 155x220) | 3,052,992 | 12.3 MB (6.2 MB) | 60 | 0.869 | 0.937 |
# | MobileNetV2 (random init) | 2,421,958 | 10.3 MB (5.4 MB) | 30 (time limit) | 0.919 | 0.981 |
#
# * **The bar is reached by DeepSign**, the smallest network, and by its float16 copy (0.967 / 0.995 in
#   0.67 MB). On other writer splits the same recipe gave 0.922 / 0.974 (seed 1), 0.885 / 0.912 (seed 2)
#   and 0.946 / 0.989 (seed 3): a mean of 0.930 / 0.967 over four splits, with seed 2 below the bar. Ten
#   test writers are few; expect a few points either way on new writers.
# * **What moved it** (DeepSign, same split): the paper's binary image scored AUROC 0.70; keeping the ink's
#   grey levels 0.96; adding cosine decay 0.985; the strong jitter and keeping the last epoch 0.995. Without
#   the jitter the branch learns the 30 training writers' forgeries and later epochs get worse on new writers.
# * **A shortcut to keep in mind.** In this set the forgeries' ink is on average a different shade: the
#   darkness of the ink alone, no learning, gives AUROC 0.87 on these test pairs (0.73-0.87 over the four
#   splits). The trained branches beat it clearly, but part of what grey levels add may be the pen, not the
#   writer. On a set where forgers used the same pens, compare with `KEEP_GRAY = False`.
# * **What would help next:** more writers (CEDAR, GPDS) for training and, above all, for testing; SigNet at
#   its own 155x220 with more steps; ImageNet weights for MobileNetV2 where a network is available.
