"""`napari-unet train --task semantic` on image and label files, and `info` showing the plan."""

import numpy as np
import tifffile

from napari_unet.cli.main import main
from napari_unet.model.files import load_model
from napari_unet.synth.phantom import PhantomConfig, synth_phantom


def test_cli_trains_classes_from_painted_slices_of_tiff_volumes(tmp_path, capsys):
    p = synth_phantom(0, PhantomConfig(shape=(10, 48, 48), spacing=(6.0, 2.0, 2.0)))
    painted = np.zeros_like(p.labels)
    painted[[3, 6]] = p.labels[[3, 6]]
    tifffile.imwrite(tmp_path / "mr.tif", p.image)
    tifffile.imwrite(tmp_path / "mr_labels.tif", painted)
    out = tmp_path / "classes.safetensors"
    args = ["train", "--task", "semantic", "--images", str(tmp_path / "mr.tif"), "--labels",
            str(tmp_path / "mr_labels.tif"), "--spacing", "6", "2", "2", "--classes", "1=body,2=organ,3=fluid,4=lesion",
            "--steps", "2", "--base-channels", "4", "--device", "cpu", "-o", str(out)]
    assert main(args) == 0
    model = load_model(out)
    assert model.card.task == "semantic" and model.card.classes == ("background", "body", "organ", "fluid", "lesion")
    assert model.card.name == "classes" and "--task semantic" in model.card.provenance["command"]
    assert "2D network on planes" in capsys.readouterr().out  # the plan, printed after training
    assert main(["info", "--model", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "training plan:" in shown and "lesion" in shown and "z-score" in shown
    seg = ["segment", str(tmp_path / "mr.tif"), "-o", str(tmp_path / "out"), "--model", str(out), "--axes", "ZYX"]
    assert main(seg) == 0
    line = capsys.readouterr().out
    assert "class map:" in line and "objects" not in line  # a class map is not counted as objects


def test_cli_says_what_is_missing(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    base = ["train", "-o", str(tmp_path / "m.safetensors"), "--steps", "1"]
    assert main([*base, "--task", "semantic", "--synthetic"]) == 2
    assert "give --images and --labels" in capsys.readouterr().err
    assert main([*base, "--task", "semantic", "--images", str(tmp_path / "a.tif")]) == 2
    assert "one --labels file per --images file" in capsys.readouterr().err
    files = ["--images", str(tmp_path / "a.tif"), "--labels", str(tmp_path / "a.tif")]
    assert main([*base, "--task", "semantic", *files, "--classes", "liver"]) == 2
    assert "write label values and names as '1=liver,2=lesion'" in capsys.readouterr().err
    assert main([*base, "--task", "semantic", *files]) == 2  # an all-zero label image
    assert "no labels: paint some classes" in capsys.readouterr().err


def test_cli_takes_each_nifti_files_own_voxel_size(tmp_path, capsys):
    """Two scans of one body, the second at half the pixel size: each file's spacing is used, the
    model learns at their median, and nothing has to be said on the command line."""
    from scipy import ndimage as ndi

    from napari_unet.io.medical import write_nifti

    p = synth_phantom(0, PhantomConfig(shape=(8, 40, 40), spacing=(6.0, 2.0, 2.0)))
    painted = np.zeros_like(p.labels)
    painted[[2, 5]] = p.labels[[2, 5]]
    fine_image = ndi.zoom(p.image.astype(np.float32), (1, 2, 2), order=1)
    fine_painted = ndi.zoom(painted, (1, 2, 2), order=0)
    files = []
    for name, image, labels, spacing in [("coarse", p.image, painted, (6.0, 2.0, 2.0)),
                                         ("fine", fine_image, fine_painted, (6.0, 1.0, 1.0))]:
        write_nifti(tmp_path / f"{name}.nii.gz", np.round(image).astype(np.int16), spacing=spacing)
        write_nifti(tmp_path / f"{name}_labels.nii.gz", labels.astype(np.int16), spacing=spacing)
        files.append(name)
    out = tmp_path / "classes.safetensors"
    args = ["train", "--task", "semantic", "--images", *[str(tmp_path / f"{n}.nii.gz") for n in files],
            "--labels", *[str(tmp_path / f"{n}_labels.nii.gz") for n in files],
            "--steps", "1", "--base-channels", "4", "--device", "cpu", "-o", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    provenance = load_model(out).card.provenance
    assert [tuple(s) for s in provenance["spacings"]] == [(6.0, 2.0, 2.0), (6.0, 1.0, 1.0)]
    assert tuple(provenance["spacing"]) == (6.0, 1.5, 1.5)  # the median: where the model learnt
