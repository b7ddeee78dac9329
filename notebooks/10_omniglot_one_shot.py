# %% [markdown]
# # 10 · One-shot learning on Omniglot (Koch et al. 2015)
#
# **What this notebook teaches.** Koch, Zemel & Salakhutdinov (2015) trained a Siamese network to
# answer one question, *are these two drawings the same character?* (verification), and then used it
# unchanged for a different one, *which of these 20 characters, each seen once, is this drawing?*
# (20-way one-shot classification, Lake et al.'s benchmark). We
#
# 1. load the Omniglot background alphabets and hold two alphabets out (Balinese, Early_Aramaic),
# 2. build Koch's verification pairs (within and across alphabets, 8 affine distortions per pair)
#    and the Koch network (38.95 M parameters, L1 head, binary cross-entropy),
# 3. define 20-way one-shot episodes in the layout of Lake's runs, with a raw-pixel floor,
# 4. train what works on a CPU: a 4-block conv net at 28x28 with rotated characters as new
#    classes, random affine distortions and an in-batch soft nearest-neighbour loss, and
# 5. look at one 20-way trial: the query, the support set and the model's scores; then score the
#    layout sample of Lake's official runs.
#
# **Run times** (2 CPU cores): full run about 11 minutes (Koch 2 min, conv4 8 min, the rest loading,
# model building and evaluation); smoke mode (`SIAMESE_TF_SMOKE=1`, used by CI) under a minute. The
# benchmark `benchmarks/omniglot_one_shot.py` trains the same conv4 recipe; its figures are quoted at
# the end.
#
# Label convention: **1 = same character**, 0 = different.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import time

import matplotlib.pyplot as plt
import numpy as np

from siamese_tf import plots, settings
from siamese_tf.metrics import roc_auc
from siamese_tf.studies import omniglot

# %% [markdown]
# ## Parameters
# Everything that changes between a full run and a smoke run is here.

# %%
DATA_DIR = settings.data_dir()                       # holds omniglot/ (SIAMESE_TF_DATA_DIR)
DRAWERS_PER_CHARACTER = settings.pick(None, 4)       # None = all 20
N_WAY = settings.pick(20, 5)
VALIDATION_EPISODES = settings.pick(40, 3)           # each episode gives N_WAY query tasks
KOCH_SIDE = settings.pick(48, 32)                    # Koch et al. use 105; 48 keeps the CPU demo short
KOCH_MINUTES = settings.pick(2.0, None)
KOCH_BASE_PAIRS = settings.pick(200, 4)              # per epoch, each followed by 8 distorted copies
CONV4_MINUTES = settings.pick(8.0, None)
CONV4_EPOCHS = settings.pick(1000, 1)
CONV4_STEPS_PER_EPOCH = settings.pick(100, 2)
SEED = 0
settings.seed_everything(SEED)

# %% [markdown]
# ## 1 · The data: alphabets, characters, drawers
#
# Omniglot has 50 alphabets; each character was drawn once by each of 20 people (drawers). Here we
# have the two *minimal background* sets (8 distinct alphabets; Greek and Latin are in both and are
# kept once). We load them twice: at 105x105 as drawn (for Koch's network and for looking at them)
# and at 28x28 with strokes = 1 (for the small conv net).

# %%
# NBVAL_IGNORE_OUTPUT
started = time.perf_counter()
small = omniglot.load_background_small(DATA_DIR, image_size=(28, 28), invert=True,
                                       max_images_per_class=DRAWERS_PER_CHARACTER)
train_set, held_out = omniglot.split_alphabets(small)
print(f"loaded in {time.perf_counter() - started:.1f} s")
print(f"{small.num_classes} characters, {len(small)} images; training alphabets:",
      sorted(map(str, set(omniglot.class_alphabets(train_set)))))

# %%
assert small.num_classes == 242
assert set(omniglot.class_alphabets(held_out)) == {"Balinese", "Early_Aramaic"}
print(train_set.num_classes, "training characters,", held_out.num_classes, "held-out characters")

