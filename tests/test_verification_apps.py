"""The app's logic (enrol, verify, identify, forget) on LFW frames, and its refusals of bad input.

These tests check mechanics with an untrained network whose thresholds are set by hand; whether a
trained model decides frames right is measured by ``benchmarks/app_verification.py``.
"""

import numpy as np
import pytest

from siamese_tf.galleries import GALLERY_KEY_VARIABLE, Gallery
from siamese_tf.models import build_siamese_model
from siamese_tf.studies import faces
from siamese_tf.verification_apps import (
    DEFAULT_FACE_MARGIN,
    FaceVerificationApp,
    NoFaceError,
    check_app_model,
)

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG")


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch):
    monkeypatch.delenv(GALLERY_KEY_VARIABLE, raising=False)


@pytest.fixture(scope="module")
def lfw_frames(shared_data_dir):
    files = faces.locate_lfw(shared_data_dir)
    frames, names = faces.stand_in_frames(files.images, ["Junichiro_Koizumi", "Naomi_Watts"], [4, 2])
    return frames, names


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    model = build_siamese_model("small_cnn", "cosine", (64, 64, 1), embedding_dim=16, filters=(8, 8, 8, 8))
    # Cosine similarity is cos - 1: an identical image scores 0, above this detection threshold.
    model.thresholds.update({"detection": -1e-4, "verification": 0.0})
    return model


def make_app(model, tmp_path):
    return FaceVerificationApp(model, Gallery(tmp_path / "gallery"))


def test_the_face_crop_of_a_camera_frame_matches_the_lfw_centre_crop(shared_data_dir, lfw_frames, model, tmp_path):
    """One crop for training and the app: the detected face on a frame ~ the centre crop on the file."""
    frames, _ = lfw_frames
    app = make_app(model, tmp_path)
    from_frame = app.model_inputs(app.face_crop(frames[0])[None])[0, ..., 0]
    from_file = faces.load_lfw(faces.locate_lfw(shared_data_dir).images, image_size=(64, 64),
                               people=["Junichiro_Koizumi"]).images[0, ..., 0]
    correlation = np.corrcoef(from_frame.ravel(), from_file.ravel())[0, 1]
    assert correlation > 0.9, f"the app's crop and the training crop differ (correlation {correlation:.3f})"
    assert DEFAULT_FACE_MARGIN < 0.1


def test_enrol_then_verify_with_an_enrolled_frame_verifies(lfw_frames, model, tmp_path):
    frames, _ = lfw_frames
    app = make_app(model, tmp_path)
    enrolled = app.enrol("Koizumi", frames[:3])
    assert (enrolled.stored, enrolled.frames_without_face, enrolled.gallery_size) == (3, 0, 3)
    result = app.verify("Koizumi", frames[1])
    assert result.verified and result.detections >= 1 and result.gallery_size == 3
    assert 1 in result.matched.tolist()
    assert "VERIFIED: Koizumi" in result.message and "fraction" in result.message
    assert [event["event"] for event in app.gallery.events()] == ["enrol", "verify"]


def test_frames_without_a_face_are_skipped_and_counted(lfw_frames, model, tmp_path):
    frames, _ = lfw_frames
    app = make_app(model, tmp_path)
    blank = np.full_like(frames[0], 128)
    assert app.enrol("Koizumi", [blank, frames[0]]).frames_without_face == 1
    with pytest.raises(NoFaceError, match="none of the 2 frame"):
        app.enrol("Watts", [blank, blank])
    assert app.gallery.names() == ["Koizumi"]
    with pytest.raises(NoFaceError, match="no face found"):
        app.verify("Koizumi", blank)


def test_enrolment_stores_no_plain_image_and_forget_leaves_nothing(lfw_frames, model, tmp_path):
    frames, _ = lfw_frames
    app = make_app(model, tmp_path)
    app.enrol("Koizumi", frames[:4])
    app.enrol("Watts", frames[4:])
    for path in (tmp_path / "gallery").rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(IMAGE_MAGIC), f"{path} is a plain image"
    koizumi = app.gallery.person_id("Koizumi")
    # An untrained network ranks people arbitrarily; what matters here is who is in the index.
    assert {name for name, _, _ in app.identify(frames[0]).candidates} == {"Koizumi", "Watts"}
    removed = app.forget("Koizumi")
    assert removed["images"] == 4 and removed["embeddings"] == 1
    leftovers = [path for path in (tmp_path / "gallery").rglob("*") if koizumi in path.name]
    assert not leftovers
    assert [name for name, _, _ in app.identify(frames[0]).candidates] == ["Watts"]
    assert app.gallery.events()[-2]["event"] == "forget"


