"""Names a package imports on first use (PEP 562), so importing the package stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, api: dict[str, str], namespace: dict) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: ``api`` maps each name to the module holding
    it, imported when the name is first asked for and then kept in ``namespace``.
    """

    def __getattr__(name: str):  # noqa: N807 (the module hook's own name)
        module = api.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(module), name)
        return value

    return __getattr__
