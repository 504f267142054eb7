"""Training a new model from the user's own, partial labels: classes or objects, 2D or 3D."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_unet import load_model, save_model, segment, segment_iter, train
from napari_unet.progress import run
from napari_unet.training.plan import Plan
from napari_unet.training.tasks import new_network, prepare, semantic_plan

TINY = {"base_channels": 4, "device": "cpu"}


def _volume(seed: int = 0, shape=(8, 48, 48)) -> tuple[np.ndarray, np.ndarray]:
    """A volume of bright disks (label 5) on a mid-grey body (label 2): an easy class map."""
    rng = np.random.default_rng(seed)
    _, h, w = shape
    y, x = np.ogrid[:h, :w]
    plane = np.zeros((h, w), np.uint8)
    plane[(y - h / 2) ** 2 + (x - w / 2) ** 2 < (0.42 * h) ** 2] = 2
    labels = np.repeat(plane[None], shape[0], axis=0)
    for z in range(shape[0]):  # spots that move from plane to plane
        for _ in range(2):
            cy, r = rng.uniform(0.3, 0.7, 2) * (h, w), rng.uniform(0.08, 0.14) * h
            labels[z][((y - cy[0]) ** 2 + (x - cy[1]) ** 2 < r**2) & (plane == 2)] = 5
    image = np.array([0.0, 0, 0.5, 0, 0, 1.0], np.float32)[labels] + 0.05 * rng.standard_normal(shape)
    return (image * 1000).astype(np.float32), labels


def _painted(labels: np.ndarray, planes) -> np.ndarray:
    out = np.zeros_like(labels)
    out[planes] = labels[planes]
    return out


def test_the_labelled_planes_are_the_annotation_by_default() -> None:
    image, labels = _volume()
    [(img, lab, ann)] = prepare(image, _painted(labels, [1, 5]))
    assert ann.shape == labels.shape
    assert ann[[1, 5]].all() and not ann[[0, 2, 3, 4, 6, 7]].any()  # background on a painted plane counts
    [(_, _, ann)] = prepare(image.transpose(2, 1, 0), _painted(labels, [1, 5]).transpose(2, 1, 0), axes="XYZ")
    assert ann[[1, 5]].all() and not ann[3].any()  # axes are honoured: Z is found wherever it is


def test_labels_outside_the_annotation_change_nothing() -> None:
    image, labels = _volume()
    annotated = np.zeros(labels.shape, bool)
    annotated[2, :, :30] = True  # a scribble-like region of one plane
    garbage = labels.copy()
    garbage[~annotated] = np.random.default_rng(1).integers(0, 6, (~annotated).sum()) * (labels[~annotated] > 0)
    runs = []
    for lab in (labels, garbage):
        model = train(image, lab, annotated=annotated, max_steps=2, seed=3, **TINY)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_painted_planes_give_a_class_map_with_the_label_values(tmp_path) -> None:
    image, labels = _volume()
    painted = _painted(labels, [1, 4, 6])
    model = train(image, painted, spacing=(3.0, 1.0, 1.0), classes={2: "body", 5: "spot"}, max_steps=3, **TINY)
    card = model.card
    assert card.task == "semantic" and card.classes == ("background", "body", "spot")
    assert card.label_values == (0, 2, 5) and card.plan["spatial_dims"] == 2  # 3 mm slices: planes
    out = segment(image, model, device="cpu")
    assert out.shape == labels.shape and out.dtype == np.int32
    assert set(np.unique(out)) <= {0, 2, 5}  # the values painted, not the network's channel numbers
    # (how well it learns is measured by benchmarks/bench_new_task.py, not here)
    # the model file keeps what the class map means
    again = load_model(save_model(model, tmp_path / "classes.safetensors"))
    assert again.card.label_values == (0, 2, 5) and Plan.from_dict(again.card.plan) == Plan.from_dict(card.plan)
    assert np.array_equal(segment(image, again, device="cpu"), out)


def test_near_isotropic_volumes_train_a_3d_network() -> None:
    image, labels = _volume(shape=(24, 32, 32))
    model = train(image, _painted(labels, [4, 12, 20]), max_steps=2, **TINY)
    assert model.config.spatial_dims == 3 and model.card.plan["spatial_dims"] == 3
    out = segment(image, model, device="cpu")
    assert out.shape == labels.shape and set(np.unique(out)) <= {0, 2, 5}


def test_a_3d_class_model_sees_a_volume_at_the_plane_spacing_it_learnt() -> None:
    """Planes twice as close as in training are resampled to the learnt spacing for the network
    and its answer brought back to the volume's planes, as nnU-Net does."""
    from scipy import ndimage as ndi

    from napari_unet.inference.classes import class_probabilities
    from napari_unet.inference.intensity import normalize_intensity
    from napari_unet.inference.predict import predict
    from napari_unet.inference.zoom import along_z

    image, labels = _volume(shape=(24, 32, 32))
    model = train(image, _painted(labels, [4, 12, 20]), spacing=(1.0, 1.0, 1.0), max_steps=2, **TINY)
    assert model.config.spatial_dims == 3 and tuple(model.card.plan["target_spacing"]) == (1.0, 1.0, 1.0)
    fine = ndi.zoom(image, (2, 1, 1), order=1, mode="nearest", grid_mode=True)  # planes 0.5 apart
    seen = run(segment_iter(fine, model, spacing=(0.5, 1.0, 1.0), device="cpu"))
    assert seen.labels.shape == fine.shape and seen.probabilities.shape[1:] == fine.shape
    x = normalize_intensity(fine, model.card.intensity)
    weights = model.card.plan["class_weights"]
    at_target = along_z(class_probabilities(predict(along_z(x, 24), model, device="cpu", normalized=True), weights), 48)
    as_given = predict(x, model, device="cpu", normalized=True)
    assert np.allclose(seen.probabilities, at_target, atol=1e-5)
    assert not np.allclose(at_target, as_given, atol=1e-3)  # the network's view did change
    values = np.asarray(model.card.label_values)
    assert np.array_equal(seen.labels, values[np.argmax(at_target, axis=0)])
    assert np.array_equal(segment(image, model, spacing=(1.0, 1.0, 1.0), device="cpu"),
                          segment(image, model, device="cpu"))  # at the learnt spacing: as it was