def test_identify_answers_unknown_when_nobody_passes(lfw_frames, model, tmp_path):
    frames, _ = lfw_frames
    model.thresholds["verification"] = 1.0  # nobody can pass a fraction above 1
    try:
        app = make_app(model, tmp_path)
        app.enrol("Koizumi", frames[:2])
        result = app.identify(frames[0])
    finally:
        model.thresholds["verification"] = 0.0
    assert result.name is None and result.message.startswith("UNKNOWN")


def test_unknown_names_and_empty_galleries_are_named(lfw_frames, model, tmp_path):
    frames, _ = lfw_frames
    app = make_app(model, tmp_path)
    with pytest.raises(KeyError, match="nobody is enrolled"):
        app.identify(frames[0])
    app.enrol("Koizumi", frames[:1])
    with pytest.raises(KeyError, match=r"'Watts' is not enrolled \(enrolled: Koizumi\)"):
        app.verify("Watts", frames[0])


def test_embeddings_of_another_model_are_recomputed_from_the_stored_crops(lfw_frames, model, tmp_path):
    frames, _ = lfw_frames
    make_app(model, tmp_path).enrol("Koizumi", frames[:2])
    other = build_siamese_model("small_cnn", "cosine", (64, 64, 1), embedding_dim=16, filters=(8, 8, 8, 8))
    other.thresholds.update({"detection": -1e-4, "verification": 0.0})
    app = make_app(other, tmp_path)
    embeddings = app.embeddings_of("Koizumi")
    np.testing.assert_allclose(embeddings, other.embed(app.model_inputs(app.gallery.load_images("Koizumi"))),
                               atol=1e-5)
    assert app.verify("Koizumi", frames[0]).verified


