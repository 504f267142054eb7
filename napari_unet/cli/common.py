"""What every subcommand shares: one line on stderr per problem."""

from __future__ import annotations

import sys


def error(message: str) -> None:
    """Print ``napari-unet: message`` on stderr."""
    print(f"napari-unet: {message}", file=sys.stderr)
