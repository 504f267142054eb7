"""A 3D instance model segments volumes: resampled to the Z spacing it learnt at, predicted in
3D, brought back to the volume's planes and split into 3D objects, one id per object."""


import numpy as np
import pytest
import torch

from napari_unet import segment, segment_iter
from napari_unet.model.card import ModelCard
from napari_unet.model.files import DEFAULT_MODEL, VOLUME_MODEL, shipped_model
from napari_unet.model.unet import UNet
from napari_unet.progress import run
from napari_unet.synth.volumes import synth_volume
from napari_unet.training.metrics import average_precision


def thresholding_3d(target_spacing=(1.5, 1.0, 1.0), unit: str | None = "pixel") -> UNet:
    """A hand-built 3D network whose answer is the voxel's intensity: interior above half the
    volume's range, background below (the centre taps of its top level carry the input to the head).
    """
    model = UNet(1, 3, base_channels=2, depth=1, norm=None, spatial_dims=3)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for block in (model.inc, model.ups[0].conv):
            for conv in (m for m in block if isinstance(m, torch.nn.Conv3d)):
                conv.weight[0, 0, 1, 1, 1] = 1.0  # channel 0 passes the (0-1 scaled) input on
        k = 20.0
        model.head.weight[:, 0, 0, 0, 0] = torch.tensor([-k, k, 0.0])
        model.head.bias[:] = torch.tensor([k / 2, -k / 2, -k])  # no boundary
    plan = {"spatial_dims": 3, "target_spacing": list(target_spacing)}
    if unit:
        plan["spacing_unit"] = unit
    model.card = ModelCard(name="threshold-3d", plan=plan, postprocess={"min_size": 3})
    return model.eval()


