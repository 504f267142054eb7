"""The planner: a dataset's fingerprint decides network, patch, normalisation and class weights."""

import json
from dataclasses import replace

import numpy as np

from napari_unet.synth.phantom import PhantomConfig, synth_phantom
from napari_unet.training.plan import MAX_CLASS_WEIGHT, Plan, fingerprint, make_plan

SMALL = PhantomConfig(shape=(20, 80, 80), spacing=(6.0, 2.0, 2.0))


def _painted(p, planes):
    labels = np.zeros_like(p.labels)
    labels[planes] = p.labels[planes]
    annotated = np.zeros(p.labels.shape, bool)
    annotated[planes] = True
    return labels, annotated


def test_thick_slices_get_a_2d_network_and_rare_classes_weigh_more() -> None:
    p = synth_phantom(0, SMALL)
    labels, annotated = _painted(p, [5, 10, 15])
    fp = fingerprint([p.image], [labels], [annotated], p.spacing)
    assert fp.modality == "other" and fp.label_values == (0, 1, 2, 3, 4) and fp.annotated_planes == 3
    plan = make_plan(fp, p.classes)
    assert plan.spatial_dims == 2 and plan.target_spacing == (2.0, 2.0)
    assert plan.patch_size[0] % 2**plan.depth == 0 and plan.patch_size[0] <= 128
    assert plan.intensity["scheme"] == "zscore"
    assert plan.class_names == ("background", "body", "organ", "fluid", "lesion")
    weights = dict(zip(plan.label_values, plan.class_weights))
    assert weights[4] == max(weights.values()) > weights[0] == 1.0  # the lesion is rarest ...
    assert max(weights.values()) <= MAX_CLASS_WEIGHT  # ... and weighs at most this (its patches do the rest)


def test_near_isotropic_volumes_get_a_3d_network_pooled_by_spacing() -> None:
    p = synth_phantom(1, replace(SMALL, shape=(32, 64, 64), spacing=(2.0, 1.0, 1.0)))
    fp = fingerprint([p.image], [p.labels], [np.ones(p.labels.shape, bool)], p.spacing)
    plan = make_plan(fp)
    assert plan.spatial_dims == 3 and plan.target_spacing == (2.0, 1.0, 1.0)
    assert plan.pools[0] == (1, 2, 2)  # Z is coarser: not pooled at the first level
    multiples = [int(np.prod(axis)) for axis in zip(*plan.pools)]
    assert all(s % m == 0 for s, m in zip(plan.patch_size, multiples))
    assert plan.class_names[1] == "class 1"  # unnamed classes get a name


def test_ct_is_clipped_to_the_foreground_and_standardised_with_its_statistics() -> None:
    p = synth_phantom(2, replace(SMALL, modality="CT"))
    fp = fingerprint([p.image], [p.labels], [np.ones(p.labels.shape, bool)], p.spacing)
    assert fp.modality == "CT"  # guessed from Hounsfield units
    plan = make_plan(fp)
    lo, hi = plan.intensity["clip"]
    assert plan.intensity["scheme"] == "ct" and -200 < lo < hi < 300  # soft tissue, air excluded
    assert abs(plan.intensity["mean"] - float(p.image[p.labels > 0].mean())) < 5


def test_a_gpu_gets_a_wider_network_and_bigger_batches() -> None:
    p = synth_phantom(0, SMALL)
    fp = fingerprint([p.image], [p.labels], [np.ones(p.labels.shape, bool)], p.spacing)
    cpu, gpu = make_plan(fp), make_plan(fp, gpu=True)
    assert gpu.base_channels > cpu.base_channels and gpu.batch_size >= cpu.batch_size


def test_the_plan_is_plain_data_and_printable() -> None:
    p = synth_phantom(0, SMALL)
    fp = fingerprint([p.image], [p.labels], [np.ones(p.labels.shape, bool)], p.spacing)
    plan = make_plan(fp, p.classes)
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    text = plan.describe()
    assert "2D network" in text and "lesion" in text and "z-score" in text
