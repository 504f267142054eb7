import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_unet import save_model
from napari_unet.cli.main import main


@pytest.fixture
def model_file(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "tiny.safetensors")


def test_segment_folder_with_one_bad_file(tmp_path, model_file, rng, capsys):
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "a.tif", rng.integers(0, 4000, (60, 70)).astype(np.uint16))
    import imageio.v3 as iio

    iio.imwrite(src / "b.png", rng.integers(0, 255, (50, 40, 3)).astype(np.uint8))
    (src / "broken.tif").write_bytes(b"not a tiff at all")
    out = tmp_path / "out"
    code = main(["segment", str(src), "-o", str(out), "--model", str(model_file)])
    err = capsys.readouterr().err
    assert code == 1  # one file failed
    assert "broken.tif" in err and "Traceback" not in err
    assert tifffile.imread(out / "a_masks.tif").shape == (60, 70)
    assert tifffile.imread(out / "b_masks.tif").shape == (50, 40)
    assert not (out / "broken_masks.tif").exists()


def test_existing_outputs_need_overwrite(tmp_path, model_file, rng, capsys):
    tifffile.imwrite(tmp_path / "a.tif", rng.random((40, 40)).astype(np.float32))
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "*.tif"), "-o", str(out), "--model", str(model_file)]
    assert main(args) == 0
    (out / "a_masks.tif").write_bytes(b"user's file")
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "a_masks.tif").read_bytes() == b"user's file"
    assert main([*args, "--overwrite"]) == 0
    assert tifffile.imread(out / "a_masks.tif").shape == (40, 40)


