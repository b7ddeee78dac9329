"""The verification app's web page (Gradio): live camera, Enrol, Verify, Who is this?, Forget.

``python -m siamese_tf app --model models/face_verification.keras`` serves it on
http://127.0.0.1:7860; in a notebook, :func:`launch_app` shows it inline. The browser's camera
streams frames to the server (5 a second); the buttons act on the newest ones through a
:class:`~siamese_tf.verification_apps.FaceVerificationApp`.

Privacy: the gallery is encrypted at rest (:mod:`siamese_tf.galleries`); matched gallery images
are sent to the page inline (never written to a file), and Gradio's own upload cache is pointed into
a private folder of the gallery and emptied when the app closes. The server binds to 127.0.0.1;
any other address needs an access token, asked for by a login form (any user name, the token as
password).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import io
import os
import shutil
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from siamese_tf.errors import SiameseDataError
from siamese_tf.verification_apps import DEFAULT_ENROL_IMAGES, FaceVerificationApp

if TYPE_CHECKING:
    import gradio

__all__ = [
    "APP_TOKEN_VARIABLE",
    "CAMERA_STALE_SECONDS",
    "FRAME_INTERVAL_SECONDS",
    "CameraError",
    "FrameBuffer",
    "build_app",
    "check_binding",
    "launch_app",
]

APP_TOKEN_VARIABLE = "SIAMESE_TF_APP_TOKEN"
FRAME_INTERVAL_SECONDS = 0.2
# A newest frame older than this means the camera stopped (the page streams 5 frames a second).
CAMERA_STALE_SECONDS = 2.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class CameraError(SiameseDataError):
    """No camera frame has arrived, or the camera stopped sending them."""


class FrameBuffer:
    """The newest camera frames, with their arrival times (thread-safe)."""

    def __init__(self, size: int = 64) -> None:
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=size)
        self._lock = threading.Condition()
        self.received = 0

    def add(self, frame: np.ndarray) -> None:
        with self._lock:
            self._frames.append((time.monotonic(), np.asarray(frame)))
            self.received += 1
            self._lock.notify_all()

    def latest(self, max_age: float = CAMERA_STALE_SECONDS) -> np.ndarray:
        """The newest frame; :class:`CameraError` when there is none or it is older than ``max_age`` s."""
        with self._lock:
            if not self._frames:
                raise CameraError("no camera image yet: click 'Click to Access Webcam', allow the camera, then "
                                  "'Record' to start streaming")
            arrived, frame = self._frames[-1]
        age = time.monotonic() - arrived
        if age > max_age:
            raise CameraError(f"the camera stopped sending images ({age:.0f} s ago): check it and press 'Record' "
                              f"again")
        return frame

    def collect(self, count: int, timeout: float) -> list[np.ndarray]:
        """The next ``count`` frames to arrive; :class:`CameraError` if they do not within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            start = self.received
            while self.received - start < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = self.received - start
                    raise CameraError(f"the camera sent {got} of the {count} images needed in {timeout:.0f} s "
                                      f"(is it streaming? press 'Record'); nothing was stored")
                self._lock.wait(left)
            return [frame for _, frame in list(self._frames)[-count:]]


def check_binding(host: str, token: str | None) -> str | None:
    """The access token to require: none on this machine only, one (given or from the environment) elsewhere."""
    token = token or os.environ.get(APP_TOKEN_VARIABLE) or None
    if host not in LOCAL_HOSTS and not token:
        raise ValueError(f"serving on {host!r} makes the app reachable from other machines: give an access token "
                         f"(--token or ${APP_TOKEN_VARIABLE}); without one it binds to 127.0.0.1 only")
    if token is not None and len(token) < 12:
        raise ValueError(f"the access token must be at least 12 characters, got {len(token)}")
    return token


def _image_html(images: np.ndarray, captions: list[str]) -> str:
    """Images as inline PNG data (no file is written), in a row."""
    import cv2

    tiles = []
    for image, caption in zip(images, captions):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        elif image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", image)
        if ok:
            data = base64.b64encode(encoded.tobytes()).decode("ascii")
            tiles.append(f'<figure style="display:inline-block;margin:4px;text-align:center">'
                         f'<img src="data:image/png;base64,{data}" width="96" height="96"/>'
                         f'<figcaption style="font-size:11px">{caption}</figcaption></figure>')
    return "<div class='matched'>" + "".join(tiles) + "</div>" if tiles else ""


def _thresholds_text(app: FaceVerificationApp, model_name: str) -> str:
    return (f"**Model** `{model_name}`, input {app.model.input_image_shape}. **Thresholds from the model file** "
            f"(chosen on validation people when it was trained): detection **{app.detection_threshold:.4f}** "
            f"(a gallery image matches above this similarity), verification **{app.verification_threshold:.2f}** "
            f"(the person is verified when more than this fraction of their gallery matches).")


