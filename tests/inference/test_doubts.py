"""A degenerate answer is named as such; real-looking objects are left alone."""

import numpy as np
import pytest

from napari_unet import segment
from napari_unet.inference.doubts import out_of_depth
from napari_unet.model.card import ModelCard
from napari_unet.synth.images import synth_image
from napari_unet.synth.phantom import PhantomConfig, synth_phantom

NUCLEI = ModelCard(name="nuclei")


@pytest.mark.slow
def test_the_shipped_model_on_a_ct_slice_is_said_to_be_out_of_its_depth():  # MR: tests/_qt/segment
    phantom = synth_phantom(1, PhantomConfig(modality="CT"))
    labels = segment(phantom.image[phantom.image.shape[0] // 2])  # the shipped nuclei model
    said = out_of_depth(labels, NUCLEI)
    assert said is not None and "2D fluorescence nuclei" in said and "New model" in said


def test_nuclei_images_are_not_doubted():
    flagged = [seed for seed in range(40) if out_of_depth(synth_image(seed).labels, NUCLEI)]
    assert flagged == []


def test_one_region_over_the_image_is_doubted_and_a_user_model_is_named():
    labels = np.zeros((200, 200), np.int32)
    labels[20:180, 30:170] = 1
    labels[5:9, 5:9] = 2
    said = out_of_depth(labels, ModelCard(name="organoids"))
    assert "'organoids'" in said and "one object covers 56% of the image" in said


def test_a_handful_of_regions_is_doubted_an_empty_image_is_not():
    labels = np.zeros((100, 100), np.int32)
    labels[:40, :40], labels[60:, :40], labels[60:, 60:] = 1, 2, 3
    assert "3 objects cover 48% of the image" in out_of_depth(labels, NUCLEI)
    assert out_of_depth(np.zeros((100, 100), np.int32), NUCLEI) is None


def test_class_maps_are_not_judged():
    labels = np.ones((50, 50), np.int32)
    assert out_of_depth(labels, ModelCard(name="tissue", task="semantic", classes=("a", "b"))) is None


def test_a_large_stack_is_judged_on_a_subsample_with_the_same_shares():
    labels = np.zeros((40, 400, 400), np.int32)
    labels[:, 50:350, 50:350] = 7
    assert "one object covers 56% of the image" in out_of_depth(labels, NUCLEI)
