"""Command line: ``python -m siamese_tf COMMAND`` (or the ``siamese-tf`` script).

Commands: demo, capture, train, evaluate, verify, app, enrol, forget, download. Run with ``--help`` for options.
Label convention: 1 = same.
"""

import argparse
import json
import os
import sys
from pathlib import Path

# How far (aspect ratio or enlargement) an image to verify may be from the model's input.
MAX_VERIFY_DISTORTION = 4.0


def _quiet_tensorflow():
    # Before TensorFlow is imported: keep its C++ log lines out of the terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


def _image_size(text):
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must look like 56x46 (height x width), got {text!r}")
    if height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return height, width


def _source(text):
    return int(text) if text.isdigit() else text


def build_parser():
    parser = argparse.ArgumentParser(prog="siamese_tf", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train, evaluate and save the face-verification model; write reports/")
    demo.add_argument("--data", choices=["lfw", "orl"], default="lfw",
                      help="lfw (default): class proxies on LFW's people, about 8 minutes; orl: the small ORL "
                           "course recipe, about 4 minutes")
    demo.add_argument("--minutes", type=float, help="lfw: training budget (default 7)")
    demo.add_argument("--method", choices=["class_proxy", "contrastive", "pairs_l1"],
                      help="lfw: the training recipe (default: the one chosen on LFW's validation fold)")
    demo.add_argument("--data-dir", help="folder holding faces/lfw/ and faces/orl_faces_s1-s30.zip "
                                         "(default: SIAMESE_TF_DATA_DIR)")
    demo.add_argument("--models-dir")
    demo.add_argument("--reports-dir")
    demo.add_argument("--smoke", action="store_true", help="tiny run (same as SIAMESE_TF_SMOKE=1)")
    demo.add_argument("--epochs", type=int, help="orl: override the number of epochs")
    demo.add_argument("--head", choices=["l1", "euclidean", "cosine"], help="orl: override the similarity head")
    demo.add_argument("--mode", choices=["pairs", "in_batch"], help="orl: override the training mode")

    capture = commands.add_parser("capture", help="save face crops from a camera, a video file or an image folder")
    capture.add_argument("--source", type=_source, default=0, help="camera index, video file or image folder")
    capture.add_argument("--output", required=True, help="folder to write to, e.g. data/anchor")
    capture.add_argument("--count", type=int, default=300)
    capture.add_argument("--crop", choices=["center", "face"], default="face")
    capture.add_argument("--size", type=_image_size, default=(250, 250))
    capture.add_argument("--every-nth", type=int, default=1, help="keep one frame in this many")

    train = commands.add_parser("train", help="train a Siamese model on a folder with one subfolder per identity")
    train.add_argument("--data", required=True, help="folder or .zip with one subfolder per identity")
    train.add_argument("--model", required=True, help="where to save the .keras model")
    train.add_argument("--embedding", default="small_cnn", choices=["small_cnn", "koch"])
    train.add_argument("--head", default="euclidean", choices=["l1", "euclidean", "cosine"],
                       help="euclidean (default: unit-length embeddings, contrastive loss; the recipe that won on "
                            "LFW) or l1 (the seeds' L1Dist + sigmoid head with binary cross-entropy)")
    train.add_argument("--image-size", type=_image_size, default=(64, 64))
    train.add_argument("--channels", type=int, choices=[1, 3], default=1)
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--pairs-per-epoch", type=int, default=2048)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--validation-fraction", type=float, default=0.2,
                       help="share of identities held out to choose the threshold")
    train.add_argument("--checkpoint-dir", help="resume here after a stop (default: next to the model)")
    train.add_argument("--fresh", action="store_true",
                       help="discard a checkpoint left in the checkpoint folder and start at epoch 1")
    train.add_argument("--seed", type=int, default=0)

    evaluate = commands.add_parser("evaluate", help="pair verification and N-way one-shot accuracy on a folder")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--pairs", type=int, default=2000)
    evaluate.add_argument("--n-way", type=int, default=10)
    evaluate.add_argument("--tasks", type=int, default=500)
    evaluate.add_argument("--seed", type=int, default=0)

    verify = commands.add_parser("verify", help="verify an image against a folder of the person's images")
    verify.add_argument("--model", required=True)
    verify.add_argument("--image", required=True)
    verify.add_argument("--references", required=True, help="folder of the person's validation images")
    verify.add_argument("--detection-threshold", type=float)
    verify.add_argument("--verification-threshold", type=float)

    def gallery_options(command):
        command.add_argument("--gallery", default=os.path.join("data", "gallery"),
                             help="encrypted gallery folder (default data/gallery)")
        command.add_argument("--key-file", help="file holding the gallery key (default: $SIAMESE_TF_GALLERY_KEY, "
                                                "else <gallery>/gallery.key, created for a new gallery)")

    app = commands.add_parser("app", help="the verification web app: camera, enrol, verify, who is this, forget")
    app.add_argument("--model", required=True, help="a .keras model with calibrated thresholds (from train or demo)")
    gallery_options(app)
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (another than 127.0.0.1 needs --token)")
    app.add_argument("--port", type=int, default=7860)
    app.add_argument("--token", help="access token (the login password; also $SIAMESE_TF_APP_TOKEN)")
    app.add_argument("--enrol-images", type=int, default=10, help="camera images captured per Enrol click")

    enrol = commands.add_parser("enrol", help="enrol a person from image files, without a camera")
    enrol.add_argument("person")
    enrol.add_argument("--model", required=True)
    enrol.add_argument("--images", required=True, help="folder of the person's images (a face in each)")
    gallery_options(enrol)

    forget = commands.add_parser("forget", help="remove a person's images, embeddings and index entries")
    forget.add_argument("person")
    gallery_options(forget)

    download = commands.add_parser("download", help="download a public data set from the registry")
    download.add_argument("name", nargs="?", help="registry name; omit to list them")
    download.add_argument("--data-dir")
    download.add_argument("--allow-unverified", action="store_true",
                          help="accept an entry that has no registered SHA-256 (its hash is printed)")
    return parser


