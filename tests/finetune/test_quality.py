"""The quality figure of a fine-tune, the refresh in objects, and images that do not belong."""

import numpy as np
from _qt_helpers import disk_labels, disks, threshold_unet

from napari_unet.finetune.mixing import image_stats, odd_ones_out
from napari_unet.finetune.quality import Counts, Quality
from napari_unet.finetune.regions import merge_outside, object_changes, refresh_min_size
from napari_unet.finetune.segmentation import finetune_iter
from napari_unet.progress import run


def test_the_figure_reads_as_objects_and_a_tie_keeps_the_old_model():
    q = Quality(8, False, Counts(3, 1, 2.4), Counts(7, 0, 5.6))
    assert q.words() == "on your 8 corrected objects (all were trained on): 3 → 7 right, 1 → 0 extra"
    assert q.better and Quality.from_dict(q.as_dict()) == q
    assert not Quality(8, True, Counts(5, 0, 4.0), Counts(5, 0, 4.0)).better  # a tie: keep what the user had
    assert not Quality(8, True, Counts(5, 0, 4.0), Counts(6, 2, 4.8)).better  # one more right, two made up
    assert not Quality(8, True, Counts(5, 0, 4.0), Counts(5, 1, 4.4)).better  # closer outlines, one made up
    assert Quality(8, True, Counts(5, 0, 4.0), Counts(5, 0, 4.4)).better  # as many right, closer outlines
    assert not Quality(8, True, Counts(5, 0, 4.0), Counts(5, 0, 4.1)).better  # a hair closer: noise
    assert Quality(8, True, Counts(6, 3, 4.8), Counts(6, 0, 4.8)).better  # no longer makes objects up
    assert Quality(64, True, Counts(57, 8, 45.0), Counts(57, 6, 45.3)).better  # two fewer made up
    assert not Quality(64, True, Counts(57, 8, 45.0), Counts(57, 6, 43.0)).better  # ... but outlines worse
    assert not Quality(8, False, Counts(5, 0, 4.0), Counts(5, 0, 4.4)).better  # ... on objects it trained on
    assert "each checked by a model trained without it" in Quality(4, True, Counts(1, 0), Counts(2, 0)).words()
    assert Counts(1, 2, 0.5) + Counts(3, 0, 2.25) == Counts(4, 2, 2.75)


def test_a_fine_tune_on_few_objects_counts_them_before_and_after():
    image = disks()  # six bright disks the threshold model finds
    labels = disk_labels(image)
    labels[70:80, 100:110] = 50  # the user drew a nucleus the model cannot see
    annotated = np.zeros(labels.shape, bool)
    annotated[:, 40:] = True  # the right part: 2 disks and the drawn one
    result = run(finetune_iter(threshold_unet(), [image], [labels], annotated=[annotated], max_steps=1))
    quality = Quality.from_dict(result.model.card.provenance["quality"])
    assert quality.objects == 3 and not quality.held_out
    assert (quality.before.right, quality.before.extra) == (2, 0)  # the two disks right, the drawn one missed
    assert quality.words().startswith("on your 3 corrected objects (all were trained on): 2 → ")


def test_a_refresh_adds_no_specks_and_counts_objects():
    current = np.zeros((30, 30), np.int32)
    current[2:8, 2:8] = 1  # corrected by the user
    current[12:20, 2:12] = 2  # an old prediction the new one moves
    current[24:28, 20:30] = 3  # an old prediction partly under a blocked new object
    new = np.zeros_like(current)
    new[12:20, 4:14] = 1  # object 2, moved: changed
    new[20:29, 0:8] = 2  # a new object
    new[22:25, 21:23] = 3  # a 6 px speck: under the minimum size
    new[5:10, 6:29] = 4  # overlaps the user's object: dropped
    new[23:30, 27:30] = 5  # overlaps object 3 and the protected corner: dropped, leaving a 12 px sliver of 3
    protected = np.zeros(current.shape, bool)
    protected[0:9, 0:9] = True
    protected[28:30, 28:30] = True
    loose = merge_outside(current, new, protected)
    merged = merge_outside(current, new, protected, min_size=15)
    sizes, loose_sizes = np.bincount(merged.ravel())[1:], np.bincount(loose.ravel())[1:]
    assert sizes[sizes > 0].min() >= 15  # no speck, new or cut from an old object
    assert sorted(loose_sizes[(loose_sizes > 0) & (loose_sizes < 15)]) == [6, 12]  # without the rule: both
    np.testing.assert_array_equal(merged[protected], current[protected])
    changes = object_changes(current, merged, plane=True)
    assert (changes.new, changes.removed, changes.changed, changes.planes) == (1, 1, 1, 1)
    assert changes.words() == "+1 new, −1 removed, 1 changed, in 1 plane"
    assert not object_changes(current, current).any


def test_the_minimum_size_follows_the_models_rule():
    labels = np.zeros((50, 50), np.int32)
    labels[:20, :20], labels[30:40, 30:40] = 1, 2  # 400 and 100 px: median 250
    assert refresh_min_size(labels, 10, 0.15) == 38  # 15% of the median object
    assert refresh_min_size(labels, 60, 0.15) == 60
    assert refresh_min_size(np.zeros((5, 5), int), 10, 0.15) == 10


def test_an_image_unlike_the_others_is_flagged():
    rng = np.random.default_rng(0)
    alike = [rng.normal(100, 20, (128, 128)) for _ in range(3)]
    flags = odd_ones_out([image_stats(im, im.shape) for im in [*alike, 10 * alike[0], rng.normal(100, 20, (600, 600))]])
    assert flags[:3] == ["", "", ""]
    assert "median intensity" in flags[3] and "the size of the others" in flags[4]
    assert odd_ones_out([image_stats(alike[0], (128, 128))]) == [""]  # alone: nothing to compare with


def test_a_check_with_nothing_left_to_fix_says_it_cannot_tell():
    """Held-out objects the old model already got right cannot show a gain: the user is told
    so, and where to take the new model anyway (the old one stays in use either way)."""
    from dataclasses import replace

    from napari_unet._qt.finetune.results import trained_message
    from napari_unet.finetune.both import Finetuned
    from napari_unet.model.files import model_card
    from napari_unet.training.engine import TrainResult

    saturated = Quality(17, True, Counts(16, 0, 14.2), Counts(16, 0, 14.0))  # as on a real image's left half
    assert saturated.saturated and not saturated.better
    assert not Quality(17, True, Counts(14, 0, 12.0), Counts(14, 0, 12.0)).saturated  # 3 missed: a tie is a tie
    assert not Quality(17, True, Counts(16, 2, 14.2), Counts(16, 2, 14.0)).saturated  # it made objects up
    assert not Quality(8, False, Counts(8, 0, 7.0), Counts(8, 0, 7.0)).saturated  # trained on: the strict rule
    assert not Quality(17, True, Counts(16, 0, 13.0), Counts(16, 0, 14.0)).saturated  # better: in use

    def message(quality):
        model = threshold_unet()
        card = model_card(model)
        model.card = replace(card, provenance={**card.provenance, "quality": quality.as_dict()})
        return trained_message(Finetuned(TrainResult(model, 0.0, 40, 40, 20.0, []), None, "no objects"), False)

    said = message(saturated)
    assert "16 → 16 right" in said and "cannot show a gain" in said and "'Use the new model'" in said
    assert "cannot show a gain" not in message(Quality(17, True, Counts(14, 0, 12.0), Counts(14, 0, 12.0)))
