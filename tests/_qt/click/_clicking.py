"""Clicks in a viewer as napari delivers them: simulated mouse events through its callbacks."""

from __future__ import annotations

import numpy as np
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

WAIT_MS = 60_000
CENTRES = ((30, 30), (30, 80), (70, 50))


def disk(shape, centre, radius=10):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def click(viewer, world, modifiers=(), button=1, drag=0.0, view_direction=None):
    """Press and release at world coordinates ``world`` (moving ``drag`` canvas px in between);
    in the 3D view, looking along ``view_direction``.
    """
    kwargs = dict(button=button, modifiers=list(modifiers), position=tuple(world),
                  dims_displayed=list(viewer.dims.displayed), view_direction=view_direction)
    mouse_press_callbacks(viewer, read_only_mouse_event(type="mouse_press", pos=np.zeros(2), **kwargs))
    if drag:
        moved = read_only_mouse_event(type="mouse_move", is_dragging=True, pos=np.array([drag, 0.0]), **kwargs)
        mouse_move_callbacks(viewer, moved)
    end = np.array([drag, 0.0])
    mouse_release_callbacks(viewer, read_only_mouse_event(type="mouse_release", pos=end, **kwargs))


def settle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.tool.busy, timeout=WAIT_MS)


def masks(viewer):
    return viewer.layers["cells masks"]
