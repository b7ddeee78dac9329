# %% [markdown]
# # 13 · Mask-guided classification: an image against its domain's binary masks
#
# **What this notebook teaches.** Alqasir, Muselet & Ducottet ("Mask-guided Image Classification with Siamese
# Networks", VISAPP 2020) decide whether a chairlift's safety bar is **open or closed**. The class depends on a
# thin bar in a cluttered scene, and every chairlift looks different. Their idea: give the network, for each
# chairlift, a binary **mask** of the open bar and one of the closed bar. A Siamese network embeds images and masks
# (masks repeated to 3 channels so both branches share weights) in a 2-D space; the contrastive loss pulls each
# image towards the mask of its own class. An image takes the class of the **nearer of its chairlift's two masks**,
# so a chairlift never seen in training needs only its two masks. We
#
# 1. generate synthetic chairlift domains (the paper's data are private): carrier shape, seat count, viewpoint,
#    background, lighting, weather, passengers and passers-by; per-domain open/closed masks and class imbalance,
# 2. build image/mask pairs (half positive, always within one domain) and the paper's sister network,
# 3. train it with the contrastive loss, and the same network as a plain softmax classifier (the baseline),
# 4. compare per-domain accuracy (the paper's Table 2) on seen chairlifts and on chairlifts never seen in
#    training, draw the 2-D embeddings with the masks as triangles (its Figures 4-5), and read the
#    larger-training-set run from the benchmark,
# 5. load a user's own data in the same folder layout.
#
# Label conventions: class ids 0 = closed, 1 = open; pair labels **1 = same** (image with its own class's mask),
# 0 = different.
#
# **Run times** (2 shared CPU cores): full run about 18 minutes (11 of them training; measured with
# the machine shared by other jobs); smoke run (`SIAMESE_TF_SMOKE=1`) about 20 s of CPU, 1.5 minutes wall on the
# busy machine. The full run trains at 48x48 (the generator draws at 200x200, the paper's size, then resizes) with
# 8 seen and 4 unseen chairlifts instead of the paper's 20, to stay within CPU budget. The larger-training-set
# numbers come from `benchmarks/mask_guided.py` (its JSON in the reports folder, read only with
# `REUSE_BENCHMARK_RESULTS = True`), not from this notebook.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from IPython.display import Markdown, display

from siamese_tf import plots, settings
from siamese_tf.studies import mask_guided
from siamese_tf.studies.mask_guided import CLASS_NAMES

# %% [markdown]
# ## Parameters
# Everything that changes between a full run and a smoke run is here.
#
# `REUSE_BENCHMARK_RESULTS` (off by default) shows in section 6 the figures that `benchmarks/mask_guided.py`
# wrote to its JSON; nothing else in this notebook reads benchmark files. The stored output of section 6 was
# produced with `REUSE_BENCHMARK_RESULTS = True`, from the benchmark's JSON.

# %%
NUM_SEEN_DOMAINS = settings.pick(8, 2)        # chairlifts used for training (the paper: 20)
NUM_UNSEEN_DOMAINS = settings.pick(4, 1)      # chairlifts never seen in training
TRAIN_PER_DOMAIN = settings.pick(100, 10)     # the paper's 100 training images per chairlift
VALIDATION_PER_DOMAIN = settings.pick(20, 4)
TEST_PER_DOMAIN = settings.pick(60, 6)
IMAGE_SIZE = settings.pick((48, 48), (24, 24))
EPOCHS = settings.pick(12, 1)                 # for both models
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
MARGIN = 1.0                                  # contrastive-loss margin in the 2-D embedding
SEED = 0
REUSE_BENCHMARK_RESULTS = False               # True: section 6 reads the benchmark's JSON
# The benchmark's JSON; a relative reports dir is looked up from the repository root too (this
# notebook runs in notebooks/).
BENCHMARK_JSON = settings.reports_dir() / "mask_guided.json"
if not BENCHMARK_JSON.is_absolute() and not BENCHMARK_JSON.is_file():
    BENCHMARK_JSON = Path("..") / BENCHMARK_JSON

