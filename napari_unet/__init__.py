"""napari-unet: U-Net segmentation for napari, usable from scripts with no Qt.

Public API: :func:`segment`, :func:`predict`, :func:`load_model`, :func:`save_model`,
:class:`UNet`, :func:`segment_click`, :func:`finetune`, :func:`finetune_click` and
:func:`train` (a new model for classes or objects from the user's own, possibly partial, labels).
"""

import sys
import types

from napari_unet import _gl_guard  # noqa: F401  (first: before anything imports torchvision)
from napari_unet._lazy import lazy_names

# Imported on first use (PEP 562): napari imports this package for a dock, a reader or a
# sample, and PyTorch (seconds) should load where it is needed, not with every import.
_API = {
    "segment_click": "napari_unet.clicks.segmenter",
    "finetune_click": "napari_unet.finetune.clicks",
    "finetune_click_iter": "napari_unet.finetune.clicks",
    "finetune": "napari_unet.finetune.segmentation",
    "finetune_iter": "napari_unet.finetune.segmentation",
    "InstanceParams": "napari_unet.inference.instances",
    "instances_from_probabilities": "napari_unet.inference.instances",
    "predict": "napari_unet.inference.predict",
    "predict_iter": "napari_unet.inference.predict",
    "Segmentation": "napari_unet.inference.segment",
    "segment": "napari_unet.inference.segment",
    "segment_iter": "napari_unet.inference.segment",
    "ModelFileError": "napari_unet.model.files",
    "load_model": "napari_unet.model.files",
    "save_model": "napari_unet.model.files",
    "UNet": "napari_unet.model.unet",
    "UNetConfig": "napari_unet.model.unet",
    "train": "napari_unet.training.tasks",
    "train_iter": "napari_unet.training.tasks",
}


__getattr__ = lazy_names(__name__, _API, globals())


class _Package(types.ModuleType):
    """The package, whose public names win over its subpackages of the same name.

    Importing the subpackage ``napari_unet.finetune`` (any of its modules) sets the
    package's ``finetune`` attribute to it, so :func:`finetune` of the API was a module
    for whoever asked after that: ``from napari_unet import finetune`` then raised
    "'module' object is not callable". Subpackages stay reachable by import.
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


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
