"""What fine-tuning learns from: a snapshot of image/labels layer pairs and their annotated pixels.

Everything here runs on the main thread and copies what it reads, so edits made while
the network trains never reach the run. The core only ever sees the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_unet._qt.finetune.region_layers import region_mask
from napari_unet._qt.layers import displayed_plane, model_input
from napari_unet.finetune.regions import count_objects, edited_region
from napari_unet.inference.images import to_planes
from napari_unet.inference.zoom import training_zoom

AUTO = "edited regions, else everything"
WHOLE = "whole image or stack"
PLANE = "displayed plane"
EDITED = "only regions I edited"
REGION = "a region layer"
MODES = (AUTO, WHOLE, PLANE, EDITED, REGION)


@dataclass(frozen=True, eq=False)
class Part:
    """One 2D training image and where it came from."""

    image: np.ndarray  # (C, Y, X), a copy
    labels: np.ndarray  # (Y, X) int, a copy
    annotated: np.ndarray | None  # bool (Y, X); None = every pixel
    image_layer: object
    labels_layer: object
    plane: int | None  # index along the first spatial axis of a stack


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """The snapshot handed to :func:`napari_unet.finetune.segmentation.finetune_iter`."""

    parts: tuple[Part, ...]
    modes: tuple[str, ...]  # the mode each pair was read with (AUTO resolved)

    @property
    def n_objects(self) -> int:
        return count_objects([p.labels for p in self.parts], [p.annotated for p in self.parts])

    def finetune_args(self) -> dict:
        return {
            "images": [p.image for p in self.parts],
            "labels": [p.labels for p in self.parts],
            "annotated": [p.annotated for p in self.parts],
            "channel_axis": 0,  # every part is (C, Y, X)
            # the scale of the objects: every mask of the layers, not only the corrected ones
            "zoom": training_zoom([p.labels for p in self.parts]),
        }

    def annotated_in(self, labels_layer, plane: int | None, shape: tuple[int, ...]) -> np.ndarray:
        """Bool mask of the pixels of ``labels_layer`` (one plane) that were trained on."""
        out = np.zeros(shape, bool)
        for p in self.parts:
            if p.labels_layer is labels_layer and p.plane == plane:
                out |= True if p.annotated is None else p.annotated
        return out


def snapshot(viewer, pairs, mode: str, n_channels: int, edits, *, region=None, margin: int = 8) -> TrainingSet:
    """Copy what the picked (image layer, labels layer) pairs teach; raise ValueError saying why not."""
    if not pairs:
        raise ValueError("pick an image and its corrected labels layer (segment the image first)")
    parts, modes = [], []
    for image_layer, labels_layer in pairs:
        source = model_input(image_layer, n_channels)
        labels = labels_layer.data
        spatial = tuple(np.shape(source.data)[ax] for ax in source.spatial_axes)
        if tuple(labels.shape) != spatial:
            raise ValueError(f"'{labels_layer.name}' has shape {labels.shape}, '{image_layer.name}' {spatial}")
        edited = edits.edited(labels_layer)
        used = _resolve(mode, edited, source.is_stack)
        inside = region_mask(region, image_layer, source.spatial_axes, spatial) if used == REGION else None
        for plane in _planes(viewer, image_layer, source, used, labels, edited, inside):
            image = source.plane(plane) if plane is not None else source
            lab = np.array(labels[plane] if plane is not None else labels, copy=True)
            chw = to_planes(np.asarray(image.data), n_channels, image.channel_axis)[0][0].copy()
            ann = None
            if used == EDITED:
                ann = edited_region(lab, edited[plane] if plane is not None else edited, margin)
            elif used == REGION:
                ann = inside[plane] if plane is not None else inside
            parts.append(Part(chw, lab, ann, image_layer, labels_layer, plane))
        modes.append(used)
    data = TrainingSet(tuple(parts), tuple(modes))
    if not parts or data.n_objects == 0:
        raise ValueError(_nothing_to_learn(mode))
    return data


def _resolve(mode: str, edited, is_stack: bool) -> str:
    if mode == AUTO:
        return EDITED if edited is not None else (PLANE if is_stack else WHOLE)
    if mode == PLANE and not is_stack:
        return WHOLE
    return mode


def _planes(viewer, image_layer, source, mode: str, labels, edited, inside) -> list[int | None]:
    """The planes of a stack that hold annotations ([None] for a 2D image)."""
    if mode == EDITED and edited is None:
        return []
    if not source.is_stack:
        return [None]
    if mode == PLANE:
        return [displayed_plane(viewer, image_layer, source.spatial_axes)]
    having = {WHOLE: labels, EDITED: edited, REGION: inside}[mode]
    return [int(z) for z in range(len(having)) if np.any(having[z])]


def _nothing_to_learn(mode: str) -> str:
    if mode == EDITED:
        return ("no edits recorded on the picked labels layers: correct some masks with the brush "
                "(after napari-unet was opened) or learn from the whole image")
    if mode == REGION:
        return "the region layer covers no labelled objects: draw it over objects you corrected"
    return "the picked labels hold no objects: segment the image and correct the masks first"
