"""After fine-tuning: the summary for the status line, and the new masks written into the layers."""

from __future__ import annotations

from napari_unet._qt.finetune.annotations import TrainingSet
from napari_unet._qt.finetune.job import Refresh, new_layer_labels, segmented_planes, write_refreshed
from napari_unet._qt.layers import displayed_plane as shown_plane
from napari_unet._qt.layers import masks_name, model_input, spatial_transform
from napari_unet.model.files import model_card


def trained_message(result) -> str:
    """What fine-tuning did to each network (a ``Finetuned`` result), with the held-out scores if any."""
    seg, click = result.model, result.click
    how = "stopped" if seg.stopped or (click is not None and click.stopped) else "done"
    clicks = (f"the click tool's network learnt for {click.steps} steps" if click is not None else
              f"the click network was left as it was ({result.click_note})")
    return (f"Fine-tuning {how}: {seg.steps} steps in {seg.seconds:.0f} s; Segment now uses the new model, "
            f"{clicks} (Revert goes back).{_validation_note(model_card(seg.model).provenance)}")


def _validation_note(provenance: dict) -> str:
    scores = provenance.get("validation")
    if not scores or "ap50_after" not in scores:
        return ""
    before, after = scores["ap50_before"], scores["ap50_after"]
    worse = " The old model did better there: Revert goes back to it." if after < before else ""
    return (f"\nAP@0.5 on {scores['objects']} held-out objects: {before:.2f} before, {after:.2f} after "
            f"(the best weights were kept).{worse}")


def refresh_targets(viewer, data: TrainingSet, n_channels: int) -> list[Refresh]:
    """What to segment again of what was learnt from, where its layers are still in the viewer:
    the images, or every plane of a stack that holds masks (and the one on screen).
    """
    targets = []
    for image, labels in dict.fromkeys((p.image_layer, p.labels_layer) for p in data.parts):
        if image in viewer.layers and labels in viewer.layers:
            source = model_input(image, n_channels)
            planes = (segmented_planes(labels.data, shown_plane(viewer, image, source.spatial_axes))
                      if source.is_stack else None)
            targets.append(Refresh(image, labels, planes))
    return targets


def write_masks(viewer, targets: list[Refresh], results, data: TrainingSet, edits, margin: int, *,
                new_layer: bool, n_channels: int) -> list[str]:
    """Write each target's new masks into its layer outside the user's corrections, or into a new
    layer (``new_layer``); returns a note on each for the status line.
    """
    notes = []
    for target, labels in zip(targets, results):
        if target.labels_layer not in viewer.layers:
            continue
        planes = "" if target.planes is None else f" ({len(target.planes)} planes)"
        if new_layer:
            notes.append(_write_new_layer(viewer, target, labels, n_channels) + planes)
        else:
            changed = write_refreshed(target, labels, data, edits, margin)
            notes.append(f"'{target.labels_layer.name}'{planes}: {changed} pixels outside your corrections "
                         "(Ctrl+Z undoes)" if changed is not None else f"'{target.labels_layer.name}' "
                         "left as it was: its type holds too few ids (pick 'add a new layer')")
    return notes


def _write_new_layer(viewer, target: Refresh, labels, n_channels: int) -> str:
    source = model_input(target.image_layer, n_channels)
    name = f"{masks_name(target.image_layer)} (fine-tuned)"
    viewer.add_labels(new_layer_labels(target, labels), name=name,
                      **spatial_transform(target.image_layer, source.spatial_axes))
    return f"in the new layer '{name}'"