# %%
# NBVAL_IGNORE_OUTPUT
figure, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for row, alphabet in enumerate(["Korean", "Balinese"]):
    classes = [k for k, name in enumerate(small.class_names) if omniglot.alphabet_of(name) == alphabet][:8]
    for axis, label in zip(axes[row], classes):
        axis.imshow(1 - small.images[np.flatnonzero(small.labels == label)[0], ..., 0], cmap="gray")
        axis.set_axis_off()
    axes[row, 0].set_title(alphabet, fontsize=9, loc="left")
figure.tight_layout()

# %% [markdown]
# ## 2 · Koch's verification task
#
# Koch et al. train on pairs: *same* pairs are two drawers of one character, *different* pairs two
# characters, here half of them from the same alphabet (hard: similar strokes) and half from
# different alphabets. Every pair is followed by 8 copies in which each image gets its own random
# affine distortion (rotation within ±10°, shear within ±0.3, scale 0.8-1.2, shift within ±2 px, each
# component used with probability 1/2).

# %%
# NBVAL_IGNORE_OUTPUT
koch_data = omniglot.load_background_small(DATA_DIR, image_size=(KOCH_SIDE, KOCH_SIDE),
                                           max_images_per_class=DRAWERS_PER_CHARACTER)
koch_train, koch_held = omniglot.split_alphabets(koch_data)
koch_batches = omniglot.KochPairBatches(koch_train.images, koch_train.labels, omniglot.class_alphabets(koch_train),
                                        base_pairs_per_epoch=KOCH_BASE_PAIRS, batch_size=32, seed=SEED)
first, second, labels, distorted = koch_batches.epoch_pairs(0)
print(f"{len(labels)} pairs per epoch: {int(labels.sum())} same (label 1), {int((1 - labels).sum())} different;",
      f"{int(distorted.sum())} are distorted copies")
(first_images, second_images), pair_labels = koch_batches.batch(0, 0)
plots.plot_pairs(first_images, second_images, labels=pair_labels, max_pairs=6)

# %% [markdown]
# The Koch network: four convolutional layers and a 4096-unit sigmoid layer; the head scores a pair
# with `sigmoid(w · |a - b| + b)`. At 105x105 it has 38.95 M parameters and trains at about 13 pairs
# per second on this CPU, so here we train it briefly at a reduced size with Adam (the paper's SGD
# with momentum schedule is `optimizer="sgd"`), stopping on the 20-way accuracy of held-out
# episodes other than those we report. This is a demonstration of the recipe, not a trained model.

# %%
full_koch = omniglot.build_koch_model((105, 105, 1))
print(f"Koch et al. at 105x105: {full_koch.embedding.count_params() + full_koch.head.count_params():,} parameters")
del full_koch
koch_model = omniglot.build_koch_model((KOCH_SIDE, KOCH_SIDE, 1), padding="same")
koch_episodes = omniglot.sample_one_shot_episodes(koch_held, N_WAY, VALIDATION_EPISODES, seed=1000)
# Early stopping watches other episodes (seed 3000) than the ones we report, so the reported
# accuracy is not the luckiest epoch's.
koch_selection = omniglot.sample_one_shot_episodes(koch_held, N_WAY, VALIDATION_EPISODES, seed=3000)

# %%
# NBVAL_IGNORE_OUTPUT
history, koch_one_shot, koch_budget = omniglot.train_koch(
    koch_model, koch_train, koch_held, koch_selection, num_epochs=settings.pick(1000, 1),
    base_pairs_per_epoch=KOCH_BASE_PAIRS, distortions_per_pair=8, batch_size=32, learning_rate=1e-4,
    patience=10, minutes=KOCH_MINUTES, seed=SEED)
print(f"{koch_budget.steps} steps in {koch_budget.elapsed_seconds:.0f} s; {N_WAY}-way accuracy per epoch "
      "on the selection episodes:", np.round(koch_one_shot.history, 3))

