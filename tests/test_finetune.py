import threading

import numpy as np
import pytest
import tifffile
import torch

from napari_unet import load_model, save_model
from napari_unet.cli import main
from napari_unet.finetune import count_objects, edited_region, finetune, finetune_iter
from napari_unet.progress import run
from napari_unet.synth import synth_image


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
        steps = record.step
        if steps == 3:
            stop.set()
    assert result.stopped and result.steps == 3
    assert not torch.equal(_weights(result.model), _weights(tiny_model))


def test_nothing_annotated_is_a_clear_error(tiny_model, pair):
    with pytest.raises(ValueError, match="no annotated objects"):
        finetune(tiny_model, [pair[0]], [np.zeros_like(pair[1])], max_steps=1)


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
