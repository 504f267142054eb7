"""Take the screenshot of docs/clicking.md from the real app (under Xvfb when headless).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/click_screenshots.py

Writes docs/images/click-objects.png: the sample image, click mode on, a dozen nuclei
clicked once each through the click tool, the view zoomed in on them; and for a volume
(a generated confocal-like stack): docs/images/click-volume.png, one plane in the 2D view
with three nuclei clicked once each and a fourth being refined (its click markers: a
positive and a negative click), and docs/images/click-volume-3d.png, the same objects in
napari's 3D view. ``--scene split``: the real nuclei image of the benchmarks
(benchmarks/real_data.py), a first click on a nucleus that the nuclei model takes as one object
with its neighbour, then a Shift-click on the neighbour: docs/images/click-split.png, the two
views side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("NAPARI_APPLICATION_GUI_NOTIFICATION_LEVEL", "error")  # no toasts in pictures

import napari  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

from napari_unet._qt.demo import settle, wait_until  # noqa: E402
from napari_unet.clicks.segmenter import farthest_point  # noqa: E402
from napari_unet.synth.sample import nuclei_sample  # noqa: E402
from napari_unet.synth.volumes import VolumeConfig, synth_volume  # noqa: E402

IMAGES = Path(__file__).resolve().parent / "images"
REGION = (slice(300, 700), slice(420, 720))  # the part of the 1024² sample shown (portrait)
ZOOM = 2.0  # fits REGION in the canvas between the docks


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    sample = nuclei_sample()
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(1500, 950)
    viewer.add_image(sample.image, name="nuclei (synthetic)")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    widget.toggle.setChecked(True)
    tool = widget.tool
    assert wait_until(lambda: not tool.busy, 120)

    labels = sample.labels
    inside = labels[REGION]
    ids = [i for i in np.unique(inside)[1:] if (inside == i).sum() == (labels == i).sum() > 150][:12]
    boxes = ndi.find_objects(labels)
    for i in ids:
        ys, xs = boxes[i - 1]
        y, x = farthest_point(labels[ys, xs] == i)
        tool.click((ys.start + y, xs.start + x))
        assert wait_until(lambda: not tool.busy, 120)
        tool.end_object()

    y0, y1, x0, x1 = REGION[0].start, REGION[0].stop, REGION[1].start, REGION[1].stop
    viewer.camera.center = ((y0 + y1) / 2, (x0 + x1) / 2)
    viewer.camera.zoom = ZOOM
    settle()
    viewer.screenshot(str(IMAGES / "click-objects.png"), canvas_only=False)
    print("wrote click-objects.png;", widget.status.text())
    viewer.close()


def volume() -> None:
    """Clicks in a volume: 3D objects from one click each, the markers of the object being clicked."""
    stack = synth_volume(11, (40, 192, 192), VolumeConfig(z_ratio=(2.0, 2.0), coverage=(0.12, 0.15)))
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(1500, 950)
    viewer.add_image(stack.image, name="stack", scale=stack.spacing, metadata={"napari_unet_stack_axis": "Z"})
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    widget.toggle.setChecked(True)
    tool = widget.tool
    assert wait_until(lambda: not tool.busy, 120)
    labels, spacing = stack.labels, np.asarray(stack.spacing)
    middle = labels.shape[0] // 2
    plane = labels[middle]
    centres = []
    for i in sorted(np.unique(plane)[1:], key=lambda i: -(plane == i).sum()):  # the widest nuclei first
        y, x = farthest_point(plane == i)
        if 40 <= y < plane.shape[0] - 40 and 40 <= x < plane.shape[1] - 40 and len(centres) < 6:
            centres.append((middle, y, x))
    viewer.dims.set_point(0, middle * spacing[0])
    for k, voxel in enumerate(centres):
        tool.click(tuple(np.asarray(voxel) * spacing))
        assert wait_until(lambda: not tool.busy, 120)
        if k < len(centres) - 1:
            tool.end_object()
    z, y, x = centres[-1]  # the last object stays open: a negative click at its edge, both markers shown
    edge = np.nonzero(plane[y] == plane[y, x])[0].max()
    tool.click((z * spacing[0], y * spacing[1], (edge - 1) * spacing[2]), negative=True)
    assert wait_until(lambda: not tool.busy, 120)
    viewer.camera.center = tuple(np.array(plane.shape) / 2 * spacing[1:])
    viewer.camera.zoom = 3.6 / float(spacing[1])
    settle()
    viewer.screenshot(str(IMAGES / "click-volume.png"), canvas_only=False)
    print("wrote click-volume.png;", widget.status.text())
    viewer.dims.ndisplay = 3
    viewer.layers["stack"].visible = False  # its volume rendering would hide the objects inside
    viewer.camera.angles = (-20.0, 35.0, 140.0)
    viewer.camera.center = (labels.shape[0] / 2 * spacing[0], *(np.array(plane.shape) / 2 * spacing[1:]))
    viewer.camera.zoom = 5.0 / float(spacing[1])
    settle(1.0)
    viewer.screenshot(str(IMAGES / "click-volume-3d.png"), canvas_only=False)
    print("wrote click-volume-3d.png")
    viewer.close()


def split() -> None:
    """A first click whose object holds two nuclei, then a Shift-click on the other one."""
    import imageio.v3 as iio

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from real_data import real_nuclei_2d

    image, truth = real_nuclei_2d()
    clicked, neighbour = 102, 127  # touching nuclei that the shipped nuclei model takes as one
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(1500, 950)
    viewer.add_image(image, name="nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Click to segment")
    widget.toggle.setChecked(True)
    tool = widget.tool
    assert wait_until(lambda: not tool.busy, 120)
    ys, xs = np.nonzero((truth == clicked) | (truth == neighbour))
    viewer.camera.center = (float(ys.mean()), float(xs.mean()))
    viewer.camera.zoom = 9.0
    shots = []
    for point, negative in ((farthest_point(truth == clicked), False), (farthest_point(truth == neighbour), True)):
        tool.click(tuple(float(v) for v in point), negative=negative)
        assert wait_until(lambda: not tool.busy, 120)
        settle()
        shots.append(viewer.screenshot(canvas_only=True))
        print(widget.status.text())
    gap = np.full((shots[0].shape[0], 16, shots[0].shape[2]), 255, np.uint8)
    iio.imwrite(IMAGES / "click-split.png", np.concatenate([shots[0], gap, shots[1]], axis=1))
    print("wrote click-split.png")
    viewer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scene", choices=("sample", "split"), default="sample")
    if parser.parse_args().scene == "split":
        split()
    else:
        main()
        volume()
