import threading

import numpy as np
import pytest
import tifffile
import torch

from napari_unet import load_model, save_model
from napari_unet.cli.main import main
from napari_unet.finetune.both import CLICK, SEGMENTATION, finetune_both_iter, split_budget
from napari_unet.finetune.clicks import finetune_click
from napari_unet.finetune.quality import CHECKING
from napari_unet.finetune.regions import clickable_objects, count_objects, edited_region
from napari_unet.finetune.segmentation import finetune, finetune_iter
from napari_unet.inference.zoom import training_zoom
from napari_unet.model.files import model_card
from napari_unet.progress import run
from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import synth_image
from napari_unet.training.engine import TrainProgress
from napari_unet.training.holdout import halves


@pytest.fixture(scope="module")
def pair():
    s = synth_image(1, (96, 96))
    return s.image, s.labels


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()])


def test_edited_region_covers_touched_objects_and_a_margin():
    labels = np.zeros((40, 40), np.int32)
    labels[5:15, 5:15] = 1
    labels[25:35, 25:35] = 2
    edited = np.zeros_like(labels, bool)
    edited[10, 10] = True  # one brush dab inside object 1
    region = edited_region(labels, edited, margin=2)
    assert region[5:15, 5:15].all() and region[3, 8]  # whole object + margin
    assert not region[25:35, 25:35].any()  # the untouched object is not annotated
    with pytest.raises(ValueError, match="does not match"):
        edited_region(labels, edited[:10])


def test_the_base_model_is_left_untouched(tiny_model, pair):
    before = _weights(tiny_model).clone()
    tuned = finetune(tiny_model, [pair[0]], [pair[1]], max_steps=3)
    assert torch.equal(_weights(tiny_model), before)
    assert not torch.equal(_weights(tuned), before)
    assert tuned.card.provenance["steps"] == 3
    assert tuned.card.provenance["fine_tuned_on"] == f"{count_objects([pair[1]], [None])} annotated objects"


def test_labels_outside_the_annotated_region_change_nothing(tiny_model, pair):
    image, labels = pair
    annotated = np.zeros(labels.shape, bool)
    annotated[:, :40] = True
    scrambled = labels.copy()  # wrong labels well away from the region (targets look 2 px around)
    scrambled[:, 64:] = np.random.default_rng(0).integers(0, 50, scrambled[:, 64:].shape)
    a = finetune(tiny_model, [image], [labels], annotated=[annotated], max_steps=4)
    b = finetune(tiny_model, [image], [scrambled], annotated=[annotated], max_steps=4)
    assert torch.allclose(_weights(a), _weights(b))
    c = finetune(tiny_model, [image], [scrambled], max_steps=4)  # without the region it differs
    assert not torch.allclose(_weights(a), _weights(c))


def test_stopped_run_returns_its_model(tiny_model, pair):
    stop = threading.Event()
    job = finetune_iter(tiny_model, [pair[0]], [pair[1]], max_steps=1000, stop=stop)
    steps = 0
    while True:
        try:
            record = next(job)
        except StopIteration as end:
            result = end.value
            break
        steps = record.step if isinstance(record, TrainProgress) else steps
        if steps == 3:
            stop.set()
    assert result.stopped and result.steps == 3
    assert not torch.equal(_weights(result.model), _weights(tiny_model))


def test_the_first_steps_learn_gently_however_short_the_time_budget(tiny_model, pair):
    """The warm-up counts steps: on a busy machine a time budget must not end it after one."""
    from napari_unet.finetune.segmentation import FINETUNE_DEFAULTS

    warm, peak = FINETUNE_DEFAULTS.warmup_steps, FINETUNE_DEFAULTS.lr
    assert warm >= 5
    # a fractional warm-up would end 0.1 s into this budget, a few steps in, and go on at the peak
    history = run(finetune_iter(tiny_model, [pair[0]], [pair[1]], max_seconds=2.0)).history
    assert history and all(r.lr <= peak * r.step / warm + 1e-12 for r in history)


def test_nothing_annotated_is_a_clear_error(tiny_model, pair):
    with pytest.raises(ValueError, match="hold no object: the whole of image 0 would be taught as background"):
        finetune(tiny_model, [pair[0]], [np.zeros_like(pair[1])], max_steps=1)
    background_only = np.zeros(pair[1].shape, bool)
    background_only[:10, :10] = True  # checked, and nothing there
    with pytest.raises(ValueError, match="no annotated objects"):
        finetune(tiny_model, [pair[0]], [np.zeros_like(pair[1])], annotated=[background_only], max_steps=1)


