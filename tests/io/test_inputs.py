"""Which inputs a folder or glob gives, and what each one's output is called, with medical files among them."""

from __future__ import annotations

import numpy as np
import tifffile
from _medical import ct_volume, write_ct_series, write_nifti_volume

from napari_unet.io import expand_inputs, output_paths


def test_a_folder_of_scans_gives_nifti_files_and_dicom_series(tmp_path):
    scans = tmp_path / "scans"
    write_nifti_volume(scans / "brain.nii.gz", np.zeros((3, 4, 5), np.float32), np.eye(4))
    write_nifti_volume(scans / "knee.nii", np.zeros((3, 4, 5), np.float32), np.eye(4))
    write_ct_series(scans / "patient7", ct_volume((3, 8, 8)))
    tifffile.imwrite(scans / "cells.tif", np.zeros((8, 8), np.uint16))
    (scans / "notes.txt").write_text("not an image")
    files, missing = expand_inputs([str(scans)])
    assert not missing
    assert sorted(p.name for p in files) == ["brain.nii.gz", "cells.tif", "knee.nii", "patient7"]
    out = {p.name: q.name for p, q in output_paths(files, tmp_path / "out").items()}
    assert out == {"brain.nii.gz": "brain_seg.nii.gz", "knee.nii": "knee_seg.nii.gz",
                   "patient7": "patient7_seg.nii.gz", "cells.tif": "cells_masks.tif"}

    # a series folder named directly is one input, not its slices
    assert expand_inputs([str(scans / "patient7")]) == ([scans / "patient7"], [])
    assert expand_inputs([str(scans / "*.nii*")])[0] == [scans / "brain.nii.gz", scans / "knee.nii"]


def test_scans_of_one_name_get_outputs_of_their_own(tmp_path):
    a = write_nifti_volume(tmp_path / "a" / "ct.nii.gz", np.zeros((2, 3, 4), np.float32), np.eye(4))
    b = write_nifti_volume(tmp_path / "ct.nii", np.zeros((2, 3, 4), np.float32), np.eye(4))
    write_ct_series(tmp_path / "b" / "ct", ct_volume((2, 8, 8)))
    tif = tmp_path / "ct.tif"
    tifffile.imwrite(tif, np.zeros((4, 4), np.uint8))
    names = {p: q.name for p, q in output_paths([a, b, tmp_path / "b" / "ct", tif], tmp_path / "out").items()}
    assert names[tif] == "ct_masks.tif"  # its own suffix: no clash with the scans
    assert names[a] == "ct_nii_gz_seg.nii.gz" and names[b] == "ct_nii_seg.nii.gz"
    assert names[tmp_path / "b" / "ct"] == "ct_dicom_seg.nii.gz"
    assert len(set(names.values())) == 4
