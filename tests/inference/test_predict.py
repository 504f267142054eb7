import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from scipy import ndimage as ndi

from napari_unet import InstanceParams, instances_from_probabilities, predict, predict_iter, segment
from napari_unet.labels import fill_holes
from napari_unet.model.unet import UNet
from napari_unet.progress import Progress


def test_tiled_matches_untiled_away_from_tile_borders(tiny_model, rng):
    image = rng.random((300, 420)).astype(np.float32)
    whole = predict(image, tiny_model, tile_size=1024)
    tiled = predict(image, tiny_model, tile_size=96, overlap=0.25)
    assert tiled.shape == whole.shape == (3, 300, 420)
    # differences come only from the limited context at tile edges; in a depth-2 net
    # with 96-px tiles and smooth blending they are small everywhere
    assert np.abs(tiled - whole).max() < 0.05
    assert np.allclose(tiled.sum(0), 1.0, atol=1e-4)


def test_single_tile_is_exactly_the_untiled_pass(tiny_model, rng):
    image = rng.random((70, 90)).astype(np.float32)
    from napari_unet.inference.images import normalize

    x = torch.from_numpy(normalize(image))[None, None]
    with torch.inference_mode():
        direct = torch.softmax(tiny_model(x), 1)[0].numpy()
    assert np.allclose(predict(image, tiny_model), direct, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64, bool])
def test_every_dtype(tiny_model, rng, dtype):
    image = (rng.random((40, 50)) * 200).astype(dtype)
    labels = segment(image, tiny_model)
    assert labels.shape == (40, 50) and labels.dtype == np.int32


@pytest.mark.parametrize(
    ("shape", "kwargs", "spatial"),
    [
        ((41, 37), {}, (41, 37)),
        ((41, 37, 3), {}, (41, 37)),  # RGB -> grayscale for a 1-channel model
        ((41, 37, 4), {}, (41, 37)),  # RGBA
        ((3, 41, 37), {}, (3, 41, 37)),  # a 3-plane stack, not RGB
        ((4, 2, 41, 37), {"channel_axis": 1}, None),  # rejected below: 2 channels
        ((5, 41, 37), {}, (5, 41, 37)),
        ((2, 41, 37, 3), {"channel_axis": -1}, (2, 41, 37)),
    ],
)
def test_layouts(tiny_model, rng, shape, kwargs, spatial):
    image = rng.integers(0, 4000, shape).astype(np.uint16)
    if spatial is None:
        with pytest.raises(ValueError, match="expects 1 channel"):
            segment(image, tiny_model, **kwargs)
        return
    assert segment(image, tiny_model, **kwargs).shape == spatial


def test_multichannel_model_takes_its_channel_axis(rng):
    model = UNet(2, 3, base_channels=4, depth=2).eval()
    image = rng.random((2, 30, 40)).astype(np.float32)
    assert segment(image, model, channel_axis=0).shape == (30, 40)
    with pytest.raises(ValueError, match="no channel axis"):
        segment(rng.random((30, 40)), model)


def test_stack_labels_are_unique_across_planes(tiny_model):
    plane = np.zeros((40, 40), np.float32)
    plane[10:20, 10:20] = 1.0
    probs = np.zeros((3, 3, 40, 40), np.float32)
    probs[0] = 1.0
    probs[:, :, 10:20, 10:20] = np.array([0, 1, 0], np.float32)[:, None, None, None]
    labels = instances_from_probabilities(probs)
    assert [np.unique(labels[z][labels[z] > 0]).tolist() for z in range(3)] == [[1], [2], [3]]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 10)), "empty"),
        (np.zeros((2, 3, 4, 20, 20)), "spatial dimensions"),
        (np.zeros(20), "2 spatial"),
        (np.full((20, 20), np.nan), "NaN"),
        (np.array([[np.inf, 1.0], [1.0, 1.0]]), "NaN or infinite"),
        (np.zeros((20, 20), complex), "convert"),
    ],
)
def test_bad_inputs_say_what_to_do(tiny_model, image, message):
    with pytest.raises(ValueError, match=message):
        segment(image, tiny_model)


def test_constant_image_gives_finite_probabilities(tiny_model):
    probs = predict(np.full((50, 50), 7, np.uint16), tiny_model)
    assert np.isfinite(probs).all()


