"""Smoke runs of the benchmarks that compare engines and recipes: they run and report what they claim.

Speed and accuracy are measured by the full runs (figures in the README and the closing notes), not here.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pipeline_section_compares_both_engines_on_the_same_batches(shared_data_dir, monkeypatch, capsys):
    monkeypatch.setenv("SIAMESE_TF_DATA_DIR", str(shared_data_dir))
    report = load_benchmark("throughput").main(["--smoke", "--sections", "pipeline"])
    for section in ("pipeline", "pipeline_face_pairs"):
        figures = report[section]
        for part in ("source_alone", "training"):
            assert set(figures[part]) >= {"python", "tf_data", "numpy", "images_per_second_ratio",
                                          "numpy_images_per_second_ratio"}
            assert figures[part]["numpy"]["images_per_second"] > 0
            python, tf_data = figures[part]["python"], figures[part]["tf_data"]
            assert python["images_per_second"] > 0 and tf_data["images_per_second"] > 0
            ratio = figures[part]["tf_data"]["images_per_second"] / figures[part]["python"]["images_per_second"]
            assert figures[part]["images_per_second_ratio"] == pytest.approx(ratio, abs=0.01)
    assert report["pipeline"]["training"]["tf_data"]["share_of_matmul_peak"] > 0
    assert json.loads(capsys.readouterr().out)["pipeline"]["batch"] == "P=8 x K=4"


def test_the_batch_norm_section_times_keras_and_the_fused_kernel_and_restores_the_default(shared_data_dir,
                                                                                            monkeypatch):
    from siamese_tf.layers import FusedBatchNormalization

    monkeypatch.setenv("SIAMESE_TF_DATA_DIR", str(shared_data_dir))
    report = load_benchmark("throughput").main(["--smoke", "--sections", "batch_norm"])
    assert len(report["batch_norm"]) == 2  # conv4 and the face network
    for figures in report["batch_norm"].values():
        keras_step, fused_step = figures["keras"]["median_step_seconds"], figures["fused"]["median_step_seconds"]
        assert keras_step > 0 and fused_step > 0 and figures["fused"]["share_of_matmul_peak"] > 0
        assert figures["speedup"] == pytest.approx(keras_step / fused_step, abs=0.01)
    assert FusedBatchNormalization.use_fused_kernel is True


@pytest.mark.parametrize("method", ["conv4", "koch"])
def test_the_omniglot_benchmark_keeps_the_best_epoch_on_episodes_it_does_not_report(shared_data_dir, monkeypatch,
                                                                                  method):
    from siamese_tf.studies import omniglot

    watched, scored = [], []
    trainer = "train_conv4" if method == "conv4" else "train_koch"
    original_train, original_evaluate = getattr(omniglot, trainer), omniglot.evaluate_episodes

    def recording_train(model, train_set, validation_set, validation_episodes, **config):
        watched.append(validation_episodes)
        return original_train(model, train_set, validation_set, validation_episodes, **config)

    def recording_evaluate(scorer, images, episodes, **options):
        scored.append(episodes)
        return original_evaluate(scorer, images, episodes, **options)

    monkeypatch.setattr(omniglot, trainer, recording_train)
    monkeypatch.setattr(omniglot, "evaluate_episodes", recording_evaluate)
    report = load_benchmark("omniglot_one_shot").main(["--smoke", "--method", method,
                                                       "--data-dir", str(shared_data_dir)])
    assert len(watched) == 1 and len(scored) >= 4
    for episodes in scored:
        assert episodes is not watched[0]
        assert not np.array_equal(episodes.query_indices, watched[0].query_indices)
    # The choice episodes, on which recipes are compared, are none of the reported ones either.
    distinct = {episodes.query_indices.tobytes() for episodes in scored}
    assert len(distinct) >= 3 and 0.0 <= report["choice_within_alphabet_accuracy"] <= 1.0
    assert "never saw" in report["selection_episodes"] and report["selection_accuracy_per_epoch"]
    # conv4 scores with the 3x3 grid of shifted views by default; Koch's raw images with the image alone.
    expected_grid = [-2, 0, 2] if method == "conv4" else [0]
    assert report["test_time_views"]["grid_offsets"] == expected_grid
    assert report["test_time_views"]["views"] == len(expected_grid) ** 2
    assert 0.0 <= report["held_out_within_alphabet_accuracy_one_view"] <= 1.0


@pytest.mark.parametrize("arguments, message", [
    (["--method", "koch", "--test-time-grid", "-2", "0", "2"], "--test-time-grid -2 0 2: shifted views are for"),
    (["--test-time-grid", "0", "0.5"], None),
    (["--choice-episodes", "0"], "--choice-episodes must be at least 1, got 0"),
    (["--minutes", "0"], "--minutes must be a positive number of minutes, got 0.0"),
    (["--minutes", "inf"], "--minutes must be a positive number of minutes, got inf"),
    (["--ensemble", "0"], "--ensemble must be at least 1, got 0"),
    (["--image-size", "0"], "--image-size must be a positive number of pixels, got 0"),
    (["--image-size", "-28"], "--image-size must be a positive number of pixels, got -28"),
])
def test_the_omniglot_benchmark_refuses_a_bad_grid_or_episode_count_before_loading(monkeypatch, arguments, message):
    from siamese_tf.studies import omniglot

    def fail(*args, **kwargs):
        raise AssertionError("the data was loaded before the arguments were checked")

    monkeypatch.setattr(omniglot, "load_background_small", fail)
    with pytest.raises(SystemExit, match=message):
        load_benchmark("omniglot_one_shot").main(["--smoke", *arguments])


@pytest.mark.parametrize("arguments, expected_grid", [
    ([], [-2, 0, 2]),
    (["--image-size", "56"], [-4, 0, 4]),
    (["--image-size", "56", "--test-time-grid", "-1", "0", "1"], [-1, 0, 1]),  # a grid given is kept as given
    (["--method", "koch"], [0]),
])
def test_the_omniglot_benchmark_scales_its_default_grid_with_the_image_size(monkeypatch, arguments, expected_grid):
    from siamese_tf.studies import omniglot

    grids = []
    original_scorer = omniglot.ModelScorer

    def recording_scorer(model, test_time_grid=None, **options):
        grids.append(list(test_time_grid))
        return original_scorer(model, test_time_grid=test_time_grid, **options)

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(omniglot, "ModelScorer", recording_scorer)
    monkeypatch.setattr(omniglot, "load_background_small", stop)
    with pytest.raises(Stop):
        load_benchmark("omniglot_one_shot").main(["--smoke", *arguments])
    assert grids == [expected_grid]


@pytest.mark.parametrize("extra", [["--loss", "proxies"], ["--pipeline", "python", "--train-on-all"]])
def test_the_omniglot_benchmark_runs_each_engine_and_recipe(shared_data_dir, tmp_path, extra):
    report = load_benchmark("omniglot_one_shot").main(["--smoke", "--data-dir", str(shared_data_dir),
                                                       "--save", str(tmp_path / "omniglot.keras"), *extra])
    assert 0.0 <= report["held_out_within_alphabet_accuracy"] <= 1.0 and report["training_steps"] >= 1
    assert report["held_out_alphabets_trained_on"] == ("--train-on-all" in extra)
    if "--train-on-all" in extra:  # every background alphabet, the held-out ones included
        assert set(report["held_out_alphabets"]) <= set(report["train_alphabets"])
    else:
        assert not set(report["held_out_alphabets"]) & set(report["train_alphabets"])
    from siamese_tf.models import load_model

    head = type(load_model(tmp_path / "omniglot.keras").head).__name__
    assert head == "DistanceHead"
    assert report["config"]["pipeline"] == (extra[1] if extra[0] == "--pipeline" else "tf.data")
    # The machine's speed around the time budget is recorded beside the figures it bounds.
    assert set(report["machine_speed"]) == {"matmul_1024_gflops_at_start", "matmul_1024_gflops_after_training"}
    assert all(speed > 0 for speed in report["machine_speed"].values())


def test_the_omniglot_benchmark_scores_and_saves_each_ensemble_member(shared_data_dir, tmp_path):
    # No --ensemble: a 12-minute budget trains two networks of 6 minutes (smoke: one epoch each).
    report = load_benchmark("omniglot_one_shot").main(["--smoke", "--data-dir", str(shared_data_dir),
                                                       "--minutes", "12", "--seed", "5",
                                                       "--save", str(tmp_path / "omniglot.keras")])
    members = report["ensemble_members"]
    assert report["ensemble"] == 2 and [member["seed"] for member in members] == [5, 6]
    assert all(0.0 <= member["choice_within_alphabet_accuracy"] <= 1.0 for member in members)
    assert "seed 4005" in report["choice_episodes"]
    assert report["training_steps"] == sum(member["training_steps"] for member in members)
    assert report["config"]["minutes"] == 6.0
    # Each member saved on its own, numbered, so the final model can be scored outside as the same ensemble.
    from siamese_tf.models import load_model

    saved = [tmp_path / "omniglot_0.keras", tmp_path / "omniglot_1.keras"]
    assert report["saved_model"] == [str(path) for path in saved]
    weights = [load_model(path).get_weights() for path in saved]
    assert not all(np.array_equal(first, second) for first, second in zip(*weights))


def test_the_signature_benchmark_cross_validates_over_writer_folds(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    report = load_benchmark("signature_verification").main(
        ["--data-dir", str(shared_data_dir), "--models", "deepsign", "--folds", "3", "--normalise-ink",
         "--image-size", "40", "60", "--epochs", "1", "--steps-per-epoch", "1", "--train-on-all",
         "--models-dir", str(tmp_path / "models"), "--reports-dir", str(tmp_path)])
    figures = report["models"]["deepsign"]
    assert [entry["fold"] for entry in figures["per_fold"]] == [1, 2, 3]
    assert sum(entry["test_writers"] for entry in figures["per_fold"]) == report["writers"]
    assert figures["worst_auroc"] == min(entry["auroc"] for entry in figures["per_fold"])
    assert figures["mean_accuracy"] == pytest.approx(
        sum(entry["accuracy"] for entry in figures["per_fold"]) / 3, abs=1e-4)
    # With the ink normalised, pen darkness tells nothing: its rule scores about chance on every fold.
    assert all(abs(entry["ink_darkness_auroc"] - 0.5) < 0.1 for entry in figures["per_fold"])
    assert all(0.0 <= entry["ink_amount_auroc"] <= 1.0 for entry in figures["per_fold"])
    assert report["config"]["normalise_ink"] is True
    assert json.loads((tmp_path / "signature_cross_validation.json").read_text()) == report
    # Every fold's float16 copy is scored on the same writers and fits the bar's 1 MB.
    assert all(entry["float16"]["file_megabytes"] < 1.0 for entry in figures["per_fold"])
    assert all(0.0 <= entry["float16"]["auroc"] <= 1.0 for entry in figures["per_fold"])
    # The final model: every writer, the median of the folds' thresholds saved inside both files.
    from siamese_tf.models import load_model

    final = figures["final_model"]
    fold_thresholds = [entry["distance_threshold"] for entry in figures["per_fold"]]
    assert final["writers"] == report["writers"]
    assert final["fold_distance_thresholds"] == fold_thresholds
    assert final["distance_threshold"] == pytest.approx(sorted(fold_thresholds)[1], abs=1e-6)
    for file in (final["file"], final["float16_file"]):
        loaded = load_model(tmp_path / "models" / "signatures" / file)
        assert loaded.thresholds["detection"] == pytest.approx(-sorted(fold_thresholds)[1], abs=1e-6)
    assert final["float16_file_megabytes"] < 1.0 < final["file_megabytes"]


def test_the_signature_benchmark_trains_each_fold_on_fewer_writers_for_a_learning_curve(shared_data_dir, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    common = ["--data-dir", str(shared_data_dir), "--models", "deepsign", "--folds", "3", "--normalise-ink",
              "--image-size", "40", "60", "--epochs", "1", "--steps-per-epoch", "1",
              "--models-dir", str(tmp_path / "models"), "--reports-dir", str(tmp_path)]
    report = load_benchmark("signature_verification").main([*common, "--train-writers", "8"])
    assert [entry["train_writers"] for entry in report["models"]["deepsign"]["per_fold"]] == [8, 8, 8]
    assert report["config"]["train_writers"] == 8
    # 3 folds of 50 writers leave 16 or 17 training writers per fold: 30 cannot be drawn.
    with pytest.raises(SystemExit, match="--train-writers 30: fold 1 has only 1[67] training writers"):
        load_benchmark("signature_verification").main([*common, "--train-writers", "30"])


def test_the_signature_benchmark_screens_a_recipe_on_some_folds_only(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    report = load_benchmark("signature_verification").main(
        ["--data-dir", str(shared_data_dir), "--models", "deepsign", "--folds", "3", "--only-folds", "2",
         "--normalise-ink", "--image-size", "40", "60", "--epochs", "1", "--steps-per-epoch", "1",
         "--models-dir", str(tmp_path / "models"), "--reports-dir", str(tmp_path)])
    figures = report["models"]["deepsign"]
    assert [entry["fold"] for entry in figures["per_fold"]] == [2]
    assert report["config"]["scored_folds"] == [2]
    assert figures["mean_auroc"] == figures["worst_auroc"] == figures["per_fold"][0]["auroc"]
    assert sorted(path.name for path in (tmp_path / "models" / "signatures").glob("*.keras")) == [
        "deepsign_cv_fold2.keras", "deepsign_cv_fold2_float16.keras"]


def test_the_signature_benchmark_repeats_a_recipe_on_the_same_folds_with_another_training_seed(shared_data_dir,
                                                                                               tmp_path, monkeypatch):
    from siamese_tf.models import load_model

    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    weights = {}
    for training_seed in (None, "0", "1"):
        folder = tmp_path / str(training_seed)
        report = load_benchmark("signature_verification").main(
            ["--data-dir", str(shared_data_dir), "--models", "deepsign", "--folds", "3", "--only-folds", "1",
             "--normalise-ink", "--image-size", "40", "60", "--epochs", "1", "--steps-per-epoch", "1",
             *(["--training-seed", training_seed] if training_seed else []),
             "--models-dir", str(folder / "models"), "--reports-dir", str(folder)])
        assert report["config"]["seed"] == 0 and report["config"]["training_seed"] == int(training_seed or 0)
        assert report["models"]["deepsign"]["per_fold"][0]["test_writers"] == 17  # the folds stay those of --seed
        weights[training_seed] = load_model(folder / "models" / "signatures" / "deepsign_cv_fold1.keras").get_weights()
    # The default training seed is --seed; another one trains other weights on the same writers.
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(weights[None], weights["0"]))
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(weights["0"], weights["1"]))


def test_the_signature_benchmark_adds_turned_training_writers_as_new_writers(shared_data_dir, tmp_path, monkeypatch):
    from siamese_tf.models import load_model

    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    report = load_benchmark("signature_verification").main(
        ["--data-dir", str(shared_data_dir), "--models", "deepsign", "--folds", "3", "--only-folds", "1",
         "--normalise-ink", "--image-size", "40", "60", "--epochs", "1", "--steps-per-epoch", "1",
         "--writer-transforms", "flip_left_right", "rotate_180", "--shift-views", "2",
         "--models-dir", str(tmp_path / "models"), "--reports-dir", str(tmp_path)])
    fold = report["models"]["deepsign"]["per_fold"][0]
    # Two copies of each training writer train the model; the scored writers stay as written.
    assert fold["transformed_writers"] == 2 * fold["train_writers"] == 2 * (50 - 17 - 17)
    assert fold["test_writers"] == 17
    assert report["config"]["writer_transforms"] == ["flip_left_right", "rotate_180"]
    # The scored model looks at the image as given and turned both ways (three views, same weights)
    # and the branch alone is scored beside it.
    assert report["config"]["turned_views"] == ["flip_left_right", "rotate_180"]
    assert set(fold["without_turned_views"]) == {"accuracy", "auroc"}
    assert "without_turned_views_mean_auroc" in report["models"]["deepsign"]
    assert report["config"]["shift_views"] == 2
    saved = load_model(tmp_path / "models" / "signatures" / "deepsign_cv_fold1.keras")
    # Three turned views, each also moved 2 pixels four ways: 15 views.
    assert saved.embedding.output.shape[-1] == 15 * 128
    plain = load_benchmark("signature_verification").main(
        ["--data-dir", str(shared_data_dir), "--models", "deepsign", "--folds", "3", "--only-folds", "1",
         "--normalise-ink", "--image-size", "40", "60", "--epochs", "1", "--steps-per-epoch", "1",
         "--writer-transforms", "flip_left_right", "--turned-views", "0",
         "--models-dir", str(tmp_path / "plain_models"), "--reports-dir", str(tmp_path / "plain")])
    assert plain["config"]["turned_views"] == []
    assert plain["config"]["shift_views"] == 0  # no views to shift
    assert "without_turned_views" not in plain["models"]["deepsign"]["per_fold"][0]


def test_the_signature_benchmark_defaults_to_the_cross_validated_recipe(monkeypatch):
    from siamese_tf.studies import signatures

    monkeypatch.delenv("SIAMESE_TF_SMOKE", raising=False)
    benchmark = load_benchmark("signature_verification")
    arguments = benchmark.parse_arguments([])
    # Chosen by 5-fold writer cross-validation: every training writer also mirrored and turned as
    # new writers, jitter 1 (not the 3 that suits training without the copies), 30 epochs.
    assert arguments.writer_transforms == ["flip_left_right", "flip_up_down", "rotate_180"]
    assert arguments.augment == signatures.MIRRORED_WRITERS_AUGMENT_STRENGTH == 1.0
    assert signatures.SIGNATURE_AUGMENT_STRENGTH == 3.0
    assert arguments.epochs == 30
    # Scored (not trained) choice, also by the folds: every view also moved a few pixels four ways.
    assert arguments.turned_views == 1 and arguments.shift_views == signatures.SHIFTED_VIEWS_PIXELS > 0
    assert benchmark.parse_arguments(["--writer-transforms", "none"]).writer_transforms == []


@pytest.mark.parametrize("arguments, message", [
    (["--train-on-all"], "needs --folds"),
    (["--train-on-all", "--folds", "3", "--keep-epoch", "best"], "got --keep-epoch best"),
    (["--train-writers", "10"], "needs --folds"),
    (["--folds", "3", "--train-writers", "5"], "at least 6 .* got 5"),
    (["--only-folds", "1"], "--only-folds needs --folds"),
    (["--folds", "5", "--only-folds", "1", "6"], "fold 6 is not among the folds 1-5"),
    (["--folds", "5", "--only-folds", "0"], "fold 0 is not among"),
    (["--folds", "5", "--only-folds", "1", "--train-on-all"], "cannot run with --only-folds"),
    (["--writer-transforms", "rotate_90"], "at most once, or 'none' alone, got rotate_90"),
    (["--writer-transforms", "rotate_180", "rotate_180"], "alone, got rotate_180 rotate_180"),
    (["--writer-transforms", "none", "rotate_180"], "alone, got none rotate_180"),
    (["--augment", "-1"], "0 \\(none\\) or more, got -1"),
    (["--augment", "nan"], "or more, got nan"),
    (["--shift-views", "-3"], "number of pixels, 0 \\(none\\) or more, got -3"),
])
def test_the_signature_benchmark_refuses_option_combinations_it_cannot_run_before_loading(arguments, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        load_benchmark("signature_verification").main(["--data-dir", str(tmp_path / "nowhere"), *arguments])


def test_the_signature_benchmark_takes_turned_views_as_0_or_1(capsys):
    benchmark = load_benchmark("signature_verification")
    assert benchmark.parse_arguments(["--turned-views", "0"]).turned_views == 0
    with pytest.raises(SystemExit):
        benchmark.parse_arguments(["--turned-views", "2"])
    assert "invalid choice: 2" in capsys.readouterr().err


def run_one_font_captcha_benchmark(tmp_path, *arguments):
    """The CAPTCHA benchmark at 1% scale in the paper's one-font setting (skipped without the font)."""
    from siamese_tf.studies import captcha

    try:
        captcha.find_cjk_fonts(names=["WenQuanYi Micro Hei"])
    except captcha.NoCJKFontError as error:
        pytest.skip(f"the one-font setting needs WenQuanYi Micro Hei (scripts/setup_system.sh): {error}")
    return load_benchmark("captcha_template_matching").main(
        ["--scale", "0.01", "--one-font", "--random-epochs", "1", "--steps-per-epoch", "2", *arguments,
         "--dataset-dir", str(tmp_path / "captchas"), "--models-dir", str(tmp_path / "models"),
         "--reports-dir", str(tmp_path / "reports")])


