"""The case studies, one subpackage each: ``data``, ``networks``, ``recipe`` and ``evaluation``.

| study | paper | notebook |
|---|---|---|
| :mod:`~siamese_tf.studies.faces` | the seed face-verification apps (the ``make demo`` job) | 01-06 |
| :mod:`~siamese_tf.studies.omniglot` | Koch, Zemel & Salakhutdinov (2015); Lake et al. (2015) | 10 |
| :mod:`~siamese_tf.studies.captcha` | SiameseCCR (Chen et al.) | 11 |
| :mod:`~siamese_tf.studies.signatures` | DeepSign (Wang & Ko), SigNet (Dey et al. 2017) | 12 |
| :mod:`~siamese_tf.studies.mask_guided` | Alqasir, Muselet & Ducottet (VISAPP 2020) | 13 |

Imports go one way: a study uses the core (``siamese_tf.*``), the core never imports a study.
Importing this package registers every study's networks by name, so
``build_siamese_model("deepsign", ...)`` and loading a saved ``.keras`` file of any study work.
"""

from siamese_tf.studies import captcha, faces, mask_guided, omniglot, signatures

__all__ = ["captcha", "faces", "mask_guided", "omniglot", "signatures"]
