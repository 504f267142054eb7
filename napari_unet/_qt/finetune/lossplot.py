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
    """Loss per step (faint), its moving average (solid) and AP@0.5 on held-out pixels (orange).

    A job that trains more than once (fine-tuning's two halves, each a fresh copy of the
    model) draws each training's lines apart, its average started afresh; every check is a dot.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Training loss per step (faint), its moving average, and validation AP@0.5 when measured "
                        "(orange dots); two trainings (fine-tuning in two halves) are drawn apart")
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.runs: list[int] = []  # each step's training (TrainProgress.run)
        self._ema, self._n = 0.0, 0  # biased; divided by 1 - SMOOTHING**n, so early points average what came so far
        self.val: list[tuple[int, float]] = []  # (step, AP@0.5)
        self._val_runs: list[int] = []
        self.update()

    def add(self, record: TrainProgress) -> None:
        if not self.steps or record.step != self.steps[-1]:  # (a step comes again with its validation)
            if self.runs and record.run != self.runs[-1]:  # a fresh copy: its own average
                self._ema, self._n = 0.0, 0
            self.steps.append(record.step)
            self.losses.append(record.loss)
            self.runs.append(record.run)
            self._n += 1
            self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * record.loss
            self.smoothed.append(self._ema / (1 - SMOOTHING ** self._n))
        if record.val_ap50 is not None:
            self.val.append((record.step, record.val_ap50))
            self._val_runs.append(record.run)
        self.update()

    def pieces(self) -> list[list[int]]:
        """The steps drawn as one line, training by training."""
        out: list[list[int]] = []
        for k, (step, run) in enumerate(zip(self.steps, self.runs)):
            if k == 0 or run != self.runs[k - 1]:
                out.append([])
            out[-1].append(step)
        return out

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

            start = 0
            for piece in self.pieces():
                part = slice(start, start + len(piece))
                start += len(piece)
                for values, color, width in ((self.losses, LOSS, 1), (self.smoothed, SMOOTH, 2)):
                    self._line(painter, [point(s, v) for s, v in _thin(piece, values[part], area.width())], color,
                               width)
            for run in sorted(set(self._val_runs)):
                checks = [point(s, v, 0.0, 1.0) for (s, v), r in zip(self.val, self._val_runs) if r == run]
                self._line(painter, checks, VAL, 2, dots=True)
        painter.end()

    @staticmethod
    def _line(painter: QPainter, points: list[QPointF], color: QColor, width: float, dots: bool = False) -> None:
        if not points:
            return
        path = QPainterPath(points[0])
        for p in points[1:]:
            path.lineTo(p)
        painter.setPen(QPen(color, width))
        painter.drawPath(path)
        if dots:
            painter.setBrush(color)
            for p in points:
                painter.drawEllipse(p, 2.5, 2.5)


def _thin(steps: list[int], values: list[float], width: float) -> list[tuple[int, float]]:
    """At most about one point per pixel column: long runs stay cheap to draw."""
    every = max(1, int(len(steps) / max(width, 1)))
    return list(zip(steps[::every], values[::every]))
