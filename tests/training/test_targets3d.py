"""3D training targets: boundaries and contact zones found through the planes of a volume."""

import numpy as np

from napari_unet.training.targets import BACKGROUND, BOUNDARY, INTERIOR, boundary_mask, make_targets


def stacked_boxes() -> np.ndarray:
    """Two 6x6x6 boxes, one on top of the other along Z (touching face to face), in a 14x10x10 volume."""
    labels = np.zeros((14, 10, 10), np.int32)
    labels[1:7, 2:8, 2:8] = 1
    labels[7:13, 2:8, 2:8] = 2
    return labels


def test_boundary_uses_the_six_face_neighbours():
    labels = np.zeros((5, 5, 5), np.int32)
    labels[1:4, 1:4, 1:4] = 1
    edge = boundary_mask(labels)
    assert not edge[2, 2, 2]  # the centre voxel: all six neighbours inside
    assert edge[1, 2, 2] and edge[3, 2, 2]  # top and bottom faces: a Z neighbour outside
    assert edge[2, 1, 2] and edge[2, 2, 3]
    assert edge.sum() == 27 - 1


def test_objects_stacked_along_z_are_split_by_a_boundary_band():
    labels = stacked_boxes()
    classes, weights = make_targets(labels)
    assert classes.shape == labels.shape and weights.shape == labels.shape
    # the planes where the two boxes meet are boundary in both, with the contact weight
    assert (classes[6:8, 3:7, 3:7] == BOUNDARY).all()
    assert weights[6, 4, 4] > weights[1, 4, 4] > weights[3, 4, 4]
    # away from the contact the boxes keep an interior, and the outside is background
    assert classes[3, 4, 4] == INTERIOR and classes[10, 4, 4] == INTERIOR
    assert classes[0, 4, 4] == BACKGROUND and classes[4, 0, 0] == BACKGROUND


def test_each_plane_alone_would_miss_the_split():
    """Why volumes need 3D targets: plane by plane, the face where the boxes meet looks like interior."""
    labels = stacked_boxes()
    per_plane = np.stack([make_targets(plane)[0] for plane in labels])
    assert per_plane[6, 4, 4] == INTERIOR
    assert make_targets(labels)[0][6, 4, 4] == BOUNDARY
