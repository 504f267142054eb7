"""After fine-tuning: the summary for the status line, and the new masks written into the layers."""

from __future__ import annotations

import numpy as np

from napari_unet._qt.finetune.annotations import TrainingSet
from napari_unet._qt.finetune.job import PlaneChange, Refresh, new_layer_labels, segmented_planes, write_refreshed
from napari_unet._qt.layers import displayed_plane as shown_plane
from napari_unet._qt.layers import masks_name, model_input, spatial_transform
from napari_unet.finetune.quality import Quality
from napari_unet.finetune.regions import Changes
from napari_unet.inference.instances import model_params
from napari_unet.model.files import model_card


def quality_of(model) -> Quality | None:
    """The quality figure fine-tuning left in ``model``'s card (None for a model not fine-tuned here)."""
    return Quality.from_dict(model_card(model).provenance.get("quality"))


def trained_message(result, in_use: bool) -> str:
    """What fine-tuning did (a ``Finetuned`` result): the quality figure, and which model is in use."""
    seg, click = result.model, result.click
    how = "stopped" if seg.stopped or (click is not None and click.stopped) else "done"
    quality = quality_of(seg.model)
    figure = f" {quality.words()[0].upper()}{quality.words()[1:]}." if quality is not None else ""
    if in_use:
        clicks = (f" The click tool's network learnt for {click.steps} steps." if click is not None else
                  f" The click network was left as it was ({result.click_note}).")
        return (f"Fine-tuning {how} ({seg.steps} steps in {seg.seconds:.0f} s).{figure} Segment now uses the new "
                f"model (Revert goes back).{clicks}")
    if quality is not None and quality.saturated:
        return (f"Fine-tuning {how} ({seg.steps} steps in {seg.seconds:.0f} s).{figure} The old model already got "
                "those right, so the check cannot show a gain; the old one stays in use and no mask was changed. "
                "'Use the new model' takes the new one (it learnt from all your other corrections; Revert goes back).")
    return (f"Fine-tuning {how} ({seg.steps} steps in {seg.seconds:.0f} s).{figure} The new model is not better "
            "there, so the old one stays in use and no mask was changed. 'Use the new model' takes it anyway.")


def refresh_targets(viewer, data: TrainingSet, n_channels: int, only_shown: bool = False) -> list[Refresh]:
    """What to segment again of what was learnt from, where its layers are still in the viewer:
    the images, or every plane of a stack that holds masks and the one on screen (only that
    one with ``only_shown``).
    """
    targets = []
    for image, labels in dict.fromkeys((p.image_layer, p.labels_layer) for p in data.parts):
        if image in viewer.layers and labels in viewer.layers:
            source = model_input(image, n_channels)
            planes = None
            if source.is_stack:
                shown = shown_plane(viewer, image, source.spatial_axes)
                planes = (shown,) if only_shown else segmented_planes(labels.data, shown)
            targets.append(Refresh(image, labels, planes))
    return targets


def write_masks(viewer, targets: list[Refresh], results, data: TrainingSet, edits, margin: int, *,
                new_layer: bool, n_channels: int, model) -> tuple[list[str], list[PlaneChange]]:
    """Write each target's new masks into its layer outside the user's corrections, or into a new
    layer (``new_layer``); returns a note on each for the status line, and the changed planes.
    """
    notes, changed = [], []
    params = model_params(model_card(model))
    for target, labels in zip(targets, results):
        if target.labels_layer not in viewer.layers:
            continue
        if new_layer:
            planes = "" if target.planes is None else f" ({len(target.planes)} planes)"
            notes.append(_write_new_layer(viewer, target, labels, n_channels) + planes)
            continue
        planes = write_refreshed(target, labels, data, edits, margin, params)
        if planes is None:
            notes.append(f"'{target.labels_layer.name}' left as it was: its type holds too few ids "
                         "(pick 'add a new layer')")
            continue
        changed += planes
        total = sum((p.changes for p in planes), Changes())
        count = np.unique(np.asarray(target.labels_layer.data)).size - 1
        notes.append(f"'{target.labels_layer.name}' now holds {count} objects: {total.words()} outside your "
                     "corrections")
    return notes, changed


def _write_new_layer(viewer, target: Refresh, labels, n_channels: int) -> str:
    source = model_input(target.image_layer, n_channels)
    name = f"{masks_name(target.image_layer)} (fine-tuned)"
    viewer.add_labels(new_layer_labels(target, labels), name=name,
                      **spatial_transform(target.image_layer, source.spatial_axes))
    return f"in the new layer '{name}'"
