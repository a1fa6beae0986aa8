"""Files in folders where anything may have been planted: the speech cache, the calibration.

A name there may be a link (to ``/etc/shadow``, or out of the folder), a FIFO
that never answers, a device that never ends (``/dev/zero``), a folder, or a
file far larger than anything audioguide writes. So a file is opened without
following a link at its last step and without waiting (``O_NOFOLLOW``,
``O_NONBLOCK``), used only when ``fstat`` says it is a regular file, and read
only up to a cap; anything else raises :class:`Unusable`, naming what was
found, and the caller treats the file as missing or damaged.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

#: Opens a folder, never through a link at its last step.
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: What ``open`` raises for a link at the last step of an ``O_NOFOLLOW`` path (EMLINK on
#: FreeBSD), or for a file where a folder should be.
NOT_FOLLOWED = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)


class Unusable(Exception):  # noqa: N818 - it names the file's state, like ``OSError``
    """A file that is not a regular file of a sane size; the message says what it is."""


def kind(mode: int) -> str:
    """What a file of ``mode`` is, in words (for messages)."""
    for test, words in ((stat.S_ISLNK, "a link"), (stat.S_ISFIFO, "a FIFO"),
                        (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def open_regular(path: Path | str, most: int, dir_fd: int | None = None,
                 follow: bool = False) -> BinaryIO:
    """``path`` opened for reading if it is a regular file of at most ``most`` bytes; never
    waits (a FIFO, a device) and, unless ``follow``, never goes through a link at its last
    step. Raises :class:`Unusable` for anything else, ``OSError`` when it cannot be opened."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if not follow and exc.errno in (errno.ELOOP, errno.EMLINK):
            raise Unusable("a link") from None
        raise
    fh = os.fdopen(fd, "rb")
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        fh.close()
        raise Unusable(kind(st.st_mode))
    if st.st_size > most:
        fh.close()
        raise Unusable(f"a file of {st.st_size} bytes, more than the {most} accepted")
    return fh


def read_most(fh: BinaryIO, most: int) -> bytes:
    """All of ``fh``, or :class:`Unusable` if it holds more than ``most`` bytes (a file that
    grew after it was opened)."""
    data = fh.read(most + 1)
    if len(data) > most:
        raise Unusable(f"a file of more than the {most} bytes accepted")
    return data


def lkind(path: Path | str, dir_fd: int | None = None) -> str | None:
    """What is at ``path`` itself (a link is not followed), or None when nothing is."""
    try:
        return kind(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return None