# %% [markdown]
# Verification first: how well does it separate same from different pairs of the held-out alphabets?

# %%
# NBVAL_IGNORE_OUTPUT
rng = np.random.default_rng(7)
first, second, labels = omniglot.sample_koch_pairs(koch_held.labels, omniglot.class_alphabets(koch_held),
                                                   settings.pick(400, 20), rng)
similarities = koch_model.similarity_pairs(koch_held.images[first], koch_held.images[second])
print(f"held-out verification ROC AUC: {roc_auc(similarities, labels):.3f}")
koch_result = omniglot.evaluate_episodes(koch_model, koch_held.images, koch_episodes)
print(f"held-out {N_WAY}-way one-shot accuracy: {koch_result['accuracy']:.3f} (chance {koch_result['chance']:.3f})")

# %% [markdown]
# ## 3 · One-shot episodes and the raw-pixel floor
#
# An episode follows Lake's runs: `N_WAY` characters of one alphabet; one drawer supplies the support
# set (one image per character), a second drawer the `N_WAY` queries. A query is right when its own
# character's support image has the unique highest similarity. The episodes are seeded, so every
# method is compared on the same tasks. Nearest neighbour on raw pixels is the floor (about 20% on
# the official runs). Training keeps the epoch that does best on a third set of episodes
# (`selection`, seed 3000), never on the ones we report.

# %%
# NBVAL_IGNORE_OUTPUT
episodes = omniglot.sample_one_shot_episodes(held_out, N_WAY, VALIDATION_EPISODES, seed=1000)
across = omniglot.sample_one_shot_episodes(held_out, N_WAY, VALIDATION_EPISODES, seed=2000, within_alphabet=False)
selection = omniglot.sample_one_shot_episodes(held_out, N_WAY, VALIDATION_EPISODES, seed=3000)  # to pick the epoch
assert episodes.support_indices.shape == (VALIDATION_EPISODES, N_WAY)
np.testing.assert_array_equal(held_out.labels[episodes.query_indices], held_out.labels[episodes.support_indices])
pixels = omniglot.evaluate_episodes(omniglot.PixelScorer(), held_out.images, episodes)
print(f"{episodes.num_tasks} tasks; raw pixels: {pixels['accuracy']:.3f}")

# %% [markdown]
# ## 4 · What trains well on a CPU: a small conv net, in-batch
#
# * **Rotations as new classes**: a character turned by 90°, 180° or 270° is another character,
#   which multiplies the training characters by 4.
# * **Random affine distortions** of every training image.
# * **In-batch training** (`ClassBalancedBatches`): each batch holds P characters x K drawings; every
#   image is embedded once, and the loss looks at all pairs of the batch.
# * **A loss that is the one-shot task**: for each image, the soft nearest neighbour among the rest
#   of the batch (`exp(-distance²)` weights) should be of its own character
#   (`omniglot.neighbourhood_loss`).
# * 28x28 inputs, strokes = 1, a 4-block conv net (116 k parameters), Euclidean head.

# %%
rotated_train = omniglot.add_rotations(train_set)
print(f"{train_set.num_classes} characters -> {rotated_train.num_classes} classes with rotations")
conv4 = omniglot.build_conv4_model((28, 28, 1))

# %%
# NBVAL_IGNORE_OUTPUT
history, one_shot, budget = omniglot.train_conv4(
    conv4, rotated_train, held_out, selection, num_epochs=CONV4_EPOCHS, steps_per_epoch=CONV4_STEPS_PER_EPOCH,
    classes_per_batch=settings.pick(64, 4), images_per_class=2, learning_rate=2e-3, minutes=CONV4_MINUTES, seed=SEED)