def test_a_model_without_thresholds_is_refused_with_the_way_out():
    bare = build_siamese_model("small_cnn", "cosine", (32, 32, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    with pytest.raises(ValueError, match=r"no calibrated detection and verification threshold.*siamese_tf train"):
        check_app_model(bare, "models/bare.keras")


def test_a_model_of_another_network_is_refused():
    import keras

    inputs = keras.Input((8,))
    other = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="is a Functional, not a siamese_tf SiameseModel"):
        check_app_model(other, "classifier.keras")


@pytest.mark.parametrize("frame, message", [(np.zeros((0, 0, 3), np.uint8), "must be an image"),
                                            (np.zeros((4, 4, 7), np.uint8), "must be an image"),
                                            (np.zeros((5000, 5000), np.uint8), "too large")])
def test_bad_frames_are_refused(model, tmp_path, frame, message):
    with pytest.raises(ValueError, match=message):
        make_app(model, tmp_path).face_crop(frame)


def test_the_stand_in_frames_are_camera_sized_and_named(lfw_frames):
    frames, names = lfw_frames
    assert frames.shape == (6, 480, 640, 3) and frames.dtype == np.uint8
    assert names == ["Junichiro_Koizumi"] * 4 + ["Naomi_Watts"] * 2


def test_stand_in_frames_name_a_missing_image(shared_data_dir):
    from siamese_tf.errors import SiameseDataError

    with pytest.raises(SiameseDataError, match=r"Naomi_Watts_0023.jpg: no such image \(Naomi_Watts has fewer than 99"):
        faces.stand_in_frames(faces.locate_lfw(shared_data_dir).images, ["Naomi_Watts"], 99)


def test_a_y4m_clip_holds_every_frame(lfw_frames, tmp_path):
    from siamese_tf.captures import write_y4m

    frames, _ = lfw_frames
    path = write_y4m(frames[:3], tmp_path / "clip.y4m", fps=5)
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    assert header == b"YUV4MPEG2 W640 H480 F5:1 Ip A1:1 C420jpeg"
    assert rest.count(b"FRAME\n") == 3 and len(rest) == 3 * (6 + 640 * 480 * 3 // 2)
    with pytest.raises(ValueError, match="even height"):
        write_y4m([np.zeros((3, 4, 3), np.uint8)], tmp_path / "odd.y4m")


# --- the command line and the camera buffer ---------------------------------------------------------

@pytest.fixture
def saved_model(model, tmp_path):
    from siamese_tf.models import save_model

    return save_model(model, tmp_path / "app_model.keras")


def test_enrol_and_forget_commands_round_trip(shared_data_dir, saved_model, tmp_path, capsys):
    from siamese_tf.captures import save_image_atomic
    from siamese_tf.cli import main

    frames, _ = faces.stand_in_frames(faces.locate_lfw(shared_data_dir).images, ["Junichiro_Koizumi"], 3)
    photos = tmp_path / "photos"
    for frame in frames:
        save_image_atomic(frame, photos, extension=".png")
    gallery = tmp_path / "gallery"
    assert main(["enrol", "Koizumi", "--model", str(saved_model), "--images", str(photos),
                 "--gallery", str(gallery)]) == 0
    assert "Enrolled Koizumi: 3 image(s) stored, encrypted" in capsys.readouterr().out
    assert main(["forget", "Koizumi", "--gallery", str(gallery)]) == 0
    assert "forgot Koizumi: removed 3 image(s), 1 embedding file(s)" in capsys.readouterr().out
    assert main(["forget", "Koizumi", "--gallery", str(gallery)]) == 2
    assert "'Koizumi' is not enrolled" in capsys.readouterr().err


def test_forget_with_a_wrong_key_file_changes_nothing(model, tmp_path, capsys):
    from siamese_tf.cli import main
    from siamese_tf.galleries import generate_key

    Gallery(tmp_path / "gallery").add_images("ada", np.zeros((1, 8, 8, 3), np.uint8))
    wrong = tmp_path / "wrong.key"
    wrong.write_text(generate_key())
    assert main(["forget", "ada", "--gallery", str(tmp_path / "gallery"), "--key-file", str(wrong)]) == 2
    assert "wrong key for the gallery" in capsys.readouterr().err
    assert Gallery(tmp_path / "gallery").names() == ["ada"]


def test_app_refuses_a_model_without_thresholds_and_an_open_address_without_a_token(tmp_path, capsys,
                                                                                    monkeypatch):
    from siamese_tf.cli import main
    from siamese_tf.models import save_model
    from siamese_tf.web_apps import APP_TOKEN_VARIABLE

    bare = build_siamese_model("small_cnn", "cosine", (32, 32, 1), embedding_dim=8, filters=(4, 4, 4, 4))
    path = save_model(bare, tmp_path / "bare.keras")
    assert main(["app", "--model", str(path), "--gallery", str(tmp_path / "gallery")]) == 2
    assert "no calibrated detection and verification threshold" in capsys.readouterr().err
    monkeypatch.delenv(APP_TOKEN_VARIABLE, raising=False)
    assert main(["app", "--model", str(path), "--host", "0.0.0.0"]) == 2
    assert "give an access token" in capsys.readouterr().err


def test_the_frame_buffer_says_when_the_camera_never_started_or_stopped(monkeypatch):
    from siamese_tf import web_apps
    from siamese_tf.web_apps import CameraError, FrameBuffer

    frames = FrameBuffer()
    with pytest.raises(CameraError, match="no camera image yet"):
        frames.latest()
    clock = [100.0]
    monkeypatch.setattr(web_apps.time, "monotonic", lambda: clock[0])
    frames.add(np.zeros((4, 4, 3), np.uint8))
    assert frames.latest().shape == (4, 4, 3)
    clock[0] += 5.0
    with pytest.raises(CameraError, match=r"stopped sending images \(5 s ago\)"):
        frames.latest()


def test_enrolment_from_a_camera_that_stops_stores_nothing():
    from siamese_tf.web_apps import CameraError, FrameBuffer

    frames = FrameBuffer()
    frames.add(np.zeros((4, 4, 3), np.uint8))  # arrived before the click: not one of the ten
    with pytest.raises(CameraError, match="sent 0 of the 10 images needed .*nothing was stored"):
        frames.collect(10, timeout=0.3)


def test_the_app_benchmark_smoke_run_enrols_decides_and_times(shared_data_dir, tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "app_verification.py"
    spec = importlib.util.spec_from_file_location("app_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--smoke", "--data-dir", str(shared_data_dir), "--reports-dir", str(tmp_path)])
    report = json.loads((tmp_path / "app_verification.json").read_text())
    clip = report["clip"]
    assert len(clip["people"]) == 2 and clip["test_frames"] == 6
    verification = report["verification"]
    # 3 later frames per person, each claimed as both people: 6 genuine and 6 impostor decisions.
    assert verification["decisions"] == 12
    assert 0.0 <= verification["genuine_accepted"] <= 1.0 and 0.0 <= verification["impostors_rejected"] <= 1.0
    assert report["timing_ms"]["verify_click_median"] > 0
    assert 0.0 <= report["model"]["thresholds_in_model"]["verification"] <= 1.0


def test_a_token_protected_app_refuses_everything_until_the_token_is_given(model, tmp_path):
    import http.cookiejar
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    from siamese_tf.web_apps import launch_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    page = launch_app(make_app(model, tmp_path), port=port, token="a-long-enough-token", block=False)
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def status(path, password=None):
        data = None if password is None else urllib.parse.urlencode({"username": "me", "password": password}).encode()
        try:
            return opener.open(base + path, data=data, timeout=30).status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        assert status("/config") == 401
        assert status("/login", "wrong-token-here") == 400
        assert status("/config") == 401
        assert status("/login", "a-long-enough-token") == 200
        assert status("/config") == 200
    finally:
        page.close()
    assert not (tmp_path / "gallery" / ".web-cache").exists(), "the upload cache outlived the app"