def test_the_captcha_benchmark_draws_every_split_in_one_font_like_the_paper(tmp_path):
    report = run_one_font_captcha_benchmark(tmp_path, "--mining-rounds", "0", "--baseline-epochs", "0",
                                            "--timing-queries", "8")
    data = report["data"]
    assert data["setting"] == "one font (the paper's)" and data["training_fonts"] == ["WenQuanYi Micro Hei"]
    assert data["held_out_font"] is None and data["split_sizes"]["test_b_held_out_font"] == 0
    fonts = {row.split(",")[-1] for row in (tmp_path / "captchas" / "index.csv").read_text().splitlines()[1:]}
    assert fonts == {"WenQuanYi Micro Hei"}  # every image of every split
    assert 0.0 <= report["results"]["few_shot_test_a"]["top_1"] <= 1.0
    # The default batches, chosen on the validation render: 32 characters x 2 images.
    assert (report["config"]["classes_per_batch"], report["config"]["images_per_class"]) == (32, 2)
    # The last round anneals by default (chosen at the bar's hour): here the random round, the only one.
    assert report["config"]["anneal_last_round"] is True
    assert [round_["final_learning_rate"] for round_ in report["training"]] == pytest.approx([5e-5])
    # Scored on the mean of 3 x 3 shifted windows by default, also chosen on the validation render.
    assert report["crop_grid"] == 3
    # The machine's speed around the clock is recorded, so that runs on slow and fast days compare.
    assert set(report["machine_speed"]) == {"matmul_1024_gflops_at_start", "matmul_1024_gflops_after_training"}
    assert all(speed > 0 for speed in report["machine_speed"].values())