def main(argv=None):
    _quiet_tensorflow()
    from siamese_tf.errors import DownloadError

    arguments = build_parser().parse_args(argv)
    handler = globals()[f"_run_{arguments.command}"]
    try:
        return handler(arguments)
    except (ValueError, FileNotFoundError, RuntimeError, DownloadError, KeyError) as error:
        # Bad input gets one clear line, not a traceback from deep inside TensorFlow.
        text = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"siamese_tf {arguments.command}: error: {text}", file=sys.stderr)
        return 2


def _run_demo(arguments):
    if arguments.smoke:
        os.environ["SIAMESE_TF_SMOKE"] = "1"
    from siamese_tf.studies.faces import FaceVerificationConfig, run_face_verification, run_lfw_demo

    if arguments.data == "lfw":
        orl_only = [flag for flag in ("epochs", "head", "mode") if getattr(arguments, flag)]
        if orl_only:
            raise ValueError(f"--{orl_only[0]} is for --data orl; the LFW demo takes --minutes")
        report = run_lfw_demo(arguments.minutes, data_dir=arguments.data_dir, models_dir=arguments.models_dir,
                              reports_dir=arguments.reports_dir, method=arguments.method)
        summary = {key: report[key] for key in ("method", "training_seconds", "thresholds", "test_pair_verification",
                                                "cross_dataset_orl", "total_seconds", "model_path")}
        print(json.dumps(summary, indent=2))
        return 0
    lfw_only = [flag for flag in ("minutes", "method") if getattr(arguments, flag)]
    if lfw_only:
        raise ValueError(f"--{lfw_only[0]} is for the LFW demo (--data lfw)")

    overrides = {}
    if arguments.epochs:
        overrides["num_epochs"] = arguments.epochs
    if arguments.head:
        overrides["head"] = arguments.head
        overrides["normalize"] = arguments.head != "l1"
    if arguments.mode:
        overrides["mode"] = arguments.mode
    config = FaceVerificationConfig.default(**overrides)
    if config.loss == "triplet" and (config.head == "l1" or config.mode == "pairs"):
        config.loss = None  # triplets need in-batch distances: fall back to the head's own loss
    report = run_face_verification(config, data_dir=arguments.data_dir,
                                   models_dir=arguments.models_dir, reports_dir=arguments.reports_dir)
    summary = {key: report[key] for key in ("training_seconds", "test_pair_verification",
                                            "test_n_way_one_shot", "test_reference_rule", "model_path")}
    print(json.dumps(summary, indent=2))
    return 0


