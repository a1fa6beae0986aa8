"""audioguide: voice-guided practice sessions rendered offline to tagged MP3s.

The public API, loaded lazily so that ``import audioguide`` stays cheap::

    import audioguide

    request = audioguide.Request(kind="breath", minutes=10, name="Alex")
    plan = audioguide.plan(request)          # the script, spoken and fitted; no audio
    path = audioguide.build(request)         # output/breath-10min-alex.mp3

- :class:`Request`, :class:`Pace`: what a session is (see :data:`OPTIONS`).
- :func:`plan`: render, speak and fit a session (:func:`describe_cues` lists its script
  with start times); :func:`build`: make its MP3.
- :func:`load_week`, :func:`build_week`: a week from a plan file.
- :data:`ENGINES`: the speech engines by name; :func:`kinds`: the session kinds.
- The errors: :class:`AudioguideError` and its subclasses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module it lives in.
_EXPORTS = {
    "Request": "audioguide.request",
    "Pace": "audioguide.request",
    "validate": "audioguide.request",
    "OPTIONS": "audioguide.options",
    "plan": "audioguide.planning",
    "Plan": "audioguide.planning",
    "describe_cues": "audioguide.planning",
    "build": "audioguide.builder",
    "build_week": "audioguide.week.build",
    "load_week": "audioguide.week.planfile",
    "kinds": "audioguide.script.templates",
    "ENGINES": "audioguide.tts",
    "AudioguideError": "audioguide.errors",
    "RequestError": "audioguide.errors",
    "TooShortError": "audioguide.errors",
    "TooLongError": "audioguide.errors",
    "TemplateError": "audioguide.errors",
    "ToolMissingError": "audioguide.errors",
    "EngineError": "audioguide.errors",
    "EncodeError": "audioguide.errors",
}
_RENAMED = {"load_week": "load"}

__all__ = [  # noqa: RUF022 - the order of _EXPORTS
    "__version__",
    "Request",
    "Pace",
    "validate",
    "OPTIONS",
    "plan",
    "Plan",
    "describe_cues",
    "build",
    "build_week",
    "load_week",
    "kinds",
    "ENGINES",
    "AudioguideError",
    "RequestError",
    "TooShortError",
    "TooLongError",
    "TemplateError",
    "ToolMissingError",
    "EngineError",
    "EncodeError",
]

if TYPE_CHECKING:
    from audioguide.builder import build
    from audioguide.errors import (
        AudioguideError,
        EncodeError,
        EngineError,
        RequestError,
        TemplateError,
        ToolMissingError,
        TooLongError,
        TooShortError,
    )
    from audioguide.options import OPTIONS
    from audioguide.planning import Plan, describe_cues, plan
    from audioguide.request import Pace, Request, validate
    from audioguide.script.templates import kinds
    from audioguide.tts import ENGINES
    from audioguide.week.build import build_week
    from audioguide.week.planfile import load as load_week


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'audioguide' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
