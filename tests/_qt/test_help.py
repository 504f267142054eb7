"""Each dock links to its page of the docs, which opens inside napari with its screenshots."""

from __future__ import annotations

import pytest
from qtpy.QtCore import QUrl
from qtpy.QtGui import QTextDocument
from qtpy.QtWidgets import QLabel

from napari_unet._qt.help import DOCS, HelpWindow

PAGES = {"Segment": "segmenting.md", "Click to segment": "clicking.md", "Fine-tune": "finetuning.md",
         "New model": "new-task.md"}


def _open_help(widget) -> HelpWindow:
    link = next(label for label in widget.findChildren(QLabel) if label.text().startswith("<a href="))
    link.linkActivated.emit(link.text().split('"')[1])  # what a click on the link sends
    return link.windows[-1]


@pytest.mark.parametrize("dock", sorted(PAGES))
def test_each_dock_opens_its_docs_page(make_napari_viewer, dock):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", dock)
    window = _open_help(widget)
    page = DOCS / PAGES[dock]
    assert window.isVisible() and window.page == page
    title = page.read_text().splitlines()[0].lstrip("# ").strip()
    assert window.browser.toPlainText().startswith(title)


def test_the_help_shows_the_screenshots_and_follows_links_between_pages(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "Segment")
    window = _open_help(widget)
    document = window.browser.document()
    images = [line.split("](")[1].split(")")[0] for line in window.page.read_text().splitlines()
              if line.startswith("![")]
    assert images, "segmenting.md shows screenshots"
    shown = document.resource(QTextDocument.ResourceType.ImageResource, QUrl(images[0]))
    assert shown is not None and not shown.isNull(), f"{images[0]} did not load"
    window.browser.anchorClicked.emit(QUrl("troubleshooting.md"))
    assert window.page == DOCS / "troubleshooting.md"
    assert "troubleshooting" in window.windowTitle()


def test_the_docs_ship_with_the_package():
    assert {p.name for p in DOCS.glob("*.md")} >= set(PAGES.values())
    assert any((DOCS / "images").glob("*.png"))