def _run_capture(arguments):
    from siamese_tf.captures import capture_images

    try:
        paths = capture_images(arguments.source, arguments.output, arguments.count, crop=arguments.crop,
                               size=arguments.size, every_nth=arguments.every_nth)
    except KeyboardInterrupt as interrupt:
        saved = getattr(interrupt, "saved", [])
        print(f"interrupted: saved {len(saved)} images to {arguments.output} before the stop", file=sys.stderr)
        return 130
    print(f"saved {len(paths)} images to {arguments.output}")
    return 0


def _run_train(arguments):
    from siamese_tf import settings
    from siamese_tf.augmentations import Augmenter
    from siamese_tf.datasets import load_identity_folders, split_by_identity
    from siamese_tf.errors import SiameseDataError
    from siamese_tf.models import build_siamese_model, check_model_path, save_model
    from siamese_tf.numpy_pipelines import pair_pipeline
    from siamese_tf.samplers import make_pairs
    from siamese_tf.studies.faces import calibrate_face_thresholds
    from siamese_tf.training import compile_siamese, train_siamese

    # Every output path is checked before any work, so a bad name costs nothing.
    model_path = check_model_path(arguments.model)
    checkpoint_dir = Path(arguments.checkpoint_dir or model_path.with_suffix("").as_posix() + "_checkpoints")
    if checkpoint_dir.exists() and not checkpoint_dir.is_dir():
        raise ValueError(f"checkpoint folder {checkpoint_dir} is a file")
    settings.seed_everything(arguments.seed)
    images = load_identity_folders(arguments.data, image_size=arguments.image_size, channels=arguments.channels)
    fraction = arguments.validation_fraction
    train, validation = split_by_identity(images, fractions=(1 - fraction, fraction), seed=arguments.seed)
    if validation.num_classes < 2:
        raise SiameseDataError(
            f"the validation split holds {validation.num_classes} identity ({images.num_classes} in {arguments.data} "
            f"with --validation-fraction {fraction}); choosing thresholds needs at least 2 validation identities: "
            f"add identities or raise --validation-fraction"
        )
    # A distance head trains unit-length embeddings (the LFW contrastive recipe); the L1 head keeps the seeds' raw ones.
    network = {"normalize": arguments.head != "l1"} if arguments.embedding == "small_cnn" else {}
    model = build_siamese_model(arguments.embedding, arguments.head, (*arguments.image_size, arguments.channels),
                                **network)
    compile_siamese(model, learning_rate=arguments.learning_rate)
    # Pairs from (seed, epoch), images augmented inside tf.data (NumPy without TensorFlow): a resumed
    # run sees the batches of an unbroken one.
    batches = pair_pipeline(train.images, train.labels, arguments.pairs_per_epoch, arguments.batch_size,
                            seed=arguments.seed, augment=Augmenter())
    validation_pairs = make_pairs(validation.images, validation.labels, 600, seed=arguments.seed)
    train_siamese(model, batches, arguments.epochs, validation_pairs=validation_pairs, checkpoint_dir=checkpoint_dir,
                  fresh=arguments.fresh)
    # Both thresholds on the held-out identities: pairs for detection, then the seeds' rule (a few
    # reference images per person, the fraction an attempt matches) for verification.
    chosen = calibrate_face_thresholds(model, validation, num_pairs=600, seed=arguments.seed)
    detection, verification, references = chosen["detection"], chosen["verification"], chosen["references"]
    save_model(model, model_path)
    print(f"saved {model_path} (detection threshold {detection:.4f}, verification threshold {verification:.2f} "
          f"with {references} reference images, both chosen on {validation.num_classes} held-out identities)")
    return 0


