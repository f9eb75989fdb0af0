"""Deprecated alias of :mod:`netns_kit.state`, kept for the 0.2 series.

The readers moved to ``netns_kit.state``: a module called ``inspect`` shadowed the
standard library's inside the package.  Every name still resolves here, with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any

from . import state as _state


def __getattr__(name: str) -> Any:
    value = getattr(_state, name)  # AttributeError for names state does not have
    warnings.warn(
        f"netns_kit.inspect.{name} moved to netns_kit.state.{name}; "
        "netns_kit.inspect goes away in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
