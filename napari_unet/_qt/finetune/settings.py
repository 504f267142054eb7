"""The Fine-tune widget's advanced settings, folded by default: budget, learning rate, encoder,
margin, the click network's share and the held-out check.
"""

from __future__ import annotations

from dataclasses import replace

from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget
from superqt import QCollapsible

from napari_unet._qt.widgets import FOLD_ICONS
from napari_unet.finetune.both import CLICK_SHARE
from napari_unet.finetune.clicks import CLICK_FINETUNE_DEFAULTS
from napari_unet.finetune.segmentation import FINETUNE_DEFAULTS
from napari_unet.training.holdout import MIN_OBJECTS

SECONDS, STEPS = "seconds", "steps"
CPU_SECONDS = 60  # on a CPU a time budget: minutes, not hours, whatever the image size
GPU_STEPS = FINETUNE_DEFAULTS.steps  # on a GPU a step budget: the same run on any card
EDIT_MARGIN = 8  # pixels around edited objects that count as checked background


class FinetuneSettings(QCollapsible):
    """Budget (seconds or steps), learning rate, frozen encoder, edit margin, click share, validation."""

    def __init__(self, device: str, parent: QWidget | None = None):
        super().__init__("Advanced", parent, **FOLD_ICONS)
        self.setToolTip("Training budget, learning rate, what is trained and the click network's share")
        body = QWidget()
        form = QFormLayout(body)
        form.setContentsMargins(0, 0, 0, 0)
        self.unit = QComboBox()
        self.unit.addItems([SECONDS, STEPS])
        self.unit.setToolTip("End training after this long, or after this many optimiser steps")
        self.budget = QSpinBox()
        self.budget.setRange(1, 1_000_000)
        self.budget.setToolTip("How long training may run (seconds or optimiser steps, as chosen above); "
                               "Stop ends it sooner, keeping the best weights so far")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1e-2)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(FINETUNE_DEFAULTS.lr)
        self.lr.setToolTip("Peak learning rate; lower it if the loss jumps about")
        self.freeze_encoder = QCheckBox("freeze the encoder")
        self.freeze_encoder.setChecked(FINETUNE_DEFAULTS.freeze_encoder)
        self.freeze_encoder.setToolTip("Train only the decoder: faster steps, less change to the features")
        self.margin = QSpinBox()
        self.margin.setRange(0, 200)
        self.margin.setValue(EDIT_MARGIN)
        self.margin.setToolTip("Pixels around the objects you edited that count as checked background")
        self.click_share = QSpinBox()
        self.click_share.setRange(0, 90)
        self.click_share.setValue(round(100 * CLICK_SHARE))
        self.click_share.setSuffix(" %")
        self.click_share.setToolTip("Part of the budget that teaches the click network the same corrections "
                                    "(simulated clicks on them); 0 leaves the click network as it is")
        self.validate = QCheckBox("check on held-out squares")
        self.validate.setChecked(True)
        self.validate.setToolTip(f"With at least {MIN_OBJECTS} annotated objects, two halves of the budget each "
                                 "train without half of the annotation (squares spread over it) and are checked "
                                 "there; the new model, their average, is put in use only when they do better "
                                 "(orange points)")
        form.addRow("budget", self.unit)
        form.addRow("", self.budget)
        form.addRow("learning rate", self.lr)
        form.addRow("", self.freeze_encoder)
        form.addRow("edit margin (px)", self.margin)
        form.addRow("click network", self.click_share)
        form.addRow("", self.validate)
        self.addWidget(body)
        self.use_defaults_for(device)

    def use_defaults_for(self, device: str) -> None:
        on_cpu = device == "cpu"
        self.unit.setCurrentText(SECONDS if on_cpu else STEPS)
        self.budget.setValue(CPU_SECONDS if on_cpu else GPU_STEPS)

    def budgets(self) -> dict:
        """``max_steps`` / ``max_seconds`` for :func:`napari_unet.finetune.segmentation.finetune_iter`."""
        if self.unit.currentText() == SECONDS:
            return {"max_steps": None, "max_seconds": float(self.budget.value())}
        return {"max_steps": int(self.budget.value()), "max_seconds": None}

    def job_args(self) -> dict:
        """The budgets and settings :func:`~napari_unet._qt.finetune.job.finetune_job` takes."""
        tuned = {"lr": self.lr.value(), "freeze_encoder": self.freeze_encoder.isChecked()}
        return {
            **self.budgets(),
            "config": replace(FINETUNE_DEFAULTS, **tuned),
            "click_config": replace(CLICK_FINETUNE_DEFAULTS, **tuned),
            "click_share": self.click_share.value() / 100,
            "validate": self.validate.isChecked(),
        }
