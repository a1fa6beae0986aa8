"""HTTP byte ranges, entity tags and dates, as the week server reads them from a request."""

from __future__ import annotations

import email.utils
import re

#: More digits than any file size: a longer number in a Range is "larger than the file".
_DIGITS_MAX = 18
_RANGE_SPEC = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*")


class BadRequestError(Exception):
    """The request's target cannot name a file (400)."""


class UnsatisfiableRangeError(Exception):
    """The Range asks only for bytes past the end of the file (416)."""


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a ``Range`` header for a file of ``size`` bytes.

    None when the header is to be ignored (and the whole file sent, as HTTP
    allows): another unit, several ranges, or a malformed one. Raises
    :class:`UnsatisfiableRangeError` when the one range starts past the end.
    """
    unit, equals, spec = header.partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _RANGE_SPEC.fullmatch(spec)
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        first = _number(match[1])
        last = _number(match[2]) if match[2] else max(first, size - 1)
        if last < first:
            return None
        if first >= size:
            raise UnsatisfiableRangeError
        return first, min(last, size - 1)
    suffix = _number(match[2])
    if suffix == 0 or size == 0:
        raise UnsatisfiableRangeError
    return max(0, size - suffix), size - 1


def _number(digits: str) -> int:
    """A Range number; one too long to be a byte position counts as 10**18.

    ``int()`` of thousands of digits is slow, and refused past 4300.
    """
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _DIGITS_MAX else 10**_DIGITS_MAX


def entity_tags(header: str) -> list[str]:
    """The entity tags listed in an ``If-None-Match`` or ``If-Match`` header."""
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def opaque(tag: str) -> str:
    """An entity tag without its weakness mark, for weak comparison."""
    return tag[2:] if tag.startswith("W/") else tag


def http_date(header: str) -> float | None:
    """The moment an HTTP date (``If-Modified-Since``, ``If-Range``) names, as a POSIX
    timestamp; None for anything else, absurd dates included (year 99999999999, an offset
    of days, the 31st of February), which the request is then answered as if without."""
    try:
        return email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