def _drive(job) -> tuple[list, object]:
    """Run a generator job to the end: (what it yielded, what it returned)."""
    steps = []
    while True:
        try:
            steps.append(next(job))
        except StopIteration as stop:
            return steps, stop.value


def test_predict_iter_reports_progress_to_the_total(tiny_model, rng):
    steps, result = _drive(predict_iter(rng.random((2, 200, 200)), tiny_model, tile_size=64, overlap=0.25))
    assert all(isinstance(s, Progress) for s in steps)
    assert steps[-1].done == steps[-1].total == len(steps)
    assert result.shape == (3, 2, 200, 200)


def test_a_job_dropped_between_tiles_leaves_its_thread_able_to_train(tiny_model, rng):
    """Inference mode is per thread: a job held (paused, cancelled, closed elsewhere) between two
    tiles must not leave its worker thread in it, or the next job there (fine-tuning) has no
    gradients ("element 0 of tensors does not require grad").
    """
    job = predict_iter(rng.random((600, 600), dtype=np.float32), tiny_model, tile_size=256, overlap=0.1)
    assert next(job).done == 1
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    tiny_model(torch.rand(1, 1, 32, 32)).sum().backward()  # a training step here, the job still held
    assert all(p.grad is not None for p in tiny_model.parameters())
    job.close()


def test_unknown_device_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="not available"):
        predict(np.zeros((20, 20)), tiny_model, device="cuda:7" if not torch.cuda.is_available() else "mps")


def test_touching_objects_are_separated_by_their_boundary():
    probs = np.zeros((3, 30, 60), np.float32)
    probs[0] = 1
    for x0 in (5, 30):  # two squares whose boundaries touch in the middle
        probs[:, 5:25, x0 : x0 + 25] = np.array([0, 0, 1])[:, None, None]
        probs[:, 8:22, x0 + 3 : x0 + 22] = np.array([0, 1, 0])[:, None, None]
    labels = instances_from_probabilities(probs, InstanceParams(min_size=1))
    assert labels.max() == 2
    assert len(np.unique(labels[5:25, 5:55])) == 2  # the joined blob is split, none of it lost
    assert (labels[5:25, 5:30] == labels[15, 15]).mean() > 0.9


def test_min_size_and_holes():
    probs = np.zeros((3, 40, 40), np.float32)
    probs[0] = 1
    probs[:, 5:25, 5:25] = np.array([0, 1, 0])[:, None, None]
    probs[:, 12:15, 12:15] = np.array([1, 0, 0])[:, None, None]  # a hole
    probs[:, 32:34, 32:34] = np.array([0, 1, 0])[:, None, None]  # 4 pixels
    labels = instances_from_probabilities(probs, InstanceParams(min_size=10))
    assert labels.max() == 1
    assert (labels[5:25, 5:25] == 1).all()  # hole filled
    kept = instances_from_probabilities(probs, InstanceParams(min_size=1, min_relative_size=0, fill_holes=False))
    assert kept.max() == 2 and kept[13, 13] == 0


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=24)))
def test_holes_are_filled_as_scipy_fills_them(mask):
    """Our faster hole filling (one labelling) makes the same objects as scipy's."""
    np.testing.assert_array_equal(fill_holes(mask), ndi.binary_fill_holes(mask))


def _squares(edges, gap=4):
    """Probabilities of one row of separate square objects with the given edges."""
    probs = np.zeros((3, max(edges) + 2 * gap, sum(edges) + gap * (len(edges) + 1)), np.float32)
    probs[0] = 1
    x = gap
    for e in edges:
        probs[:, gap : gap + e, x : x + e] = np.array([0, 1, 0])[:, None, None]
        x += e + gap
    return probs


def test_fragments_much_smaller_than_the_typical_object_are_dropped():
    probs = _squares([12, 12, 12, 3])  # three 144-px objects and a 9-px speck
    assert instances_from_probabilities(probs, InstanceParams(min_size=1)).max() == 3
    assert instances_from_probabilities(probs, InstanceParams(min_size=1, min_relative_size=0)).max() == 4
    # an image of small objects only keeps them: the scale is the image's own median
    assert instances_from_probabilities(_squares([3, 3, 3, 4]), InstanceParams(min_size=1)).max() == 4


