"""Fresh Python interpreters that run one of audioguide's functions and answer on a socket.

Used where a fork would be unsafe (a speech engine already initialised) or unwanted
(a template worker that must see nothing of this process), and where multiprocessing's
spawn would start its resource tracker, a process that stays for the rest of the build.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


def start(entry: str, args: Sequence[str], flags: Sequence[str] = ("-I",),
          **popen: Any) -> tuple[subprocess.Popen[bytes], Connection]:
    """Start ``python FLAGS`` calling ``entry`` ("module:function") with its end of a socket
    (a file descriptor) and ``args``; it imports from this process's ``sys.path``. Standard
    input and output are /dev/null; ``popen`` adds to what :class:`subprocess.Popen` gets."""
    from multiprocessing.connection import Connection

    module, function = entry.split(":")
    boot = ("import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
            f"from {module} import {function}; {function}(int(sys.argv[2]), *sys.argv[3:])")
    paths = json.dumps([str(Path(p).absolute()) for p in sys.path])
    ours, theirs = socket.socketpair()
    try:
        with theirs:
            proc = subprocess.Popen(
                [sys.executable, *flags, "-c", boot, paths, str(theirs.fileno()), *args],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, **popen)
    except BaseException:
        ours.close()
        raise
    return proc, Connection(ours.detach())
