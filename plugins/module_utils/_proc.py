# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a command: argv lists only, LC_ALL=C, a bounded time, and redaction of secrets.

Both CLI clients (abra, docker) go through :func:`run`; nothing in the collection builds a
shell string.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

REDACTED = "[REDACTED]"


@dataclass
class Result:
    argv: list
    rc: int
    stdout: str
    stderr: str
    duration: float = 0.0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


class CommandError(Exception):
    """A command that failed: always carries the command, exit code, stdout and stderr."""

    def __init__(self, message: str, result: Result):
        super().__init__(message)
        self.result = result

    def as_dict(self) -> dict:
        r = self.result
        return {"msg": str(self), "cmd": r.argv, "rc": r.rc, "stdout": r.stdout, "stderr": r.stderr}


@dataclass
class Redactor:
    """Replaces every known secret value with a marker. Values shorter than 6 characters are
    ignored: they are not secrets anyone generates and would shred ordinary text."""

    values: set = field(default_factory=set)

    def add(self, value) -> None:
        if isinstance(value, str) and len(value) >= 6:
            self.values.add(value)

    def __call__(self, text):
        if not isinstance(text, str) or not self.values:
            return text
        for v in sorted(self.values, key=len, reverse=True):
            text = text.replace(v, REDACTED)
        return text


def run(argv, env_extra=None, timeout=None, input_text=None, cwd=None, env_base=None) -> Result:
    """Run ``argv`` (a list) with ``LC_ALL=C``; never through a shell.

    ``env_base`` replaces the inherited environment (``os.environ``) when given: a command whose
    output depends on every variable it sees (compose interpolation) gets only what it is given.

    On timeout the whole process group is killed, so a child (e.g. ``docker stack deploy``
    under abra) does not outlive it.
    """
    if not isinstance(argv, (list, tuple)) or not argv:
        raise ValueError("argv must be a non-empty list")
    env = dict(os.environ if env_base is None else env_base)
    env.update({"LC_ALL": "C", "LANG": "C", "NO_COLOR": "1", "TERM": "dumb"})
    if env_extra:
        env.update({k: str(v) for k, v in env_extra.items()})
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [str(a) for a in argv], stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True,
            start_new_session=True)
    except OSError as exc:  # not found, not executable: a failed command, never a traceback
        return Result(argv=[str(a) for a in argv], rc=127, stdout="", stderr="cannot run %s: %s" % (argv[0], exc),
                      duration=round(time.monotonic() - start, 3))
    timed_out = False
    try:
        out, err = proc.communicate(input=input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
    return Result(argv=[str(a) for a in argv], rc=proc.returncode if not timed_out else 124,
                  stdout=out or "", stderr=err or "", duration=round(time.monotonic() - start, 3),
                  timed_out=timed_out)