def test_labels_of_another_shape_are_refused_before_any_resampling(tiny_model):
    """Automatic zoom resamples images and labels: a mismatch must be caught before that."""
    big = synth_image(3, (96, 96), SynthConfig(size=(40.0, 45.0)))  # large nuclei: zoom < 1
    assert training_zoom([big.labels]) != 1.0
    with pytest.raises(ValueError, match=r"labels\[0\] have shape \(64, 96\) but image 0 has \(96, 96\)"):
        finetune(tiny_model, [big.image], [big.labels[:64]], max_steps=1)


@pytest.mark.parametrize("seconds", [0, -5, float("nan")])
def test_a_time_budget_must_be_positive(tiny_model, pair, seconds):
    with pytest.raises(ValueError, match="max_seconds"):
        finetune(tiny_model, [pair[0]], [pair[1]], max_seconds=seconds)


def test_label_files_as_users_save_them(tiny_model, pair):
    image, labels = pair
    run_once = {"max_steps": 1, "device": "cpu"}
    finetune(tiny_model, [image], [labels.astype(np.float32)], **run_once)  # ImageJ saves float32
    finetune(tiny_model, [image], [labels > 0], **run_once)  # a bool mask: objects by connectivity
    with pytest.raises(ValueError, match="not all whole numbers"):
        finetune(tiny_model, [image], [labels + 0.5], **run_once)
    with pytest.raises(ValueError, match="negative values"):
        finetune(tiny_model, [image], [np.where(labels > 0, labels, -1)], **run_once)
    with pytest.raises(TypeError, match="got one array"):
        finetune(tiny_model, image, [labels], **run_once)
    with pytest.raises(TypeError, match="load it first"):
        finetune("my_model.safetensors", [image], [labels], **run_once)
    with pytest.raises(ValueError, match=r"annotated\[0\] has shape \(10, 10\)"):
        finetune(tiny_model, [image], [labels], annotated=[np.ones((10, 10), bool)], **run_once)
    with pytest.raises(ValueError, match="1 image\\(s\\) and 2 label image"):
        finetune(tiny_model, [image], [labels, labels], **run_once)


def test_saved_fine_tuned_model_keeps_its_provenance(tmp_path, tiny_model, pair):
    tuned = finetune(tiny_model, [pair[0]], [pair[1]], max_steps=2)
    loaded = load_model(save_model(tuned, tmp_path / "tuned.safetensors"))
    assert loaded.card.name.endswith("(fine-tuned)")
    assert loaded.card.provenance["steps"] == 2


