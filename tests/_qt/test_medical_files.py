"""NIfTI and DICOM through napari's own plugin system: File > Open, File > Save Selected Layer."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from _medical import ct_volume, write_ct_series, write_nifti_volume

AFFINE = np.array([[-0.8, 0, 0, 40.0], [0, 0.7, 0, -30.0], [0, 0, 2.5, 7.0], [0, 0, 0, 1]])


def _readers(path) -> list[str]:
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()  # as napari does at start-up: the installed plugins' manifests
    return [r.plugin_name for r in manager.iter_compatible_readers([str(path)])]


def test_napari_offers_the_reader_for_nifti_and_folders_only(tmp_path):
    (tmp_path / "series").mkdir()
    assert "napari-unet" in _readers(tmp_path / "brain.nii.gz")
    assert "napari-unet" in _readers(tmp_path / "BRAIN.NII")
    assert "napari-unet" in _readers(tmp_path / "series")  # a DICOM series is a folder
    assert "napari-unet" not in _readers(tmp_path / "cells.tif")  # no choice dialog for TIFFs


def test_open_a_nifti_scan(make_napari_viewer, tmp_path):
    zyx = ct_volume((5, 24, 20))
    path = write_nifti_volume(tmp_path / "abdomen.nii.gz", zyx, AFFINE)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(path, plugin="napari-unet")
    assert layer.name == "abdomen" and layer._type_string == "image"
    np.testing.assert_array_equal(layer.data, zyx)
    np.testing.assert_allclose(layer.scale, (2.5, 0.7, 0.8))  # z, y, x in mm: the volume is not squashed
    np.testing.assert_allclose(layer.metadata["affine"], AFFINE)
    assert layer.metadata["modality"] == "CT"
    low, high = layer.contrast_limits
    assert -200 < low < 100 and 500 < high < 1000  # soft tissue to bone, not -1000..3000

    # File > Save Selected Layer: labels drawn on the scan go back to NIfTI on the scan
    labels = viewer.add_labels((zyx > 300).astype(np.uint8), scale=layer.scale,
                               metadata={"affine": layer.metadata["affine"]})
    viewer.layers.selection = {labels}
    written = viewer.layers.save(str(tmp_path / "abdomen_seg.nii.gz"), selected=True, plugin="napari-unet")
    assert written == [str(tmp_path / "abdomen_seg.nii.gz")]
    saved = nib.load(tmp_path / "abdomen_seg.nii.gz")
    np.testing.assert_allclose(saved.affine, AFFINE)
    np.testing.assert_array_equal(np.asarray(saved.dataobj), (zyx > 300).T)  # voxel for voxel on the scan
    (reopened,) = viewer.open(tmp_path / "abdomen_seg.nii.gz", plugin="napari-unet")
    assert reopened._type_string == "labels"  # a saved segmentation opens as labels again, on the scan
    np.testing.assert_array_equal(reopened.data, zyx > 300)
    np.testing.assert_allclose(reopened.scale, layer.scale)


def test_open_a_dicom_series_in_hounsfield_units(make_napari_viewer, tmp_path):
    hu = ct_volume()
    write_ct_series(tmp_path / "CT_chest", hu, spacing=(2.0, 0.6, 0.6))
    viewer = make_napari_viewer()
    (layer,) = viewer.open(tmp_path / "CT_chest", plugin="napari-unet")
    assert layer.name == "CT_chest"
    np.testing.assert_array_equal(layer.data, hu)  # HU, slices in order
    np.testing.assert_allclose(layer.scale, (2.0, 0.6, 0.6))
    assert layer.metadata["modality"] == "CT"

    (tmp_path / "broken.nii.gz").write_bytes(b"not a scan")
    with pytest.raises(Exception, match="not a readable NIfTI file"):  # napari wraps it in its ReaderPluginError
        viewer.open(tmp_path / "broken.nii.gz", plugin="napari-unet")
    assert len(viewer.layers) == 1


def test_labels_without_an_affine_save_with_their_scale(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    labels = viewer.add_labels(np.eye(6, dtype=np.int32)[None].repeat(3, 0) * 7, scale=(3.0, 0.5, 0.5),
                               translate=(6.0, 1.0, 2.0))
    labels.save(str(tmp_path / "masks.nii"), plugin="napari-unet")
    saved = nib.load(tmp_path / "masks.nii")
    np.testing.assert_allclose(saved.affine @ [0, 0, 1, 1], [2.0, 1.0, 9.0, 1.0])  # x, y, z in mm
    assert np.asarray(saved.dataobj).max() == 7


@pytest.mark.slow
def test_masks_segmented_on_a_scan_save_onto_the_scan(qtbot, viewer_widget, tmp_path):
    """Open a NIfTI, Segment it, File > Save Selected Layer: the masks carry the scan's affine."""
    from _qt_helpers import disk_labels, disks, run_segment

    viewer, widget = viewer_widget
    plane = disks()
    volume = np.stack([np.full_like(plane, 10), plane, plane, np.full_like(plane, 10)])
    viewer.open(write_nifti_volume(tmp_path / "scan.nii.gz", volume, AFFINE), plugin="napari-unet")
    widget.stack_axis.setCurrentText("Z: depth (3D objects)")
    run_segment(qtbot, widget)
    masks = viewer.layers["scan masks"]
    np.testing.assert_allclose(masks.scale, (2.5, 0.7, 0.8))
    viewer.layers.selection = {masks}
    viewer.layers.save(str(tmp_path / "scan_seg.nii.gz"), selected=True, plugin="napari-unet")
    saved = nib.load(tmp_path / "scan_seg.nii.gz")
    np.testing.assert_allclose(saved.affine, AFFINE)
    np.testing.assert_array_equal(np.asarray(saved.dataobj).T[1] > 0, disk_labels(plane) > 0)


def test_open_sample_phantom_shows_tissue_names(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-unet", "phantom_mr")
    image, classes = viewer.layers
    assert image.data.ndim == 3 and image.data.dtype == np.float32
    np.testing.assert_allclose(image.scale, (3.0, 1.0, 1.0))  # thick MR slices: shown in mm, not squashed
    np.testing.assert_allclose(classes.scale, image.scale)
    organ = np.argwhere(classes.data == 2)[0]
    status = classes.get_status(classes.data_to_world(organ), world=True)
    assert "class: organ" in status["coordinates"]  # the status bar names the tissue under the mouse
    assert set(np.unique(classes.data)) == {0, 1, 2, 3, 4}