print(f"{budget.steps} steps in {budget.elapsed_seconds:.0f} s; best epoch {one_shot.best_epoch + 1}")
figure, axis = plt.subplots(figsize=(5, 3))
axis.plot(np.arange(1, len(one_shot.history) + 1), one_shot.history, marker="o")
axis.axhline(pixels["accuracy"], color="gray", linestyle="--", label="raw pixels")
axis.set_xlabel("epoch")
axis.set_ylabel(f"{N_WAY}-way accuracy (selection episodes)")
axis.legend()
figure.tight_layout()

# %% [markdown]
# A trained network can also look at each drawing more than once. `ModelScorer` with
# `test_time_grid` embeds every image moved by -2, 0 and 2 pixels in each direction (a 3 x 3 grid,
# zeros shifted in) and averages the nine embeddings, so a drawing placed a little off centre still
# lands near its character. The grid was chosen on episodes that report nothing
# (benchmarks/RESULTS.md); below, both ways on the same tasks.

# %%
# NBVAL_IGNORE_OUTPUT
grid_scorer = omniglot.ModelScorer(conv4, test_time_grid=omniglot.TEST_TIME_GRID_OFFSETS)
print(f"{len(grid_scorer.view_offsets)} views per image:", grid_scorer.view_offsets)
within = omniglot.evaluate_episodes(grid_scorer, held_out.images, episodes, return_similarities=True)
within_one_view = omniglot.evaluate_episodes(conv4, held_out.images, episodes)
across_result = omniglot.evaluate_episodes(grid_scorer, held_out.images, across)
across_one_view = omniglot.evaluate_episodes(conv4, held_out.images, across)
print(f"held-out {N_WAY}-way within alphabet: {within['accuracy']:.3f} on the grid, "
      f"{within_one_view['accuracy']:.3f} the image alone; across alphabets: {across_result['accuracy']:.3f} / "
      f"{across_one_view['accuracy']:.3f}; raw pixels: {pixels['accuracy']:.3f}")

# %%
assert 0.0 <= within["accuracy"] <= 1.0 and within["similarities"].shape == (VALIDATION_EPISODES, N_WAY, N_WAY)
assert len(grid_scorer.view_offsets) == len(omniglot.TEST_TIME_GRID_OFFSETS) ** 2

# %% [markdown]
# ## 5 · One 20-way trial
#
# The query (left), the support set (one drawing of each candidate character) and the model's
# similarity to each; the orange frame is the model's choice, the green frame the right answer.
# The bar chart shows the same scores: one-shot classification is an arg-max over them.

# %%
# NBVAL_IGNORE_OUTPUT
episode, query = 0, 3
support_images = 1 - held_out.images[episodes.support_indices[episode]]
query_image = 1 - held_out.images[episodes.query_indices[episode, query]]
scores = within["similarities"][episode, query]
plots.plot_n_way_task(query_image, support_images, scores, correct_position=query)

# %%
# NBVAL_IGNORE_OUTPUT
figure, axis = plt.subplots(figsize=(7, 2.5))
colors = ["tab:green" if position == query else "tab:gray" for position in range(len(scores))]
axis.bar(np.arange(1, len(scores) + 1), scores - scores.min(), color=colors)
axis.set_xlabel("support character")
axis.set_ylabel("similarity (shifted)")
axis.set_title(f"episode {episode} ({episodes.alphabets[episode]}), query {query + 1}: green = its character")
figure.tight_layout()

# %% [markdown]
# ## 6 · Lake's official runs
#
# `score_lake_runs` reads `all_runs.zip` (or its folder): `runNN/training/classKK.png` (support),
# `runNN/test/itemKK.png` (queries) and `runNN/class_labels.txt`, and returns per-run and mean
# accuracy. The official runs use the *evaluation* alphabets, which are not here; the file below is a
# two-run sample in the same layout built from background images (some of them seen in training),
# so it checks the scorer, not the model. With the real file:
# `omniglot.score_lake_runs("all_runs.zip", grid_scorer, image_size=(28, 28), invert=True)`.

