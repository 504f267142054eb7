"""NIfTI files and DICOM series in and out, with files written by nibabel and pydicom themselves."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from _medical import ct_volume, write_ct_series, write_nifti_volume

from napari_unet.io import read_dicom, read_image, read_image_file, read_nifti, write_labels, write_nifti
from napari_unet.io.medical import LPS_TO_RAS

# A scanner-like NIfTI affine: x flipped, y and z swapped by a rotation, an origin (not diagonal).
OBLIQUE = np.array([[-0.8, 0.0, 0.0, 90.0],
                    [0.0, 0.0, 2.5, -60.0],
                    [0.0, 0.7, 0.0, 12.0],
                    [0.0, 0.0, 0.0, 1.0]])


def test_nifti_reads_in_napari_order_with_spacing_and_affine(tmp_path, rng):
    zyx = rng.normal(size=(5, 7, 9)).astype(np.float32)
    path = write_nifti_volume(tmp_path / "scan.nii.gz", zyx, OBLIQUE)
    image = read_nifti(path)
    assert image.data.shape == (5, 7, 9)
    np.testing.assert_array_equal(image.data, zyx)
    # voxel (z, y, x) of the array is NIfTI's (i, j, k) = (x, y, z): same world point as nibabel says
    stored = nib.load(path)
    assert image.data[2, 3, 4] == np.asarray(stored.dataobj)[4, 3, 2]
    np.testing.assert_allclose(image.affine, stored.affine)
    assert image.spacing == (2.5, 0.7, 0.8)  # z, y, x: the lengths of k, j, i
    assert image.name == "scan" and image.modality == ""
    np.testing.assert_array_equal(read_image(path), zyx)  # the plain reader gives the same array


def test_labels_written_back_lie_on_the_image(tmp_path):
    """Saved with the source's affine, a voxel's label is at the same world point as its image voxel."""
    hu = ct_volume()
    source = read_image_file(write_nifti_volume(tmp_path / "ct.nii", hu, OBLIQUE))
    assert source.modality == "CT" and source.data.dtype == np.int16
    labels = (source.data > 300).astype(np.uint8) + (source.data > 0)
    write_labels(tmp_path / "ct_seg.nii.gz", labels, source)
    with gzip.open(tmp_path / "ct_seg.nii.gz") as f:  # really compressed, as the name says
        assert f.read(4)
    saved = nib.load(tmp_path / "ct_seg.nii.gz")
    np.testing.assert_allclose(saved.affine, OBLIQUE)
    assert saved.header.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(saved.dataobj), labels.T)  # x, y, z on disk, like the image
    np.testing.assert_array_equal(read_nifti(tmp_path / "ct_seg.nii.gz").data, labels)

    write_nifti(tmp_path / "plain.nii", labels.astype(np.int32) * 300, spacing=(3.0, 0.5, 0.25))
    plain = nib.load(tmp_path / "plain.nii")
    assert (tmp_path / "plain.nii").read_bytes()[344:348] == b"n+1\x00"  # uncompressed NIfTI-1 magic
    assert plain.header.get_data_dtype() == np.uint16
    np.testing.assert_allclose(np.diag(plain.affine), (0.25, 0.5, 3.0, 1.0))


def test_dicom_ct_series_in_hounsfield_units_and_scanner_space(tmp_path):
    hu = ct_volume()
    spacing, origin = (2.5, 0.7, 0.8), (-10.0, -20.0, 30.0)
    files = write_ct_series(tmp_path / "series", hu, spacing, origin)  # files named out of order
    image = read_dicom(tmp_path / "series")
    assert image.modality == "CT" and image.data.dtype == np.int16
    np.testing.assert_array_equal(image.data, hu)  # sorted by position, rescaled to HU
    assert image.spacing == pytest.approx(spacing)
    assert image.name == "series"
    # each slice's first pixel is where its file says it is (DICOM LPS -> NIfTI RAS)
    for z, path in enumerate(files):
        import pydicom

        position = np.asarray(pydicom.dcmread(path).ImagePositionPatient, float)
        ras = image.affine @ [0, 0, z, 1]
        np.testing.assert_allclose((LPS_TO_RAS @ ras)[:3], position)
    # one step along x is one column (0.8 mm along the row direction)
    np.testing.assert_allclose(image.affine @ [1, 0, 0, 1] - image.affine @ [0, 0, 0, 1], [-0.8, 0, 0, 0])


def test_dicom_coronal_series_keeps_its_orientation(tmp_path):
    hu = ct_volume((4, 10, 12))
    coronal = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)  # rows along L, columns towards the feet
    files = write_ct_series(tmp_path / "cor", hu, (3.0, 1.0, 1.0), (0.0, 0.0, 0.0), orientation=coronal)
    image = read_dicom(tmp_path / "cor")
    np.testing.assert_array_equal(image.data, hu)
    import pydicom

    last = np.asarray(pydicom.dcmread(files[-1]).ImagePositionPatient, float)
    np.testing.assert_allclose((LPS_TO_RAS @ image.affine @ [0, 0, 3, 1])[:3], last)
    # columns run towards the patient's left, rows towards the feet, slices (rows x columns) towards the back
    assert nib.aff2axcodes(image.affine) == ("L", "I", "P")


def test_dicom_labels_become_an_aligned_nifti(tmp_path):
    write_ct_series(tmp_path / "series", ct_volume())
    source = read_image_file(tmp_path / "series")
    write_labels(tmp_path / "series_seg.nii.gz", (source.data > 300).astype(np.uint8), source)
    np.testing.assert_allclose(nib.load(tmp_path / "series_seg.nii.gz").affine, source.affine)


def test_bad_files_say_what_is_wrong(tmp_path):
    (tmp_path / "fake.nii.gz").write_bytes(b"this is not a NIfTI file")
    with pytest.raises(ValueError, match=r"fake\.nii\.gz: not a readable NIfTI file"):
        read_image_file(tmp_path / "fake.nii.gz")
    good = write_nifti_volume(tmp_path / "cut.nii", np.zeros((4, 8, 8), np.float32), np.eye(4))
    good.write_bytes(good.read_bytes()[:500])  # truncated: the header is there, the voxels are not
    with pytest.raises(ValueError, match="not a readable NIfTI file"):
        read_image_file(good)

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("slices to come")
    with pytest.raises(ValueError, match="no DICOM image files in this folder"):
        read_dicom(tmp_path / "empty")
    with pytest.raises(ValueError, match="a folder, and no DICOM series"):
        read_image_file(tmp_path / "empty")


def test_mixed_series_say_which_and_how_to_pick_one(tmp_path):
    folder = tmp_path / "study"
    write_ct_series(folder, ct_volume(seed=1), series_number=2, description="CT abdomen")
    write_ct_series(folder, ct_volume((3, 24, 20), seed=2), series_number=5, description="CT scout")
    with pytest.raises(ValueError) as info:
        read_dicom(folder)
    message = str(info.value)
    assert "2 DICOM series" in message
    assert "series 2 'CT abdomen' (6 slices" in message and "series 5 'CT scout' (3 slices" in message
    assert "folder of its own" in message and "series=" in message
    assert read_dicom(folder, series="5").data.shape == (3, 24, 20)  # picked by SeriesNumber, as the message says
    with pytest.raises(ValueError, match="no series '7' here"):
        read_dicom(folder, series="7")


def test_missing_slices_and_uneven_spacing_are_refused(tmp_path):
    hu = ct_volume()
    files = write_ct_series(tmp_path / "gap", hu, shuffle=False)
    files[3].unlink()
    with pytest.raises(ValueError, match=r"missing slices \(1 after IM010002; the slices are 2.5 mm apart"):
        read_dicom(tmp_path / "gap")

    write_ct_series(tmp_path / "uneven", hu, positions=[0, 2.5, 5, 7.5, 11, 13.5])
    with pytest.raises(ValueError, match=r"uneven slice spacing \(steps from 2.5 to 3.5 mm"):
        read_dicom(tmp_path / "uneven")

    write_ct_series(tmp_path / "twice", hu, positions=[0, 2.5, 5, 5, 7.5, 10])
    with pytest.raises(ValueError, match="two slices at the same position"):
        read_dicom(tmp_path / "twice")


def test_4d_and_2d_nifti_keep_their_axes(tmp_path, rng):
    import nibabel as nib

    xyzt = rng.normal(size=(6, 5, 4, 3)).astype(np.float32)  # x, y, z, time as stored
    nib.save(nib.Nifti1Image(xyzt, np.diag([0.5, 0.5, 2.0, 1.0])), tmp_path / "fmri.nii.gz")
    series = read_nifti(tmp_path / "fmri.nii.gz")
    assert series.data.shape == (3, 4, 5, 6)  # time, z, y, x
    assert series.data[2, 1, 3, 5] == xyzt[5, 3, 1, 2] and series.spacing == (2.0, 0.5, 0.5)
    nib.save(nib.Nifti1Image(xyzt[:, :, 0, 0], np.eye(4)), tmp_path / "slice.nii")
    assert read_nifti(tmp_path / "slice.nii").data.shape == (1, 5, 6)  # one plane of a volume
