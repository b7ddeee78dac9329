"""SiameseCCR benchmark: generate CAPTCHAs, train, match templates, compare with classifier baselines.

Prints one JSON object: data set sizes and fonts, training time and pairs/s per round, top-1/5/10
for few-shot (test A vs support A), one-shot on unseen level-2 characters (test B vs support B),
the merged A+B library, the held-out font (against training-font templates and against
same-font templates), the LeNet-5-like and 11-layer CNN baselines on test A, and the time per
query against 6,763 templates (the whole GB2312 set), and the machine's matrix-product speed before
and after training (``machine_speed``: the same recipe has run 2-5x fewer steps in its minutes on slow days).

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/captcha_template_matching.py --scale 0.05

``--scale`` keeps that share of the GB2312 characters (1.0 = the paper's 15,020 training images).
``--head l1`` trains the paper's similarity ``sigmoid(|v1 - v2| w + b)`` with binary cross-entropy;
the default is a Euclidean head with the prototypical loss: at scale 0.05, after the same 400
in-batch steps on 2 CPU cores, it reached 32.0% top-1 few-shot and 34.2% one-shot against the paper
recipe's 9.6% and 9.2%. At ``--scale 1.0 --random-epochs 40 --mining-rounds 3 --mining-epochs 10``
(3,500 steps, 32 minutes) it reached 56.6% few-shot against 3,755 templates and 53.8% one-shot against
3,008, with the training loss still falling. ``--cosine-decay 1`` anneals the learning rate over all
rounds; at scale 0.05 it overfitted the 188 training characters (45.8% / 39.0% against 52.2% / 44.4%).
``--minutes`` bounds all rounds by the clock (``CCRConfig.minutes``). The paper's one-font setting in
the bar's hour, ``--scale 1.0 --one-font --random-epochs 200 --mining-rounds 3 --mining-epochs 50
--minutes 60`` (17,500 steps in 56 minutes, 2026-12-05, 16 characters x 4 images a batch): 85.8% few-shot
and 84.9% one-shot top-1. Since then batches hold 32 characters x 2 images (the same 64 crops a step),
chosen on the validation render (20% scale, 3,500 steps): 84.05% / 83.2% against 75.8% / 74.8% and
74.45% / 71.35% (two runs of 16 x 4); on a second data set (seed 1, render seed 2) 83.0% / 80.75%
against 78.95% / 75.25%. With it the same command, scored once on the test splits after that choice (17,500
steps in 36.6 minutes on a faster machine, 2026-12-05): 94.05% few-shot and 92.66% one-shot top-1.
More steps helped on the validation render, so the epoch caps should let the clock end the hour:
``--random-epochs 400 --mining-rounds 3 --mining-epochs 100 --minutes 60`` (27,948 steps in 59.9 minutes):
96.6% few-shot and 94.79% one-shot top-1 on the test splits.
Scoring takes the mean embedding over a 3 x 3 grid of shifted 44x44 windows by default (``--crop-grid 3``;
1 is the centre window alone). Chosen on the full-scale validation render with that hour's model (centre 96.15% /
94.81%, 2 x 2 97.35% / 96.16%, 3 x 3 97.93% / 96.95%, 4 x 4 98.18% / 97.39%: under half a point more, so 3),
then the hour's model scored once on the test splits (2026-12-06): 98.29% few-shot and 97.34% one-shot top-1,
5.2 ms to embed a query (0.59 ms for the centre window alone). The same recipe and grid without ``--one-font``
(three fonts, one held out; 2026-12-06): 95.79% few-shot, 94.17% one-shot; the held-out font 40.63% against
training-font templates and 80.92% against templates in its own font.
A second hour of the same recipe (2026-12-07), caps doubled to ``--random-epochs 800 --mining-epochs 200`` so
that on a fast machine the clock still ends every round (the clock's split between rounds is unchanged):
24,863 steps, 98.28% / 97.37% on the validation render against the first hour's 97.93% / 96.95%, so it replaced
that model and was scored once on the test splits: 98.44% few-shot and 97.61% one-shot top-1.
The last round's learning rate now falls along a cosine to 5% (``--anneal-last-round``, default 1; 0 with
``--cosine-decay 1``): the same hour (2026-12-08, 24,824 steps) scored 98.89% / 98.13% on the validation render
against 98.28% / 97.37% and 97.93% / 96.95% for the two hours without it, then once on the test splits 98.99%
few-shot and 98.28% one-shot top-1 (the bar: 99% / 98.5%).
The trained model is saved to ``<models dir>/siamese_ccr_captcha.keras`` and the JSON to
``<reports dir>/captcha_template_matching.json`` (the notebook 11_chinese_captcha reuses both).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from siamese_tf import settings  # noqa: E402
from siamese_tf.libraries import TemplateLibrary  # noqa: E402
from siamese_tf.models import load_model, save_model  # noqa: E402
from siamese_tf.reports import machine_description, measure_matmul_gflops, round_figures  # noqa: E402
from siamese_tf.studies import captcha  # noqa: E402


def run(arguments):
    settings.seed_everything(arguments.seed)
    # The machine's speed before and after the clock runs: a minute's steps vary several-fold between days.
    machine_speed = {"matmul_1024_gflops_at_start": measure_matmul_gflops()}
    if arguments.one_font:
        # The paper's setting: every split drawn in one font (Microsoft YaHei there; a sans-serif
        # CJK face here), so a query is always matched against a template in its own font.
        fonts, held_out_font, suffix = captcha.find_cjk_fonts(names=[arguments.one_font]), None, "_one_font"
    else:
        fonts, held_out_font, suffix = None, captcha.DEFAULT_HELD_OUT_FONT, ""
    dataset_dir = Path(arguments.dataset_dir
                       or settings.data_dir() / f"captcha_cicc_scale{arguments.scale}_seed{arguments.seed}{suffix}")
    started = time.perf_counter()
    metadata = captcha.generate_captcha_dataset(dataset_dir, scale=arguments.scale, seed=arguments.seed,
                                                 fonts=fonts, held_out_font=held_out_font,
                                                 progress=arguments.progress)
    generation_seconds = time.perf_counter() - started
    split = {name: captcha.load_captcha_split(dataset_dir, name) for name in captcha.SPLITS
             if metadata["split_sizes"].get(name)}

    config = captcha.CCRConfig(architecture=arguments.architecture, random_epochs=arguments.random_epochs,
                           mining_rounds=arguments.mining_rounds, mining_epochs=arguments.mining_epochs,
                           steps_per_epoch=arguments.steps_per_epoch, mode=arguments.mode, seed=arguments.seed,
                           head=arguments.head, loss=arguments.loss, learning_rate=arguments.learning_rate,
                           cosine_decay=bool(arguments.cosine_decay), classes_per_batch=arguments.classes_per_batch,
                           anneal_last_round=bool(arguments.anneal_last_round),
                           images_per_class=arguments.images_per_class, group_size=arguments.group_size,
                           top_k=arguments.top_k, augment=arguments.augment, minutes=arguments.minutes,
                           ema_momentum=arguments.ema_momentum, first_stage_stride=arguments.first_stage_stride,
                           widths=tuple(int(width) for width in arguments.widths.split(",")))
    models_dir = settings.models_dir(arguments.models_dir)
    if arguments.model:
        # Evaluate a model trained earlier (its training figures come from that run's JSON).
        model = load_model(arguments.model)
        captcha.recalibrate_batch_norm(model.embedding, split["train"].images, captcha.CROP_SIZE, seed=arguments.seed)
        previous = Path(arguments.model).with_suffix(".json")
        report = json.loads(previous.read_text()) if previous.exists() else {"rounds": [], "confusers": None}
        report["confusers"] = None
    else:
        model, report = captcha.train_siamese_ccr(split["train"].images, split["train"].labels, config,
                                              verbose=2 if arguments.progress else 0)
        machine_speed["matmul_1024_gflops_after_training"] = measure_matmul_gflops()
    if arguments.validation_render_seed is not None:
        # Kept apart from the model the notebook reuses; inference options are compared on it.
        save_model(model, models_dir / "siamese_ccr_captcha_validation.keras")
        return _validate(arguments, model, report, config, dataset_dir, fonts, held_out_font, machine_speed)
    save_model(model, models_dir / "siamese_ccr_captcha.keras")

    # Each template set is embedded once (crop_grid x crop_grid windows each) and shared by its scorings.
    libraries = {name: captcha.build_template_library(model, split[name].images, split[name].labels,
                                                      crop_grid=arguments.crop_grid)
                 for name in ("support_a", "support_b", "support_b_held_out_font") if name in split}
    merged = TemplateLibrary(model, libraries["support_a"].embeddings, libraries["support_a"].labels)
    merged.add(embeddings=libraries["support_b"].embeddings, labels=libraries["support_b"].labels)
    libraries["merged"] = merged

    def evaluate(queries, templates):
        return captcha.evaluate_template_matching(model, split[queries].images, split[queries].labels,
                                                  library=libraries[templates], crop_grid=arguments.crop_grid)

    results = {
        "few_shot_test_a": evaluate("test_a", "support_a"),
        "one_shot_test_b": evaluate("test_b", "support_b"),
        "merged_library_test_a": evaluate("test_a", "merged"),
        "merged_library_test_b": evaluate("test_b", "merged"),
    }
    if "test_b_held_out_font" in split:
        results["held_out_font_vs_training_font_templates"] = evaluate("test_b_held_out_font", "support_b")
        results["held_out_font_vs_same_font_templates"] = evaluate("test_b_held_out_font",
                                                                   "support_b_held_out_font")
    timing = captcha.time_matching(model, num_templates=6763, num_queries=arguments.timing_queries)

    baselines = {}
    for name in ("lenet5", "cnn11"):
        if arguments.baseline_epochs > 0:
            _, figures = captcha.train_classifier_baseline(name, split["train"].images, split["train"].labels,
                                                       split["test_a"].images, split["test_a"].labels,
                                                       epochs=arguments.baseline_epochs, seed=arguments.seed)
            figures["losses"] = figures["losses"][-1:]
            baselines[name] = figures

    output = {
        "benchmark": "captcha_template_matching",
        "paper": {"few_shot_top_1": 0.9917, "one_shot_top_1": 0.9859, "ms_per_query": [14, 26],
                  "hardware": "Tesla K80, 76 hours of training"},
        "machine": machine_description(),
        "machine_speed": machine_speed,
        "data": {"setting": "one font (the paper's)" if arguments.one_font else "multi-font, one font held out",
                 "scale": arguments.scale, "seed": arguments.seed, "generation_seconds": generation_seconds,
                 "split_sizes": metadata["split_sizes"], "num_level_1": metadata["num_level_1"],
                 "num_level_2": metadata["num_level_2"], "training_fonts": metadata["training_fonts"],
                 "held_out_font": metadata["held_out_font"], "dropped_characters": metadata["dropped_characters"]},
        "config": {key: value for key, value in vars(config).items()},
        "crop_grid": arguments.crop_grid,
        "parameters": int(model.embedding.count_params()),
        "evaluated_model": arguments.model,
        "training": report["rounds"],
        "training_seconds": sum(round_["seconds"] for round_ in report["rounds"]),
        "results": results,
        "timing_6763_templates": timing,
        "baselines": baselines,
    }
    output = round_figures(output)
    reports_dir = settings.reports_dir(arguments.reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "captcha_template_matching.json").write_text(json.dumps(output, indent=1, ensure_ascii=False))
    if report["confusers"] is not None:
        classes, confusers = report["confusers"]
        np.savez(reports_dir / "captcha_confusers.npz", classes=classes, confusers=confusers)
    print(json.dumps(output))
    return output


def _validate(arguments, model, report, config, dataset_dir, fonts, held_out_font, machine_speed):
    """Score the trained model on the same characters, fonts and splits drawn anew (``render_seed``),
    never on the test splits: the figures to choose a recipe on. Writes
    ``captcha_template_matching_validation.json``."""
    validation_dir = Path(f"{dataset_dir}_render{arguments.validation_render_seed}")
    captcha.generate_captcha_dataset(validation_dir, scale=arguments.scale, seed=arguments.seed, fonts=fonts,
                                     held_out_font=held_out_font, progress=arguments.progress,
                                     render_seed=arguments.validation_render_seed)
    results = {}
    for name, queries, templates in (("few_shot", "test_a", "support_a"), ("one_shot", "test_b", "support_b")):
        query_split = captcha.load_captcha_split(validation_dir, queries)
        template_split = captcha.load_captcha_split(validation_dir, templates)
        results[name] = captcha.evaluate_template_matching(model, query_split.images, query_split.labels,
                                                           template_split.images, template_split.labels,
                                                           crop_grid=arguments.crop_grid)
    output = round_figures({
        "benchmark": "captcha_template_matching_validation",
        "validation": f"render seed {arguments.validation_render_seed}: the training characters and fonts, "
                      "every CAPTCHA drawn anew; the test splits are not scored",
        "scale": arguments.scale, "seed": arguments.seed, "one_font": arguments.one_font,
        "config": dict(vars(config)), "crop_grid": arguments.crop_grid,
        "machine": machine_description(), "machine_speed": machine_speed, "training": report["rounds"],
        "training_seconds": sum(round_["seconds"] for round_ in report["rounds"]), "results": results,
    })
    reports_dir = settings.reports_dir(arguments.reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "captcha_template_matching_validation.json").write_text(
        json.dumps(output, indent=1, ensure_ascii=False))
    print(json.dumps(output))
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one-font", nargs="?", const="WenQuanYi Micro Hei", default=None, metavar="FONT",
                        help="the paper's like-for-like setting: every split in one font (default face: WenQuanYi "
                             "Micro Hei, a sans-serif like the paper's Microsoft YaHei); without it, all installed "
                             "fonts with AR PL UKai CN held out")
    parser.add_argument("--architecture", default="siamese_ccr_15", choices=captcha.ARCHITECTURES)
    parser.add_argument("--widths", default="16,32,64,128", help="bottleneck widths of the 4 stages")
    parser.add_argument("--first-stage-stride", type=int, default=1, choices=(1, 2),
                        help="2: stride 2 in the first stage too (half resolution after the stem, ~3x the steps; "
                             "not the default, see benchmarks/RESULTS.md); 1: the paper's network")
    parser.add_argument("--mode", default="in_batch", choices=("in_batch", "pairs"))
    parser.add_argument("--head", default="euclidean", choices=tuple(captcha.HEADS),
                        help="euclidean (default; prototypical loss) or l1 (the paper's head and BCE)")
    parser.add_argument("--loss", default=None, help="loss for the head (default: the head's first, see captcha.HEADS)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--cosine-decay", type=int, default=0, help="1: one cosine learning-rate decay over all rounds")
    parser.add_argument("--anneal-last-round", type=int, default=None, choices=(0, 1),
                        help="1 (default, chosen on the validation render at the bar's hour; 0 with --cosine-decay 1): "
                             "the last round's learning rate falls along a cosine to 5%% (earlier rounds constant); "
                             "0: every round at the constant rate")
    parser.add_argument("--classes-per-batch", type=int, default=32, help="in-batch: characters per batch (P)")
    parser.add_argument("--images-per-class", type=int, default=2,
                        help="in-batch: images of each character (K; 32 x 2 chosen on the validation render)")
    parser.add_argument("--group-size", type=int, default=4,
                        help="mining rounds: confusable characters drawn together in a batch (a character and "
                             "group_size - 1 of its top_k confusers)")
    parser.add_argument("--top-k", type=int, default=10, help="mining rounds: confusers kept per character")
    parser.add_argument("--ema-momentum", type=float, default=0.0,
                        help="average the weights (exponential moving average with this momentum, e.g. 0.999; lost on "
                             "the validation render, see benchmarks/RESULTS.md); 0: off")
    parser.add_argument("--augment", type=float, default=0.0,
                        help="random affine warp of the training crops (captcha.captcha_augmenter strength; 0: crop "
                             "only, as the paper)")
    parser.add_argument("--validation-render-seed", type=int, default=None, metavar="SEED",
                        help="score on the same characters drawn anew with this seed instead of the test splits "
                             "(choose recipes here)")
    parser.add_argument("--crop-grid", type=int, default=3,
                        help="scoring: embed each query and template as the mean over crop_grid x crop_grid shifted "
                             "44x44 windows (captcha.embed_grid_crops; 3 chosen on the validation render); 1: the "
                             "centre window")
    parser.add_argument("--random-epochs", type=int, default=4)
    parser.add_argument("--mining-rounds", type=int, default=2)
    parser.add_argument("--mining-epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock budget of all rounds (each round its share of the epochs); the epochs cap "
                             "each round")
    parser.add_argument("--baseline-epochs", type=int, default=15)
    parser.add_argument("--timing-queries", type=int, default=256)
    parser.add_argument("--model", default=None, help="evaluate this trained .keras model instead of training")
    parser.add_argument("--dataset-dir", default=None)
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--reports-dir", default=None)
    parser.add_argument("--progress", action="store_true")
    arguments = parser.parse_args(argv)
    # Refused here, before the CAPTCHAs are drawn, rather than by CCRConfig after it.
    if arguments.anneal_last_round is None:
        arguments.anneal_last_round = 0 if arguments.cosine_decay else 1
    elif arguments.anneal_last_round and arguments.cosine_decay:
        parser.error("--anneal-last-round 1 and --cosine-decay 1 both schedule the learning rate; choose one")
    return run(arguments)


if __name__ == "__main__":
    main()
