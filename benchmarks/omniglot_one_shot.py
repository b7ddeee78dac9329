"""Omniglot one-shot benchmark: train from scratch, report 20-way accuracy on held-out alphabets.

Trains on the minimal background sets minus the held-out alphabets (Balinese, Early_Aramaic),
then scores a fixed, seeded set of 20-way within-alphabet episodes of the held-out alphabets
(Lake's layout: one drawer gives the supports, another the queries), the same episodes across
all held-out characters, the raw-pixel nearest-neighbour floor, and the scorer on the layout sample
of Lake's runs (``lake_runs_format_example.zip``; built from background images, so not the
benchmark). With ``--runs PATH`` (the official ``all_runs.zip``) it also scores the official runs.
Keep-best (and Koch's early stopping) choose the epoch on a third, separate set of within-alphabet
episodes of the held-out alphabets, so the reported episodes never choose anything (before
2026-12-05 the reported episodes chose the epoch too). A fourth set, the choice episodes (seed
4000 + seed, ``--choice-episodes``), is scored for comparing recipes: a recipe is chosen on it,
so neither keep-best's set nor the reported one decides between recipes.
Prints one JSON object.

    python benchmarks/omniglot_one_shot.py             # CPU default: four conv4 networks at 28x28, 6 min each
    python benchmarks/omniglot_one_shot.py --minutes 5 # a shorter time budget: one network
    python benchmarks/omniglot_one_shot.py --ensemble 2 --minutes 10  # two networks, 5 minutes each, voting
    python benchmarks/omniglot_one_shot.py --loss proxies --minutes 5  # class proxies (additive-margin softmax)
    python benchmarks/omniglot_one_shot.py --train-on-all --runs all_runs.zip  # the final model, official runs
    python benchmarks/omniglot_one_shot.py --method koch --full   # Koch et al. at 105x105 (GPU)
    python benchmarks/omniglot_one_shot.py --smoke     # seconds-long check

Every conv4 accuracy is scored with test-time views (``--test-time-grid``, default
``omniglot.TEST_TIME_GRID_OFFSETS``: each image embedded moved by every (row, column) pair of the
offsets -2, 0 and 2 pixels at 28 x 28, scaled with ``--image-size`` by ``omniglot.scaled_test_time_grid``,
nine embeddings averaged); the ``*_one_view`` figures score the image as
given, as every figure before 2026-12-07 did. With ``--ensemble N`` the accuracies are those of the
N networks voting (``omniglot.EnsembleScorer``);
``parameters`` and ``images_embedded_per_second`` stay per network. Label convention: 1 = same character.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from siamese_tf import settings
from siamese_tf.reports import machine_description, measure_matmul_gflops  # noqa: E402
from siamese_tf.studies import omniglot  # noqa: E402
from siamese_tf.training import check_minutes  # noqa: E402


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("conv4", "koch"), default="conv4",
                        help="conv4: 4-block conv net at 28x28 trained in-batch (CPU default); koch: Koch et al.")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training time budget in minutes (default 24 for conv4, none for --full)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    parser.add_argument("--loss", choices=("neighbourhood", "prototypical", "triplet", "contrastive", "proxies"),
                        default="neighbourhood", help="conv4: proxies = one learned proxy per class, "
                                                      "additive-margin softmax (cosine head)")
    parser.add_argument("--proxy-scale", type=float, default=16.0, help="conv4 --loss proxies: softmax scale")
    parser.add_argument("--proxy-margin", type=float, default=0.1, help="conv4 --loss proxies: additive margin")
    parser.add_argument("--classes-per-batch", type=int, default=64, help="conv4: characters per batch (P)")
    parser.add_argument("--images-per-class", type=int, default=2, help="conv4: drawings per character (K)")
    parser.add_argument("--learning-rate", type=float, default=None, help="default conv4 2e-3, koch 1e-4 (adam)")
    parser.add_argument("--filters", type=int, default=64, help="conv4: filters in each of the 4 blocks")
    parser.add_argument("--image-size", type=int, default=None, help="side in pixels (conv4 28, koch 105)")
    parser.add_argument("--no-rotations", action="store_true", help="do not add rotated characters as classes")
    parser.add_argument("--no-augment", action="store_true", help="no random affine distortions")
    parser.add_argument("--augment-strength", type=float, default=1.0, help="conv4: scales every distortion range")
    parser.add_argument("--ensemble", type=int, default=None,
                        help="conv4: train this many networks (seeds seed, seed+1, ...), each for minutes/N, and "
                             "score with their standardised similarities averaged (default: one network per full "
                             f"{omniglot.MINUTES_PER_NETWORK:g} minutes of the budget, at least one: 4 for the "
                             "24-minute default, 1 for --minutes 5)")
    parser.add_argument("--pipeline", choices=("tf.data", "python"), default="tf.data",
                        help="conv4: batches built inside tf.data (default) or by the earlier NumPy/OpenCV engine")
    parser.add_argument("--train-on-all", action="store_true",
                        help="conv4: the final model, once a recipe is chosen: train on every background alphabet "
                             "(the held-out ones too, so their figures are no longer held out) and keep the last "
                             "weights; score it with --runs")
    parser.add_argument("--full", action="store_true", help="paper-size setting (GPU)")
    parser.add_argument("--smoke", action="store_true", help="seconds-long check")
    parser.add_argument("--test-time-grid", type=int, nargs="+", default=None, metavar="PIXELS",
                        help="conv4: offsets in pixels of the shifted views every image is embedded at, averaged "
                             "(default -2 0 2: a 3x3 grid chosen at 28x28, scaled with --image-size, e.g. -4 0 4 "
                             "at 56; 0 alone: the image as given, the only choice for koch)")
    parser.add_argument("--episodes", type=int, default=40, help="validation 20-way episodes (20 tasks each)")
    parser.add_argument("--choice-episodes", type=int, default=100,
                        help="within-alphabet episodes (20 tasks each, seed 4000 + seed) on which recipes are "
                             "compared; they report nothing and choose no epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="folder holding omniglot/ (default SIAMESE_TF_DATA_DIR)")
    parser.add_argument("--runs", default=None, help="Lake's all_runs.zip (or folder) to score as well")
    parser.add_argument("--save", default=None, help="save the trained model here (.keras)")
    parser.add_argument("--verbose", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    arguments = parse_arguments(argv)
    smoke = arguments.smoke or settings.smoke_mode()
    if arguments.image_size is not None and arguments.image_size < 1:
        raise SystemExit(f"--image-size must be a positive number of pixels, got {arguments.image_size}")
    side = arguments.image_size or (28 if arguments.method == "conv4" else 105)
    if arguments.test_time_grid is None:  # the 28 x 28 grid moved by the same fraction of a larger image
        arguments.test_time_grid = list(omniglot.scaled_test_time_grid(side)) if arguments.method == "conv4" else [0]
    if arguments.method == "koch" and any(arguments.test_time_grid):
        # Shifted views fill with 0, the background of inverted characters; Koch's network sees raw ones.
        raise SystemExit(f"--test-time-grid {' '.join(map(str, arguments.test_time_grid))}: shifted views are for "
                         f"--method conv4 (inverted images); koch scores the image as given (0)")
    for option, count in (("--episodes", arguments.episodes), ("--choice-episodes", arguments.choice_episodes)):
        if count < 1:
            raise SystemExit(f"{option} must be at least 1, got {count}")
    try:
        check_minutes(arguments.minutes)
    except ValueError:  # the trainers' own check, worded for the command line
        raise SystemExit(f"--minutes must be a positive number of minutes, got {arguments.minutes}") from None
    if arguments.ensemble is not None and arguments.ensemble < 1:
        raise SystemExit(f"--ensemble must be at least 1, got {arguments.ensemble}")
    # Refuses a bad grid before loading and training, which would otherwise only fail when scoring.
    view_offsets = omniglot.ModelScorer(None, test_time_grid=arguments.test_time_grid).view_offsets
    method = arguments.method
    invert = method == "conv4"  # strokes = 1 for the small conv net; Koch's network sees the raw images
    settings.seed_everything(arguments.seed)
    # The machine's speed before and after the clock runs: a minute's steps vary several-fold between days.
    machine_speed = {"matmul_1024_gflops_at_start": measure_matmul_gflops()}

    started = time.perf_counter()
    data = omniglot.load_background_small(arguments.data_dir, image_size=(side, side), invert=invert,
                                          max_images_per_class=4 if smoke else None)
    train_set, held_out = omniglot.split_alphabets(data)
    if arguments.train_on_all:
        if method != "conv4":
            raise SystemExit("--train-on-all is for --method conv4")
        train_set = data
    if not arguments.no_rotations and method == "conv4":
        train_set = omniglot.add_rotations(train_set)
    n_way = 5 if smoke else 20

    def held_out_episodes(count, seed_base, within_alphabet=True):
        return omniglot.sample_one_shot_episodes(held_out, n_way, 4 if smoke else count,
                                                 seed=seed_base + arguments.seed, within_alphabet=within_alphabet)

    episodes = held_out_episodes(arguments.episodes, 1000)
    across = held_out_episodes(arguments.episodes, 2000, within_alphabet=False)
    # Keep-best (and Koch's early stopping) watch their own episodes: choosing the epoch on the
    # episodes that are reported would report the luckiest epoch's noise.
    selection = held_out_episodes(arguments.episodes, 3000)
    # Recipes are compared on a fourth set, so the reported figures never decide a recipe either.
    choice = held_out_episodes(arguments.choice_episodes, 4000)
    loading_seconds = time.perf_counter() - started

    # The CPU default's budget, for both methods; the smoke check and the paper-size setting run by epochs.
    minutes = arguments.minutes if arguments.minutes is not None else (None if (smoke or arguments.full) else 24.0)
    if method == "conv4":
        epochs = arguments.epochs or (1 if smoke else (300 if arguments.full else 1000))
        # Past about 6 minutes one network stops gaining, so a longer budget trains several that vote.
        ensemble_size = arguments.ensemble or omniglot.choose_ensemble_size(minutes)
        member_minutes = None if minutes is None else minutes / ensemble_size
        members = []
        for member in range(ensemble_size):
            model = omniglot.build_conv4_model((side, side, 1), filters=(arguments.filters,) * 4,
                                               head="cosine" if arguments.loss == "proxies" else "euclidean")
            config = dict(num_epochs=epochs, steps_per_epoch=2 if smoke else 100,
                          classes_per_batch=8 if smoke else arguments.classes_per_batch,
                          images_per_class=4 if smoke else arguments.images_per_class,
                          learning_rate=arguments.learning_rate or 2e-3,
                          loss=arguments.loss, augment=not arguments.no_augment, minutes=member_minutes,
                          seed=arguments.seed + member, augment_strength=arguments.augment_strength,
                          pipeline=arguments.pipeline, proxy_scale=arguments.proxy_scale,
                          proxy_margin=arguments.proxy_margin, keep_best=not arguments.train_on_all,
                          verbose=arguments.verbose)
            members.append((model,) + tuple(omniglot.train_conv4(model, train_set, held_out, selection, **config)))
        model, history, one_shot, budget = members[0]
    else:
        if arguments.ensemble not in (None, 1):
            raise SystemExit(f"--ensemble {arguments.ensemble}: several networks are for --method conv4")
        epochs = arguments.epochs or (1 if smoke else (200 if arguments.full else 1000))
        model = omniglot.build_koch_model((side, side, 1), padding="valid" if side >= 65 else "same")
        config = dict(num_epochs=epochs, base_pairs_per_epoch=4 if smoke else (30000 // 9 if arguments.full else 200),
                      distortions_per_pair=1 if smoke else 8, batch_size=8 if smoke else 32,
                      optimizer="sgd" if arguments.full else "adam",
                      learning_rate=arguments.learning_rate or (0.01 if arguments.full else 1e-4),
                      patience=20 if arguments.full else 10, minutes=minutes, seed=arguments.seed,
                      verbose=arguments.verbose)
        history, one_shot, budget = omniglot.train_koch(model, train_set, held_out, selection, **config)
        members = [(model, history, one_shot, budget)]
    training_seconds = sum(member[3].elapsed_seconds for member in members)
    machine_speed["matmul_1024_gflops_after_training"] = measure_matmul_gflops()
    models = [member[0] for member in members]

    grid = tuple(arguments.test_time_grid)

    def make_scorer(test_time_grid):
        if len(models) == 1:
            return omniglot.ModelScorer(model, test_time_grid=test_time_grid)
        return omniglot.EnsembleScorer(models, test_time_grid=test_time_grid)

    # Test-time views (no retraining): each image embedded at the grid's shifts, embeddings averaged.
    scorer = make_scorer(grid)
    one_view = scorer if grid == (0,) else make_scorer((0,))

    def with_one_view(score):
        """``score(scorer)`` with the views and with the image alone beside it; one call when the grid is the
        image alone (koch)."""
        viewed = score(scorer)
        return viewed, (viewed if one_view is scorer else score(one_view))

    within, within_one_view = with_one_view(
        lambda view: omniglot.evaluate_episodes(view, held_out.images, episodes))
    across_result, across_one_view = with_one_view(
        lambda view: omniglot.evaluate_episodes(view, held_out.images, across))
    choice_result = omniglot.evaluate_episodes(scorer, held_out.images, choice)
    pixels = omniglot.evaluate_episodes(omniglot.PixelScorer(), held_out.images, episodes)
    data_dir = settings.data_dir(arguments.data_dir)
    layout_sample = data_dir / "omniglot" / "lake_runs_format_example.zip"
    result = {
        "benchmark": "omniglot_one_shot",
        "method": method,
        "setting": "smoke" if smoke else ("full" if arguments.full else "cpu_default"),
        "config": {key: value for key, value in config.items() if key != "verbose"},
        "image_size": side,
        "filters": arguments.filters if method == "conv4" else None,
        "inverted": invert,
        "rotations_as_classes": (not arguments.no_rotations) and method == "conv4",
        "train_alphabets": sorted(set(omniglot.class_alphabets(train_set))),
        "train_classes": train_set.num_classes,
        "held_out_alphabets": list(omniglot.HELD_OUT_ALPHABETS),
        "held_out_alphabets_trained_on": bool(arguments.train_on_all),
        "held_out_within_alphabet_accuracy": within["accuracy"],
        "held_out_across_alphabet_accuracy": across_result["accuracy"],
        "held_out_pixel_baseline_accuracy": pixels["accuracy"],
        "held_out_within_alphabet_accuracy_one_view": within_one_view["accuracy"],
        "held_out_across_alphabet_accuracy_one_view": across_one_view["accuracy"],
        "test_time_views": {"grid_offsets": list(grid), "views": len(view_offsets),
                            "note": "each image embedded moved by every (row, column) pair of the offsets, "
                                    "embeddings averaged; the *_one_view figures score the image as given"},
        "choice_within_alphabet_accuracy": choice_result["accuracy"],
        "choice_episodes": f"within-alphabet episodes of the held-out alphabets (seed {4000 + arguments.seed}, "
                           f"{choice_result['num_tasks']} tasks) for comparing recipes: choose on these, "
                           "report the held_out_* figures",
        "n_way": n_way,
        "validation_tasks": within["num_tasks"],
        "best_epoch": None if one_shot.best_epoch is None else one_shot.best_epoch + 1,
        "epochs_run": len(one_shot.history),
        "selection_episodes": "keep-best watched other within-alphabet episodes of the held-out alphabets "
                              f"(seed {3000 + arguments.seed}); the accuracies above are on episodes it never saw",
        "selection_accuracy_per_epoch": [round(value, 4) for value in one_shot.history],
        "training_steps": sum(member[3].steps for member in members),
        "training_seconds": round(training_seconds, 1),
        "loading_seconds": round(loading_seconds, 1),
        "images_embedded_per_second": round(omniglot.images_embedded_per_second(model, held_out.images), 1),
        "parameters": int(model.embedding.count_params() + model.head.count_params()),
        "ensemble": len(models),
        "machine": machine_description(),
        "machine_speed": machine_speed,
    }
    if layout_sample.exists():
        scored = omniglot.score_lake_runs(layout_sample, scorer, image_size=(side, side), invert=invert)
        result["layout_sample_runs"] = {"mean_accuracy": scored["mean_accuracy"], "per_run": scored["per_run"],
                                        "note": "built from background images: a layout check, not the benchmark"}
    if arguments.runs:
        scored, scored_one_view = with_one_view(
            lambda view: omniglot.score_lake_runs(arguments.runs, view, image_size=(side, side), invert=invert))
        result["official_runs"] = {"mean_accuracy": scored["mean_accuracy"], "per_run": scored["per_run"],
                                   "one_view_mean_accuracy": scored_one_view["mean_accuracy"],
                                   "one_view_per_run": scored_one_view["per_run"]}
    if len(models) > 1:
        result["ensemble_members"] = []
        for number, member in enumerate(members):
            member_scorer = omniglot.ModelScorer(member[0], test_time_grid=grid)
            result["ensemble_members"].append({
                "seed": arguments.seed + number, "training_steps": member[3].steps,
                "training_seconds": round(member[3].elapsed_seconds, 1),
                "held_out_within_alphabet_accuracy": omniglot.evaluate_episodes(
                    member_scorer, held_out.images, episodes)["accuracy"],
                "choice_within_alphabet_accuracy": omniglot.evaluate_episodes(
                    member_scorer, held_out.images, choice)["accuracy"]})
    if arguments.save:
        from siamese_tf.models import save_model

        saved = [arguments.save] if len(models) == 1 else [
            str(Path(arguments.save).with_name(f"{Path(arguments.save).stem}_{number}.keras"))
            for number in range(len(models))]
        for member_model, path in zip(models, saved):
            save_model(member_model, path)
        result["saved_model"] = saved[0] if len(saved) == 1 else saved
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
