"""What New model holds out and how it scores it (no viewer)."""

from __future__ import annotations

import numpy as np

from napari_unet._qt.train.heldout import HeldOut, Score, dice_per_class, hold_out
from napari_unet._qt.train.job import check_classes, check_pair, painted_values


def test_a_volume_gives_up_its_middle_painted_slice():
    annotated = np.zeros((10, 64, 64), bool)
    annotated[[2, 5, 8]] = True
    train, held = hold_out(annotated)
    assert held == HeldOut(5, slice(None)) and held.describe() == "slice 5"
    assert not train[5].any() and train[[2, 8]].all()


def test_one_painted_slice_gives_up_the_bottom_quarter_of_its_rows():
    annotated = np.zeros((10, 64, 64), bool)
    annotated[4, 8:48] = True  # 40 painted rows
    train, held = hold_out(annotated)
    assert held.plane == 4 and held.rows == slice(38, 48)
    assert train[4, 8:38].all() and not train[4, 38:].any()
    image_2d = np.ones((64, 64), bool)
    train, held = hold_out(image_2d)
    assert held.plane is None and held.rows == slice(48, 64) and held.describe() == "rows 48-63"
    assert hold_out(np.ones((20, 64), bool))[1] is None  # too few rows to spare any


def test_dice_per_class_and_the_words_for_it():
    true = np.array([0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 2, 2, 2, 2])
    dice = dice_per_class(pred, true, {0: "background", 1: "body", 2: "organ", 3: "lesion"})
    assert dice == {"body": 2 / 3, "organ": 6 / 7}  # no background, no absent class
    text = Score(7, "Dice", dice, "slice 5").text()
    assert text == "held-out slice 5, step 7: Dice body 0.67, organ 0.86"
    assert Score(3, "AP@0.5", {"objects": 0.5}, "rows 48-63").text() == "held-out rows 48-63, step 3: AP@0.5 0.50"


def test_painted_values_count_background_only_on_painted_slices():
    labels = np.zeros((4, 8, 8), np.uint8)
    assert painted_values(labels) == []
    labels[1, :2] = 3
    assert painted_values(labels) == [0, 3]
    check_pair(np.zeros(labels.shape), labels)
    check_classes(painted_values(labels))  # 0 and 3: two classes
    other = np.zeros((8, 8), np.uint8)
    other[:2] = 5
    assert painted_values(labels, other) == [0, 3, 5]  # several pairs: every value painted in any


def test_a_finer_image_is_scored_at_the_pixel_size_the_model_learnt():
    """A class model planned at 2 px sees a 1 px image at zoom 0.5 (as Segment runs it), and its
    held-out score still covers every held-out voxel at the image's own size."""
    from dataclasses import replace

    from napari_unet._qt.train.heldout import score_classes
    from napari_unet.inference.intensity import normalize_intensity
    from napari_unet.inference.zoom import spacing_zoom
    from napari_unet.training.tasks import new_network, prepare, semantic_plan

    y, x = np.ogrid[:96, :96]
    labels = np.where((y - 48) ** 2 + (x - 48) ** 2 < 30**2, 2, 1).astype(np.int32)
    image = labels.astype(np.float32) * 100
    [data] = prepare(image, labels)
    plan = replace(semantic_plan([data], (2.0, 2.0), None, "cpu"), base_channels=4)
    assert plan.target_spacing == (2.0, 2.0) and spacing_zoom((1.0, 1.0), plan.target_spacing) == 0.5
    model = new_network(plan)
    _, held = hold_out(np.ones(labels.shape, bool))
    normalized = normalize_intensity(image, plan.intensity)
    for spacing in [(1.0, 1.0), (2.0, 2.0), None]:
        score = score_classes(model, normalized, labels, np.ones(labels.shape, bool), held, plan, 1, "cpu", spacing)
        assert set(score.values) == {"class 1", "class 2"} and all(0 <= v <= 1 for v in score.values.values())
