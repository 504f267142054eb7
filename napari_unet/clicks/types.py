"""What clicks and their answers are: a :class:`Click`, and an :class:`ObjectMask` in a window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_unet.windows import box_of


@dataclass(frozen=True)
class Click:
    """One click: a point (y, x) in pixels and whether it marks the object (positive) or not."""

    y: float
    x: float
    positive: bool = True


def as_clicks(positive: Sequence[Sequence[float]], negative: Sequence[Sequence[float]] = ()) -> list[Click]:
    """Clicks from (y, x) points on the object and points off it; raise ``ValueError`` for
    a point that is not a (y, x) pair.
    """
    out = []
    for points, kind in ((positive, True), (negative, False)):
        for p in points:
            if len(p) != 2:
                raise ValueError(f"{'positive' if kind else 'negative'} click {p!r} is not a (y, x) pair")
            out.append(Click(float(p[0]), float(p[1]), kind))
    return out


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class ObjectMask:
    """A boolean mask that is non-zero only inside a window of the image."""

    mask: np.ndarray  # bool (h, w): the window's pixels
    offset: tuple[int, int]  # (y, x) of mask[0, 0] in the image
    shape: tuple[int, int]  # the image's spatial shape

    @property
    def slices(self) -> tuple[slice, slice]:
        """Where :attr:`mask` sits in the image."""
        (y, x), (h, w) = self.offset, self.mask.shape
        return slice(y, y + h), slice(x, x + w)

    @property
    def window(self) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1) of the window :attr:`mask` covers in the image."""
        (y, x), (h, w) = self.offset, self.mask.shape
        return y, x, y + h, x + w

    def full(self) -> np.ndarray:
        """The mask at the image's full spatial shape."""
        out = np.zeros(self.shape, dtype=bool)
        out[self.slices] = self.mask
        return out

    def bbox(self) -> tuple[int, int, int, int] | None:
        """(y0, x0, y1, x1) of the mask's pixels in image coordinates (end exclusive), or None."""
        return box_of(self.mask, self.offset)

    @classmethod
    def clipped(cls, mask: np.ndarray, corner: tuple[int, int], shape: tuple[int, int]) -> ObjectMask:
        """The part of a window's mask (window at ``corner``) that lies inside an image of ``shape``."""
        (y0, x0), (h, w) = corner, mask.shape
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + h, shape[0]), min(x0 + w, shape[1])
        return cls(mask[ys - y0 : ye - y0, xs - x0 : xe - x0].copy(), (ys, xs), tuple(shape))
