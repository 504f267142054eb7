"""The Segment widget's advanced settings: tiling and post-processing, folded by default."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget
from superqt import QCollapsible

from napari_unet._qt.widgets import FOLD_ICONS, combo, spin
from napari_unet.inference.instances import InstanceParams

_DEFAULT = InstanceParams()
ZOOMS = {"auto": None, "1× (off)": 1.0, "1.5×": 1.5, "2×": 2.0, "3×": 3.0, "0.5×": 0.5}
SIDE_PLANES = {"auto": None, "on": True, "off": False}  # segment_iter's orientations


class AdvancedSettings(QCollapsible):
    """Zoom, test-time augmentation, a volume's side planes, tile size and overlap (a new
    network pass), thresholds and minimum size (instant).

    Signals
    -------
    postprocess_changed()
        A threshold, the minimum size or hole filling changed: instances can be
        recomputed from cached probabilities.
    """

    postprocess_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Advanced", parent, **FOLD_ICONS)
        self.setToolTip("Zoom, test-time augmentation, tiles and the thresholds that turn "
                        "probabilities into objects")
        body = QWidget()
        form = QFormLayout(body)
        form.setContentsMargins(0, 0, 0, 0)

        self.tile_size = spin(QSpinBox(), 64, 4096, 512, 64, "Tile edge in pixels; smaller uses less memory")
        self.overlap = spin(QDoubleSpinBox(), 0.0, 0.75, 0.25, 0.05, "Fraction by which tiles overlap")
        self.zoom = combo(ZOOMS, tip=(
            "Magnification at which the network sees the image. auto: when the objects found "
            "are under 10 px across the image is segmented again magnified (dense small nuclei "
            "split far better), over 22 px shrunk (large textured nuclei split less); a "
            "fine-tuned model sees images at the zoom it was fine-tuned at"
        ))
        self.tta = QCheckBox("average 8 mirrored/rotated views")
        self.tta.setToolTip(
            "Test-time augmentation: the network sees every tile flipped and rotated 8 ways and "
            "the results are averaged. 8x slower; objects come out slightly more accurate"
        )
        self.side_planes = combo(SIDE_PLANES, tip=(
            "Volumes (Z: depth): also predict the ZY and ZX planes and average them with the XY "
            "planes. About 3x the work; better 3D objects when voxels are near cubes. auto: when the "
            "layer's scale has Z within 1.5x the pixel size in Y and X; on: always; off: never"
        ))
        self.interior = spin(
            QDoubleSpinBox(), 0.05, 0.95, _DEFAULT.interior_threshold, 0.05,
            "P(interior) above which a pixel seeds an object; raise it to split touching objects less",
        )
        self.foreground = spin(
            QDoubleSpinBox(), 0.05, 0.95, _DEFAULT.foreground_threshold, 0.05,
            "1 - P(background) above which a pixel belongs to an object; raise it for tighter masks",
        )
        self.min_size = spin(QSpinBox(), 0, 100_000, _DEFAULT.min_size, 5, "Remove objects with fewer pixels")
        self.min_relative = spin(
            QDoubleSpinBox(), 0.0, 1.0, _DEFAULT.min_relative_size, 0.05,
            "Remove objects smaller than this fraction of the median object's area (fragments); 0 keeps them",
        )
        self.fill_holes = QCheckBox("fill holes")
        self.fill_holes.setChecked(_DEFAULT.fill_holes)
        self.fill_holes.setToolTip("Fill holes inside objects (dark nucleoli, spots) so each mask is solid")

        form.addRow("zoom", self.zoom)
        form.addRow("", self.tta)
        form.addRow("side planes", self.side_planes)
        form.addRow("tile size", self.tile_size)
        form.addRow("tile overlap", self.overlap)
        form.addRow("interior threshold", self.interior)
        form.addRow("foreground threshold", self.foreground)
        form.addRow("min object size", self.min_size)
        form.addRow("min relative size", self.min_relative)
        form.addRow("", self.fill_holes)
        self.addWidget(body)

        for box in (self.interior, self.foreground, self.min_size, self.min_relative):
            box.valueChanged.connect(self.postprocess_changed)
        self.fill_holes.toggled.connect(self.postprocess_changed)

    def params(self) -> InstanceParams:
        return InstanceParams(
            interior_threshold=self.interior.value(),
            foreground_threshold=self.foreground.value(),
            min_size=self.min_size.value(),
            min_relative_size=self.min_relative.value(),
            fill_holes=self.fill_holes.isChecked(),
        )

    def set_params(self, params: InstanceParams) -> None:
        """Show ``params`` (a model's tuned settings) without a recompute per box."""
        boxes = (self.interior, self.foreground, self.min_size, self.min_relative, self.fill_holes)
        for box in boxes:
            box.blockSignals(True)
        try:
            self.interior.setValue(params.interior_threshold)
            self.foreground.setValue(params.foreground_threshold)
            self.min_size.setValue(params.min_size)
            self.min_relative.setValue(params.min_relative_size)
            self.fill_holes.setChecked(params.fill_holes)
        finally:
            for box in boxes:
                box.blockSignals(False)

    def predict_kwargs(self) -> dict:
        """The settings that need a new network pass, as keyword arguments of ``segment_iter``."""
        return {"zoom": ZOOMS[self.zoom.currentText()], "tta": self.tta.isChecked(),
                "orientations": SIDE_PLANES[self.side_planes.currentText()],
                "tile_size": self.tile_size.value(), "overlap": self.overlap.value()}
