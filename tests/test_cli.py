"""The command line, end to end on real ORL faces in smoke mode (small and fast)."""

import json

import cv2
import numpy as np
import pytest

from siamese_tf.cli import build_parser, main


def _last_json(text):
    """The JSON object a command printed last (Keras progress lines may come before it)."""
    return json.loads(text[text.rindex("\n{") + 1:] if not text.startswith("{") else text)


@pytest.fixture()
def face_zip(shared_data_dir):
    path = shared_data_dir / "faces" / "orl_faces_s1-s30.zip"
    if not path.exists():
        pytest.skip(f"ORL faces not found at {path}")
    return path


def test_the_lfw_demo_smoke_run_trains_calibrates_scores_and_saves(shared_data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    code = main(["demo", "--data-dir", str(shared_data_dir), "--models-dir", str(tmp_path / "models"),
                 "--reports-dir", str(tmp_path / "reports")])
    assert code == 0
    report = json.loads((tmp_path / "reports" / "face_verification.json").read_text())
    assert report["data"] == "lfw" and report["smoke_mode"] is True
    assert report["validation_folds"] == [8] and report["train_folds"] == [1]
    assert {"detection", "verification"} <= set(report["thresholds"])
    results = report["test_pair_verification"]
    assert set(results) == {"fused", "model", "descriptor_metric", "pixels", "hog"}
    from siamese_tf.studies.faces import LearnedMetricScorer

    assert LearnedMetricScorer.load(report["descriptor_metric_path"]).fitted  # the fused scorer's other half
    for figures in results.values():
        assert figures["test_fold"] == 9 and figures["threshold_folds"] == [8] and figures["num_pairs"] == 600
    assert report["cross_dataset_orl"]["people"] == 30
    assert (tmp_path / "reports" / "face_roc.png").stat().st_size > 1000
    from siamese_tf.models import load_model
    from siamese_tf.verification_apps import check_app_model

    check_app_model(load_model(tmp_path / "models" / "face_verification.keras"))  # ready for the app
    assert "test_pair_verification" in _last_json(capsys.readouterr().out)


def test_the_lfw_demo_refuses_flags_of_the_orl_demo(capsys):
    assert main(["demo", "--epochs", "3"]) == 2
    assert "--epochs is for --data orl" in capsys.readouterr().err
    assert main(["demo", "--data", "orl", "--method", "contrastive"]) == 2
    assert "--method is for the LFW demo" in capsys.readouterr().err


def test_the_lfw_demo_trains_the_contrastive_recipe_on_request(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    assert main(["demo", "--method", "contrastive", "--minutes", "0.05", "--data-dir", str(shared_data_dir),
                 "--models-dir", str(tmp_path / "models"), "--reports-dir", str(tmp_path / "reports")]) == 0
    report = json.loads((tmp_path / "reports" / "face_verification.json").read_text())
    assert report["method"] == "contrastive" and report["recipe"]["minutes"] == 0.05
    from siamese_tf.models import load_model

    assert type(load_model(tmp_path / "models" / "face_verification.keras").head).__name__ == "DistanceHead"


def test_demo_smoke_writes_model_report_and_plots(shared_data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIAMESE_TF_SMOKE", "1")
    code = main(["demo", "--data", "orl", "--data-dir", str(shared_data_dir), "--models-dir", str(tmp_path / "models"),
                 "--reports-dir", str(tmp_path / "reports")])
    assert code == 0
    report = json.loads((tmp_path / "reports" / "face_verification.json").read_text())
    assert report["smoke_mode"] is True
    assert set(report["subjects"]["train"]).isdisjoint(report["subjects"]["test"])
    assert set(report["subjects"]["validation"]).isdisjoint(report["subjects"]["test"])
    assert 0.0 <= report["test_pair_verification"]["auc"] <= 1.0
    assert report["test_n_way_one_shot"]["n_way"] == 10
    assert {"detection", "verification"} <= set(report["thresholds"])
    for plot in report["plots"].values():
        assert (tmp_path / "reports" / plot.split("/")[-1]).stat().st_size > 1000
    assert (tmp_path / "models" / "face_verification.keras").exists()
    assert "test_pair_verification" in _last_json(capsys.readouterr().out)


def test_train_evaluate_verify_round_trip(face_zip, tmp_path, capsys):
    model_path = tmp_path / "faces.keras"
    assert main(["train", "--data", str(face_zip), "--model", str(model_path), "--image-size", "32x28",
                 "--epochs", "1", "--pairs-per-epoch", "64"]) == 0
    assert model_path.exists()
    from siamese_tf.models import load_model

    # The default is the recipe that won on LFW: unit-length embeddings, Euclidean distance, contrastive loss.
    trained = load_model(model_path)
    assert type(trained.head).__name__ == "DistanceHead" and trained.head.get_config()["metric"] == "euclidean"
    sample = np.random.default_rng(0).random((3, 32, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(trained.embed(sample)), axis=1), 1.0, atol=1e-4)
    assert main(["evaluate", "--model", str(model_path), "--data", str(face_zip), "--pairs", "100",
                 "--n-way", "5", "--tasks", "20"]) == 0
    figures = _last_json(capsys.readouterr().out)
    assert 0.0 <= figures["accuracy"] <= 1.0 and figures["n_way_n_way"] == 5

    from siamese_tf.datasets import load_identity_folders

    faces = load_identity_folders(face_zip, image_size=(112, 92), channels=1, max_classes=1)
    references = tmp_path / "references"
    references.mkdir()
    for number, image in enumerate(faces.images[1:6]):
        cv2.imwrite(str(references / f"{number}.png"), (image[..., 0] * 255).astype(np.uint8))
    query = tmp_path / "query.png"
    cv2.imwrite(str(query), (faces.images[0][..., 0] * 255).astype(np.uint8))
    code = main(["verify", "--model", str(model_path), "--image", str(query), "--references", str(references),
                 "--detection-threshold", "0.5", "--verification-threshold", "0.5"])
    result = _last_json(capsys.readouterr().out)
    assert code == (0 if result["verified"] else 1)
    assert 0 <= result["detections"] <= 5


def test_train_keeps_the_seeds_l1_recipe_one_option_away(face_zip, tmp_path):
    model_path = tmp_path / "seeds.keras"
    assert main(["train", "--data", str(face_zip), "--model", str(model_path), "--image-size", "32x28",
                 "--epochs", "1", "--pairs-per-epoch", "32", "--head", "l1"]) == 0
    from siamese_tf.models import load_model

    assert type(load_model(model_path).head).__name__ == "L1SimilarityHead"


def test_missing_model_is_one_clear_line_not_a_traceback(tmp_path, capsys):
    code = main(["evaluate", "--model", str(tmp_path / "nope.keras"), "--data", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2
    assert "nope.keras" in error and "Traceback" not in error


def test_empty_data_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["train", "--data", str(tmp_path / "empty"), "--model", str(tmp_path / "m.keras")])
    assert code == 2
    assert "empty" in capsys.readouterr().err


def test_download_lists_the_registry(capsys):
    assert main(["download"]) == 0
    assert "omniglot_all_runs" in capsys.readouterr().out


def test_bad_image_size_is_rejected_by_the_parser():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", "x", "--model", "m.keras", "--image-size", "big"])
