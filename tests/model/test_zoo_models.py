"""Model Zoo models that napari-unet did not write: they segment through ``segment``,
``load_model`` and ``--model``, with their own processing, and are refused in words where
napari-unet would have to train them.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _qt_helpers import disk_labels, disks
from _zoo_packages import foreign_package

from napari_unet import finetune, load_model, segment
from napari_unet.cli.main import main
from napari_unet.training.metrics import match_counts

pytest.importorskip("bioimageio.core")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return {kind: foreign_package(kind, folder) for kind in ("foreground", "foreground+boundary", "mask", "raw")}


@pytest.mark.parametrize("kind", ["foreground", "foreground+boundary", "mask"])
def test_a_foreign_model_finds_the_objects_its_output_describes(packages, kind):
    model = load_model(packages[kind])
    assert not model.fine_tunable and model.card.task == "instances"
    image = disks((96, 128))
    labels = segment(image, model)
    truth = disk_labels(image)
    assert labels.shape == image.shape and labels.max() == truth.max() == 6
    assert match_counts(truth, labels, 0.8)[0] == 6  # every disk found as one object, none split


def test_a_volume_gives_3d_objects_and_a_stack_of_frames_planes(packages):
    model = load_model(packages["foreground"])
    volume = np.stack([disks((96, 128))] * 4)
    assert segment(volume, model, axes="ZYX").max() == 6  # one id per disk through its planes
    assert segment(volume, model).max() == 24  # no axes: planes one by one, as for napari-unet's models


def test_output_that_is_neither_probabilities_nor_labels_is_refused_in_words(packages):
    with pytest.raises(ValueError, match="neither probabilities .0 to 1. nor labels"):
        segment(disks((96, 128)), load_model(packages["raw"]))


def test_fine_tuning_a_foreign_model_says_it_cannot(packages):
    image = disks((96, 128))
    with pytest.raises(TypeError, match="Model Zoo model that napari-unet did not write.*cannot train it"):
        finetune(load_model(packages["foreground"]), [image], [disk_labels(image)], max_steps=1)


def test_the_cli_segments_with_a_foreign_package_and_refuses_to_fine_tune_it(packages, tmp_path, capsys):
    image = disks((96, 128))
    tifffile.imwrite(tmp_path / "a.tif", image)
    assert main(["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"),
                 "--model", str(packages["foreground"])]) == 0
    assert tifffile.imread(next((tmp_path / "out").glob("a*.tif"))).max() == 6
    assert "6 objects" in capsys.readouterr().out
    tifffile.imwrite(tmp_path / "a_labels.tif", disk_labels(image))
    code = main(["finetune", "--model", str(packages["foreground"]), "--image", str(tmp_path / "a.tif"),
                 "--labels", str(tmp_path / "a_labels.tif"), "-o", str(tmp_path / "tuned.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot fine-tune it" in err and "Traceback" not in err
    assert main(["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out2"),
                 "--model", str(tmp_path / "missing.zip")]) == 2
    assert "missing.zip: no such file" in capsys.readouterr().err
