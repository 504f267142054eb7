"""The CLI's line for a file says when the shipped nuclei model is out of its depth."""

import tifffile

from napari_unet.cli.main import main
from napari_unet.synth.phantom import PhantomConfig, synth_phantom


def test_an_mri_slice_gets_a_warning_on_its_line(tmp_path, capsys):
    phantom = synth_phantom(2, PhantomConfig(modality="MR"))
    tifffile.imwrite(tmp_path / "mri.tif", phantom.image[phantom.image.shape[0] // 2])
    assert main(["segment", str(tmp_path / "mri.tif"), "-o", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out
    assert "mri_masks.tif" in line and "WARNING: This model was trained for 2D fluorescence nuclei" in line
