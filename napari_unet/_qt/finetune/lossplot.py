"""A small live plot of the training loss (and validation AP when there is one), drawn with QPainter."""

from __future__ import annotations

from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_unet.training.engine import TrainProgress

SMOOTHING = 0.9  # EMA of the loss drawn over the noisy per-step values
MARGIN = 6
LOSS, SMOOTH, VAL = QColor(120, 160, 220, 110), QColor(90, 160, 255), QColor(250, 180, 60)


class LossPlot(QWidget):
    """Loss per step (faint), its moving average (solid) and AP@0.5 on held-out pixels (orange)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Training loss per step (faint), its moving average, and validation AP@0.5 when measured")
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._ema = 0.0  # biased; divided by 1 - SMOOTHING**n, so early points average what came so far
        self.val: list[tuple[int, float]] = []  # (step, AP@0.5)
        self.update()

    def add(self, record: TrainProgress) -> None:
        if not self.steps or record.step != self.steps[-1]:  # (a step comes again with its validation)
            self.steps.append(record.step)
            self.losses.append(record.loss)
            self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * record.loss
            self.smoothed.append(self._ema / (1 - SMOOTHING ** len(self.steps)))
        if record.val_ap50 is not None:
            self.val.append((record.step, record.val_ap50))
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(240, 100)

    def summary(self) -> str:
        if not self.steps:
            return ""
        text = f"step {self.steps[-1]}, loss {self.smoothed[-1]:.3f}"
        return text + (f", validation AP@0.5 {self.val[-1][1]:.2f}" if self.val else "")

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_height = self.fontMetrics().height()
        area = QRectF(self.rect()).adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN - text_height)
        painter.setPen(QPen(self.palette().mid().color()))
        painter.drawRect(area)
        painter.setPen(QPen(self.palette().text().color()))
        painter.drawText(QRectF(area.left(), area.bottom() + 2, area.width(), text_height),
                         Qt.AlignmentFlag.AlignLeft, self.summary() or "the loss appears here while training")
        if len(self.steps) >= 2:
            low, high = min(self.losses), max(self.losses)
            span_x, span_y = max(1, self.steps[-1] - self.steps[0]), max(1e-9, high - low)

            def point(step: int, value: float, lo: float = low, span: float = span_y) -> QPointF:
                x = area.left() + (step - self.steps[0]) / span_x * area.width()
                return QPointF(x, area.bottom() - (value - lo) / span * area.height())

            self._line(painter, [point(s, v) for s, v in _thin(self.steps, self.losses, area.width())], LOSS, 1)
            self._line(painter, [point(s, v) for s, v in _thin(self.steps, self.smoothed, area.width())], SMOOTH, 2)
            if self.val:
                self._line(painter, [point(s, v, 0.0, 1.0) for s, v in self.val], VAL, 2)
        painter.end()

    @staticmethod
    def _line(painter: QPainter, points: list[QPointF], color: QColor, width: float) -> None:
        if not points:
            return
        path = QPainterPath(points[0])
        for p in points[1:]:
            path.lineTo(p)
        painter.setPen(QPen(color, width))
        painter.drawPath(path)


def _thin(steps: list[int], values: list[float], width: float) -> list[tuple[int, float]]:
    """At most about one point per pixel column: long runs stay cheap to draw."""
    every = max(1, int(len(steps) / max(width, 1)))
    return list(zip(steps[::every], values[::every]))