def test_missing_inputs_and_bad_model_are_one_line_errors(tmp_path, capsys):
    assert main(["segment", str(tmp_path / "nothing*.tif"), "-o", str(tmp_path),
                 "--model", str(tmp_path / "no.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no.safetensors" in err


def test_zoom_option(tmp_path, model_file, rng, capsys):
    tifffile.imwrite(tmp_path / "a.tif", rng.random((40, 50)).astype(np.float32))
    args = ["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"), "--model", str(model_file)]
    assert main([*args, "--zoom", "2"]) == 0
    assert "at zoom x2" in capsys.readouterr().out
    assert tifffile.imread(tmp_path / "out" / "a_masks.tif").shape == (40, 50)
    assert main([*args, "--zoom", "9", "--overwrite"]) == 1  # out of range: said per file
    assert "zoom must be between" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # not a number: argparse's usage error
        main([*args, "--zoom", "big"])
    assert "expected 'auto' or a number" in capsys.readouterr().err


def test_tta_option_gives_the_labels_of_segment_with_tta(tmp_path, model_file, rng):
    from napari_unet.inference.segment import segment
    from napari_unet.model.files import load_model

    image = rng.random((40, 50)).astype(np.float32)
    tifffile.imwrite(tmp_path / "a.tif", image)
    assert main(["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path), "--model", str(model_file), "--tta"]) == 0
    expected = segment(image, load_model(model_file), tta=True, device="auto")
    assert np.array_equal(tifffile.imread(tmp_path / "a_masks.tif"), expected)


def test_info_prints_the_config(model_file, capsys):
    assert main(["info", str(model_file)]) == 0
    assert '"base_channels": 4' in capsys.readouterr().out


@pytest.mark.slow
def test_console_script_runs(model_file):
    done = subprocess.run([sys.executable, "-m", "napari_unet.cli", "info", str(model_file)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "napari-unet/1" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="limits the data segment with setrlimit")
def test_running_out_of_memory_on_one_file_is_one_line_and_the_batch_goes_on(tmp_path, model_file, rng):
    import resource

    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "huge.tif", np.zeros((30000, 30000), np.uint8), compression="zlib", tile=(1024, 1024))
    tifffile.imwrite(src / "small.tif", rng.integers(0, 255, (64, 64)).astype(np.uint8))

    def three_gigabytes() -> None:  # in the child: allocations past 3 GB fail with MemoryError
        resource.setrlimit(resource.RLIMIT_DATA, (3 * 2**30, 3 * 2**30))

    done = subprocess.run([sys.executable, "-m", "napari_unet.cli", "segment", str(src), "-o", str(tmp_path / "out"),
                           "--model", str(model_file)], preexec_fn=three_gigabytes, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr
    assert "huge.tif: not enough memory" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "out" / "small_masks.tif").exists()


def test_an_output_name_taken_by_a_folder_is_one_line(tmp_path, model_file, rng, capsys):
    tifffile.imwrite(tmp_path / "a.tif", rng.random((40, 40)).astype(np.float32))
    tifffile.imwrite(tmp_path / "b.tif", rng.random((40, 40)).astype(np.float32))
    out = tmp_path / "out"
    (out / "a_masks.tif").mkdir(parents=True)
    code = main(["segment", str(tmp_path / "*.tif"), "-o", str(out), "--model", str(model_file), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 1 and "a.tif: cannot write" in err and "Traceback" not in err
    assert tifffile.imread(out / "b_masks.tif").shape == (40, 40)  # the batch went on


def test_an_unknown_device_is_one_line_listing_the_devices(tmp_path, model_file, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((40, 40), np.float32))
    code = main(["segment", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"), "--model", str(model_file),
                 "--device", "gpu"])
    err = capsys.readouterr().err
    assert code == 2 and "'gpu' is not available here; choose one of" in err and "cpu" in err
    assert not (tmp_path / "out" / "a_masks.tif").exists()


def test_inputs_that_would_share_an_output_name_each_get_their_own(tmp_path, model_file, rng, capsys):
    import imageio.v3 as iio

    for folder, name in (("x", "cell.png"), ("x", "cell.tif"), ("y", "cell.png")):
        (tmp_path / folder).mkdir(exist_ok=True)
        image = rng.integers(0, 255, (40 + len(folder + name), 48)).astype(np.uint8)
        (iio.imwrite if name.endswith(".png") else tifffile.imwrite)(tmp_path / folder / name, image)
    out = tmp_path / "out"
    code = main(["segment", str(tmp_path / "x"), str(tmp_path / "y"), "-o", str(out), "--model", str(model_file)])
    lines = capsys.readouterr().out.splitlines()
    written = sorted(p.name for p in out.iterdir())
    assert code == 0 and len(written) == 3 and len(lines) == 3, (written, lines)
    assert written == ["cell_tif_masks.tif", "x_cell_png_masks.tif", "y_cell_png_masks.tif"]


def test_a_grey_and_alpha_png_is_one_image_not_a_stack_of_planes(tmp_path, model_file, capsys):
    import imageio.v3 as iio

    grey = np.zeros((48, 64), np.uint8)
    grey[10:30, 10:30] = 200
    iio.imwrite(tmp_path / "la.png", np.stack([grey, np.full_like(grey, 255)], axis=-1))  # grey + alpha
    assert main(["segment", str(tmp_path / "la.png"), "-o", str(tmp_path / "out"), "--model", str(model_file)]) == 0
    assert tifffile.imread(tmp_path / "out" / "la_masks.tif").shape == (48, 64)
    assert "grey + alpha: alpha dropped" in capsys.readouterr().out


def test_axes_and_spacing_give_3d_objects(tmp_path, capsys):
    from _qt_helpers import threshold_unet

    model = save_model(threshold_unet(), tmp_path / "threshold.safetensors")
    zz, yy, xx = np.indices((8, 40, 40))
    volume = np.full((8, 40, 40), 10, np.uint16)
    volume[(zz - 4) ** 2 * 4 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 64] = 200  # one flattened ball
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    args = ["segment", str(tmp_path / "stack.tif"), "-o", str(tmp_path / "out"), "--model", str(model), "--zoom", "1"]
    assert main([*args, "--axes", "ZYX", "--spacing", "2", "1", "1"]) == 0
    labels = tifffile.imread(tmp_path / "out" / "stack_masks.tif")
    assert labels.shape == (8, 40, 40) and labels.max() == 1  # one object through its planes
    assert main([*args, "--axes", "ZQX", "--overwrite"]) == 1
    assert "at most once" in capsys.readouterr().err


def test_a_large_images_measuring_window_is_counted_in_tiles_not_planes(tiny_model, rng):
    import io

    from tqdm import tqdm

    from napari_unet.cli.segment import _tile_bar
    from napari_unet.inference.segment import MEASURE_WINDOW, segment_iter
    from napari_unet.progress import run

    image = rng.integers(0, 4000, (3 * MEASURE_WINDOW + 64,) * 2).astype(np.uint16)  # a 2D image, no planes
    units = []
    with tqdm(unit="tile", file=io.StringIO()) as bar:
        def shown(step):
            _tile_bar(bar, step)
            units.append((step.stage, bar.unit))

        run(segment_iter(image, tiny_model, device="cpu"), shown)
    assert ("window", "tile") in units and all(unit == "tile" for _, unit in units), units
