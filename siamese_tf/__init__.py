"""siamese_tf: Siamese networks and one-shot learning with Keras 3.

Label convention everywhere: **1 = same**, 0 = different.
"""

from siamese_tf import distances, embeddings, heads, layers, losses, models, settings  # noqa: F401
from siamese_tf.heads import DistanceHead, L1SimilarityHead  # noqa: F401
from siamese_tf.layers import L1Dist  # noqa: F401
from siamese_tf.losses import ContrastiveLoss, contrastive_loss  # noqa: F401
from siamese_tf.models import SiameseModel, build_siamese_model, load_model, save_model  # noqa: F401

__version__ = "0.1.0"
SAME_LABEL = 1
DIFFERENT_LABEL = 0