def _run_evaluate(arguments):
    from siamese_tf import metrics
    from siamese_tf.datasets import load_identity_folders
    from siamese_tf.models import load_model
    from siamese_tf.samplers import make_pairs

    model = load_model(arguments.model)
    height, width, channels = model.input_image_shape
    images = load_identity_folders(arguments.data, image_size=(height, width), channels=channels)
    (first, second), labels = make_pairs(images.images, images.labels, arguments.pairs, seed=arguments.seed)
    threshold = model.thresholds.get("detection")
    if threshold is None:
        raise ValueError(f"{arguments.model} has no calibrated detection threshold; train it with this tool")
    figures = metrics.evaluate_verification(model, first, second, labels, threshold)
    figures.update({f"n_way_{key}": value for key, value in metrics.evaluate_n_way(
        model, images.images, images.labels, n_way=min(arguments.n_way, images.num_classes),
        num_tasks=arguments.tasks, seed=arguments.seed).items()})
    print(json.dumps({key: (float(value) if hasattr(value, "__float__") else value)
                      for key, value in figures.items()}, indent=2))
    return 0


def _run_verify(arguments):
    from siamese_tf.datasets import read_image
    from siamese_tf.verification import Verifier

    verifier = Verifier.from_folder(arguments.model, arguments.references,
                                    detection_threshold=arguments.detection_threshold,
                                    verification_threshold=arguments.verification_threshold)
    height, width, channels = verifier.model.input_image_shape
    # A 3x3 icon or a 10x4000 strip stretched to the model's input would still get a verdict.
    image = read_image(arguments.image, image_size=(height, width), channels=channels,
                       max_distortion=MAX_VERIFY_DISTORTION)
    result = verifier.verify(image)
    print(json.dumps({"verified": bool(result.verified), "fraction": float(result.fraction),
                      "detections": int(result.detections)}, indent=2))
    return 0 if result.verified else 1


def _run_app(arguments):
    from siamese_tf.verification_apps import FaceVerificationApp
    from siamese_tf.web_apps import check_binding, launch_app

    token = check_binding(arguments.host, arguments.token)  # before the slow model load
    app = FaceVerificationApp.from_paths(arguments.model, arguments.gallery, key_file=arguments.key_file)
    where = f"http://{arguments.host}:{arguments.port}"
    print(f"serving {where} (gallery {arguments.gallery}, {len(app.gallery.names())} people enrolled; "
          f"detection threshold {app.detection_threshold:.4f}, verification {app.verification_threshold:.2f}, "
          f"from {arguments.model}){'; log in with the access token' if token else ''}; Ctrl-C stops it")
    launch_app(app, host=arguments.host, port=arguments.port, token=token, model_name=str(arguments.model),
               enrol_images=arguments.enrol_images, block=True)
    return 0


def _run_enrol(arguments):
    from siamese_tf.verification_apps import FaceVerificationApp, folder_of_frames

    frames = folder_of_frames(arguments.images)
    app = FaceVerificationApp.from_paths(arguments.model, arguments.gallery, key_file=arguments.key_file)
    print(app.enrol(arguments.person, frames).message)
    return 0


def _run_forget(arguments):
    from siamese_tf.galleries import Gallery

    gallery = Gallery(arguments.gallery, key_file=arguments.key_file)
    removed = gallery.forget(arguments.person)
    print(f"forgot {arguments.person}: removed {removed['images']} image(s), {removed['embeddings']} embedding "
          f"file(s) and their index entries ({removed['files']} files) from {arguments.gallery}")
    return 0


def _run_download(arguments):
    from siamese_tf import downloads

    if not arguments.name:
        for name, source in sorted(downloads.REGISTRY.items()):
            print(f"{name}: {source.url}")
        return 0
    print(downloads.download(arguments.name, data_dir=arguments.data_dir, allow_unverified=arguments.allow_unverified))
    return 0


if __name__ == "__main__":
    sys.exit(main())
