"""The generated phantoms as the files a scanner or a converter would give: DICOM and NIfTI, read back exactly."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from _medical import write_ct_series, write_nifti_volume

from napari_unet.io import read_image_file, write_labels
from napari_unet.io.medical import spacing_affine
from napari_unet.synth.phantom import PhantomConfig, synth_phantom
from napari_unet.synth.sample import make_phantom_ct

SMALL = dict(shape=(8, 48, 48), spacing=(4.0, 1.5, 1.5))  # a few slices of a coarse abdomen: fast


def test_ct_phantom_as_dicom_series_then_labels_as_nifti(tmp_path):
    phantom = synth_phantom(3, PhantomConfig(modality="CT", **SMALL))
    write_ct_series(tmp_path / "phantom_ct", phantom.image, phantom.spacing)
    scan = read_image_file(tmp_path / "phantom_ct")
    np.testing.assert_array_equal(scan.data, phantom.image)  # Hounsfield units, slice order
    assert scan.spacing == phantom.spacing and scan.modality == "CT"
    write_labels(tmp_path / "phantom_ct_seg.nii.gz", phantom.labels, scan)
    seg = read_image_file(tmp_path / "phantom_ct_seg.nii.gz")
    np.testing.assert_array_equal(seg.data, phantom.labels)
    np.testing.assert_allclose(seg.affine, scan.affine)


def test_mr_phantom_as_nifti(tmp_path):
    phantom = synth_phantom(4, PhantomConfig(modality="MR", **SMALL))
    path = write_nifti_volume(tmp_path / "phantom_mr.nii.gz", phantom.image, spacing_affine(phantom.spacing))
    scan = read_image_file(path)
    np.testing.assert_array_equal(scan.data, phantom.image)
    assert scan.spacing == phantom.spacing and scan.modality == ""  # MR: arbitrary units, not taken for CT
    assert nib.aff2axcodes(scan.affine) == ("R", "A", "S")


def test_ct_sample_layers_are_in_hounsfield_units_with_a_soft_tissue_window():
    (image, kwargs, kind), (labels, label_kwargs, label_kind) = make_phantom_ct()
    assert (kind, label_kind) == ("image", "labels")
    assert image.dtype == np.int16 and image.min() <= -1000  # air in HU
    low, high = kwargs["contrast_limits"]
    assert -200 < low < 0 < high < 300  # the body's tissues span the grey range, air is black
    assert label_kwargs["features"]["class"][label_kwargs["features"]["index"].index(4)] == "lesion"
    np.testing.assert_allclose(np.diag(kwargs["metadata"]["affine"])[:3], kwargs["scale"][::-1])
