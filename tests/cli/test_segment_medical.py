"""`napari-unet segment` on a NIfTI scan and a DICOM series: labels as NIfTI aligned with the scan."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from _medical import ct_volume, write_ct_series, write_nifti_volume

from napari_unet import save_model
from napari_unet.cli.main import main


@pytest.fixture
def model_file(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "tiny.safetensors")


def test_segment_nifti_and_dicom_to_seg_nifti(tmp_path, model_file, capsys):
    affine = np.array([[-0.8, 0, 0, 40.0], [0, 0.8, 0, -30.0], [0, 0, 2.5, 7.0], [0, 0, 0, 1]])
    scans = tmp_path / "scans"
    write_nifti_volume(scans / "abdomen.nii.gz", ct_volume((4, 32, 28)), affine)
    write_ct_series(scans / "chest", ct_volume((3, 24, 20)))
    out = tmp_path / "out"
    args = ["segment", str(scans), "-o", str(out), "--model", str(model_file), "--axes", "ZYX", "--zoom", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "abdomen_seg.nii.gz" in printed and "chest_seg.nii.gz" in printed
    seg = nib.load(out / "abdomen_seg.nii.gz")
    np.testing.assert_allclose(seg.affine, affine)  # on the scan, in any viewer
    assert seg.shape == (28, 32, 4)  # x, y, z as the scan stores them
    chest = nib.load(out / "chest_seg.nii.gz")
    assert chest.shape == (20, 24, 3)
    np.testing.assert_allclose(np.linalg.norm(chest.affine[:3, :3], axis=0), (0.8, 0.7, 2.5))


def test_a_mixed_series_folder_is_one_clear_line(tmp_path, model_file, capsys):
    study = tmp_path / "study"
    write_ct_series(study, ct_volume((3, 16, 16)), series_number=1)
    write_ct_series(study, ct_volume((3, 16, 16)), series_number=2)
    assert main(["segment", str(study), "-o", str(tmp_path / "out"), "--model", str(model_file)]) == 1
    err = capsys.readouterr().err
    assert "2 DICOM series in one folder" in err and "Traceback" not in err
