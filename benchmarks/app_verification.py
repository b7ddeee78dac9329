"""The verification app on a stand-in camera clip: frames decided right, and time per click.

The clip shows LFW people of a fold the model never trained on and whose people never chose its
thresholds (camera-like frames from ``faces.stand_in_frames``: each image on a 640x480 canvas).
Each clip person is enrolled from their first ``--enrol`` frames through the app (face detection,
crop, encrypted gallery); every later frame of every clip person is then verified against every
enrolled person (right when the verdict is "same" exactly for the true person) and identified
(right when the answer is the true person). Timing: one Verify click (detection, crop, embedding,
gallery comparison) and one "Who is this?" with ``--identify-people`` people enrolled.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/app_verification.py --model models/lfw_folds1-7.keras \\
        --calibrate-fold 8 --save-model models/face_verification_lfw.keras
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/app_verification.py --train-minutes 20   # trains one
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/app_verification.py --smoke             # seconds

``--model`` must come from training on folds other than the calibration and clip folds (e.g.
``benchmarks/lfw_verification.py --train-folds 1-7 --test-fold 8 --save-model ...``). Prints one
JSON object and writes it to ``<reports dir>/app_verification.json``.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from siamese_tf import settings  # noqa: E402
from siamese_tf.reports import machine_description, write_report  # noqa: E402
from siamese_tf.studies import faces  # noqa: E402


def clip_people(people_file, fold, minimum, limit):
    """The people of ``fold`` with at least ``minimum`` images, most images first."""
    listed = faces.read_lfw_people(people_file)[fold - 1]
    chosen = [(name, count) for name, count in sorted(listed, key=lambda item: (-item[1], item[0]))
              if count >= minimum]
    return chosen[:limit]


def build_model(arguments, files):
    from siamese_tf.models import load_model

    if arguments.model:
        model = load_model(arguments.model)
        figures = {"model_loaded_from": arguments.model}
        if arguments.calibrate_fold:
            people = faces.read_lfw_people(files.people)[arguments.calibrate_fold - 1]
            names = sorted(name for name, count in people if count >= 2)
            height, width, channels = model.input_image_shape
            validation = faces.load_lfw(files.images, image_size=(height, width), channels=channels, people=names)
            figures["thresholds"] = faces.calibrate_face_thresholds(model, validation, references=arguments.references)
            figures["calibration_fold"] = arguments.calibrate_fold
        return model, figures
    recipe = faces.ClassProxyRecipe.smoke() if arguments.smoke else faces.ClassProxyRecipe(
        minutes=arguments.train_minutes)
    train_folds = [1] if arguments.smoke else [fold for fold in range(1, 10)
                                               if fold not in (arguments.calibrate_fold, arguments.clip_fold)]
    model, figures = faces.train_lfw_verification_model(
        arguments.data_dir, train_folds=train_folds, validation_folds=(arguments.calibrate_fold,), recipe=recipe,
        max_train_people=60 if arguments.smoke else None, references=arguments.references, verbose=2)
    return model, figures


def run(arguments):
    from siamese_tf.galleries import Gallery, generate_key
    from siamese_tf.models import save_model
    from siamese_tf.verification_apps import FaceVerificationApp, NoFaceError

    files = faces.locate_lfw(arguments.data_dir)
    model, model_figures = build_model(arguments, files)
    if arguments.save_model:
        model_figures["model_path"] = str(save_model(model, arguments.save_model))
    people = clip_people(files.people, arguments.clip_fold, arguments.enrol + 1 if arguments.smoke else
                         arguments.enrol + 5, 2 if arguments.smoke else arguments.clip_people)
    names = [name for name, _ in people]
    counts = [min(count, arguments.enrol + 3) if arguments.smoke else count for _, count in people]
    frames, frame_people = faces.stand_in_frames(files.images, names, counts)
    frame_people = np.asarray(frame_people)

    with tempfile.TemporaryDirectory(prefix="app-benchmark-") as folder:
        # A throw-away gallery: its key lives and dies with this run.
        app = FaceVerificationApp(model, Gallery(Path(folder) / "gallery", key=generate_key()))
        started = time.perf_counter()
        test_frames = []
        for name in names:
            own = np.flatnonzero(frame_people == name)
            app.enrol(name, frames[own[:arguments.enrol]])
            test_frames += own[arguments.enrol:].tolist()
        enrol_seconds = time.perf_counter() - started

        genuine, impostor, verify_seconds, identified, identify_seconds, no_face = [], [], [], [], [], 0
        for index in test_frames:
            truth = frame_people[index]
            try:
                app.face_crop(frames[index])
            except NoFaceError:
                # The app answers "no face found" and decides nothing: counted wrong for every claim.
                no_face += 1
                genuine.append(False)
                impostor += [False] * (len(names) - 1)
                identified.append(False)
                continue
            for claimed in names:
                result = app.verify(claimed, frames[index])
                verify_seconds.append(result.seconds)
                (genuine if claimed == truth else impostor).append(result.verified == (claimed == truth))
            answer = app.identify(frames[index])
            identify_seconds.append(answer.seconds)
            identified.append(answer.name == truth)

        # Identification time with many people enrolled: people of the model's training folds, 1 image each.
        wanted = 0 if arguments.smoke else arguments.identify_people - len(names)
        # A few spare people: the app refuses a photo in which the detector finds no face.
        extra = _other_people(files.people, names, int(wanted * 1.1) + 5, exclude_folds=(arguments.clip_fold,)) \
            if wanted > 0 else []
        large_gallery_seconds = []
        if extra:
            extra_frames, extra_names = faces.stand_in_frames(files.images, extra, 1)
            added = 0
            for frame, name in zip(extra_frames, extra_names):
                if added == wanted:
                    break
                try:
                    app.enrol(name, frame[None])
                    added += 1
                except NoFaceError:
                    continue
            app.rebuild_index()  # built once, on the first question after a change; not part of a click
            for index in test_frames[:arguments.timing_frames]:
                try:
                    large_gallery_seconds.append(app.identify(frames[index]).seconds)
                except NoFaceError:
                    continue
        people_enrolled = len(app.gallery.names())

    decisions = np.asarray(genuine + impostor)
    report = {
        "benchmark": "app_verification",
        "smoke": bool(arguments.smoke),
        "clip": {"fold": arguments.clip_fold, "people": dict(people), "enrol_frames_per_person": arguments.enrol,
                 "test_frames": len(test_frames), "frames_without_a_detected_face": no_face,
                 "frame_size": list(frames.shape[1:3])},
        "model": {**model_figures, "thresholds_in_model": {key: model.thresholds[key]
                                                           for key in ("detection", "verification")}},
        "verification": {
            "decisions": int(len(decisions)),
            "right_fraction": float(decisions.mean()),
            "genuine_accepted": float(np.mean(genuine)),
            "impostors_rejected": float(np.mean(impostor)),
            "balanced_right_fraction": float((np.mean(genuine) + np.mean(impostor)) / 2),
        },
        "identification": {"frames": len(identified), "right_fraction": float(np.mean(identified)),
                           "enrolled_people": len(names)},
        "timing_ms": {
            "verify_click_median": 1000 * float(np.median(verify_seconds)),
            "verify_click_p90": 1000 * float(np.percentile(verify_seconds, 90)),
            "identify_median_clip_gallery": 1000 * float(np.median(identify_seconds)),
            "identify_people_enrolled": people_enrolled,
            "identify_median_large_gallery": (1000 * float(np.median(large_gallery_seconds))
                                              if large_gallery_seconds else None),
            "identify_p90_large_gallery": (1000 * float(np.percentile(large_gallery_seconds, 90))
                                           if large_gallery_seconds else None),
            "enrol_seconds_clip_people": enrol_seconds,
        },
        "machine": machine_description(),
    }
    write_report(report, "app_verification", arguments.reports_dir)
    return report


def _other_people(people_file, taken, count, exclude_folds):
    listed = faces.read_lfw_people(people_file)
    names = [name for fold, people in enumerate(listed, start=1) if fold not in exclude_folds
             for name, _ in people if name not in taken]
    return sorted(names)[:max(0, count)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="holds faces/lfw/ (default SIAMESE_TF_DATA_DIR)")
    parser.add_argument("--reports-dir")
    parser.add_argument("--model", help="a saved model trained on folds other than --calibrate-fold and --clip-fold")
    parser.add_argument("--calibrate-fold", type=int, default=8,
                        help="fold whose people choose the thresholds (default 8; with --model: recalibrate there)")
    parser.add_argument("--clip-fold", type=int, default=9, help="fold whose people the clip shows (default 9)")
    parser.add_argument("--references", type=int, default=10,
                        help="gallery images per person when choosing the verification threshold (default 10)")
    parser.add_argument("--train-minutes", type=float, default=20.0, help="training budget without --model")
    parser.add_argument("--enrol", type=int, default=10, help="frames enrolled per clip person (default 10)")
    parser.add_argument("--clip-people", type=int, default=6, help="people in the clip (default 6)")
    parser.add_argument("--identify-people", type=int, default=1000,
                        help="people enrolled when timing identification (default 1000)")
    parser.add_argument("--timing-frames", type=int, default=50)
    parser.add_argument("--save-model", help="write the model (with its thresholds) here")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long check (also SIAMESE_TF_SMOKE=1)")
    arguments = parser.parse_args(argv)
    arguments.smoke = arguments.smoke or settings.smoke_mode()
    if arguments.smoke:
        arguments.enrol, arguments.references = 2, 1
    if arguments.calibrate_fold == arguments.clip_fold:
        raise SystemExit("the calibration fold and the clip fold must differ")
    run(arguments)


if __name__ == "__main__":
    main()
