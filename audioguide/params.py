"""Click parameter types of the command line: values checked by the option schema, and
paths and texts that may not be given empty."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from audioguide.options import Option


def _refuse_empty(value: Any, param: click.Parameter | None, ctx: click.Context | None,
                  kind: click.ParamType[Any], what: str) -> None:
    if isinstance(value, str) and not value.strip():
        if not isinstance(param, click.Option):
            kind.fail(f"it is empty; give {what}.", param, ctx)
        default = param.default
        leave = (f"leave the option out for the default ({default})"
                 if isinstance(default, str | Path) and str(default) else "leave the option out")
        kind.fail(f"it is empty; give {what}, or {leave}.", param, ctx)


class GivenPath(click.Path):
    """A path that may not be empty (click would take "" for the current folder)."""

    def __init__(self, *, dir_okay: bool = True, file_okay: bool = True,
                 exists: bool = False) -> None:
        super().__init__(dir_okay=dir_okay, file_okay=file_okay, path_type=Path,
                         exists=exists)
        self.what = "a folder" if not file_okay else "a file" if not dir_okay else "a path"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        _refuse_empty(value, param, ctx, self, self.what)
        if isinstance(value, str) and any(
                unicodedata.category(c) in ("Cc", "Cs") for c in value):
            # Printed (the last line of stdout is the path made), it could not be shown
            # as it is: a terminal would act on it, and a script would get another path.
            self.fail(f"{value!r} holds control characters or bytes that are not text; "
                      f"give {self.what} whose name is plain text.", param, ctx)
        return super().convert(value, param, ctx)


class GivenText(click.types.StringParamType):
    """A text option that may not be empty (an empty one would silently mean the default
    or, worse, something else: every interface, the local machine)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        _refuse_empty(value, param, ctx, self, "a value")
        return super().convert(value, param, ctx)


#: A folder option (an output folder, a templates folder).
FOLDER = GivenPath(file_okay=False)
#: A folder that must be there already (a folder of templates to read).
EXISTING_FOLDER = GivenPath(file_okay=False, exists=True)
#: A file option or argument.
FILE = GivenPath(dir_okay=False)
#: A text option.
TEXT = GivenText()


class SchemaType(click.ParamType[Any]):
    """A number or a choice of the option schema on the command line: help lists the
    choices, shell completion offers them, and a bad value gets the schema's own message
    (the same one a plan file's bad value gets), with the command's other bad values."""

    def __init__(self, option: Option) -> None:
        from audioguide.options import Number

        self.option = option
        self.number = option.value if isinstance(option.value, Number) else None
        self.name = "number" if self.number else "choice"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        if self.number:
            return "INTEGER" if self.number.whole else "NUMBER"
        return "[" + "|".join(self._choices()) + "]"

    def _choices(self) -> list[str]:
        return [str(c) for c in self.option.value.choices]  # type: ignore[attr-defined]

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in self._choices() if c.startswith(incomplete)]

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        """The value in the schema's type where it reads as one; otherwise the text as
        given, which the request refuses in the schema's words, together with every other
        bad option of the command."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if self.number:
            try:
                return float(text)
            except ValueError:
                return value
        choices = {str(c): c for c in self.option.value.choices}  # type: ignore[attr-defined]
        return choices.get(text, value)


class BaseUrl(GivenText):
    """Where a week folder will be served: an http or https address with a host, which the
    feed, playlist and page put in front of every file's name."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from urllib.parse import urlsplit

        text = super().convert(value, param, ctx)
        accepted = "an http:// or https:// address such as http://192.168.1.20:8000/"
        if len(text) > 2000 or any(c.isspace() or not c.isprintable() for c in text):
            self.fail(f"{value!r} is not an address (spaces, control characters or over "
                      f"2000 characters); give {accepted}.", param, ctx)
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            self.fail(f"{text!r} is not an address ({exc}); give {accepted}.", param, ctx)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            self.fail(f"{text!r} is not an address podcast apps can fetch from; give "
                      f"{accepted}.", param, ctx)
        if parts.query or parts.fragment or parts.username or parts.password or port == 0:
            self.fail(f"{text!r} has a query, fragment, user name or port 0, which a "
                      f"folder's address cannot have; give {accepted}.", param, ctx)
        return text if text.endswith("/") else text + "/"


#: The --base-url of ``week`` and ``batch``.
BASE_URL = BaseUrl()