def test_a_rare_class_is_not_grown_by_the_weight_it_was_learnt_with() -> None:
    """Rare classes count more in training (plan.class_weights), which tilts the network's
    answer towards them; a class map takes the tilt out: where the network says 55 % spot and
    45 % body, the voxel is body, as the spot learnt with a weight over twice the body's."""
    image, labels = _volume()
    model = train(image, _painted(labels, [2, 5]), spacing=(3.0, 1.0, 1.0), max_steps=1, **TINY)
    values, weights = model.card.label_values, model.card.plan["class_weights"]
    assert list(values) == [0, 2, 5] and weights[2] > 2 * weights[1]
    with torch.no_grad():  # a network whose answer is the same everywhere: 0 %, 45 %, 55 %
        for p in model.parameters():
            p.zero_()
        model.head.bias.copy_(torch.log(torch.tensor([1e-6, 0.45, 0.55])))
    found = run(segment_iter(image, model, spacing=(3.0, 1.0, 1.0), device="cpu"))
    assert (found.labels == 2).all()
    expected = np.array([0.0, 0.45 / weights[1], 0.55 / weights[2]])
    assert np.allclose(found.probabilities[:, 3, 10, 10], expected / expected.sum(), atol=1e-3)


def test_objects_train_on_from_a_given_model() -> None:
    from napari_unet import UNet

    image, labels = _volume()
    objects = (labels == 5).astype(np.int32) * np.arange(1, 49)[None, :, None] // 12  # a few objects per plane
    model = train(image, _painted(objects, [2]), task="instances", init=UNet(1, 3, base_channels=4, depth=2),
                  max_steps=2, device="cpu")
    assert model.card.task == "instances" and model.card.provenance["steps"] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": np.zeros((8, 48, 48), np.uint8)}, "no labels"),
        ({"labels": np.ones((8, 40, 48), np.uint8)}, "must match"),
        ({"task": "objects"}, "semantic.*instances"),
        ({"spacing": (1.0, 1.0)}, "one per axis"),
    ],
)
def test_bad_input_says_what_to_do(kwargs, message) -> None:
    image, labels = _volume()
    args = {"labels": _painted(labels, [1]), **kwargs}
    with pytest.raises(ValueError, match=message):
        train(image, args.pop("labels"), max_steps=1, **args, **TINY)


