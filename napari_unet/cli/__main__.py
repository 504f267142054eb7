"""``python -m napari_unet.cli``: the ``napari-unet`` console script."""

import sys

from napari_unet.cli.main import main

sys.exit(main())