def test_semantic_models_give_class_maps(rng):
    model = UNet(1, 4, base_channels=4, depth=2).eval()
    labels = segment(rng.random((30, 30)), model)
    assert labels.dtype == np.int32 and set(np.unique(labels)) <= {0, 1, 2, 3}
    probs = np.zeros((4, 40, 60), np.float32)
    probs[0], probs[3, 10:30, 20:40] = 1, 2  # class 3 only, seen at zoom 2: still class 3
    classes = instances_from_probabilities(probs, task="semantic", shape=(20, 30))
    assert set(np.unique(classes)) == {0, 3} and (classes == 3).sum() == 100


def test_a_model_card_carries_its_tuned_post_processing(rng, tmp_path):
    from dataclasses import replace as _replace

    from napari_unet.inference.instances import model_params
    from napari_unet.model.files import load_model, model_card, save_model

    model = UNet(1, 3, base_channels=4, depth=2).eval()
    model.card = _replace(model_card(model), postprocess={"foreground_threshold": 0.999, "min_size": 3, "unknown": 1})
    model = load_model(save_model(model, tmp_path / "m.safetensors"))  # survives the file
    params = model_params(model_card(model))
    assert (params.foreground_threshold, params.min_size) == (0.999, 3)
    assert params.interior_threshold == InstanceParams().interior_threshold  # not named: the default
    # segment() without params uses the card's: nothing is that surely foreground
    image = rng.random((40, 40)).astype(np.float32)
    assert segment(image, model).max() == 0
    assert segment(image, model, params=InstanceParams(foreground_threshold=0.01, min_relative_size=0)).max() > 0


@pytest.mark.parametrize("zoom", [0.5, 2.0, 1.7])
def test_zoomed_prediction_comes_back_at_the_image_pixels(tiny_model, rng, zoom):
    image = rng.random((90, 130)).astype(np.float32)
    steps, probs = _drive(predict_iter(image, tiny_model, tile_size=64, overlap=0.25, zoom=zoom))
    assert probs.shape == (3, 90, 130) and np.allclose(probs.sum(0), 1.0, atol=1e-4)
    # the network sees the magnified plane: more tiles when magnified, fewer when shrunk
    plain = sum(1 for _ in predict_iter(image, tiny_model, tile_size=64, overlap=0.25))
    assert (steps[-1].total > plain) if zoom > 1 else (steps[-1].total < plain)


def test_labels_found_magnified_come_back_with_their_outlines():
    from napari_unet.inference.zoom import labels_to_shape

    truth = _disks(9.0, (60, 80), spacing=1)  # touching-close disks 9 px across
    for factor in (2, 3):
        back = labels_to_shape(np.kron(truth, np.ones((factor, factor), np.int32)), truth.shape)
        assert np.array_equal(back, truth)  # an exact multiple: every object, every pixel
    zoomed = labels_to_shape(truth, (103, 137))  # 1.72x: nearest samples
    back = labels_to_shape(zoomed, truth.shape)
    assert back.max() == truth.max() and (back == truth).mean() > 0.97
    assert labels_to_shape(truth, truth.shape) is truth


def test_post_processing_at_the_network_zoom_gives_labels_at_the_image_pixels():
    # two touching squares seen magnified 2x: the boundary between them is 2 px wide there
    probs = np.zeros((3, 60, 120), np.float32)
    probs[0] = 1
    for x0 in (10, 60):
        probs[:, 10:50, x0 : x0 + 50] = np.array([0, 0, 1])[:, None, None]
        probs[:, 16:44, x0 + 6 : x0 + 44] = np.array([0, 1, 0])[:, None, None]
    labels = instances_from_probabilities(probs, InstanceParams(min_size=1), shape=(30, 60))
    assert labels.shape == (30, 60) and labels.max() == 2
    assert (labels[5:25, 5:30] == labels[15, 15]).mean() > 0.9
    # min_size counts the image's pixels: a 20x25-px object is kept at 500, dropped at 501
    for min_size, kept in ((500, 2), (501, 0)):
        params = InstanceParams(min_size=min_size, min_relative_size=0)
        assert instances_from_probabilities(probs, params, shape=(30, 60)).max() == kept
    stack = np.stack([probs, probs], axis=1)  # (3, 2, 60, 120): planes keep unique ids
    assert instances_from_probabilities(stack, InstanceParams(min_size=1), shape=(2, 30, 60)).max() == 4
    with pytest.raises(ValueError, match="cannot make labels of shape"):
        instances_from_probabilities(stack, shape=(3, 30, 60))


