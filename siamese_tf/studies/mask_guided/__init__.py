"""Mask-guided Siamese classification (Alqasir, Muselet & Ducottet, VISAPP 2020).

An image is classified by comparing it with its domain's binary masks, one per class (for
chairlifts: the safety bar open or closed). A Siamese network embeds images and masks (masks
repeated to 3 channels, so both branches share weights) into a 2-D space; the contrastive loss
pulls an image towards the mask of its own class and pushes it away from the other mask. At test
time an image takes the class of the nearer of its domain's two masks, which also works on a
domain never seen in training: only its two masks are needed.

Pair labels follow the package convention: **1 = same** (image with the mask of its own class),
0 = different (image with the domain's other mask). Class ids: 0 = closed, 1 = open.

- :func:`image_mask_pairs`, :class:`MaskPairBatches`, :func:`validation_pairs`: the pairs.
- :func:`build_mask_guided_siamese`, :func:`train_mask_guided_siamese` (``model.fit`` with callbacks; by
  default through :class:`SharedMaskScorer`, which embeds each mask once per step), :func:`predict_with_masks`.
- :func:`build_classifier`, :func:`train_classifier`, :func:`predict_classifier`: the same network
  as a plain softmax classifier (the paper's baseline; it never sees a mask).
- :func:`per_domain_accuracy`, :func:`accuracy_table` (the paper's Table 2),
  :func:`plot_embedding_by_domain` (its Figures 4 and 5).


Synthetic chairlift domains for mask-guided classification, and a loader for real ones.

Alqasir, Muselet & Ducottet, "Mask-guided Image Classification with Siamese Networks" (VISAPP
2020) classify whether a chairlift's safety bar is open or closed, with one open and one closed
binary mask per chairlift. Their images are private, so :func:`generate_chairlift_data` draws
the same problem: ``N`` domains ("chairlifts"), each with its own carrier shape, seat count,
viewpoint (a homography), background, lighting, weather and bar colour; every image is
registered to its domain's camera (a few pixels of swing), shows people in the seats, skis and
passers-by as occluders, snow, rain, fog or glare, and Gaussian noise. The class is decided by a
thin bar: raised above the carrier (open) or lowered in front of the passengers (closed).

Class ids: ``0 = closed``, ``1 = open`` (``CLASS_NAMES``). These are *class* ids; the pair
labels built from them in :mod:`siamese_tf.studies.mask_guided.data` follow the package convention
(1 = same: the image shows the state its mask shows; 0 = different).

Class imbalance: the paper's Table 1 lists per-chairlift image counts with more closed than open
images; its exact numbers were not available here, so each domain draws an open fraction from
``OPEN_FRACTION_RANGE`` (15% to 50% open), a plausible stand-in, not the paper's figures.

Real data (:func:`load_mask_domains`) uses the layout the generator writes::

    root/<domain>/open/*.png|jpg      root/<domain>/closed/*.png|jpg
    root/<domain>/open_mask.png       root/<domain>/closed_mask.png
"""

from siamese_tf.studies.mask_guided import data, evaluation, networks, recipe
from siamese_tf.studies.mask_guided.data import *  # noqa: F403
from siamese_tf.studies.mask_guided.evaluation import *  # noqa: F403
from siamese_tf.studies.mask_guided.networks import *  # noqa: F403
from siamese_tf.studies.mask_guided.recipe import *  # noqa: F403

__all__ = data.__all__ + evaluation.__all__ + networks.__all__ + recipe.__all__