def two_nuclei(planes: int = 12, z_ratio: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Two bright ellipsoids (6 px in-plane radius, as round in physical units) apart in a dark volume."""
    z, y, x = np.mgrid[:planes, :32, :40].astype(float)
    truth = np.zeros(z.shape, np.int32)
    for i, (cz, cy, cx) in enumerate([(planes / 2 - 0.5, 10, 11), (planes / 2 - 0.5, 21, 28)], start=1):
        inside = ((z - cz) * z_ratio / 6) ** 2 + ((y - cy) / 6) ** 2 + ((x - cx) / 6) ** 2 <= 1
        truth[inside] = i
    image = (truth > 0) * 1000.0 + 100.0
    return image.astype(np.float32), truth


def test_each_nucleus_is_one_object_through_its_planes():
    image, truth = two_nuclei()
    result = run(segment_iter(image, thresholding_3d(), axes="ZYX", spacing=(3.0, 1.0, 1.0), device="cpu"))
    assert result.labels.shape == image.shape and result.labels.dtype == np.int32
    assert result.labels.max() == 2
    for obj in (1, 2):
        ids = np.unique(result.labels[truth == obj])
        assert len(ids) == 1 and ids[0] > 0  # one id on every plane of the nucleus
    assert average_precision(truth, result.labels, (0.9,))[0] == 1.0
    # the probabilities are kept at the volume's planes, 0-255, to re-threshold without the network
    assert result.probabilities.dtype == np.uint8 and result.probabilities.shape == (3, *image.shape)
    assert result.axes == "ZYX" and result.spacing == (3.0, 1.0, 1.0)


def test_the_network_sees_the_volume_at_the_z_spacing_it_learnt():
    image, _ = two_nuclei(planes=12)
    model = thresholding_3d(target_spacing=(1.5, 1.0, 1.0))
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[2]))
    segment(image, model, axes="ZYX", spacing=(0.6, 0.2, 0.2), device="cpu")  # Z 3 pixels: twice the model's
    assert seen and max(seen) == 24
    seen.clear()  # spacing in µm for a model planned in µm: Y and X are resampled too
    physical = thresholding_3d(target_spacing=(0.6, 0.3, 0.3), unit=None)
    physical.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[2:])))
    labels = segment(image, physical, axes="ZYX", spacing=(0.6, 0.15, 0.15), device="cpu")
    assert seen == [(12, 16, 20)] and labels.shape == image.shape


def test_labels_come_back_in_the_axes_given():
    image, truth = two_nuclei()
    model = thresholding_3d()
    zyx = segment(image, model, axes="ZYX", spacing=(3.0, 1.0, 1.0), device="cpu")
    yxz = segment(np.moveaxis(image, 0, -1), model, axes="YXZ", spacing=(3.0, 1.0, 1.0), device="cpu")
    assert yxz.shape == (32, 40, 12)
    assert np.array_equal(np.moveaxis(yxz, -1, 0), zyx)


def test_a_series_gets_new_ids_at_every_time_point():
    image, truth = two_nuclei()
    series = np.stack([image, np.where(truth == 2, 100.0, image)])  # the second nucleus gone at t=1
    labels = segment(series, thresholding_3d(), axes="TZYX", spacing=(3.0, 1.0, 1.0), device="cpu")
    assert labels.shape == series.shape
    assert len(np.unique(labels[0])) == 3 and len(np.unique(labels[1])) == 2
    assert not set(np.unique(labels[0])[1:]) & set(np.unique(labels[1])[1:])


@pytest.mark.parametrize("shape, axes",
                         [((32, 40), None), ((32, 40), "YX"), ((3, 32, 40), "TYX"), ((12, 32, 40), None)])
def test_a_3d_model_needs_a_volume(shape, axes):
    if axes is None and len(shape) == 3:  # a 3D array with no axes is taken as a volume: no error
        assert segment(np.zeros(shape, np.float32), thresholding_3d(), device="cpu").shape == shape
        return
    with pytest.raises(ValueError, match="3D model.*axes='ZYX'"):
        segment(np.zeros(shape, np.float32), thresholding_3d(), axes=axes, device="cpu")


def test_a_3d_model_takes_one_channel():
    with pytest.raises(ValueError, match="one channel"):
        segment(np.zeros((2, 12, 32, 40), np.float32), thresholding_3d(), axes="CZYX", device="cpu")
    with pytest.raises(ValueError, match="one channel"):
        segment(np.zeros((12, 32, 40), np.float32), thresholding_3d(), channel_axis=0, device="cpu")


@pytest.mark.parametrize("axes, path", [
    ("ZYX", VOLUME_MODEL), ("TZYX", VOLUME_MODEL), ("YZX", VOLUME_MODEL), ("zyx", VOLUME_MODEL),
    (None, DEFAULT_MODEL),  # planes one by one, as before axes existed: the 2D model
    ("TYX", DEFAULT_MODEL), ("YX", DEFAULT_MODEL), ("ZYXC", DEFAULT_MODEL),  # images, channels: the 2D model
])
def test_volumes_get_the_shipped_3d_model_and_images_the_2d_one(axes, path):
    assert VOLUME_MODEL.exists()  # shipped with the package
    assert shipped_model(axes) == path


def test_volumes_too_big_for_the_3d_networks_memory_get_the_2d_route():
    from napari_unet.model.files import VOLUME_MODEL_VOXELS

    assert shipped_model("ZYX", (32, 512, 512)) == VOLUME_MODEL
    assert shipped_model("TZYX", (50, 32, 512, 512)) == VOLUME_MODEL  # counted per time point
    assert shipped_model("ZYX", (200, 1024, 1024)) == DEFAULT_MODEL  # ~20 GB on the 3D path; ~1.5 on the 2D one
    assert shipped_model("YXZ", (1024, 1024, VOLUME_MODEL_VOXELS // 1024**2 + 1)) == DEFAULT_MODEL


def test_the_shipped_3d_model_finds_generated_nuclei():
    volume = synth_volume(4321, shape=(16, 64, 64))
    labels = segment(volume.image, axes="ZYX", spacing=volume.spacing, device="cpu")
    assert labels.shape == volume.image.shape
    assert average_precision(volume.labels, labels, (0.5,))[0] > 0.5