def test_segmentation_keeps_the_probabilities_the_network_saw(tiny_model, rng):
    from napari_unet.inference.segment import segment_iter
    from napari_unet.inference.zoom import unzoom
    from napari_unet.progress import run

    image = rng.random((50, 70)).astype(np.float32)
    seg = run(segment_iter(image, tiny_model, zoom=2.0, tile_size=64))
    assert seg.labels.shape == (50, 70) and seg.probabilities.shape == (3, 100, 140)
    assert np.allclose(unzoom(seg.probabilities, (50, 70)), predict(image, tiny_model, zoom=2.0, tile_size=64))


def test_zoom_outside_its_range_is_a_clear_error(tiny_model):
    for bad in (0.1, 5.0):
        with pytest.raises(ValueError, match="zoom must be between"):
            segment(np.zeros((32, 32), np.float32), tiny_model, zoom=bad)


def _disks(diameter: float, shape=(256, 256), spacing: int = 2) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    step = int(diameter) + spacing
    n = 0
    for cy in range(step, shape[0] - step, step):
        for cx in range(step, shape[1] - step, step):
            n += 1
            labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= (diameter / 2) ** 2] = n
    return labels


def test_median_diameter_and_the_automatic_zoom():
    from napari_unet.inference.zoom import LARGE_TO, SMALL_TO, auto_zoom
    from napari_unet.labels import median_diameter

    assert median_diameter(np.zeros((20, 20), np.int32)) is None
    assert abs(median_diameter(_disks(20)) - 20) < 1.0
    assert abs(median_diameter(np.stack([_disks(6), _disks(6)])) - 6) < 1.0  # a stack: 2D areas
    assert auto_zoom(None, (256, 256)) == auto_zoom(20.0, (256, 256)) == 1.0  # nothing to resample
    assert auto_zoom(6.0, (256, 256)) == pytest.approx(SMALL_TO / 6.0, abs=0.01)
    assert auto_zoom(2.0, (256, 256)) == 3.0  # at most 3x
    assert auto_zoom(40.0, (256, 256)) == pytest.approx(LARGE_TO / 40.0, abs=0.01)  # large: shrunk
    assert auto_zoom(500.0, (256, 256)) == 0.4  # at least 0.4x
    assert auto_zoom(6.0, (8192, 8192)) == 1.0  # a magnified plane would not fit in memory


@pytest.mark.slow
def test_the_default_model_splits_dense_tiny_nuclei_better_magnified():
    from napari_unet.inference.segment import segment_iter
    from napari_unet.synth.config import SynthConfig
    from napari_unet.synth.images import synth_image
    from napari_unet.training.metrics import mean_average_precision

    config = SynthConfig(size=(5.0, 6.0), coverage=(0.35, 0.45), p_clustered=0.0)
    sample = synth_image(np.random.default_rng(3), (256, 256), config)
    steps, auto = _drive(segment_iter(sample.image, device="cpu"))
    plain = segment(sample.image, device="cpu", zoom=1)
    ap_auto, ap_plain = (mean_average_precision([sample.labels], [p], (0.5,))[0] for p in (auto.labels, plain))
    assert auto.zoom > 1.5 and auto.labels.shape == sample.labels.shape
    assert "zoom" in {s.stage for s in steps}  # the second pass says what it is
    # measured 0.6 magnified against 0.2 as it is (1107 nuclei 5-6 px across)
    assert ap_auto > ap_plain + 0.1, (ap_auto, ap_plain)


def test_test_time_augmentation_averages_the_eight_views(tiny_model, rng):
    from napari_unet.inference.images import normalize
    from napari_unet.inference.predict import view

    image = rng.random((64, 64)).astype(np.float32)
    x = torch.from_numpy(normalize(image))[None, None]
    views = [view(x, k) for k in range(8)]
    assert all(torch.equal(view(v, k, inverse=True), x) for k, v in enumerate(views))
    assert len({v.numpy().tobytes() for v in views}) == 8  # 8 different views of the tile
    with torch.inference_mode():
        mean = sum(view(torch.softmax(tiny_model(v), 1), k, inverse=True) for k, v in enumerate(views)) / 8
    assert np.allclose(predict(image, tiny_model, tta=True), mean[0].numpy(), atol=1e-5)