@pytest.mark.parametrize("arguments, anneal", [
    ([], 1), (["--cosine-decay", "1"], 0), (["--anneal-last-round", "0"], 0), (["--anneal-last-round", "1"], 1),
])
def test_the_captcha_benchmark_anneals_the_last_round_unless_told_otherwise(monkeypatch, arguments, anneal):
    benchmark = load_benchmark("captcha_template_matching")
    monkeypatch.setattr(benchmark, "run", lambda parsed: parsed)  # the parsed arguments, nothing drawn or trained
    assert benchmark.main(arguments).anneal_last_round == anneal


def test_the_captcha_benchmark_refuses_two_learning_rate_schedules_before_drawing(monkeypatch, capsys):
    benchmark = load_benchmark("captcha_template_matching")

    def fail(arguments):
        raise AssertionError("CAPTCHAs were drawn before the options were checked")

    monkeypatch.setattr(benchmark, "run", fail)
    with pytest.raises(SystemExit):
        benchmark.main(["--cosine-decay", "1", "--anneal-last-round", "1"])
    assert "--anneal-last-round 1 and --cosine-decay 1 both schedule the learning rate" in capsys.readouterr().err


def test_the_captcha_benchmark_validates_on_characters_drawn_anew_and_never_scores_the_tests(tmp_path):
    from siamese_tf.studies import captcha

    report = run_one_font_captcha_benchmark(tmp_path, "--mining-rounds", "1", "--mining-epochs", "1",
                                            "--augment", "1.5", "--validation-render-seed", "1",
                                            "--group-size", "2", "--top-k", "3", "--crop-grid", "1",
                                            "--ema-momentum", "0.9", "--first-stage-stride", "2",
                                            "--anneal-last-round", "1")
    assert report["benchmark"] == "captcha_template_matching_validation" and report["config"]["augment"] == 1.5
    # Only the last round's rate falls: its second and last step at 5% of the constant 1e-3.
    assert report["config"]["anneal_last_round"] is True
    assert [round_["final_learning_rate"] for round_ in report["training"]] == pytest.approx([1e-3, 5e-5])
    assert (report["config"]["group_size"], report["config"]["top_k"], report["crop_grid"]) == (2, 3, 1)
    assert report["config"]["ema_momentum"] == 0.9 and report["config"]["first_stage_stride"] == 2
    assert report["machine_speed"]["matmul_1024_gflops_after_training"] > 0
    # The validation model is kept (inference options are compared on it), apart from the notebook's model;
    # it loads with its weight-averaging optimizer.
    from siamese_tf.models import load_model

    kept = load_model(tmp_path / "models" / "siamese_ccr_captcha_validation.keras", compile=True)
    assert kept.optimizer.use_ema and kept.optimizer.ema_momentum == 0.9
    assert not (tmp_path / "models" / "siamese_ccr_captcha.keras").exists()
    assert set(report["results"]) == {"few_shot", "one_shot"}
    assert all(0.0 <= figures["top_1"] <= 1.0 for figures in report["results"].values())
    # Both rounds trained on the engine, with the warp; the validation set is the plan drawn anew.
    assert [round_["batches"] for round_ in report["training"]] == ["ClassBalancedPipeline"] * 2
    validation = json.loads((tmp_path / "captchas_render1" / "metadata.json").read_text())
    original = json.loads((tmp_path / "captchas" / "metadata.json").read_text())
    assert validation.pop("render_seed") == 1 and validation == original
    assert not (tmp_path / "reports" / "captcha_template_matching.json").exists()  # the tests stay unscored
    with pytest.raises(ValueError, match="augment must be a number >= 0, got -1"):
        captcha.CCRConfig(augment=-1)