# %%
# NBVAL_IGNORE_OUTPUT
sample = DATA_DIR / "omniglot" / "lake_runs_format_example.zip"
print("conv4:", omniglot.score_lake_runs(sample, grid_scorer, image_size=(28, 28), invert=True)["per_run"])
print("pixels:", omniglot.score_lake_runs(sample, omniglot.PixelScorer())["per_run"])

# %%
runs = omniglot.read_lake_runs(sample, image_size=(28, 28), invert=True)
print([run.name for run in runs], runs[0].support_images.shape, runs[0].query_images.shape)

# %% [markdown]
# ## What we reached
#
# Held-out alphabets (Balinese, Early_Aramaic; never trained on), the same fixed 40 episodes x 20
# queries = 800 tasks (seed 1000), 20-way within one alphabet; each training run kept the epoch that
# did best on another 800 tasks (seed 3000). Stored outputs: full run of 2026-12-07 on 2 CPU cores
# with nothing else running, on a fast day for this machine (1024 x 1024 matrix products at about
# 330 GFLOP/s; on slower days the same minutes run fewer steps). Each conv4 figure is scored on the
# 3 x 3 grid of shifted views, the image alone in brackets.
#
# | model | training | held-out 20-way (within) | across alphabets |
# |---|---|---|---|
# | raw pixels, nearest neighbour | none | 19.2% | |
# | Koch network at 48x48 (this notebook) | 2 min, 252 steps | 10.9% | |
# | conv4, this notebook | 8 min, 12,614 steps | **68.8%** (65.2%) | 80.6% (79.0%) |
# | conv4, benchmark `--minutes 5`, seed 0 | 5 min, 8,010 steps | 68.4% (63.4%) | 80.6% (77.8%) |
# | conv4, benchmark `--minutes 5`, seed 1 | 5 min, 7,901 steps | 79.4% (76.3%) | 79.8% (78.0%) |
# | conv4, benchmark default, seed 0: four voting | 4 x 6 min, 31,258 steps | **71.75%** (68.5%) | 83.0% (82.75%) |
# | conv4, one network for the same 24 min, seed 0 | 24 min, 30,086 steps | 68.1% (63.9%) | 83.0% (78.9%) |
#
# (`benchmarks/omniglot_one_shot.py`; its seed 1 draws other episodes, hence the higher figure.) One
# network stops gaining after about 6 minutes, so the benchmark's 24-minute default trains four of 6
# minutes and averages their standardised similarities (`omniglot.choose_ensemble_size`,
# `omniglot.EnsembleScorer`); that choice was made on episodes that report nothing, over three seeds
# (benchmarks/RESULTS.md). The grid
# (`omniglot.ModelScorer(model, test_time_grid=omniglot.TEST_TIME_GRID_OFFSETS)`) was chosen on
# episodes that report nothing (benchmarks/RESULTS.md). The full run of 2026-12-05, on a slower day
# and scored on the image alone, reads 65.3% after 9,557 steps (Koch: 12.8% after 185 steps), and
# the benchmark's 5-minute runs 63.3% / 74.1% after about 6,300 steps. Until 2026-12-05 the epoch
# was chosen on the reported episodes themselves, which flattered them by 2-3 points (benchmark,
# same seeds: 65.8% / 76.4% that way); the figures above do not.
#
# What moved it (earlier runs, on the older engine): batch-norm momentum 0.9 instead of 0.99 (with
# 0.99 and under 100 steps the evaluation statistics were still mostly their initial values: 25.5%
# after 87 steps with 0.99, 53.8% after 146 steps with 0.9, both 8-10 minute runs);
# 64 filters beat 32 (53.8% vs 48.6% in 8 minutes, though 32 filters ran twice the steps). The
# issue's bar (95.5% on Lake's official runs, which use the evaluation alphabets) cannot be measured
# here; the held-out number is a harder, different test and must not be read as the official one.
# Run `python benchmarks/omniglot_one_shot.py --runs all_runs.zip` after downloading the official
# runs to get it.
#
