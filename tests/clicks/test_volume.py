"""Clicks through the planes of a volume, without a viewer: tiny hand-set networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _click_models import threshold_click_unet

from napari_unet.clicks.types import Click
from napari_unet.clicks.volume import VolumeSegmenter, bright_voxel, foreground_threshold
from napari_unet.model.onnx_runtime import OnnxUNet, _cache_folder, _fingerprint, cached_network, export_in_background


def ellipsoid(shape=(20, 64, 64), centre=(10, 32, 32), radii=(6, 12, 12)):
    grid = np.mgrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1


def volume_of(body, blur_planes=()):
    image = np.where(body, 110.0, 10.0).astype(np.float32)
    for z in blur_planes:  # a faint copy of the nucleus: the PSF's blur beyond it
        image[z] = np.where(body[10], 25.0, 10.0)
    return image


def full(masks, shape):
    out = np.zeros(shape, bool)
    for z, mask in masks.items():
        out[z] = mask.full()
    return out


def test_one_click_gives_every_plane_of_the_object():
    body = ellipsoid()
    segmenter = VolumeSegmenter(volume_of(body), threshold_click_unet())
    masks = segmenter.predict(10, [Click(32, 32)], {})
    got = full(masks, body.shape)
    assert np.array_equal(got[5:16], body[5:16])  # planes 4 and 16 hold one pixel: under min_area
    assert not got[:4].any() and not got[17:].any()


def test_carrying_stops_where_the_object_no_longer_stands_out():
    body = ellipsoid()
    image = volume_of(body, blur_planes=(3, 4, 16, 17))  # faint beyond its ends: not the nucleus
    masks = VolumeSegmenter(image, threshold_click_unet()).predict(10, [Click(32, 32)], {})
    planes = sorted(z for z, m in masks.items() if m.mask.any())
    assert planes == list(range(5, 16))


def test_a_refining_click_changes_only_the_planes_it_reaches():
    body = ellipsoid()
    segmenter = VolumeSegmenter(volume_of(body), threshold_click_unet())
    first = segmenter.predict(10, [Click(32, 32)], {})
    changed = segmenter.predict(7, [Click(32, 32), Click(32, 40, positive=False)], first, clicked={10})
    assert sorted(changed) == [7]  # its neighbours' answers match what they hold
    assert not changed[7].full()[32, 40] and changed[7].full()[32, 32]


def test_the_plane_budget_bounds_the_work():
    from napari_unet.clicks.volume import Propagation

    body = ellipsoid()
    segmenter = VolumeSegmenter(volume_of(body), threshold_click_unet(), propagation=Propagation(max_planes=2))
    assert sorted(segmenter.predict(10, [Click(32, 32)], {})) == [8, 9, 10, 11, 12]


def test_a_ray_takes_the_middle_of_the_first_bright_run():
    body = ellipsoid()
    image = volume_of(body)
    threshold = foreground_threshold(image)
    assert 10 < threshold < 110
    assert bright_voxel(image, (-0.5, 32, 32), (19.5, 32, 32), threshold) == (10, 32, 32)
    assert bright_voxel(image, (-0.5, 2, 2), (19.5, 2, 2), threshold) is None


def test_a_stack_of_planes_is_required():
    with pytest.raises(ValueError, match="need a volume"):
        VolumeSegmenter(np.zeros((32, 32), np.float32), threshold_click_unet())


def test_planes_answered_in_one_batch_match_each_answered_alone():
    # a volume's planes above and below a click share network passes (inputs of one size in one
    # batch, the network's batch norms folded): each plane's answer must be the one it gets alone
    from napari_unet.clicks.segmenter import answer_together, load_click_model
    from napari_unet.synth.volumes import synth_volume

    volume = synth_volume(3, (12, 96, 96))
    segmenter = VolumeSegmenter(volume.image, load_click_model(), device="cpu")
    centres = []
    for z in (4, 6, 8):
        ids, counts = np.unique(volume.labels[z][volume.labels[z] > 0], return_counts=True)
        ys, xs = np.nonzero(volume.labels[z] == ids[np.argmax(counts)])
        centres.append((z, Click(float(np.median(ys)), float(np.median(xs)))))
    near = segmenter.segmenter(4).predict([centres[0][1]])  # placed by a mask: a 48² input
    asks = [(centres[1][0], [centres[1][1]], near, 48), (centres[2][0], [centres[2][1]], None, None),
            (centres[0][0], [centres[0][1]], near, 48)]  # lone clicks: 64² first windows
    alone = [segmenter.segmenter(z).predict(clicks, near=placed, crop=crop) for z, clicks, placed, crop in asks]
    together = answer_together([segmenter.segmenter(z).answer(clicks, near=placed, crop=crop)
                                for z, clicks, placed, crop in asks], segmenter.model, "cpu")
    for one, both in zip(alone, together):
        a, b = one.full(), both.full()
        assert a.sum() > 20
        assert (a & b).sum() / (a | b).sum() > 0.99


def test_a_click_where_the_cursor_rested_is_answered_through_the_planes_ahead():
    # the viewer prepares a lone first click while the cursor rests: the segmentation model's
    # window and the planes its object is carried to; the click then gives what it gives unprepared
    from napari_unet import load_model
    from napari_unet.clicks.segmenter import load_click_model
    from napari_unet.inference.predict import folded
    from napari_unet.synth.volumes import synth_volume

    volume = synth_volume(5, (16, 96, 96))
    ids, counts = np.unique(volume.labels[volume.labels > 0], return_counts=True)
    body = volume.labels == ids[np.argmax(counts)]  # the largest nucleus, clicked in its widest plane
    z = int(np.argmax(body.sum(axis=(1, 2))))
    ys, xs = np.nonzero(body[z])
    point = (float(np.median(ys)), float(np.median(xs)))
    models = dict(model=load_click_model(), device="cpu", segmentation_model=load_model(), spacing=volume.spacing)

    def segmenter():
        return VolumeSegmenter(volume.image, models["model"], device="cpu",
                               segmentation_model=models["segmentation_model"], spacing=volume.spacing)

    unprepared = segmenter().predict(z, [Click(*point)], {}, clicked={z})
    assert sum(1 for m in unprepared.values() if m.mask.any()) >= 3  # the object spans planes

    given_up = segmenter()
    given_up.prepare(z, point, cancelled=lambda: True)  # a click elsewhere waits: nothing carried is kept
    assert not given_up.prepared(z, point)

    rested = segmenter()
    rested.prepare(z, point)
    assert rested.prepared(z, point)
    passes = []
    networks = (folded(rested.model), models["segmentation_model"])  # the click network runs folded
    hooks = [net.register_forward_hook(lambda *_: passes.append(1)) for net in networks]
    try:
        answered = rested.predict(z, [Click(*point)], {}, clicked={z})
        assert not passes  # no network pass left for the click
        rested.predict(z, [Click(*point), Click(point[0], point[1] + 3, positive=False)], answered, clicked={z})
        assert passes  # a refining click is worked out anew
    finally:
        for hook in hooks:
            hook.remove()
    assert sorted(answered) == sorted(unprepared)
    assert all(np.array_equal(answered[k].full(), unprepared[k].full()) for k in answered)


@pytest.mark.slow
def test_a_volumes_clicks_run_the_graph_exported_in_the_background(monkeypatch):
    monkeypatch.setenv("NAPARI_UNET_ONNX", "1")  # the test suite turns it off elsewhere
    model, body = threshold_click_unet(), ellipsoid()
    in_torch = VolumeSegmenter(volume_of(body), model).predict(10, [Click(32, 32)], {})
    assert cached_network(model) is None  # nothing exported yet: PyTorch answered

    process = export_in_background(model)
    assert process is not None
    assert export_in_background(model) is None  # one export per graph
    assert process.wait(timeout=240) == 0
    passes = []
    run = OnnxUNet.forward
    monkeypatch.setattr(OnnxUNet, "forward", lambda self, x: passes.append(x.shape) or run(self, x))
    in_graph = VolumeSegmenter(volume_of(body), model).predict(10, [Click(32, 32)], {})
    assert passes, "the clicks did not run the exported graph"
    assert sorted(in_graph) == sorted(in_torch)
    assert np.array_equal(full(in_graph, body.shape), full(in_torch, body.shape))
    assert not Path(process.args[3]).exists()  # the weights handed to the export process are gone


def test_no_graph_is_used_or_exported_when_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_UNET_ONNX", "0")
    model = threshold_click_unet()
    assert export_in_background(model) is None
    assert cached_network(model) is None
    assert not list(tmp_path.rglob("*.onnx"))


def test_a_damaged_graph_in_the_cache_leaves_the_clicks_to_pytorch(monkeypatch):
    monkeypatch.setenv("NAPARI_UNET_ONNX", "1")
    model, body = threshold_click_unet(), ellipsoid()
    graph = _cache_folder() / f"{_fingerprint(model)}.onnx"
    graph.parent.mkdir(parents=True, exist_ok=True)
    graph.write_bytes(b"not a graph")  # a file cut short, or written by something else
    assert cached_network(model) is None
    masks = VolumeSegmenter(volume_of(body), model).predict(10, [Click(32, 32)], {})
    assert np.array_equal(full(masks, body.shape)[5:16], body[5:16])
