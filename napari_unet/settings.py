"""What the user chose last time — device, model, each widget's options — kept between sessions.

One JSON file in the per-user config folder (``~/.config/napari-unet/settings.json`` on
Linux; ``$NAPARI_UNET_CONFIG_DIR`` moves it), a section per widget. It is only ever a
convenience: a missing, unreadable or hand-broken file means defaults (a broken one is kept
aside as ``settings.json.broken`` so nothing the user wrote is lost), and every write is atomic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from napari_unet.io import atomic_path

ENV_VAR = "NAPARI_UNET_CONFIG_DIR"
FILE = "settings.json"


def settings_path() -> Path:
    """The settings file (it may not exist yet)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser() / FILE
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-unet", appauthor=False)) / FILE


def load_settings(section: str) -> dict[str, Any]:
    """The values saved for ``section`` (``{}`` when there are none or the file is unreadable)."""
    return dict(_read().get(section) or {})


def save_settings(section: str, values: dict[str, Any]) -> None:
    """Merge ``values`` into ``section`` and write the file atomically (plain JSON values only).

    Values already saved are not written again (a write syncs the disk: ~30 ms on a widget's
    first show).
    """
    data = _read()
    merged = {**(data.get(section) or {}), **values}
    if data.get(section) == merged:
        return
    data[section] = merged
    _write(data)


def reset_settings(section: str | None = None) -> None:
    """Forget ``section`` (``None``: everything): the next start uses the defaults."""
    data = {} if section is None else {k: v for k, v in _read().items() if k != section}
    _write(data)


def _read() -> dict[str, Any]:
    path = settings_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        try:  # keep what the user had, out of the way; start from the defaults
            path.replace(path.with_name(FILE + ".broken"))
        except OSError:
            pass
        return {}
    return data


def _write(data: dict[str, Any]) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