# %% [markdown]
# ## 1 · Synthetic chairlifts
#
# Each domain draws its own carrier (seat count, width, backrest, hanger), camera (a homography), background
# (sky, ridge, trees, pylons), lighting and tint, weather mix (snow, rain, fog, glare), occupancy, bar colour and
# thickness, and an open fraction between 15% and 50% (the paper's Table 1 has more closed than open images; its
# exact counts were not available here, so this range is a stand-in). Images are registered to the domain's
# camera up to a small swing of the carrier; the masks are drawn with the same geometry, white bar on black.

# %%
# NBVAL_IGNORE_OUTPUT
started = time.perf_counter()
data = mask_guided.generate_chairlift_data(
    NUM_SEEN_DOMAINS + NUM_UNSEEN_DOMAINS, TRAIN_PER_DOMAIN, VALIDATION_PER_DOMAIN, TEST_PER_DOMAIN,
    image_size=IMAGE_SIZE, seed=SEED, progress=False)
print(f"generated in {time.perf_counter() - started:.1f} s")
seen = list(range(NUM_SEEN_DOMAINS))
unseen = list(range(NUM_SEEN_DOMAINS, NUM_SEEN_DOMAINS + NUM_UNSEEN_DOMAINS))
train = data["train"].select_domains(seen)
validation = data["validation"].select_domains(seen)
test_seen = data["test"].select_domains(seen)
test_unseen = data["test"].select_domains(unseen)
for row in data["train"].counts():
    print(f"{row['domain']}: {row['closed']:4d} closed {row['open']:4d} open",
          "(unseen in training)" if data["train"].domain_names.index(row["domain"]) in unseen else "")

# %%
assert train.images.shape[1:] == IMAGE_SIZE + (3,)
assert data["train"].masks.shape == (NUM_SEEN_DOMAINS + NUM_UNSEEN_DOMAINS, 2) + IMAGE_SIZE + (3,)
assert set(np.unique(data["train"].masks)) <= {0.0, 1.0}
assert set(np.unique(train.domain_ids)) == set(seen) and set(np.unique(test_unseen.domain_ids)) == set(unseen)
print("shapes and splits as expected")

# %% [markdown]
# What the generator draws, at full size (200x200): a few images of four domains, each domain's closed and open
# masks, and a mask laid over an image of its class (red) to show the registration.

# %%
# NBVAL_IGNORE_OUTPUT
from matplotlib.figure import Figure

preview = mask_guided.generate_chairlift_data(4, 3, 0, 0, image_size=(200, 200), seed=SEED, progress=False)["train"]
figure = Figure(figsize=(12, 8.4))
for domain_id in range(4):
    indices = np.flatnonzero(preview.domain_ids == domain_id)
    tiles = [(preview.images[i], CLASS_NAMES[preview.class_ids[i]]) for i in indices]
    tiles += [(preview.masks[domain_id, 0], "closed mask"), (preview.masks[domain_id, 1], "open mask"),
              (mask_guided.mask_overlay(preview.images[indices[0]],
                                       preview.masks[domain_id, preview.class_ids[indices[0]]]), "overlay")]
    for column, (tile, title) in enumerate(tiles):
        axes = figure.add_subplot(4, 6, domain_id * 6 + column + 1)
        axes.imshow(tile)
        axes.set_title(f"{preview.domain_names[domain_id]}\n{title}" if column == 0 else title, fontsize=8)
        axes.axis("off")
figure.tight_layout()
figure

# %% [markdown]
# ## 2 · Image/mask pairs
#
# Every training image goes with both masks of its own chairlift: one positive pair (its class's mask, label 1)
# and one negative pair (the other mask, label 0). So pairs are exactly half positive whatever the class
# imbalance, and never mix chairlifts.

