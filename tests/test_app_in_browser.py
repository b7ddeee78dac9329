"""The verification app in a real browser: headless Chromium with a fake camera playing LFW faces.

A face model is trained briefly on LFW folds 1-7 (thresholds chosen on fold 8); the people shown
to the camera come from fold 9, which it never saw. This test checks the page and its plumbing
(camera stream, buttons, verdicts, the encrypted store, forget), not the model's accuracy, which
``benchmarks/app_verification.py`` measures. So the inputs are clear cases: the enrolled person
sits still in front of the camera (one photo), and the "someone else" is the fold-9 person the
model finds least like them. Chromium and chromedriver come from Debian
(``scripts/setup_system.sh``). Screenshots are kept in ``<reports dir>/test_artifacts/``.
"""

import os
import shutil
import socket
import time

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (scripts/setup_system.sh)")

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG")
ENROLLED = "Junichiro_Koizumi"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def artifacts():
    from siamese_tf import settings

    folder = settings.reports_dir() / "test_artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def face_model(shared_data_dir):
    from siamese_tf.studies import faces

    recipe = faces.ClassProxyRecipe(minutes=1.5, num_epochs=20)
    model, _ = faces.train_lfw_verification_model(shared_data_dir, recipe=recipe, references=10, verbose=0)
    # A still camera gives the enrolled person a fraction of 1: any threshold below it verifies them.
    assert model.thresholds["verification"] < 1.0
    return model


@pytest.fixture(scope="module")
def clips(shared_data_dir, face_model, tmp_path_factory):
    """One still clip per person (3 s of one photo at 10 frames a second): the enrolled person and
    the fold-9 person whose photo the model finds least like theirs."""
    from siamese_tf.captures import write_y4m
    from siamese_tf.galleries import Gallery, generate_key
    from siamese_tf.studies import faces
    from siamese_tf.verification_apps import FaceVerificationApp, NoFaceError

    lfw = faces.locate_lfw(shared_data_dir).images
    listed = faces.read_lfw_people(faces.locate_lfw(shared_data_dir).people)[8]
    candidates = [name for name, _ in listed if name != ENROLLED][:40]
    frames, names = faces.stand_in_frames(lfw, [ENROLLED, *candidates], 1, frame_size=(240, 320), face_scale=0.8)
    app = FaceVerificationApp(face_model, Gallery(tmp_path_factory.mktemp("scratch") / "gallery",
                                                  key=generate_key()))
    embeddings = []
    for frame in frames:
        try:
            embeddings.append(app.embed_crops(app.face_crop(frame)[None])[0])
        except NoFaceError:
            embeddings.append(None)
    similarities = [face_model.similarity_to_library(embedding[None], embeddings[0][None])[0, 0]
                    if embedding is not None else np.inf for embedding in embeddings[1:]]
    stranger = int(np.argmin(similarities)) + 1
    folder = tmp_path_factory.mktemp("clips")
    return {"enrolled": write_y4m(np.repeat(frames[:1], 30, axis=0), folder / "enrolled.y4m", fps=10),
            "stranger": write_y4m(np.repeat(frames[stranger:stranger + 1], 30, axis=0), folder / "stranger.y4m",
                                  fps=10),
            "stranger_name": names[stranger]}


@pytest.fixture
def server(face_model, tmp_path, monkeypatch):
    from siamese_tf.galleries import GALLERY_KEY_VARIABLE, Gallery
    from siamese_tf.verification_apps import FaceVerificationApp
    from siamese_tf.web_apps import launch_app

    monkeypatch.delenv(GALLERY_KEY_VARIABLE, raising=False)
    app = FaceVerificationApp(face_model, Gallery(tmp_path / "gallery"))
    port = free_port()
    page = launch_app(app, port=port, model_name="lfw test model", enrol_images=10, block=False)
    yield app, f"http://127.0.0.1:{port}/"
    page.close()


def open_browser(clip):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1100", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={clip}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def click(driver, xpath, timeout=20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(expected_conditions.element_to_be_clickable((By.XPATH, xpath))).click()


