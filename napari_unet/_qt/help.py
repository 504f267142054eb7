"""Each widget's link to its page of the docs, read in a window inside napari.

The docs ship inside the package (``napari_unet/_docs`` is the source tree's ``docs/``,
copied into the wheel), so the help opens offline, on the version installed, with its
screenshots. Links between pages stay in the help window; links to the web open in the
system's browser.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QUrl
from qtpy.QtGui import QDesktopServices, QTextCursor, QTextDocument
from qtpy.QtWidgets import QDialog, QLabel, QTextBrowser, QVBoxLayout, QWidget

DOCS = Path(__file__).resolve().parent.parent / "_docs"


class HelpWindow(QDialog):
    """A page of the docs, rendered from its Markdown, with its images and links."""

    def __init__(self, page: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.resize(720, 640)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)  # .md links are followed here, the web's by the browser
        self.browser.anchorClicked.connect(self._follow)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.browser)
        self.show_page(DOCS / page)

    def show_page(self, path: Path) -> None:
        """Render the Markdown file at ``path``; its images resolve beside it."""
        self.page = path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = (f"# Help not found\n\nThe page `{path.name}` is not in this installation "
                    f"({DOCS}). Reinstall napari-unet, or read the docs/ folder of its source.")
        self.browser.document().setBaseUrl(QUrl.fromLocalFile(str(path.parent) + "/"))
        self.browser.setMarkdown(text)
        self._fit_images()
        self.setWindowTitle(f"napari-unet help: {path.stem}")

    def _fit_images(self) -> None:
        """Show screenshots at most as wide as the window (they are taken at full screen size)."""
        width = max(200, self.width() - 60)
        document = self.browser.document()
        block = document.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                fmt = fragment.charFormat()
                if fmt.isImageFormat():
                    image = fmt.toImageFormat()
                    size = document.resource(QTextDocument.ResourceType.ImageResource, QUrl(image.name()))
                    natural = size.width() if size is not None and hasattr(size, "width") else width
                    if natural > width:
                        image.setWidth(width)
                        image.setHeight(size.height() * width / natural)
                        cursor = QTextCursor(document)
                        cursor.setPosition(fragment.position())
                        cursor.setPosition(fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor)
                        cursor.setCharFormat(image)
                it += 1
            block = block.next()

    def _follow(self, url: QUrl) -> None:
        target = url if url.isRelative() is False else self.browser.document().baseUrl().resolved(url)
        if target.isLocalFile() and target.toLocalFile().endswith(".md"):
            self.show_page(Path(target.toLocalFile()))
            if url.fragment():
                self.browser.scrollToAnchor(url.fragment())
        elif url.isRelative() and not url.path():  # "#section" on this page
            self.browser.scrollToAnchor(url.fragment())
        else:
            QDesktopServices.openUrl(target)


def help_link(page: str, topic: str) -> QLabel:
    """A "Help: <topic>" link that opens ``docs/<page>`` in a :class:`HelpWindow`."""
    label = QLabel(f'<a href="{page}">Help: {topic}</a>')
    label.setToolTip(f"Open the guide to {topic.lower()} (docs/{page}), with screenshots; it works offline")
    label.windows = []  # the open help windows, kept alive while shown

    def show(href: str) -> None:
        window = HelpWindow(href, label.window())
        label.windows = [w for w in label.windows if w.isVisible()] + [window]
        window.show()

    label.linkActivated.connect(show)
    return label