# %%
image_indices, mask_indices, labels = mask_guided.image_mask_pairs(train)
assert len(labels) == 2 * len(train) and labels.mean() == 0.5
assert np.all(mask_indices // 2 == train.domain_ids[image_indices])          # within one domain
print(f"two pairs per image, {labels.mean():.0%} positive, none across chairlifts")

# %%
# NBVAL_IGNORE_OUTPUT
(pair_images, pair_masks), pair_labels = mask_guided.validation_pairs(train.subset(np.arange(4)))
plots.plot_pairs(pair_images, pair_masks, labels=pair_labels, max_pairs=8)

# %% [markdown]
# ## 3 · The sister network and training
#
# Conv 32@3x3 - Conv 64@3x3 - max-pool - dense to a **2-D embedding** (`mask_guided.mask_guided_sister_embedding`).
# The Siamese model pairs it with the Euclidean `DistanceHead` and the contrastive loss. Training uses the
# `"shared_masks"` method: each step embeds a batch of images once and all masks once, then scores every image
# against its domain's two masks; this is the same mean loss over all image/mask pairs as the pair-by-pair method
# (`method="pairs"`, through `training.train_siamese`), at about half the cost.

# %%
# NBVAL_IGNORE_OUTPUT
settings.seed_everything(SEED)
siamese = mask_guided.build_mask_guided_siamese(train.image_shape, learning_rate=LEARNING_RATE, margin=MARGIN)
siamese.embedding.summary()

# %%
# NBVAL_IGNORE_OUTPUT
started = time.perf_counter()
siamese_history = mask_guided.train_mask_guided_siamese(
    siamese, train, EPOCHS, validation_data=validation, batch_size=BATCH_SIZE, seed=SEED, verbose=1)
siamese_minutes = (time.perf_counter() - started) / 60
print(f"Siamese training: {siamese_minutes:.1f} minutes")

# %% [markdown]
# The baseline is the same network with its 2-D output read as class logits (softmax), trained with
# cross-entropy on the images alone. It sees each image once per epoch; the Siamese network sees it twice (with
# both masks), at about twice the cost per epoch.

# %%
# NBVAL_IGNORE_OUTPUT
settings.seed_everything(SEED)
classifier = mask_guided.build_classifier(train.image_shape, learning_rate=LEARNING_RATE)
started = time.perf_counter()
classifier_history = mask_guided.train_classifier(
    classifier, train, EPOCHS, validation_data=validation, batch_size=BATCH_SIZE, seed=SEED, verbose=0)
print(f"classifier training: {(time.perf_counter() - started) / 60:.1f} minutes; "
      f"final validation accuracy {classifier_history.history['val_accuracy'][-1]:.3f}")

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_training_curves(siamese_history)

# %% [markdown]
# ## 4 · Per-domain accuracy (the paper's Table 2)
#
# The Siamese model predicts the class of the nearer of the image's own chairlift's two masks; the classifier
# takes the arg-max of its softmax. Accuracy is per chairlift, and the mean is over chairlifts, as in the paper.

# %%
results = {}
for split_name, test in (("seen", test_seen), ("unseen", test_unseen)):
    results[split_name] = {
        "siamese": mask_guided.per_domain_accuracy(test, mask_guided.predict_with_masks(siamese, test)),
        "classifier": mask_guided.per_domain_accuracy(test, mask_guided.predict_classifier(classifier, test)),
    }
assert set(results) == {"seen", "unseen"} and len(results["seen"]["siamese"][0]) == NUM_SEEN_DOMAINS

# %%
# NBVAL_IGNORE_OUTPUT
display(Markdown("**Chairlifts seen in training** (test images)\n\n" + mask_guided.accuracy_table(
    {method: rows for method, (rows, _) in results["seen"].items()})))

# %%
# NBVAL_IGNORE_OUTPUT
display(Markdown("**Chairlifts never seen in training** (the Siamese model gets only their masks)\n\n"
                 + mask_guided.accuracy_table({method: rows for method, (rows, _) in results["unseen"].items()})))
for split_name in results:
    for method, (_, summary) in results[split_name].items():
        print(f"{split_name:6s} {method:10s} mean accuracy {summary['mean_accuracy']:.3f}  "
              f"mean balanced accuracy {summary['mean_balanced_accuracy']:.3f}")

# %% [markdown]
# ## 5 · The 2-D embedding (Figures 4 and 5)
#
# Images of each chairlift as dots (blue closed, orange open) and the chairlift's two masks as triangles. The
# decision boundary is the perpendicular bisector of the two triangles.

# %%
# NBVAL_IGNORE_OUTPUT
mask_guided.plot_embedding_by_domain(siamese, test_seen, domain_ids=seen[:6], columns=3)

# %%
# NBVAL_IGNORE_OUTPUT
mask_guided.plot_embedding_by_domain(siamese, test_unseen, domain_ids=unseen, columns=4)

# %% [markdown]
# ## 6 · A larger training set (from the benchmark)
#
# `benchmarks/mask_guided.py` runs the same comparison twice: with 100 and with 250 training images per
# chairlift (same seen and unseen chairlifts and test images). Run it first, and set
# `REUSE_BENCHMARK_RESULTS = True`, to fill this table.

# %%
# NBVAL_IGNORE_OUTPUT
if not REUSE_BENCHMARK_RESULTS:
    print("REUSE_BENCHMARK_RESULTS is False: the benchmark's figures are not read")
elif BENCHMARK_JSON.is_file():
    benchmark = json.loads(BENCHMARK_JSON.read_text())
    print("paper (20 chairlifts, 100 training images each, 200x200):", benchmark["paper"])
    for run_name, run in benchmark["runs"].items():
        for split_name, methods in run["results"].items():
            cells = ", ".join(f"{method} {values['mean_accuracy']:.3f}" for method, values in methods.items())
            print(f"{run_name:10s} {split_name:6s} {cells}")
else:
    print(f"no benchmark results at {BENCHMARK_JSON}; run: python benchmarks/mask_guided.py")

# %% [markdown]
# ## 7 · Your own chairlifts (or any two-class problem with masks)
#
# `mask_guided.load_mask_domains(root)` reads `root/<domain>/{open,closed}/*` images and
# `root/<domain>/open_mask.png`, `root/<domain>/closed_mask.png`. The generator writes exactly this layout with
# `output_dir=`, which is how we check the loader here; unreadable files are skipped with a warning and counted.

# %%
with tempfile.TemporaryDirectory() as folder:
    written = mask_guided.generate_chairlift_data(2, 3, 0, 0, image_size=IMAGE_SIZE, seed=SEED, output_dir=folder,
                                                 progress=False)
    loaded = mask_guided.load_mask_domains(Path(folder) / "train", image_size=IMAGE_SIZE)
print(loaded.domain_names, len(loaded), "images, skipped", loaded.skipped)
assert loaded.domain_names == written["train"].domain_names and len(loaded) == 6
predicted = mask_guided.predict_with_masks(siamese, loaded)   # a new chairlift needs only its two masks
assert predicted.shape == (6,)

# %% [markdown]
# ## What we saw
#
# - **Seen chairlifts** (8, 100 training images each, 48x48): both models reach **99.2%** mean accuracy here,
#   above the paper's 90.94% (Siamese with masks) and 87.76% (classifier). Our generated chairlifts are easier
#   than real ones (clean registration, no real lighting), so the paper's gap does **not** show on seen domains.
# - **Unseen chairlifts** (4, only their masks given): the Siamese model gets **76.7%**, the classifier **69.6%**,
#   with large spread per chairlift (43% to 97%): on one chairlift the nearer-mask rule is worse than chance,
#   on another the classifier is. Four domains and one seed are not enough to call the difference firm.
# - **Larger training set** (250 images per chairlift, 5 epochs, benchmark): seen 99.0% vs 99.2%; unseen
#   **72.5% (Siamese) vs 91.7% (classifier)**: with more data the plain classifier generalised better here.
# - **A second seed** (other chairlifts, `--seed 1`, 12 epochs): the contrastive training stalled on a loss
#   plateau (0.107, all embeddings close together): Siamese 67.7% seen / 68.3% unseen against the classifier's
#   99.2% / 57.5%. With 24 epochs it left the plateau: 98.1% seen / 59.2% unseen against 99.2% / 57.5%
#   (`benchmarks/mask_guided.py --seed 1 --epochs 24 --large-train-per-domain 0`). The 2-D contrastive
#   embedding is slower and less reliable to train than the softmax head on this data; the classifier is the
#   more dependable choice on seen chairlifts, the mask-guided model the one that needs nothing but two masks
#   for a new chairlift.
# - Next steps we did not take: more seeds and domains (the paper's 20), training at 200x200, a wider
#   embedding than 2-D, and a learning-rate warm-up against the plateau.
