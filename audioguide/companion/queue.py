"""Sessions made from the phone: a form's answers checked by the option schema, then built
one at a time from a short queue, with progress, an estimate of the time left, and a way
to cancel. A finished session joins its week's page ("Made for you"), feed and playlist.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from audioguide.errors import AudioguideError, RequestError
from audioguide.request import Request

log = logging.getLogger(__name__)

#: What the form may set, as plan keys (the option schema checks each).
FORM_KEYS = ("kind", "minutes", "feelings", "focus", "intention", "safe_person", "walking",
             "ambience", "voice")
#: Sessions one listener may have waiting (one more may be building) ...
QUEUE_MAX = 3
#: ... and all the listeners of a batch together.
QUEUE_ALL = 12
#: Seconds of building per minute of audio, before any build here has been measured.
FIRST_GUESS_S = 4.0


class CancelledError(Exception):
    """The listener cancelled the build."""


@dataclass
class Job:
    """One session asked for from the page."""

    id: int
    listener: str
    folder: Path
    request: Request
    state: str = "waiting"  # building, done, failed, cancelled
    stage: str = ""
    done: int = 0
    total: int = 0
    started: float = 0.0
    error: str = ""
    session: str = ""
    #: Made from the form (it joins "Made for you"), not a session of the week made again.
    made: bool = True
    cancel: threading.Event = field(default_factory=threading.Event)

    def view(self, per_minute: float) -> dict[str, Any]:
        """What the page shows of it."""
        left = None
        if self.state in ("waiting", "building"):
            elapsed = time.monotonic() - self.started if self.state == "building" else 0.0
            left = max(1, round(self.request.minutes * per_minute - elapsed))
        return {"id": self.id, "kind": self.request.kind, "minutes": self.request.minutes,
                "state": self.state, "stage": self.stage, "done": self.done,
                "total": self.total, "eta_s": left, "error": self.error,
                "session": self.session}


def form_request(answers: dict[str, Any], folder: Path) -> Request:
    """The request the form's ``answers`` make, checked as a plan's session is (a clear
    RequestError naming the field otherwise), to be written into ``folder``; its file name
    is given when it is queued."""
    from audioguide.request import validate
    from audioguide.week.planfile import OPTIONS, value_problems

    unknown = sorted(set(answers) - set(FORM_KEYS))
    if unknown:
        raise RequestError(unknown[0], f"the form has no such field; it takes "
                           f"{', '.join(FORM_KEYS)}")
    for key in ("kind", "minutes"):
        if answers.get(key) in (None, ""):
            raise RequestError(key, "it is missing; choose a kind and a length")
    minutes = answers["minutes"]
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise RequestError("minutes", f"{minutes!r} is not a number of minutes")
    answers = {k: v for k, v in answers.items() if v not in (None, "", [])}
    problems = value_problems(answers)
    if problems:
        raise RequestError(*problems[0])
    if not isinstance(answers["kind"], str):
        raise RequestError("kind", f"{answers['kind']!r} should be the name of a kind")
    request = Request(kind=answers["kind"], minutes=float(answers["minutes"]), out_dir=folder,
                      date=dt.date.today())
    changes = {OPTIONS[k].field: OPTIONS[k].value.check(OPTIONS[k].value.from_plan(v))
               for k, v in answers.items() if k in OPTIONS}
    request = validate(replace(request, **changes))
    if request.voice is not None:  # found now, so the page is told, not a failed build
        from audioguide.tts import get_engine, resolve_voice

        resolve_voice(get_engine(request.engine), request.voice)
    return request


def made_stem(number: int, request: Request) -> str:
    """``made-3-breath-10min``: the file name (without ``.mp3``) of the ``number``th session
    made from the page."""
    return f"made-{number}-{request.kind}-{request.minutes:g}min"


def numbers_taken(folder: Path) -> set[int]:
    """The numbers of the sessions made from the page that ``folder`` holds, listed or not
    (a file a failed or older run left is never written over)."""
    found = set()
    for path in folder.glob("made-*"):
        number = path.name.split("-")[1]
        if number.isdigit():
            found.add(int(number))
    return found


def form_schema() -> dict[str, Any]:
    """The form's choices and limits, from the option schema and the kinds' headers."""
    from audioguide.options import BY_FIELD, Choice, Text, Words
    from audioguide.script.templates import kinds

    def limit(name: str) -> int:
        value = BY_FIELD[name].value
        return value.limit if isinstance(value, Text) else 0

    feelings, focus, ambience = (BY_FIELD[n].value for n in ("feelings", "focus", "ambience"))
    assert isinstance(feelings, Words) and isinstance(focus, Words)
    assert isinstance(ambience, Choice)
    return {
        "kinds": [{"name": k.name, "title": k.title, "min": k.min_minutes,
                   "max": k.max_minutes, "uses": sorted(k.uses),
                   "walking": k.walking_safe} for k in kinds().values()],
        "focus": list(focus.known), "feelings_max": feelings.most,
        "feeling_max": feelings.word_limit, "ambience": list(ambience.choices),
        "intention_max": limit("intention"), "safe_person_max": limit("safe_person"),
        "voice_max": limit("voice"),
    }


class BuildQueue:
    """Builds sessions one at a time in a thread of its own."""

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}
        self._waiting: deque[Job] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        #: Seconds of building per minute of audio, as measured by the last build.
        self.per_minute = FIRST_GUESS_S
        self._thread = threading.Thread(target=self._run, name="audioguide-builds",
                                        daemon=True)
        self._thread.start()

    def add(self, listener: str, folder: Path, answers: dict[str, Any]) -> Job:
        """Queue a session from the form's ``answers`` (RequestError if they are not
        accepted, or the listener's queue is full)."""
        self._check_room(listener)
        request = form_request(answers, folder)
        with self._lock:
            self._check_room(listener)
            # The next number above every one the folder or a job holds, taken under the
            # lock: two requests at once never get the same file.
            taken = numbers_taken(folder) | {
                int(j.request.file_stem.split("-")[1]) for j in self.jobs.values()
                if j.made and j.folder == folder and j.request.file_stem}
            request = replace(request, file_stem=made_stem(max(taken, default=0) + 1, request))
            job = Job(next(self._ids), listener, folder, request)
            self.jobs[job.id] = job
            self._waiting.append(job)
            self._wake.notify()
        return job

    def _check_room(self, listener: str) -> None:
        mine = sum(j.listener == listener for j in self._waiting)
        if mine >= QUEUE_MAX:
            raise RequestError("queue", f"{QUEUE_MAX} of your sessions are waiting already; "
                               "wait for one to finish, or cancel one")
        if len(self._waiting) >= QUEUE_ALL:
            raise RequestError("queue", f"{QUEUE_ALL} sessions are waiting to be made for the "
                               "listeners of this server; try again in a few minutes")

    def again(self, listener: str, folder: Path, request: Request) -> None:
        """Queue a session of the week to be made again (the review, after the log
        changed); one already waiting for the same file takes the newer request."""
        with self._lock:
            for job in self._waiting:
                if job.folder == folder and job.request.file_stem == request.file_stem:
                    job.request = request
                    return
            job = Job(next(self._ids), listener, folder, request, made=False)
            self.jobs[job.id] = job
            self._waiting.append(job)
            self._wake.notify()

    def cancel(self, listener: str, number: int) -> Job | None:
        """Cancel a waiting or building job of ``listener``'s; None if there is none."""
        with self._lock:
            job = self.jobs.get(number)
            if job is None or job.listener != listener:
                return None
            if job.state == "waiting":
                self._waiting.remove(job)
                job.state = "cancelled"
            elif job.state == "building":
                job.cancel.set()
            return job

    def views(self, listener: str) -> list[dict[str, Any]]:
        """``listener``'s jobs, newest last; a waiting one's time left counts the builds
        ahead of it."""
        with self._lock:
            ahead = sum(max(0.0, j.request.minutes * self.per_minute
                            - (time.monotonic() - j.started))
                        for j in self.jobs.values() if j.state == "building")
            shown = []
            for job in self.jobs.values():
                view = job.view(self.per_minute)
                if job.state == "waiting":
                    ahead += job.request.minutes * self.per_minute
                    view["eta_s"] = max(1, round(ahead))
                if job.listener == listener:
                    shown.append(view)
            return shown

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    self._wake.wait()
                job = self._waiting.popleft()
                job.state, job.started = "building", time.monotonic()
            self._build(job)

    def _build(self, job: Job) -> None:
        from audioguide.builder import build
        from audioguide.week import MANIFEST
        from audioguide.week.finish import add_made, publish

        def progress(stage: str, done: int, total: int) -> None:
            if job.cancel.is_set():
                raise CancelledError
            job.stage, job.done, job.total = stage, done, total

        try:
            path = build(job.request, progress)
            if job.made:
                add_made(job.folder, path.name)
            else:  # its page and feed carry the new transcript and length
                publish(job.folder, json.loads((job.folder / MANIFEST).read_text("utf-8")))
        except CancelledError:
            job.state = "cancelled"
        except AudioguideError as exc:
            job.state, job.error = "failed", exc.message
        except Exception as exc:  # a bug: logged in full, the page gets one line
            log.exception("building %s failed", job.request.kind)
            job.state, job.error = "failed", f"the session could not be built ({exc})"
        else:
            job.state, job.session = "done", path.name
            elapsed = time.monotonic() - job.started
            self.per_minute = max(0.5, elapsed / job.request.minutes)
