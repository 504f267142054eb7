"""Take the screenshots of docs/medical.md from the real app (under Xvfb when headless).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/medical_screenshots.py

Writes the generated abdomen MR phantom as a NIfTI scan and its class map as a
``*_seg.nii.gz`` (napari-unet's own writer, with the scan's affine), opens both with
File > Open the way napari does (napari-unet's reader), and saves
docs/images/medical-slice.png (one slice, in mm) and docs/images/medical-3d.png.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from napari.utils.colormaps import DirectLabelColormap  # noqa: E402
from segment_screenshots import SIZE  # noqa: E402

from napari_unet._qt.demo import settle  # noqa: E402
from napari_unet.io import read_image_file, write_labels  # noqa: E402
from napari_unet.io.medical import spacing_affine  # noqa: E402
from napari_unet.synth.phantom import PhantomConfig, synth_phantom  # noqa: E402
from napari_unet.synth.sample import PHANTOM_SEED  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"


def write_phantom(folder: Path) -> tuple[Path, Path]:
    """The MR phantom as a scanner-like NIfTI (origin off the corner) and its class map beside it."""
    phantom = synth_phantom(PHANTOM_SEED, PhantomConfig(modality="MR"))
    origin = -(np.array(phantom.image.shape) - 1) / 2 * phantom.spacing  # the body's centre at 0 mm
    scan = folder / "abdomen_mr.nii.gz"
    nib.save(nib.Nifti1Image(phantom.image.T, spacing_affine(phantom.spacing, tuple(origin))), scan)
    seg = folder / "abdomen_mr_seg.nii.gz"
    write_labels(seg, phantom.labels, read_image_file(scan))
    return scan, seg


def main() -> None:
    scan, seg = write_phantom(Path(tempfile.mkdtemp()))
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(*SIZE)
    (image,) = viewer.open(scan, plugin="napari-unet")
    (labels,) = viewer.open(seg, plugin="napari-unet")
    labels.opacity = 0.35
    print(f"{image.name}: shape {image.data.shape}, scale {tuple(image.scale)} mm; {labels.name}: labels")
    lesion_z = int(np.argmax((labels.data == 4).sum(axis=(1, 2))))  # the slice through the biggest lesion
    viewer.dims.set_point(0, image.data_to_world((lesion_z, 0, 0))[0])
    viewer.reset_view()
    viewer.layers.selection = {labels}
    centre = np.argwhere(labels.data[lesion_z] == 4).mean(axis=0)
    viewer.cursor.position = tuple(labels.data_to_world((lesion_z, *centre)))  # the status bar names the class
    settle(1.0)
    viewer.screenshot(str(IMAGES / "medical-slice.png"), canvas_only=False)
    print("wrote medical-slice.png")

    viewer.dims.ndisplay = 3
    image.rendering = "attenuated_mip"
    image.attenuation = 0.3
    # the body (1) is see-through in 3D, so the organ, fluid and lesions inside it show
    colours = {value: labels.get_color(value) for value in (2, 3, 4)}
    labels.colormap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: (0, 0, 0, 0), **colours})
    labels.opacity = 0.8
    viewer.reset_view()
    viewer.camera.angles = (-20, 30, 120)
    settle(1.5)
    viewer.screenshot(str(IMAGES / "medical-3d.png"), canvas_only=False)
    print("wrote medical-3d.png")
    viewer.close()


if __name__ == "__main__":
    main()
