"""napari-unet: U-Net segmentation for napari, usable from scripts with no Qt.

Public API: :func:`segment`, :func:`predict`, :func:`load_model`, :func:`save_model`,
:class:`UNet`, :func:`segment_click`, :func:`finetune`, :func:`finetune_click` and
:func:`train` (a new model for classes or objects from the user's own, possibly partial, labels).
"""

from napari_unet import _gl_guard  # noqa: F401  (first: before anything imports torchvision)
from napari_unet.clicks.segmenter import segment_click
from napari_unet.finetune.clicks import finetune_click, finetune_click_iter
from napari_unet.finetune.segmentation import finetune, finetune_iter
from napari_unet.inference.instances import InstanceParams, instances_from_probabilities
from napari_unet.inference.predict import predict, predict_iter
from napari_unet.inference.segment import Segmentation, segment, segment_iter
from napari_unet.model.files import ModelFileError, load_model, save_model
from napari_unet.model.unet import UNet, UNetConfig
from napari_unet.training.tasks import train, train_iter

__all__ = [
    "InstanceParams",
    "finetune",
    "finetune_iter",
    "finetune_click",
    "finetune_click_iter",
    "ModelFileError",
    "Segmentation",
    "UNet",
    "UNetConfig",
    "instances_from_probabilities",
    "load_model",
    "predict",
    "predict_iter",
    "save_model",
    "segment",
    "segment_click",
    "segment_iter",
    "train",
    "train_iter",
]
__version__ = "0.1.0"