def test_test_time_augmentation_gives_the_same_answer_for_a_rotated_or_mirrored_image(tiny_model, rng):
    image = rng.random((64, 64)).astype(np.float32)
    turned = [lambda a: np.rot90(a, axes=(-2, -1)), lambda a: a[..., ::-1], lambda a: np.swapaxes(a, -1, -2)]
    base = predict(image, tiny_model, tta=True)
    for turn in turned:
        assert np.allclose(predict(turn(image).copy(), tiny_model, tta=True), turn(base), atol=1e-5)
    plain = predict(image, tiny_model)  # one view: a random network's answer depends on the orientation
    assert not np.allclose(predict(turned[0](image).copy(), tiny_model), turned[0](plain), atol=1e-3)


@pytest.mark.slow
def test_test_time_augmentation_with_the_automatic_zoom_measures_the_objects_first():
    from napari_unet.inference.segment import segment_iter
    from napari_unet.synth.images import synth_image
    from napari_unet.training.metrics import mean_average_precision

    sample = synth_image(np.random.default_rng(6), (192, 192))  # 54 nuclei
    steps, seg = _drive(segment_iter(sample.image, device="cpu", tta=True))
    stages = [s.stage for s in steps]
    # a plain first pass measures the objects, then 8 views at the zoom they need
    assert stages.count("predict") == 1 and {"zoom", "tta"} & set(stages), set(stages)
    ap = mean_average_precision([sample.labels], [seg.labels], (0.5,))[0]
    assert ap > 0.6, ap  # measured 0.82 (a plain pass: 0.81)


def test_a_model_left_in_training_mode_predicts_with_its_running_statistics(tiny_model, rng):
    # a model straight from a training loop is in train mode: BatchNorm would normalise each
    # tile by its own statistics, so the same pixels would change with the tiling
    image = rng.random((64, 64)).astype(np.float32)
    expected = predict(image, tiny_model)
    tiny_model.train()
    got = predict(image, tiny_model)
    assert not tiny_model.training
    assert np.allclose(got, expected, atol=1e-6)


def disk_grid(shape=(1600, 1600), radius: int = 20, pitch: int = 60, blank: int = 0) -> np.ndarray:
    """Bright disks ``radius`` px on a square grid (no two touch), on a dark noisy background;
    ``blank``: a central square that many pixels a side left without any.
    """
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.random.default_rng(0).normal(10, 2, shape).astype(np.float32)
    inside = ((yy % pitch) - pitch / 2) ** 2 + ((xx % pitch) - pitch / 2) ** 2 <= radius**2
    if blank:
        centre = (abs(yy - shape[0] / 2) < blank / 2) & (abs(xx - shape[1] / 2) < blank / 2)
        inside &= ~centre
    image[inside] += 100
    return image


def test_a_large_image_is_measured_in_its_centre_then_predicted_once_at_its_zoom():
    """A ×1 pass over a whole large image only to measure its objects was thrown away when they
    called for a zoom (on a 2048² one, half of segment()'s time): its centre measures them.
    """
    from _qt_helpers import threshold_unet
    from scipy import ndimage as ndi

    from napari_unet.inference.segment import MEASURE_WINDOW, segment_iter
    from napari_unet.inference.zoom import LARGE_TO

    image = disk_grid()  # 40 px across: shrunk to 18
    assert min(image.shape) > 3 * MEASURE_WINDOW
    model = threshold_unet()
    steps, seg = _drive(segment_iter(image, model, device="cpu"))
    stages = [s.stage for s in steps]
    assert seg.zoom == pytest.approx(LARGE_TO / 40, abs=0.03)
    assert "window" in stages and "predict" not in stages, set(stages)  # no whole pass at x1
    np.testing.assert_array_equal(seg.labels, segment(image, model, device="cpu", zoom=seg.zoom))
    assert seg.labels.max() == ndi.label(image > 60)[1]  # every disk, once


def test_a_large_image_with_too_few_objects_in_its_centre_is_measured_whole():
    from _qt_helpers import threshold_unet

    from napari_unet.inference.segment import segment_iter

    image = disk_grid(blank=700)  # the central window holds no disk (and its noise is not stretched)
    steps, seg = _drive(segment_iter(image, threshold_unet(), device="cpu"))
    stages = [s.stage for s in steps]
    assert "window" in stages and "predict" in stages and "zoom" in stages, set(stages)
    assert seg.zoom == pytest.approx(0.45, abs=0.03) and seg.labels.max() > 500  # measured on the whole
