# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence bundles: every abra call's output, swarm state and logs, scrubbed of secrets.

A run's redaction list (the generated secret values) lives in the run's private state
directory, mode 0600, and is deleted with the run; it never goes into the bundle.
"""

from __future__ import annotations

import datetime as _dt
import os
import re

from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Redactor, Result

_SAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


def load_redactor(path: str | None) -> Redactor:
    red = Redactor()
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                red.add(line.rstrip("\n"))
    return red


def add_redactions(path: str | None, values) -> None:
    values = [v for v in values if isinstance(v, str) and len(v) >= 6 and "\n" not in v]
    if not path or not values:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        for v in values:
            fh.write(v + "\n")


class Evidence:
    """Writes files into an evidence directory, always through the redactor."""

    def __init__(self, directory: str | None, redactor: Redactor | None = None):
        self.directory = directory
        self.redactor = redactor or Redactor()

    def path(self, *parts) -> str | None:
        if not self.directory:
            return None
        pieces = [piece for p in parts for piece in str(p).split("/") if piece and piece not in (".", "..")]
        return os.path.join(self.directory, *[_SAFE_RE.sub("_", p) for p in pieces])

    def write(self, name: str, text: str, subdir: str = "") -> str | None:
        path = self.path(subdir, name) if subdir else self.path(name)
        if not path:
            return None
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.redactor(text or ""))
        return path

    def log_command(self, result: Result) -> str | None:
        """One file per command: argv, exit code, duration, stdout, stderr."""
        if not self.directory:
            return None
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        words = [w for w in result.argv[1:] if not w.startswith("-")][:4]
        name = "%s-%s-%s.log" % (stamp, os.path.basename(result.argv[0]), "-".join(words))
        body = "$ %s\nexit: %s%s\nduration: %.3fs\n--- stdout ---\n%s\n--- stderr ---\n%s\n" % (
            " ".join(result.argv), result.rc, " (timed out)" if result.timed_out else "", result.duration,
            result.stdout, result.stderr)
        return self.write(name, body, subdir="commands")