def test_a_named_class_painted_nowhere_is_reported() -> None:
    image, labels = _volume()
    painted = _painted(np.where(labels == 5, 2, labels), [1, 4])  # the spots are painted as body
    with pytest.warns(UserWarning, match=r"5 \(spot\) is named but painted nowhere"):
        model = train(image, painted, classes={2: "body", 5: "spot"}, max_steps=1, **TINY)
    assert model.card.label_values == (0, 2)


def test_a_new_network_has_the_plans_shape_and_its_seeds_weights() -> None:
    image, labels = _volume()
    [data] = prepare(image, _painted(labels, [1, 4]))
    plan = replace(semantic_plan([data], (3.0, 1.0, 1.0), None, "cpu"), base_channels=4)
    net = new_network(plan, seed=1)
    assert net.config.out_channels == len(plan.label_values) == 3 and net.config.spatial_dims == 2
    assert net.config.base_channels == 4 and net.config.depth == plan.depth
    same, other = new_network(plan, seed=1).state_dict(), new_network(plan, seed=2).state_dict()
    assert all(torch.equal(v, same[k]) for k, v in net.state_dict().items())
    assert not all(torch.equal(v, other[k]) for k, v in net.state_dict().items())


def test_large_objects_are_learnt_and_segmented_at_one_zoom() -> None:
    """Objects ~32 px across are learnt shrunk, as automatic zoom would show them, and the model keeps that zoom."""
    from napari_unet import UNet

    y, x = np.ogrid[:128, :128]
    objects = np.zeros((128, 128), np.int32)
    for i, (cy, cx) in enumerate([(30, 30), (30, 95), (95, 30), (95, 95)], start=1):
        objects[(y - cy) ** 2 + (x - cx) ** 2 < 16**2] = i
    image = (objects > 0).astype(np.float32) + 0.05 * np.random.default_rng(0).standard_normal((128, 128))
    model = train(image, objects, task="instances", init=UNet(1, 3, base_channels=4, depth=2), max_steps=1,
                  device="cpu")
    assert 0.4 < model.card.zoom < 0.8  # ~18 px, the size automatic zoom gives large objects
    again = train(image, objects, task="instances", init=model, max_steps=1, device="cpu")
    assert again.card.zoom == model.card.zoom  # trained on: the zoom it was taught at


def test_a_class_model_goes_on_learning_from_corrections_of_some_classes() -> None:
    image, labels = _volume()
    model = train(image, _painted(labels, [1, 4, 6]), classes={2: "body", 5: "spot"}, max_steps=2, **TINY)
    fixed = np.where(labels == 5, 2, labels)  # corrections that show body and background only
    annotated = np.zeros(labels.shape, bool)
    annotated[3, 10:40, 10:40] = True
    before, plan = {k: v.clone() for k, v in model.state_dict().items()}, model.card.plan
    again = train(image, fixed, annotated=annotated, init=model, max_steps=2, seed=1, device="cpu")
    card = again.card
    assert card.label_values == (0, 2, 5) and card.classes == ("background", "body", "spot")  # the model's classes
    assert card.plan == plan  # its own plan: the same normalisation and patches, not the corrections' fingerprint
    assert "fine_tuned_on" in card.provenance and card.provenance["trained_on"]  # its history kept
    assert any(not torch.equal(before[k], v) for k, v in again.state_dict().items())  # it learnt
    assert set(np.unique(segment(image, again, device="cpu"))) <= {0, 2, 5}
    with pytest.raises(ValueError, match=r"value 7, which .* does not know \(its classes: 0 \(background\), 2"):
        train(image, np.where(fixed == 2, 7, fixed), annotated=annotated, init=again, max_steps=1, device="cpu")


def test_a_fresh_network_given_as_init_is_trained_as_new_not_continued() -> None:
    """New model builds the network itself and passes it in: it is a new model (its own name and
    history, the full learning rate), not corrections to an earlier class model."""
    image, labels = _volume()
    painted = np.where(_painted(labels, [1, 4]) == 5, 2, _painted(labels, [1, 4]))  # two classes
    [data] = prepare(image, painted)
    plan = replace(semantic_plan([data], (3.0, 1.0, 1.0), None, "cpu"), base_channels=4)
    model = train(image, painted, init=new_network(plan), max_steps=1, device="cpu")
    assert model.card.name == "new classes" and "fine_tuning" not in model.card.provenance
    assert model.card.provenance["trained_on"] and model.card.provenance["steps"] == 1
