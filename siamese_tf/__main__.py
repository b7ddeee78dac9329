import sys

from siamese_tf.cli import main

sys.exit(main())
