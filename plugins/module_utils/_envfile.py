# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one reader of ``.env.sample`` and app ``.env`` files, with abra's semantics.

abra reads env files with (a fork of) godotenv, and this reader follows those rules:

- ``KEY=value`` and ``export KEY=value``; the last active line of a key wins;
- unquoted values end at an inline comment (whitespace then ``#``) and are trimmed;
- ``'single'`` quotes are literal; ``"double"`` quotes know ``\\n``, ``\\"``, ``\\\\`` and ``\\$``;
  both may span lines (a multi-line value);
- ``$VAR`` and ``${VAR}`` expand to what the file set *before* that line (so
  ``COMPOSE_FILE="$COMPOSE_FILE:compose.x.yml"`` chains), except in single quotes; a name the
  file never set expands to nothing;
- the comment after a value carries abra's secret options: ``length=N``, ``charset=...``,
  ``generate=false``.

A commented-out ``KEY=value`` line never shadows an active one. Commented-out
``SECRET_*_VERSION`` and ``COMPOSE_FILE`` lines are what a recipe offers as optional overlays:
they are kept (``commented``), never active, and a commented line is read one line at a time (a
commented multi-line value never opens a quote). A line that is neither blank, a comment nor an
assignment is an error that names the file and the line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

_KEY_RE = re.compile(r"^(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_COMMENTED_RE = re.compile(r"^#+\s*(export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_EXPAND_RE = re.compile(r"\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SECRET_KEY_RE = re.compile(r"^SECRET_([A-Z0-9_]+)_VERSION$")
_OPTION_RE = re.compile(r"(?:^|\s)([a-z]+)=(\S+)")
_SHELL_EXPORT_RE = re.compile(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)")


class EnvFileError(ValueError):
    """A malformed env file: the message names the file and the line."""


@dataclass
class EnvEntry:
    key: str
    value: str                 # expanded, quotes removed
    line: int
    commented: bool = False
    exported: bool = False
    end_line: int = 0          # the last line of a multi-line value (0: the same as ``line``)
    options: dict = field(default_factory=dict)   # from the trailing comment: length, charset, generate


@dataclass
class EnvFile:
    name: str
    entries: list = field(default_factory=list)

    @property
    def active(self) -> dict:
        """``{KEY: value}`` of the active lines (the last one of a key wins)."""
        return {e.key: e.value for e in self.entries if not e.commented}

    @property
    def commented(self) -> dict:
        """``{KEY: value}`` of commented-out assignments of keys no active line sets."""
        active = self.active
        return {e.key: e.value for e in self.entries if e.commented and e.key not in active}

    def entry(self, key: str) -> EnvEntry | None:
        """The entry that speaks for ``key``: its last active line, else its last commented one."""
        found = None
        for e in self.entries:
            if e.key == key and (not e.commented or found is None or found.commented):
                found = e
        return found

    def keys(self) -> list:
        seen = []
        for e in self.entries:
            if e.key not in seen:
                seen.append(e.key)
        return seen

    def secrets(self) -> dict:
        """``{SECRET_X_VERSION: {"version", "commented", "options"}}``, commented ones included."""
        out = {}
        for key in self.keys():
            if _SECRET_KEY_RE.match(key):
                e = self.entry(key)
                out[key] = {"version": e.value, "commented": e.commented, "options": dict(e.options)}
        return out

    def overlays(self) -> list:
        """The COMPOSE_FILE values of commented-out lines (expanded against the active value at
        that point), without the active value itself: the recipe's optional overlays."""
        default = self.active.get("COMPOSE_FILE", "compose.yml")
        out = []
        for e in self.entries:
            if e.key == "COMPOSE_FILE" and e.commented and e.value and e.value != default and e.value not in out:
                out.append(e.value)
        return out


def compose_files(value: str | None) -> list:
    """``COMPOSE_FILE`` as a list of paths (``compose.yml`` when unset or empty)."""
    files = [f for f in str(value or "").split(":") if f.strip()]
    return [f.strip() for f in files] or ["compose.yml"]


def secret_key_name(key: str) -> str | None:
    """``SECRET_DB_PASSWORD_VERSION`` -> ``db_password``: abra's convention, only a fallback when
    no compose file names the secret."""
    m = _SECRET_KEY_RE.match(key)
    return m.group(1).lower() if m else None


def _expand(text: str, known: dict) -> str:
    def repl(m):
        if m.group(0) == "\\$":
            return "$"
        return known.get(m.group(1) or m.group(2), "")
    return _EXPAND_RE.sub(repl, text)


def _options(comment: str) -> dict:
    return dict(_OPTION_RE.findall(comment or ""))


def _unquoted(rest: str) -> tuple:
    """``(value, comment)`` of an unquoted value: it ends where whitespace then ``#`` starts."""
    m = re.search(r"\s#", rest)
    if m:
        return rest[:m.start()].strip(), rest[m.end():]
    if rest.startswith("#"):
        return "", rest[1:]
    return rest.strip(), ""


_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def _double(body: str) -> str:
    """godotenv's escapes in double quotes, one pass: ``\\n`` and ``\\r`` are control characters,
    ``\\$`` stays for :func:`_expand` (a literal ``$``), any other ``\\X`` is ``X``."""
    def repl(m):
        c = m.group(1)
        return {"n": "\n", "r": "\r", "$": "\\$"}.get(c, c)
    return _ESCAPE_RE.sub(repl, body)


def _commented_value(rest: str, known: dict) -> tuple:
    """A commented-out line's value, read leniently: an unterminated quote is just text."""
    rest = rest.strip()
    if rest[:1] in ("\"", "'"):
        end = rest.find(rest[0], 1)
        if end > 0:
            body, comment = rest[1:end], rest[end + 1:]
            value = body if rest[0] == "'" else _expand(_double(body), known)
            return value, comment.split("#", 1)[1] if "#" in comment else ""
        return rest, ""
    value, comment = _unquoted(rest)
    return _expand(value, known), comment


def parse_env(text: str, name: str = ".env") -> EnvFile:
    """Read an env file's text; ``name`` is the file named in errors."""
    out = EnvFile(name=name)
    known = {}
    lines = (text or "").replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        raw, lineno = lines[i], i + 1
        i += 1
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = _COMMENTED_RE.match(line)
            if m:
                value, comment = _commented_value(m.group(3), known)
                out.entries.append(EnvEntry(m.group(2), value, lineno, commented=True,
                                            exported=bool(m.group(1)), options=_options(comment)))
            continue
        m = _KEY_RE.match(line)
        if not m:
            raise EnvFileError("%s line %d is not KEY=VALUE: %r" % (name, lineno, raw[:120]))
        key, rest = m.group(2), line[m.end():].lstrip()
        if rest[:1] in ("\"", "'"):
            quote, body, start = rest[0], rest[1:], lineno
            end = _closing(body, quote)
            while end < 0:
                if i >= len(lines):
                    raise EnvFileError("%s line %d: the %s quote of %s is never closed"
                                       % (name, start, "double" if quote == '"' else "single", key))
                body += "\n" + lines[i]
                i += 1
                end = _closing(body, quote)
            value, after = body[:end], body[end + 1:]
            comment = after.split("#", 1)[1] if "#" in after else ""
            if after.split("#", 1)[0].strip():
                raise EnvFileError("%s line %d: text after the closing quote of %s: %r"
                                   % (name, i, key, after.strip()[:60]))
            value = value if quote == "'" else _expand(_double(value), known)
        else:
            value, comment = _unquoted(rest)
            value = _expand(value, known)
        known[key] = value
        out.entries.append(EnvEntry(key, value, lineno, exported=bool(m.group(1)), options=_options(comment),
                                    end_line=i))
    return out


def _closing(body: str, quote: str) -> int:
    """Index of the quote that closes ``body`` (a backslash escapes one in double quotes), -1 if none."""
    j = 0
    while j < len(body):
        c = body[j]
        if quote == '"' and c == "\\":
            j += 2
            continue
        if c == quote:
            return j
        j += 1
    return -1


_PLAIN_RE = re.compile(r"[A-Za-z0-9_./:,@%+=-]*\Z")


def env_line(key: str, value: str) -> str:
    """The ``KEY=value`` line this reader reads back as ``value``: bare when it is plain,
    single-quoted (literal) when it holds ``$``, ``#``, quotes or spaces, double-quoted with
    escapes when it holds a single quote too."""
    value = str(value)
    if _PLAIN_RE.match(value):
        return "%s=%s" % (key, value)
    if "'" not in value and "\n" not in value:
        return "%s='%s'" % (key, value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n")
    return '%s="%s"' % (key, escaped)


def read_env(path: str) -> EnvFile:
    """An env file on disk (an absent file reads as empty); undecodable bytes are an error."""
    name = os.path.basename(path)
    if not os.path.exists(path):
        return EnvFile(name=name)
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_env(fh.read(), name=path)
    except UnicodeDecodeError as exc:
        raise EnvFileError("%s is not UTF-8 text: %s" % (path, exc))


def shell_exports(text: str) -> dict:
    """``export KEY=value`` lines of a recipe's ``abra.sh``: the config versions abra exports
    into the deploy's environment (``export APP_ENTRYPOINT_VERSION=v4``). Nothing else of the
    script is read or run."""
    out = {}
    for line in (text or "").splitlines():
        m = _SHELL_EXPORT_RE.match(line)
        if m:
            out[m.group(1)] = m.group(2).strip("\"'")
    return out
