"""Writing a benchmark's section of docs/benchmarks.md (other sections are kept)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(title: str, body: str, path: Path = DOCS) -> None:
    """Replace the ``## title`` section of ``path`` with ``body``, or append it."""
    section = f"## {title}\n\n{body.strip()}\n"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: section + "\n", old) if pattern.search(old) else old.rstrip() + "\n\n" + section
    path.write_text(new.rstrip() + "\n")
    print(f"wrote the {title} section of {path}")
