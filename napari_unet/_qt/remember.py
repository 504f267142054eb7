"""Widgets that remember their options between sessions (napari_unet.settings holds them)."""

from __future__ import annotations

from qtpy.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QSpinBox, QWidget

from napari_unet.settings import load_settings, save_settings


def remember(section: str, controls: dict[str, QWidget]) -> None:
    """Show each control's saved value (if still valid) and save it whenever the user changes it.

    Controls: QComboBox (by its text), QSpinBox/QDoubleSpinBox, checkable buttons. A saved
    value the control cannot take any more (an entry gone from a list) is left out.
    """
    saved = load_settings(section)
    for key, control in controls.items():
        if key in saved:
            _set(control, saved[key])
        _changed(control).connect(lambda *_, key=key, control=control: save_settings(section, {key: _get(control)}))


def restore_defaults(section: str, defaults: dict[str, tuple[QWidget, object]]) -> None:
    """Put every control back to its default (and save that)."""
    for control, value in defaults.values():
        _set(control, value)
    save_settings(section, {key: _get(control) for key, (control, _) in defaults.items()})


def current(controls: dict[str, QWidget]) -> dict[str, tuple[QWidget, object]]:
    """Each control with its value now: the defaults, taken before :func:`remember` runs."""
    return {key: (control, _get(control)) for key, control in controls.items()}


def _get(control: QWidget):
    if isinstance(control, QComboBox):
        return control.currentText()
    if isinstance(control, (QSpinBox, QDoubleSpinBox)):
        return control.value()
    if isinstance(control, QAbstractButton):
        return control.isChecked()
    raise TypeError(f"cannot remember a {type(control).__name__}")


def _set(control: QWidget, value) -> None:
    if isinstance(control, QComboBox):
        if isinstance(value, str) and control.findText(value) >= 0:
            control.setCurrentText(value)
    elif isinstance(control, QSpinBox) and isinstance(value, (int, float)) and not isinstance(value, bool):
        control.setValue(int(value))
    elif isinstance(control, QDoubleSpinBox) and isinstance(value, (int, float)) and not isinstance(value, bool):
        control.setValue(float(value))
    elif isinstance(control, QAbstractButton) and isinstance(value, bool):
        control.setChecked(value)


def _changed(control: QWidget):
    if isinstance(control, QComboBox):
        return control.currentTextChanged
    if isinstance(control, (QSpinBox, QDoubleSpinBox)):
        return control.valueChanged
    return control.toggled
