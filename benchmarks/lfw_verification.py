"""Face verification on Labeled Faces in the Wild (LFW), "unrestricted, no outside data".

Trains on the people of the training folds, chooses the threshold on training folds' pairs and
scores the test fold's 600 pairs, beside raw pixels and HOG on the same pairs, then the same scorers
on ORL faces (never trained on: the cross-dataset check). The default (``--method fused --network
contrastive+class_proxy``, chosen on validation folds 7 and 8 on 2026-12-04) trains two networks of
:class:`siamese_tf.studies.faces.ClassProxyRecipe`'s size, each for half the clock: the contrastive
network (unit-length embeddings, contrastive loss on pairs) and the class-proxy network (every
person a class, normalised softmax with an additive margin); it fits a learned metric on LBP and
HOG descriptors of the same people (:class:`siamese_tf.studies.faces.LearnedMetricScorer`: PCA,
then the joint Bayesian model; about a minute) and averages their standardised similarities
(:class:`~siamese_tf.studies.faces.FusedPairScorer`: the metric half, each network a quarter, the
networks seeing each face and its mirror image). Since 2026-12-05 (chosen on validation folds 7 and
8) the metric half is shared by two such metrics: one on the faces at 64x64 (LBP on 8x8 cells, HOG
cells of 8 pixels) and a finer one at 128x128 (12x12 cells, HOG cells of 16;
:data:`~siamese_tf.studies.faces.FINE_FACE_DESCRIPTOR`): LFW is loaded at 128x128 and the
networks get it resized to their 64x64 (``--descriptors 64/8/8`` for the single metric). Each
network alone, the two networks without the metrics (``network_ensemble``) and each metric alone
(``descriptor_metric``, ``descriptor_2_metric``) are scored in the same run. ``--network
contrastive|class_proxy|pairs_l1`` fuses one network (trained for the whole clock) with the metric
(``contrastive`` was the default until 2026-12-04); ``--method contrastive|class_proxy|pairs_l1``
trains one network only (``pairs_l1``: the seeds' L1 head with binary cross-entropy).

The threshold is chosen on the training folds' pairs. A learned metric scores the pairs of the
people it was fitted on far better than strangers', so for the fused scorer (and the metric alone)
each training fold's pairs are scored by a metric fitted without that fold's people
(:func:`siamese_tf.studies.faces.cross_fitted_fold_similarities`, about 20 s a fold; the network part
as it is): on fold 8 this moved the fused accuracy from 0.882 to 0.903. ``--in-sample-threshold``
keeps the metric's own scores. ``--threshold-fold K`` instead leaves training fold K's people out
of all training and chooses the threshold on fold K's pairs alone.

Progress bars on stderr follow the long steps (training, fitting and cross-fitting the metrics, scoring).
Prints one JSON object and writes it to ``<reports dir>/lfw_verification.json``; with
``--save-model`` also the network (.keras, with its own detection threshold; two networks as
``<name>_contrastive.keras`` and ``<name>_class_proxy.keras``) and, for the fused method, the
descriptor metric beside it (``<name>_descriptor_metric.npz``). ``--model`` scores saved networks
again without training (one file per network of ``--network``, in its order; the metric is refitted,
which is deterministic): the same figures, or other scorers' settings on the same networks.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/lfw_verification.py                   # CPU default
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/lfw_verification.py --test-fold 8 \\
        --train-folds 1-7                                         # choose recipes here, never on fold 9
    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/lfw_verification.py --smoke            # seconds
    KERAS_BACKEND=jax python benchmarks/lfw_verification.py --all-folds --minutes 1           # a GPU: every fold

The CPU default trains 30 minutes on folds 1-8 and tests on fold 9 (the shared copy holds View 2's
first 9 folds); ``--all-folds`` runs the whole cross-validation (every fold tested by its own
training on the others; mean accuracy +- standard error, as LFW's result tables; a GPU job: one
training per fold), written to ``lfw_verification_all_folds.json``. TensorFlow is optional: with
``KERAS_BACKEND=jax`` and JAX alone (a GPU machine) the batches come from NumPy. Recipes are compared with fold 8 as the
validation fold and fold 9 left out entirely (``--test-fold 8 --train-folds 1-7``).
"""

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from siamese_tf import settings  # noqa: E402
from siamese_tf.datasets import load_identity_folders  # noqa: E402
from siamese_tf.reports import machine_description, write_report  # noqa: E402
from siamese_tf.studies import faces  # noqa: E402