def open_page(driver, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#verdict")))


def start_camera(driver, url):
    open_page(driver, url)
    click(driver, "//button[normalize-space()='Click to Access Webcam']")
    click(driver, "//button[contains(@class, 'capture-button')]")


VERDICT_STARTS = ("VERIFIED", "NOT VERIFIED", "IDENTIFIED", "UNKNOWN", "Enrolled", "Forgot", "Error")


def verdict_after(driver, button_xpath, timeout=60):
    """Click a button and return the new verdict line (not the 'processing' overlay)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def verdict(_):
        lines = driver.find_element(By.CSS_SELECTOR, "#verdict").text.strip().splitlines()
        finished = [line for line in lines if line.startswith(VERDICT_STARTS)]
        return finished[-1] if finished and not any(line.startswith("processing") for line in lines) else ""

    before = verdict(driver)
    click(driver, button_xpath)
    WebDriverWait(driver, timeout).until(lambda _: verdict(_) not in ("", before))
    return verdict(driver)


def type_name(driver, name):
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, "#name textarea, #name input")
    box.clear()
    box.send_keys(name)


def files_under(folder):
    return [path for path in folder.rglob("*") if path.is_file()]


def test_enrol_verify_reject_and_forget_in_a_real_browser(server, clips, artifacts):
    app, url = server
    driver = open_browser(clips["enrolled"])
    try:
        start_camera(driver, url)
        assert "Thresholds from the model file" in driver.find_element("css selector", "#thresholds").text
        type_name(driver, ENROLLED)
        enrolled = verdict_after(driver, "//button[@id='enrol']")
        assert f"Enrolled {ENROLLED}: 10 image(s) stored" in enrolled, enrolled
        verified = verdict_after(driver, "//button[@id='verify']")
        driver.save_screenshot(str(artifacts / "app_verify_enrolled_person.png"))
        assert verified.startswith(f"VERIFIED: {ENROLLED}"), verified
        identified = verdict_after(driver, "//button[@id='identify']")
        assert identified.startswith(f"IDENTIFIED: {ENROLLED}"), identified
    finally:
        driver.quit()

    driver = open_browser(clips["stranger"])
    try:
        start_camera(driver, url)
        type_name(driver, ENROLLED)
        time.sleep(1.0)  # let the stranger's frames arrive
        rejected = verdict_after(driver, "//button[@id='verify']")
        driver.save_screenshot(str(artifacts / "app_verify_someone_else.png"))
        assert rejected.startswith(f"NOT VERIFIED: {ENROLLED}"), rejected
        unknown = verdict_after(driver, "//button[@id='identify']")
        assert unknown.startswith("UNKNOWN"), unknown

        gallery_root = app.gallery.root
        plain = [path for path in files_under(gallery_root) if path.read_bytes()[:4].startswith(IMAGE_MAGIC)]
        assert not plain, f"plain images in the data folder after enrolment: {plain}"
        person_id = app.gallery.person_id(ENROLLED)

        forgot = verdict_after(driver, f"//button[normalize-space()='Forget {ENROLLED}']")
        driver.save_screenshot(str(artifacts / "app_after_forget.png"))
        assert forgot.startswith(f"Forgot {ENROLLED}: 10 image(s)"), forgot
    finally:
        driver.quit()
    assert app.gallery.names() == []
    assert not [path for path in files_under(gallery_root) if person_id in str(path)]
    assert [event["event"] for event in app.gallery.events()][-1] == "forget"


def test_the_page_says_when_no_camera_image_has_arrived_and_names_a_missing_name(server, clips):
    _, url = server
    driver = open_browser(clips["enrolled"])
    try:
        open_page(driver, url)  # the camera is never started
        type_name(driver, ENROLLED)
        verdict = verdict_after(driver, "//button[@id='verify']", timeout=20)
        assert "no camera image yet" in verdict, verdict
        type_name(driver, " ")
        verdict = verdict_after(driver, "//button[@id='enrol']", timeout=20)
        assert "name must be non-empty" in verdict, verdict
    finally:
        driver.quit()


def test_serving_beyond_this_machine_needs_a_token(monkeypatch):
    from siamese_tf.web_apps import APP_TOKEN_VARIABLE, check_binding

    monkeypatch.delenv(APP_TOKEN_VARIABLE, raising=False)
    assert check_binding("127.0.0.1", None) is None
    with pytest.raises(ValueError, match="give an access token"):
        check_binding("0.0.0.0", None)
    with pytest.raises(ValueError, match="at least 12 characters"):
        check_binding("0.0.0.0", "short")
    monkeypatch.setenv(APP_TOKEN_VARIABLE, "a-long-enough-token")
    assert check_binding("0.0.0.0", None) == "a-long-enough-token"
    assert os.environ[APP_TOKEN_VARIABLE]