def build_app(app: FaceVerificationApp, model_name: str = "model", enrol_images: int = DEFAULT_ENROL_IMAGES,
              frames: FrameBuffer | None = None) -> gradio.Blocks:
    """The Gradio page around ``app``: camera, name box, Enrol / Verify / Who is this?, people with Forget."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    if not isinstance(enrol_images, int) or not 1 <= enrol_images <= 100:
        raise ValueError(f"enrol_images must be a whole number from 1 to 100, got {enrol_images!r}")
    frames = frames or FrameBuffer()
    lock = threading.Lock()  # one model call at a time

    def on_frame(frame: Any) -> None:
        if frame is not None:
            frames.add(frame)

    def guarded(action, outputs=2):
        """Run ``action``; bad input becomes a message on the page (the rest of its ``outputs`` emptied),
        never a traceback."""
        try:
            with lock:
                return action()
        except (SiameseDataError, ValueError, KeyError) as error:
            text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
            return (f"**Error:** {text}",) + ("",) * (outputs - 1)

    def enrol(name: str) -> tuple[str, str, list[str]]:
        def action():
            from siamese_tf.galleries import Gallery

            person = Gallery.check_name(name)
            captured = frames.collect(enrol_images, timeout=enrol_images * FRAME_INTERVAL_SECONDS * 5 + 5)
            result = app.enrol(person, captured)
            return f"**{result.message}**", ""
        verdict, details = guarded(action)
        return verdict, details, app.gallery.names()

    def verify(name: str) -> tuple[str, str, str]:
        def action():
            from siamese_tf.galleries import Gallery

            result = app.verify(Gallery.check_name(name), frames.latest())
            matched = result.matched[:8]
            images = app.gallery_images(result.name)
            html = ""
            if len(images) == result.gallery_size and len(matched):
                html = _image_html(images[matched], [f"{result.similarities[i]:.3f}" for i in matched])
            details = (f"fraction {result.fraction:.2f} ({result.detections} of {result.gallery_size} gallery "
                       f"images above {result.detection_threshold:.4f}); verification threshold "
                       f"{result.verification_threshold:.2f}; {result.seconds * 1000:.0f} ms")
            return f"### {result.message}", details + ("\n\nMatched gallery images:" if html else ""), html
        return guarded(action, outputs=3)

    def identify() -> tuple[str, str]:
        def action():
            result = app.identify(frames.latest())
            rows = "\n".join(f"| {name} | {fraction:.2f} | {best:.4f} |" for name, fraction, best in result.candidates)
            table = "| person | fraction | best similarity |\n|---|---|---|\n" + rows
            return f"### {result.message}", f"{table}\n\n{result.seconds * 1000:.0f} ms"
        return guarded(action)

    def forget(name: str) -> tuple[str, str, list[str]]:
        def action():
            removed = app.forget(name)
            return (f"**Forgot {name}:** {removed['images']} image(s), {removed['embeddings']} embedding file and "
                    f"their index entries removed ({removed['files']} files).", "")
        verdict, details = guarded(action)
        return verdict, details, app.gallery.names()

    with gr.Blocks(title="siamese_tf face verification") as page:
        gr.Markdown("# Face verification\nEnrol a person from the camera, then verify them or ask who is in front "
                    "of the camera. Faces are stored encrypted; **Forget** removes everything of a person.")
        gr.Markdown(_thresholds_text(app, model_name), elem_id="thresholds")
        with gr.Row():
            with gr.Column(scale=3):
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", height=320,
                                  webcam_options=gr.WebcamOptions(mirror=False))
            with gr.Column(scale=2):
                name = gr.Textbox(label="Name", placeholder="who is in front of the camera?", elem_id="name")
                with gr.Row():
                    enrol_button = gr.Button(f"Enrol ({enrol_images} images)", variant="primary", elem_id="enrol")
                    verify_button = gr.Button("Verify", variant="primary", elem_id="verify")
                    identify_button = gr.Button("Who is this?", elem_id="identify")
                verdict = gr.Markdown("", elem_id="verdict")
                details = gr.Markdown("", elem_id="details")
                matched = gr.HTML("", elem_id="matched")
        people = gr.State(app.gallery.names())
        gr.Markdown("### Enrolled people")

        @gr.render(inputs=people)
        def people_list(names: list[str]) -> None:
            if not names:
                gr.Markdown("nobody yet", elem_id="people-empty")
            for person in names:
                with gr.Row(equal_height=True):
                    gr.Markdown(f"**{person}**")
                    button = gr.Button(f"Forget {person}", variant="stop", size="sm", min_width=120)
                    button.click(lambda person=person: forget(person), None, [verdict, details, people])

        # Each browser session starts from the gallery as it is now, not as it was when the page was built.
        page.load(lambda: app.gallery.names(), None, people)
        camera.stream(on_frame, inputs=[camera], outputs=None, stream_every=FRAME_INTERVAL_SECONDS,
                      show_progress="hidden", concurrency_limit=None)
        enrol_button.click(enrol, [name], [verdict, details, people])
        verify_button.click(verify, [name], [verdict, details, matched])
        identify_button.click(identify, None, [verdict, details])
    page.frame_buffer = frames
    return page


def launch_app(app: FaceVerificationApp, host: str = "127.0.0.1", port: int = 7860, token: str | None = None,
               model_name: str = "model", enrol_images: int = DEFAULT_ENROL_IMAGES, inline: bool | None = None,
               block: bool = True) -> gradio.Blocks:
    """Serve the page; ``block=False`` returns at once (notebooks, tests: call ``.close()`` when done).

    Gradio's upload cache goes to ``<gallery>/.web-cache`` (0700) and is removed on close.
    """
    token = check_binding(host, token)
    cache = app.gallery.root / ".web-cache"
    cache.mkdir(mode=0o700, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    page = build_app(app, model_name=model_name, enrol_images=enrol_images)
    auth = None
    if token:
        def auth(_user: str, password: str) -> bool:
            return hmac.compare_digest(password.encode("utf-8"), token.encode("utf-8"))
    page.queue(default_concurrency_limit=4)
    page.launch(server_name=host, server_port=port, auth=auth, share=False, ssr_mode=False, inline=inline,
                prevent_thread_lock=True, quiet=True, show_error=False,
                auth_message="Access token: any user name, the token as password" if token else None)
    original_close = page.close

    def close(*arguments: Any, **keywords: Any) -> Any:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # Gradio prints "Closing server ..."
                return original_close(*arguments, **keywords)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    page.close = close
    if block:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            page.close()
    return page