def _folds(text):
    """``"1-7"`` or ``"1,2,5"`` -> a sorted list of fold numbers."""
    numbers = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        numbers.update(range(int(first), int(last or first) + 1))
    return sorted(numbers)


def _descriptors(text):
    """``--descriptors "64/8/8,128/12/16"`` -> one FaceDescriptor per ``SIZE/GRID/HOG_CELL`` (argparse's type)."""
    descriptors = []
    for spec in text.split(","):
        try:
            size, grid, hog_cell = (int(value) for value in spec.split("/"))
            descriptors.append(faces.FaceDescriptor(grid=grid, hog_cell=hog_cell, image_size=size))
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{spec!r} is not SIZE/GRID/HOG_CELL with whole numbers ({error})") \
                from None
    return descriptors


def _descriptors_text(descriptors):
    """The ``--descriptors`` text of FaceDescriptors (the inverse of :func:`_descriptors`)."""
    return ",".join(f"{descriptor.image_size}/{descriptor.grid}/{descriptor.hog_cell}" for descriptor in descriptors)


def _loading_size(arguments, recipe):
    """The side LFW is loaded at: the largest of the networks' input and the fused method's descriptors."""
    sizes = [max(recipe.image_size)]
    if arguments.method == "fused":
        sizes += [descriptor.image_size for descriptor in arguments.descriptors]
    return (max(sizes), max(sizes))


def _recipe(arguments):
    recipe = faces.ClassProxyRecipe.smoke() if arguments.smoke else faces.ClassProxyRecipe()
    overrides = {name: getattr(arguments, name) for name in ("minutes", "margin", "scale", "embedding_dim", "channels")
                 if getattr(arguments, name) is not None}
    if arguments.image_size:
        overrides["image_size"] = (arguments.image_size, arguments.image_size)
    return faces.ClassProxyRecipe(**{**vars(recipe), **overrides})


def run(arguments):
    """One test fold (the default), or with ``--all-folds`` LFW's cross-validation: every fold tested
    by its own training on the other folds, then the mean accuracy and its standard error per scorer."""
    if not arguments.all_folds:
        return run_fold(arguments)[0]
    for option in ("test_fold", "train_folds", "threshold_fold", "model"):
        if getattr(arguments, option) is not None:
            raise SystemExit(f"--all-folds chooses the folds itself: drop --{option.replace('_', '-')}")
    files = faces.locate_lfw(arguments.data_dir)
    pairs = faces.read_lfw_pairs(files.pairs)
    test_folds = list(range(1, pairs.num_folds + 1))[-2:] if arguments.smoke else range(1, pairs.num_folds + 1)
    recipe = _recipe(arguments)
    started = time.perf_counter()
    # Every person of every fold, loaded once; each fold's run takes the people it needs from it
    # (a smoke run loads its few people per fold instead).
    images = None if arguments.smoke else faces.load_lfw(files.images, image_size=_loading_size(arguments, recipe),
                                                          channels=recipe.channels)
    loading_seconds = time.perf_counter() - started
    machine = machine_description()
    folds, fold_reports = [], {}
    for number, test_fold in enumerate(test_folds, start=1):
        print(f"LFW cross-validation: test fold {test_fold} ({number} of {len(test_folds)})", file=sys.stderr,
              flush=True)
        report, reports = run_fold(arguments, test_fold=test_fold, images=images, write=False)
        folds.append(report)
        for name, fold_report in reports.items():
            fold_reports.setdefault(name, []).append(fold_report)
        summary = {
            "benchmark": "lfw_verification_all_folds",
            "protocol": folds[0]["protocol"] + "; every fold tested in turn, each by its own training",
            "smoke": bool(arguments.smoke),
            "method": arguments.method,
            "complete": len(folds) == len(test_folds),
            "test_folds": list(test_folds),
            "loading_seconds": loading_seconds,
            "training_seconds": sum(fold.get("training_seconds", 0.0) for fold in folds),
            "seconds": time.perf_counter() - started,
            "summary": {name: faces.summarise_folds(reports) for name, reports in fold_reports.items()},
            "folds": folds,
            "machine": machine,
        }
        # Saved after every fold, so a run stopped part-way keeps the folds it finished.
        write_report(summary, "lfw_verification_all_folds", arguments.reports_dir, echo=summary["complete"])
    return summary


