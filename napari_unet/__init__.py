"""napari-unet: U-Net segmentation for napari, usable from scripts with no Qt.

Public API: :func:`segment`, :func:`predict`, :func:`segment_click`, :func:`finetune`,
:func:`load_model`, :func:`save_model`, :class:`UNet`.
"""

from .model import UNet, UNetConfig
from .modelfile import ModelFileError, load_model, save_model

__all__ = ["UNet", "UNetConfig", "ModelFileError", "load_model", "save_model"]
__version__ = "0.1.0"