def test_cli_finetune_end_to_end(tmp_path, tiny_model, pair, capsys):
    base = save_model(tiny_model, tmp_path / "base.safetensors")
    tifffile.imwrite(tmp_path / "img.tif", pair[0])
    tifffile.imwrite(tmp_path / "lab.tif", pair[1])
    out = tmp_path / "tuned.safetensors"
    code = main(["finetune", "--model", str(base), "--image", str(tmp_path / "img.tif"),
                 "--labels", str(tmp_path / "lab.tif"), "--steps", "2", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert load_model(out).card.provenance["steps"] == 2
    assert main(["finetune", "--model", str(base), "--image", str(tmp_path / "img.tif"),
                 "--labels", str(tmp_path / "missing.tif"), "--steps", "2", "-o", str(out)]) == 2
    assert "missing.tif" in capsys.readouterr().err


# -- the click network learns from the same corrections ----------------------------------
@pytest.fixture
def click_model():
    from _click_models import threshold_click_unet

    return threshold_click_unet()


def _disk_labels(shape, diameter, n=4):
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for i in range(n):
        cy, cx = (i // 2 + 0.5) * shape[0] / 2, (i % 2 + 0.5) * shape[1] / 2
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= (diameter / 2) ** 2] = i + 1
    return labels


def test_fine_tuning_learns_and_keeps_the_zoom_its_objects_call_for(tmp_path, tiny_model, rng):
    from napari_unet.inference.segment import segment_iter
    from napari_unet.inference.zoom import LARGE_TO, training_zoom
    from napari_unet.progress import run

    big = _disk_labels((200, 200), 40)  # 40 px objects: automatic zoom would shrink them
    assert training_zoom([big]) == pytest.approx(LARGE_TO / 40, abs=0.01)
    assert training_zoom([_disk_labels((200, 200), 16)]) == 1.0  # in range: as they are
    half = np.zeros(big.shape, bool)
    half[:, :100] = True  # only the annotated objects count
    assert training_zoom([np.where(half, big, _disk_labels((200, 200), 16))], [half]) == training_zoom([big])

    image = (big > 0) * 100.0 + rng.normal(10, 2, big.shape)
    tuned = finetune(tiny_model, [image], [big], max_steps=2)
    zoom = tuned.card.zoom
    assert zoom == pytest.approx(LARGE_TO / 40, abs=0.01)
    assert load_model(save_model(tuned, tmp_path / "z.safetensors")).card.zoom == zoom  # in the file
    # the fine-tuned model sees every image at that zoom, in one pass; a number given still wins
    seg = run(segment_iter(image, tuned))
    assert seg.zoom == zoom and seg.labels.shape == image.shape
    assert run(segment_iter(image, tuned, zoom=1.0)).zoom == 1.0
    again = finetune(tuned, [image[:150, :150]], [big[:150, :150]], max_steps=1)
    assert again.card.zoom == zoom  # fine-tuning a fine-tuned model keeps its zoom


def test_click_network_fine_tunes_on_whole_annotated_objects(tiny_model, click_model, pair):
    image, labels = pair
    before = _weights(click_model).clone()
    tuned = finetune_click(click_model, [image], [labels], max_steps=2)
    assert torch.equal(_weights(click_model), before)  # a copy learnt
    assert not torch.equal(_weights(tuned), before)
    assert tuned.card.task == "click" and tuned.card.provenance["steps"] == 2
    assert tuned.card.provenance["fine_tuned_on"] == f"{clickable_objects([labels], [None])} annotated objects"
    cut = np.zeros(labels.shape, bool)
    cut[:, : 48] = True  # a band through the objects: only those wholly inside can be clicked
    whole = clickable_objects([labels], [cut])
    assert 0 < whole < clickable_objects([labels], [None])
    sliver = np.zeros(labels.shape, bool)
    sliver[40:42] = True  # no object fits in two rows
    with pytest.raises(ValueError, match="no object is annotated in full"):
        finetune_click(click_model, [image], [labels], annotated=[sliver], max_steps=1)
    with pytest.raises(ValueError, match="not a click network"):
        finetune_click(tiny_model, [image], [labels], max_steps=1)


def test_both_networks_share_one_budget(tiny_model, click_model, pair):
    assert split_budget(4, None, 0.25) == ({"max_steps": 3, "max_seconds": None}, {"max_steps": 1, "max_seconds": None})
    assert split_budget(None, 60.0, 0.25) == ({"max_steps": None, "max_seconds": 45.0},
                                              {"max_steps": None, "max_seconds": 15.0})
    networks = []
    result = run(finetune_both_iter(tiny_model, click_model, [pair[0]], [pair[1]], max_steps=4),
                 lambda step: isinstance(step.record, TrainProgress) and networks.append(step.network))
    assert networks == [SEGMENTATION] * 3 + [CLICK]
    assert result.model.steps == 3 and result.click.steps == 1 and not result.click_note


def test_a_stop_in_the_segmentation_turn_leaves_the_click_network(tiny_model, click_model, pair):
    stop = threading.Event()
    job = finetune_both_iter(tiny_model, click_model, [pair[0]], [pair[1]], max_steps=100, stop=stop)
    result = run(job, lambda step: isinstance(step.record, TrainProgress) and step.record.step == 2 and stop.set())
    assert result.model.stopped and result.model.steps == 2
    assert result.click is None and "stopped" in result.click_note


def test_without_whole_objects_the_segmentation_model_gets_the_whole_budget(tiny_model, click_model, pair):
    sliver = np.zeros(pair[1].shape, bool)
    sliver[40:42] = True
    result = run(finetune_both_iter(tiny_model, click_model, [pair[0]], [pair[1]], annotated=[sliver], max_steps=4))
    assert result.click is None and "annotated in full" in result.click_note
    assert result.model.steps == 4


def test_cli_finetunes_the_click_network_too(tmp_path, tiny_model, click_model, pair, capsys):
    base = save_model(tiny_model, tmp_path / "base.safetensors")
    click_base = save_model(click_model, tmp_path / "click.safetensors")
    tifffile.imwrite(tmp_path / "img.tif", pair[0])
    tifffile.imwrite(tmp_path / "lab.tif", pair[1])
    out, click_out = tmp_path / "tuned.safetensors", tmp_path / "tuned_click.safetensors"
    code = main(["finetune", "--model", str(base), "--click-model", str(click_base), "--image",
                 str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"), "--steps", "4",
                 "-o", str(out), "--click-output", str(click_out)])
    assert code == 0, capsys.readouterr().err
    assert load_model(out).card.provenance["steps"] == 3
    assert load_model(click_out).card.provenance["steps"] == 1


# -- held-out squares ---------------------------------------------------------------------
def grid(rows: int, cols: int = 3, radius: int = 6):
    """Bright disks on a grid (never touching): image and instance labels."""
    step = 3 * radius
    shape = (rows * step + 4, cols * step + 4)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for i in range(rows * cols):
        cy, cx = radius + 3 + (i // cols) * step, radius + 3 + (i % cols) * step
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i + 1
    image = np.random.default_rng(0).normal(10, 2, shape) + 100 * (labels > 0)
    return image.astype(np.float32), labels


def _held_ids(held) -> set:
    return set().union(*(np.unique(v.labels[v.annotated]) for v in held.val)) - {0}


def test_each_corrected_object_is_held_out_by_one_half_spread_over_the_annotation():
    from scipy import ndimage as ndi

    from napari_unet.training.holdout import MARGIN

    image, labels = grid(rows=8)  # 24 objects in 8 rows of 3
    annotated = np.ones(labels.shape, bool)
    annotated[:, :8] = False  # the left column is cut by the annotation's edge
    split = halves([image], [labels], [annotated])
    whole = {i for i in range(1, 25) if i % 3 != 1}  # only objects annotated in full are held out
    ids = [_held_ids(held) for held in split]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == whole  # each one judged once
    for held, val_ids in zip(split, ids):
        assert held.n_objects == len(val_ids) >= 6
        rows = sorted((i - 1) // 3 for i in val_ids)
        assert rows[-1] - rows[0] >= 6  # from the top rows to the bottom ones, not one end
        assert sum(int((v.labels[v.annotated] == 0).sum()) for v in held.val) > 0  # their background too
        near = ndi.binary_dilation(np.isin(labels, list(val_ids)), iterations=MARGIN)
        assert not (held.annotated[0] & near).any()  # the loss sees neither them nor their outline
        assert set(np.unique(labels[held.annotated[0]])) >= whole - val_ids  # the other half is learnt
        assert all(v.image.shape[1:] == v.labels.shape == v.annotated.shape for v in held.val)
    assert halves([image], [labels], [None], min_objects=25) is None  # too few: train on all
    small, small_labels = grid(rows=2)
    assert halves([small], [small_labels], [None]) is None


def test_validation_scores_the_run_and_stop_keeps_the_best(tiny_model):
    from dataclasses import replace

    from napari_unet.finetune.segmentation import FINETUNE_DEFAULTS

    image, labels = grid(rows=6)
    stop = threading.Event()
    job = finetune_iter(tiny_model, [image], [labels], max_steps=100, stop=stop, validate=True,
                        config=replace(FINETUNE_DEFAULTS, val_every=2))
    scored = []

    def seen(record):
        if not isinstance(record, TrainProgress):  # the models checked on the corrections
            return
        if record.val_ap50 is not None:
            scored.append(record.step)
        if record.step == 5:
            stop.set()

    result = run(job, seen)
    assert scored == [2, 4] and result.stopped and result.steps == 5
    assert result.best_step in (2, 4)  # weights scored on the held-out squares, not the last step's
    validation = result.model.card.provenance["validation"]
    assert 3 <= validation["objects"] < 18  # stopped in the first half: its held-out squares only
    assert set(validation) == {"objects", "ap50_before", "ap50_after"}
    unvalidated = finetune(tiny_model, [image], [labels], max_steps=2)
    assert "validation" not in unvalidated.card.provenance


@pytest.mark.parametrize("validate", [True, False])
def test_a_stop_while_the_old_model_is_checked_ends_there_with_nothing_learnt(tiny_model, validate):
    """The check before training (the old model on the corrections) can take seconds: Stop ends it."""
    image, labels = grid(rows=6)
    stop = threading.Event()
    stop.set()  # pressed before the first step
    result = run(finetune_iter(tiny_model, [image], [labels], max_steps=100, stop=stop, validate=validate))
    assert result.stopped and result.steps == 0 and result.history == []
    assert torch.equal(_weights(result.model), _weights(tiny_model)) and result.model is not tiny_model
    assert "quality" not in model_card(result.model).provenance  # no figure for a model that learnt nothing


@pytest.mark.parametrize("validate", [True, False])
def test_the_checks_on_the_corrections_report_their_progress(tiny_model, validate):
    """The models segment the corrections before and after training (~9 s on a whole corrected
    1024² image): the job says how far it has got there too, and Stop ends the first check.
    """
    image, labels = grid(rows=6)
    steps = []
    run(finetune_iter(tiny_model, [image], [labels], max_steps=4, validate=validate), steps.append)
    kinds = ["step" if isinstance(s, TrainProgress) else s.stage for s in steps]
    phases = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert phases == ([CHECKING, "step", CHECKING, "step", CHECKING] if validate else [CHECKING, "step", CHECKING])
    checks = [s for s in steps if not isinstance(s, TrainProgress)]
    assert all(0 < s.done <= s.total for s in checks) and checks[-1].done == checks[-1].total

    stop = threading.Event()
    job = finetune_iter(tiny_model, [image], [labels], max_steps=4, validate=validate, stop=stop)
    result = run(job, lambda step: stop.set())  # Stop pressed at the first sign of the check
    assert result.stopped and result.steps == 0
    assert torch.equal(_weights(result.model), _weights(tiny_model))


def test_a_validated_run_judges_every_object_by_the_half_that_never_saw_it(tiny_model):
    image, labels = grid(rows=6)
    steps = []
    result = run(finetune_iter(tiny_model, [image], [labels], max_steps=6, validate=True),
                 lambda record: isinstance(record, TrainProgress) and steps.append(record.step))
    assert steps == sorted(steps) and set(steps) == {1, 2, 3, 4, 5, 6}  # the second half follows the first
    assert result.steps == 6
    provenance = result.model.card.provenance
    assert provenance["validation"]["objects"] == provenance["quality"]["objects"] == 18
    assert provenance["fine_tuned_on"] == "18 annotated objects"  # the average learnt from both halves


def test_validation_scores_only_the_held_out_pixels(tiny_model):
    from napari_unet.training.evaluation import ValImage, _mostly_inside, evaluate

    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 2:6], labels[10:18, 10:18] = 1, 2
    annotated = np.zeros_like(labels, bool)
    annotated[:, :9] = True
    np.testing.assert_array_equal(_mostly_inside(labels, annotated), np.where(labels == 1, 1, 0))
    image = np.zeros((1, 20, 20), np.float32)
    assert evaluate(tiny_model, [ValImage(image, labels, np.zeros_like(annotated), 0)]) == (1.0, 1.0)  # nothing scored


def test_each_half_holds_its_share_of_the_models_errors():
    """Where the model was wrong (what the user corrected) is shared between the halves: a
    check of squares it already got right can only tie."""
    from napari_unet.training.holdout import wrong_pixels

    image, labels = grid(rows=8)
    plain = halves([image], [labels], [None])
    wrong_ids = sorted(_held_ids(plain[0]))[:4]  # four objects of one half when errors are not looked at
    found = np.where(np.isin(labels, wrong_ids), 0, labels)  # the model missed them
    found[2:6, 2:6] = 99  # and made one up
    wrong = wrong_pixels(labels, found)
    assert set(np.unique(labels[wrong])) - {0} == set(wrong_ids) and wrong[2:6, 2:6].all()
    assert not wrong_pixels(labels, labels).any()
    for held in halves([image], [labels], [None], wrong=[wrong]):
        ids = _held_ids(held)
        assert ids & set(wrong_ids)  # some of the errors are judged in each half
        assert ids - set(wrong_ids)  # and some of what it got right
