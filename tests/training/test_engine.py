import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_unet.model.files import load_model
from napari_unet.model.unet import UNet
from napari_unet.training.engine import TrainConfig, learning_rate, train, train_iter
from napari_unet.training.sources import ArraySource, SynthSource


def tiny(seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(1, 3, base_channels=4, depth=2)


@pytest.fixture(scope="module")
def pool() -> SynthSource:
    return SynthSource(shape=(80, 80), pool=6, seed=1)


FAST = TrainConfig(steps=6, batch_size=2, patch_size=48, val_every=0, lr=5e-3, threads=1)


def blobs(shape=(40, 40), seed=0):
    """A small image of bright squares with their labels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for i in range(1, 6):
        y, x = rng.integers(0, shape[0] - 8), rng.integers(0, shape[1] - 8)
        labels[y : y + 7, x : x + 7] = i
    image = (labels > 0) * 200.0 + rng.normal(20, 5, shape)
    return image.astype(np.float32), labels


def test_loss_falls_on_synthetic_data(pool):
    cfg = TrainConfig(steps=40, batch_size=4, patch_size=48, val_every=0, lr=1e-2, threads=1)
    result = train(UNet(1, 3, base_channels=8, depth=2), pool, cfg)
    losses = [r.loss for r in result.history]
    assert len(losses) == 40 and result.steps == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])


def test_schedule_warms_up_then_decays():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-5, warmup=0.1)
    assert learning_rate(cfg, 0.0) < learning_rate(cfg, 0.05) < learning_rate(cfg, 0.1) == pytest.approx(1e-3)
    assert learning_rate(cfg, 0.5) < 1e-3 and learning_rate(cfg, 1.0) == pytest.approx(1e-5)


def test_stop_event_returns_the_best_checkpointed_model(pool, tmp_path):
    stop = threading.Event()
    ckpt = tmp_path / "m.safetensors"
    cfg = TrainConfig(steps=100, batch_size=2, patch_size=48, val_every=2, threads=1, checkpoint=str(ckpt))
    job = train_iter(tiny(), pool, cfg, stop=stop)
    steps = []
    while True:
        try:
            rec = next(job)
        except StopIteration as done:
            result = done.value
            break
        steps.append(rec.step)
        if rec.step == 5:
            stop.set()  # e.g. from the GUI thread; honoured before the next step
    assert result.stopped and result.steps == 5 and max(steps) == 5
    assert result.best_step in (2, 4)
    saved = load_model(ckpt).state_dict()
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_time_budget_is_honoured(pool):
    cfg = TrainConfig(steps=10**6, max_seconds=1.5, batch_size=2, patch_size=48, val_every=0, threads=1)
    result = train(tiny(), pool, cfg)
    assert 1 <= result.steps < 10**6
    assert result.seconds < 1.5 + 2.0  # the step under way when time ran out finishes


def test_time_suspended_between_steps_does_not_count(pool):
    import time

    cfg = TrainConfig(steps=10**6, max_seconds=1.0, batch_size=2, patch_size=48, val_every=0, threads=1)
    job = train_iter(tiny(), pool, cfg)
    first = next(job)
    time.sleep(1.5)  # a paused worker: longer than the whole budget
    second = next(job)  # training goes on instead of ending at once
    assert second.step == first.step + 1 and second.seconds < 1.0


def test_resume_continues_the_run_exactly(pool, tmp_path):
    full = train(tiny(), pool, FAST)
    ckpt = tmp_path / "run.safetensors"
    stop = threading.Event()
    job = train_iter(tiny(), pool, replace(FAST, checkpoint=str(ckpt)), stop=stop)
    for rec in job:
        if rec.step == 4:
            stop.set()
    resumed = train(tiny(), pool, replace(FAST, resume=str(ckpt)))  # fresh weights, replaced by the state
    assert [r.step for r in resumed.history] == [5, 6] and resumed.steps == 6
    assert [r.loss for r in resumed.history] == pytest.approx([r.loss for r in full.history[4:]], rel=1e-4)


def test_small_partially_annotated_arrays_train(tmp_path):
    image, labels = blobs((30, 34))  # smaller than the patch: padded as unannotated
    annotated = np.zeros(labels.shape, bool)
    annotated[:, :17] = True
    source = ArraySource([image, image[:20]], [labels, labels[:20]], [annotated, None])
    result = train(tiny(), source, FAST)
    assert result.steps == 6 and np.isfinite([r.loss for r in result.history]).all()


def test_array_source_checks_its_inputs():
    image, labels = blobs()
    with pytest.raises(ValueError, match="labels"):
        ArraySource([image], [labels[:10]])
    with pytest.raises(ValueError, match="annotate"):
        ArraySource([image], [labels], [np.zeros(labels.shape, bool)])


def test_folder_pairs_both_layouts_and_ignore_value(tmp_path):
    import tifffile

    from napari_unet.training.sources import find_pairs, load_folder

    image, labels = blobs()
    tifffile.imwrite(tmp_path / "a.tif", image)
    tifffile.imwrite(tmp_path / "a_masks.tif", labels)
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "b.tif", image)
    marked = labels.copy()
    marked[:5] = 65535
    tifffile.imwrite(tmp_path / "masks" / "b.tif", marked.astype(np.uint16))
    tifffile.imwrite(tmp_path / "unpaired.tif", image)
    assert [p[0].name for p in find_pairs(tmp_path)] == ["a.tif", "b.tif"]
    source = load_folder(tmp_path, ignore_value=65535)
    b = source.samples[1]
    assert not b.annotated[:5].any() and b.annotated[5:].all() and b.labels.max() < 65535
    with pytest.raises(FileNotFoundError, match="_masks"):
        find_pairs(tmp_path / "masks")


def test_validation_scores_pick_the_best_weights(pool):
    from napari_unet.synth.images import synth_dataset

    val = [(s.image, s.labels) for s in synth_dataset(2, 99, (64, 64))]
    cfg = replace(FAST, steps=4, val_every=2)
    result = train(tiny(), pool, cfg, val=val)
    scored = [r for r in result.history if r.val_ap50 is not None]
    assert [r.step for r in scored] == [2, 4]
    assert all(0.0 <= r.val_ap50 <= 1.0 and 0.0 <= r.val_ap75 <= r.val_ap50 + 1e-9 for r in scored)
    best = max(scored, key=lambda r: (r.val_ap50 + r.val_ap75) / 2)
    assert result.best_metric == pytest.approx((best.val_ap50 + best.val_ap75) / 2)
    assert result.model.training is False
