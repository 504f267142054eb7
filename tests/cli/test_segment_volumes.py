"""`napari-unet segment` on volumes: the three orientations' switch, and time series of volumes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _qt_helpers import threshold_unet

from napari_unet import save_model
from napari_unet.cli.main import main

AVERAGED = "XY, ZY and ZX planes averaged"


def ball(shape=(12, 40, 40), centre=(6, 20, 20), radius=7) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    volume = np.full(shape, 10, np.uint16)
    volume[(zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2] = 200
    return volume


@pytest.fixture
def model(tmp_path):
    return save_model(threshold_unet(), tmp_path / "threshold.safetensors")


@pytest.mark.parametrize("switch, spacing, averaged", [
    ("auto", "1", True),  # near cubes: on by itself
    ("off", "1", False),
    ("auto", "3", False),  # Z three times coarser: the side planes would be squashed
    ("on", "3", True),
])
def test_orientations_switch(tmp_path, model, capsys, switch, spacing, averaged):
    tifffile.imwrite(tmp_path / "ball.tif", ball())
    code = main(["segment", str(tmp_path / "ball.tif"), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--zoom", "1", "--axes", "ZYX", "--spacing", spacing, "1", "1", "--orientations", switch])
    assert code == 0
    assert (AVERAGED in capsys.readouterr().out) is averaged  # the line says what was done
    labels = tifffile.imread(tmp_path / "out" / "ball_masks.tif")
    assert labels.shape == (12, 40, 40) and labels.max() == 1  # one ball, one 3D object


def test_orientations_takes_only_auto_on_off(tmp_path, model, capsys):
    tifffile.imwrite(tmp_path / "ball.tif", ball())
    with pytest.raises(SystemExit):
        main(["segment", str(tmp_path / "ball.tif"), "-o", str(tmp_path / "out"), "--orientations", "yes"])
    assert "auto" in capsys.readouterr().err
    assert not (tmp_path / "out" / "ball_masks.tif").exists()


def test_a_time_series_of_volumes_gives_3d_objects_unique_over_time(tmp_path, model, capsys):
    series = np.stack([ball(centre=(6, 14, 14)), ball(centre=(6, 26, 26), radius=6)])
    tifffile.imwrite(tmp_path / "movie.tif", series)
    code = main(["segment", str(tmp_path / "movie.tif"), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--zoom", "1", "--axes", "TZYX", "--spacing", "2", "1", "1"])
    assert code == 0, capsys.readouterr().err
    labels = tifffile.imread(tmp_path / "out" / "movie_masks.tif")
    assert labels.shape == series.shape
    first, second = (set(np.unique(t)) - {0} for t in labels)
    assert len(first) == 1 and len(second) == 1 and not first & second  # one object each, two ids
    assert np.array_equal(labels[0] > 0, series[0] > 100)


def test_a_volume_without_a_model_named_gets_the_shipped_3d_network(tmp_path, capsys):
    # as from Python: a Z stack of one channel goes to the 3D nuclei network, which finds generated nuclei
    from napari_unet import segment
    from napari_unet.synth.volumes import synth_volume
    from napari_unet.training.metrics import average_precision

    volume = synth_volume(4321, shape=(16, 64, 64))
    tifffile.imwrite(tmp_path / "nuclei.tif", volume.image)
    code = main(["segment", str(tmp_path / "nuclei.tif"), "-o", str(tmp_path / "out"), "--axes", "ZYX",
                 "--spacing", *map(str, volume.spacing), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    labels = tifffile.imread(tmp_path / "out" / "nuclei_masks.tif")
    assert np.array_equal(labels, segment(volume.image, axes="ZYX", spacing=volume.spacing, device="cpu"))
    assert average_precision(volume.labels, labels, (0.5,))[0] > 0.5
