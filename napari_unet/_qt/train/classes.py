"""The New model widget's class table, and the class map layer a classes model answers with."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

NAME_COLUMNS = ("class", "name", "label", "tissue")  # feature columns that name a labels layer's values


def feature_names(layer) -> dict[int, str]:
    """Names of label values from a Labels layer's features, if it has any.

    The value is the ``index`` column (else the row), the name the first of
    :data:`NAME_COLUMNS` present (else the first column of text).
    """
    table = getattr(layer, "features", None)
    if table is None or not len(table.columns):
        return {}
    text = [c for c in table.columns if c != "index" and table[c].dtype == object]
    column = next((c for c in NAME_COLUMNS if c in table.columns), text[0] if text else None)
    if column is None:
        return {}
    values = table["index"] if "index" in table.columns else range(len(table))
    return {int(v): str(name) for v, name in zip(values, table[column]) if str(name)}


def class_map_kwargs(names: dict[int, str], labels_layer=None) -> dict:
    """Labels-layer keyword arguments for a class map: the class names as features (the
    status bar names the class under the mouse) and the painted layer's colours, so each
    class looks the same in what was painted and in what the model answers.
    """
    values = sorted(set(names) | {0})
    kwargs = {"features": {"index": values, "class": [names.get(v, "background" if v == 0 else f"class {v}")
                                                      for v in values]}}
    if labels_layer is not None:
        kwargs["colormap"] = labels_layer.colormap
    return kwargs


class ClassTable(QTableWidget):
    """One row per painted label value: the value and an editable class name."""

    def __init__(self, parent=None):
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["value", "class name"])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setToolTip("The classes: each painted label value and its name (double-click a name to change "
                        "it); the names go into the model and the class map layer")
        self.setMaximumHeight(150)

    def show_values(self, values: list[int], known: dict[int, str]) -> None:
        """List ``values``; a name the user typed for a value is kept, else ``known``'s, else a default."""
        typed = self.names()
        self.setRowCount(len(values))
        for row, value in enumerate(values):
            item = QTableWidgetItem(str(value))
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.setItem(row, 0, item)
            default = "background" if value == 0 else f"class {value}"
            self.setItem(row, 1, QTableWidgetItem(typed.get(value) or known.get(value) or default))

    def names(self) -> dict[int, str]:
        """Label value -> class name, as the table shows them now."""
        out = {}
        for row in range(self.rowCount()):
            value, name = self.item(row, 0), self.item(row, 1)
            if value is not None and name is not None and name.text().strip():
                out[int(value.text())] = name.text().strip()
        return out