def run_fold(arguments, test_fold=None, images=None, write=True):
    """Train on the training folds' people, choose the threshold, score the test fold: the report
    (written unless ``write`` is false) and each scorer's :class:`~siamese_tf.studies.faces.LFWFoldReport`."""
    network_method = arguments.network if arguments.method == "fused" else arguments.method
    # "contrastive+class_proxy": an ensemble, each network trained for its share of the clock.
    network_methods = network_method.split("+")
    if arguments.model and len(arguments.model) != len(network_methods):
        raise SystemExit(f"--model gives {len(arguments.model)} saved network(s); --network {network_method} has "
                         f"{len(network_methods)}: give one .keras file per network, in that order")
    files = faces.locate_lfw(arguments.data_dir)
    pairs = faces.read_lfw_pairs(files.pairs)
    people = faces.read_lfw_people(files.people)
    test_fold = test_fold or arguments.test_fold or pairs.num_folds
    train_folds = (_folds(arguments.train_folds) if arguments.train_folds
                   else [fold for fold in range(1, pairs.num_folds + 1) if fold != test_fold])
    threshold_fold = arguments.threshold_fold
    if arguments.smoke:  # two training folds and a handful of their people: a seconds-long check
        train_folds = train_folds[-2:]
        threshold_fold = train_folds[-1] if threshold_fold else None
    if test_fold in train_folds:
        raise SystemExit(f"the test fold {test_fold} cannot be a training fold ({train_folds})")
    if threshold_fold is not None and (threshold_fold not in train_folds or len(train_folds) < 2):
        raise SystemExit(f"the threshold fold {threshold_fold} must be one of at least two training folds "
                         f"({train_folds})")
    # With a threshold fold, its people are held out of training: the threshold is then chosen on
    # people the model never saw, as the test fold's are.
    fitting_folds = [fold for fold in train_folds if fold != threshold_fold]
    threshold_folds = [threshold_fold] if threshold_fold else train_folds
    recipe = _recipe(arguments)

    train_people = {name for fold in fitting_folds for name, _ in people[fold - 1]}
    test_people = pairs.people([test_fold])
    if train_people & test_people:
        raise SystemExit(f"training and test people overlap: {sorted(train_people & test_people)[:5]}")
    if arguments.smoke:
        train_people = set(sorted(train_people)[:60])
    started = time.perf_counter()
    wanted = train_people | pairs.people([test_fold, *train_folds])
    if images is None:
        images = faces.load_lfw(files.images, image_size=_loading_size(arguments, recipe), channels=recipe.channels,
                                people=wanted)
    else:  # loaded once for every fold (--all-folds): keep the people this fold uses
        names = set(images.class_names)
        images = images.select_classes([images.class_names.index(name) for name in sorted(wanted & names)])
    loading_seconds = time.perf_counter() - started
    train_set = images.select_classes([images.class_names.index(name) for name in sorted(train_people)])
    # The networks (and the baselines) see the faces at the recipe's size; a finer descriptor of the
    # fused method sees them at the size loaded (the networks' copy is resized as the loader would).
    network_images, network_train_set = images.resized(recipe.image_size), train_set.resized(recipe.image_size)

    if arguments.model:  # score a saved model (trained on these training folds) without training again
        from siamese_tf.models import load_model

        models = {method: load_model(path) for method, path in zip(network_methods, arguments.model)}
        training = {"model_loaded_from": (arguments.model[0] if len(models) == 1 else
                                          dict(zip(network_methods, arguments.model)))}
    else:
        share = dataclasses.replace(recipe, minutes=recipe.minutes and recipe.minutes / len(network_methods))
        models, trainings = {}, {}
        for method in network_methods:
            if method == "class_proxy":
                models[method], trainings[method] = faces.train_class_proxy_model(network_train_set, share, verbose=2)
            else:  # the seeds' pair recipes, same network, data and clock
                models[method], trainings[method] = faces.train_pair_model(network_train_set, method, share,
                                                                           verbose=2)
        training = (trainings[network_method] if len(network_methods) == 1 else
                    {"training_seconds": sum(part["training_seconds"] for part in trainings.values()),
                     "networks": trainings})
    scorers = {f"{method}_model": model for method, model in models.items()}
    if len(models) > 1:  # the networks without the descriptor metric, equally weighted
        scorers["network_ensemble"] = faces.FusedPairScorer(
            {method: faces.EmbeddingScorer(model) for method, model in models.items()}).fit(
                network_train_set, num_pairs=200 if arguments.smoke else 2000)
    if arguments.method == "fused":
        started = time.perf_counter()
        components = 16 if arguments.smoke else arguments.descriptor_components
        fused = faces.fuse_with_descriptor_metric(models if len(models) > 1 else models[network_method], train_set,
                                                  components, num_pairs=200 if arguments.smoke else 2000,
                                                  metric=arguments.descriptor_metric,
                                                  descriptors=arguments.descriptors, progress=True)
        # Each descriptor's metric, by its part name ("descriptor", "descriptor_2", ...).
        metrics = {name: part for name, part in fused.scorers.items() if name.startswith("descriptor")}
        training["descriptor_metric_seconds"] = time.perf_counter() - started
        training["descriptor_components"] = components
        training["descriptor_metric"] = arguments.descriptor_metric
        training["descriptors"] = {name: dataclasses.asdict(metric.descriptor) for name, metric in metrics.items()}
        training["fused_weights"] = fused.weights
        scorers = {"fused": fused, **scorers, **{f"{name}_metric": metric for name, metric in metrics.items()}}
    cross_fitted = None
    if arguments.method == "fused" and not arguments.in_sample_threshold and len(threshold_folds) >= 2:
        # Threshold folds' pairs scored by metrics fitted without each fold's people: scores like strangers'.
        started = time.perf_counter()
        loaded = set(images.class_names)
        fold_people = {fold: [name for name, _ in people[fold - 1] if name in loaded] for fold in threshold_folds}
        cross_fitted = {name: faces.cross_fitted_fold_similarities(metric, images, pairs, fold_people, progress=True)
                        for name, metric in metrics.items()}
        training["cross_fit_seconds"] = time.perf_counter() - started
    report = {
        "benchmark": "lfw_verification",
        "protocol": "LFW View 2, unrestricted, no outside data: training folds' people, threshold from the "
                    "training folds' pairs, one held-out fold of people never trained on",
        "smoke": bool(arguments.smoke),
        "test_fold": test_fold,
        "train_folds": train_folds,
        "threshold_folds": threshold_folds,
        "threshold_scores": ("the network's own, the descriptor metric's cross-fitted (each threshold fold's pairs "
                             "scored by a metric fitted without its people)" if cross_fitted is not None
                             else "each scorer's own"),
        "train_people": train_set.num_classes,
        "train_images": len(train_set),
        "method": arguments.method,
        "network": network_method,
        "recipe": {key: (list(value) if isinstance(value, tuple) else value) for key, value in vars(recipe).items()},
        "loading_seconds": loading_seconds,
        **training,
        "machine": machine_description(),
    }
    if not arguments.no_baselines:
        scorers.update(pixels=faces.PixelPairScorer(), hog=faces.HogPairScorer())
    results, fold_reports = {}, {}
    # The fused scorer and the metrics read the faces as loaded; networks and baselines at their size.
    loaded_size_scorers = {"fused", *(f"{name}_metric" for name in metrics)} if arguments.method == "fused" else set()
    for name, scorer in settings.progress_bar(scorers.items(), desc=f"scoring fold {test_fold}", unit="scorer"):
        scored_images = images if name in loaded_size_scorers else network_images
        if cross_fitted is not None and name in loaded_size_scorers:
            similarities = faces.score_lfw_folds(scorer, images, pairs, [test_fold])
            if name == "fused":
                part_scores = {part: faces.score_lfw_folds(part_scorer, images, pairs, threshold_folds)
                               for part, part_scorer in scorer.scorers.items() if part not in cross_fitted}
                part_scores.update(cross_fitted)
                similarities.update({fold: scorer.combine({part: scores[fold] for part, scores in part_scores.items()})
                                     for fold in threshold_folds})
            else:
                similarities.update(cross_fitted[name.removesuffix("_metric")])
            fold = faces.fold_report(similarities, {number: pairs.labels(number) for number in similarities},
                                     test_fold, threshold_folds)
        else:
            fold = faces.lfw_fold_report(scorer, scored_images, pairs, test_fold, threshold_folds=threshold_folds)
        results[name] = fold.to_dict(roc=False)
        fold_reports[name] = fold
    report["results"] = results
    if not arguments.no_cross_dataset:
        # ORL was never trained on: its central square, like LFW's centre crop, at the model's input size.
        orl = load_identity_folders(faces.locate_face_data(arguments.data_dir), image_size=images.image_shape[:2],
                                    channels=recipe.channels,
                                    crop=faces.central_square)
        # The same pairs for both (drawn from the labels and the seed): the fused scorer and the metrics
        # on the faces at the loaded size, the networks and baselines at theirs.
        orl_figures = faces.cross_dataset_report({name: scorer for name, scorer in scorers.items()
                                                  if name in loaded_size_scorers}, orl)
        orl_figures.update(faces.cross_dataset_report({name: scorer for name, scorer in scorers.items()
                                                       if name not in loaded_size_scorers},
                                                      orl.resized(recipe.image_size)))
        report["cross_dataset_orl"] = {"people": orl.num_classes, **{name: orl_figures[name] for name in scorers}}
    for method, model in models.items():
        model.thresholds["detection"] = float(results[f"{method}_model"]["threshold"])
    if arguments.save_model:
        from siamese_tf.models import save_model

        network_path = Path(arguments.save_model)
        if arguments.all_folds:  # one model per test fold
            network_path = network_path.with_name(f"{network_path.stem}_fold{test_fold}{network_path.suffix}")
        paths = {method: (network_path if len(models) == 1 else
                          network_path.with_name(f"{network_path.stem}_{method}{network_path.suffix}"))
                 for method in models}
        report["model_paths"] = {method: str(save_model(models[method], path)) for method, path in paths.items()}
        report["model_path"] = report["model_paths"][network_methods[0]]
        if arguments.method == "fused":  # the descriptor parts of the fused scorer, beside the network(s)
            report["descriptor_metric_paths"] = {
                name: str(metric.save(network_path.with_name(f"{network_path.stem}_{name}_metric.npz")))
                for name, metric in metrics.items()}
            report["descriptor_metric_path"] = report["descriptor_metric_paths"]["descriptor"]
    if write:
        write_report(report, "lfw_verification", arguments.reports_dir)
    return report, fold_reports


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="holds faces/lfw/ (default SIAMESE_TF_DATA_DIR)")
    parser.add_argument("--reports-dir")
    parser.add_argument("--test-fold", type=int, help="fold scored (default: the last)")
    parser.add_argument("--train-folds", help="folds whose people train and whose pairs choose the threshold, "
                                              "e.g. 1-7 (default: all the others)")
    parser.add_argument("--minutes", type=float, help="training budget (default 30)")
    parser.add_argument("--method", choices=["fused", "contrastive", "class_proxy", "pairs_l1"], default="fused",
                        help="fused (default): the network half's similarity (see --network; each face with "
                             "its mirror image) plus a learned metric on LBP and HOG descriptors, "
                             "standardised and averaged; contrastive: unit-length embeddings, distance head, "
                             "contrastive loss on pairs; class_proxy: additive-margin softmax over every person; "
                             "pairs_l1: the seeds' L1 head with binary cross-entropy")
    parser.add_argument("--network", choices=["contrastive+class_proxy", "contrastive", "class_proxy", "pairs_l1"],
                        default="contrastive+class_proxy",
                        help="the network half of --method fused: contrastive+class_proxy (default, chosen on "
                             "folds 7 and 8): both networks, each trained for half the minutes, each a quarter "
                             "of the fused score; or one network for all of them")
    parser.add_argument("--all-folds", action="store_true",
                        help="LFW's cross-validation: test every fold in turn, each with its own training on the "
                             "other folds' people and threshold from their pairs; prints the mean accuracy +- its "
                             "standard error per scorer (one training per fold: a GPU job at the default minutes)")
    parser.add_argument("--threshold-fold", type=int,
                        help="choose the threshold on this training fold's pairs alone and leave its people out "
                             "of training (people never trained on, like the test fold's)")
    parser.add_argument("--in-sample-threshold", action="store_true",
                        help="fused method: choose the threshold on the descriptor metric's own scores of the "
                             "training folds' pairs instead of cross-fitted ones (too strict for new people)")
    parser.add_argument("--descriptor-components", type=int, default=400,
                        help="PCA directions of the learned descriptor metric (fused method)")
    parser.add_argument("--descriptor-metric", choices=["joint_bayesian", "wccn"], default="joint_bayesian",
                        help="how the descriptor metric compares two faces (fused method; joint_bayesian won on "
                             "fold 8)")
    parser.add_argument("--descriptors", type=_descriptors, default=_descriptors_text(faces.LFW_FACE_DESCRIPTORS),
                        help="fused method: one learned metric per SIZE/GRID/HOG_CELL (faces resized to SIZE, "
                             "LBP on GRIDxGRID cells, HOG cells of HOG_CELL pixels), sharing the descriptor half; "
                             "LFW is loaded at the largest SIZE. Default: the 64x64 descriptor and the finer "
                             "128x128 one (chosen on folds 7 and 8 on 2026-12-05; 64/8/8 alone before)")
    parser.add_argument("--margin", type=float)
    parser.add_argument("--scale", type=float)
    parser.add_argument("--embedding-dim", type=int)
    parser.add_argument("--image-size", type=int, help="side of the square input (default 64)")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="1: gray (default), 3: RGB")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-cross-dataset", action="store_true", help="skip the ORL cross-dataset figures")
    parser.add_argument("--model", nargs="+",
                        help="score saved .keras networks instead of training (one per network of --network, in "
                             "its order, e.g. x_contrastive.keras x_class_proxy.keras; each trained on the "
                             "training folds' people only); the descriptor metric is fitted again (deterministic)")
    parser.add_argument("--save-model", help="write the trained model (.keras) here")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long check (also SIAMESE_TF_SMOKE=1)")
    arguments = parser.parse_args(argv)
    arguments.smoke = arguments.smoke or settings.smoke_mode()
    run(arguments)


if __name__ == "__main__":
    main()
