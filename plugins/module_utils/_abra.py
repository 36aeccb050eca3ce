# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one client for the abra CLI.

Every abra command the collection runs is built here, from the table :data:`COMMANDS`, as an
argv list; always with ``-n`` (no input). A failure raises :class:`AbraError` carrying the
command, exit code, stdout, stderr and abra's own ``FATA`` message.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError, Redactor, Result, run
from ansible_collections.coopcloud.canon.plugins.module_utils._envfile import read_env

# Named argument formats (community.general's CmdRunner idea): a command is a sequence of
# literal words and formats, and each format turns one named value into its argv words, so an
# optional positional or flag lands where abra expects it by construction, never by splicing
# at an index.


class _Pos:
    """A positional value; ``optional`` ones are left out when empty."""

    def __init__(self, name: str, optional: bool = False):
        self.name, self.optional = name, optional

    def __call__(self, fields: dict) -> list:
        value = fields.get(self.name)
        if value is None or value == "":
            if self.optional:
                return []
            raise ValueError("abra argument %r is required" % self.name)
        return [str(value)]


class _Option(_Pos):
    """``--flag <value>``."""

    def __init__(self, flag: str, name: str):
        super().__init__(name)
        self.flag = flag

    def __call__(self, fields: dict) -> list:
        return [self.flag] + super().__call__(fields)


class _Flag:
    """A bare ``--flag``, present when the named value is true."""

    def __init__(self, flag: str, name: str):
        self.flag, self.name = flag, name

    def __call__(self, fields: dict) -> list:
        return [self.flag] if fields.get(self.name) else []


NO_INPUT = "-n"

# The abra commands the harness drives, in one place: each is the argv after the binary, always
# ending in ``-n`` (no input).
COMMANDS = {
    "recipe_fetch": ("recipe", "fetch", _Pos("recipe"), NO_INPUT),
    "app_new": ("app", "new", _Pos("recipe"), _Pos("version", optional=True), _Option("--server", "server"),
                _Option("--domain", "domain"), NO_INPUT),
    "secret_generate": ("app", "secret", "generate", _Pos("domain"), "--all", "--machine", NO_INPUT),
    "secret_generate_one": ("app", "secret", "generate", _Pos("domain"), _Pos("name"), _Pos("version"),
                            "--machine", NO_INPUT),
    "deploy": ("app", "deploy", _Pos("domain"), _Pos("version", optional=True), _Flag("--chaos", "chaos"),
               _Flag("--force", "force"), _Flag("--no-converge-checks", "no_converge_checks"), NO_INPUT),
    "upgrade": ("app", "upgrade", _Pos("domain"), _Pos("version", optional=True),
                _Flag("--no-converge-checks", "no_converge_checks"), NO_INPUT),
    "undeploy": ("app", "undeploy", _Pos("domain"), NO_INPUT),
    "remove": ("app", "remove", _Pos("domain"), "--force", NO_INPUT),
    "backup_create": ("app", "backup", "create", _Pos("domain"), NO_INPUT),
    "restore": ("app", "restore", _Pos("domain"), NO_INPUT),
    "ps": ("app", "ps", _Pos("domain"), NO_INPUT),
    "logs": ("app", "logs", _Pos("domain"), NO_INPUT),
    "ls": ("app", "ls", _Option("--server", "server"), "-m", NO_INPUT),
}

_FATA_RE = re.compile(r"^(?:.*\s)?FATA\s*(?:\[[^\]]*\])?\s*(?P<msg>.*)$", re.MULTILINE)
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def fata_message(text: str) -> str:
    """abra's own failure message: the last ``FATA`` line, colours stripped."""
    text = _ANSI_RE.sub("", text or "")
    found = [m.group("msg").strip() for m in _FATA_RE.finditer(text)]
    return found[-1] if found else ""


class AbraError(CommandError):
    @property
    def fata(self) -> str:
        return fata_message(self.result.stderr) or fata_message(self.result.stdout)


def build(command: str, **fields) -> list:
    """The argv (without the binary) for one entry of :data:`COMMANDS`; a field the command
    does not take is an error, not silently dropped."""
    try:
        template = COMMANDS[command]
    except KeyError:
        raise ValueError("unknown abra command %r" % (command,)) from None
    takes = {part.name for part in template if not isinstance(part, str)}
    unknown = sorted(set(fields) - takes)
    if unknown:
        raise ValueError("abra %s takes no %s" % (command, ", ".join(unknown)))
    argv = []
    for part in template:
        argv += [part] if isinstance(part, str) else part(fields)
    return argv


class AbraClient:
    """Runs abra with a given binary and ``ABRA_DIR``.

    ``log`` (optional) is called with each :class:`Result` after redaction, so callers can
    write evidence; commands whose output holds secret values are logged with the output
    withheld.
    """

    def __init__(self, binary: str = "abra", abra_dir: str | None = None, env: dict | None = None,
                 redactor: Redactor | None = None, log=None, timeout: float | None = 3600):
        self.binary = binary
        self.abra_dir = abra_dir
        self.env = dict(env or {})
        self.redactor = redactor or Redactor()
        self.log = log
        self.timeout = timeout

    def argv(self, command: str, **fields) -> list:
        return [self.binary] + build(command, **fields)

    def _env(self) -> dict:
        env = dict(self.env)
        if self.abra_dir:
            env["ABRA_DIR"] = self.abra_dir
        return env

    def run(self, argv: list, check: bool = True, secret_output: bool = False, timeout=None) -> Result:
        result = run(argv, env_extra=self._env(), timeout=timeout or self.timeout)
        if secret_output:
            for value in parse_generated_secrets(result.stdout).values():
                self.redactor.add(value)
        logged = Result(argv=result.argv, rc=result.rc,
                        stdout="[output withheld: it holds generated secret values]" if secret_output
                        else self.redactor(result.stdout),
                        stderr=self.redactor(result.stderr), duration=result.duration,
                        timed_out=result.timed_out)
        if self.log:
            self.log(logged)
        if check and not result.ok:
            fata = fata_message(result.stderr) or fata_message(result.stdout)
            what = "timed out" if result.timed_out else "failed (exit %d)" % result.rc
            raise AbraError("abra %s %s: %s" % (" ".join(argv[1:3]), what, fata or logged.stderr.strip()[-500:]),
                            logged)
        return logged if secret_output else result

    # -- the operations ---------------------------------------------------------------------
    def recipe_fetch(self, recipe: str) -> Result:
        return self.run(self.argv("recipe_fetch", recipe=recipe))

    def app_new(self, recipe: str, server: str, domain: str, version: str | None = None) -> Result:
        """``app new`` without ``--secrets``: secrets are generated by :meth:`secret_generate`,
        whose machine-readable output can be parsed for redaction."""
        return self.run(self.argv("app_new", recipe=recipe, version=version, server=server, domain=domain))

    def secret_generate(self, domain: str) -> Result:
        return self.run(self.argv("secret_generate", domain=domain), secret_output=True)

    def secret_generate_one(self, domain: str, name: str, version: str) -> Result:
        """Generate one secret (``app secret generate <domain> <name> <version>``)."""
        return self.run(self.argv("secret_generate_one", domain=domain, name=name, version=version),
                        secret_output=True)

    def deploy(self, domain: str, version: str | None = None, chaos: bool = False, force: bool = False,
               converge_checks: bool = True, timeout=None) -> Result:
        return self.run(self.argv("deploy", domain=domain, version=version, chaos=chaos, force=force,
                                  no_converge_checks=not converge_checks), timeout=timeout)

    def upgrade(self, domain: str, version: str | None = None, converge_checks: bool = True, timeout=None) -> Result:
        return self.run(self.argv("upgrade", domain=domain, version=version, no_converge_checks=not converge_checks),
                        timeout=timeout)

    def undeploy(self, domain: str, check: bool = True) -> Result:
        return self.run(self.argv("undeploy", domain=domain), check=check)

    def remove(self, domain: str, check: bool = True) -> Result:
        return self.run(self.argv("remove", domain=domain), check=check)

    def backup_create(self, domain: str) -> Result:
        return self.run(self.argv("backup_create", domain=domain))

    def restore(self, domain: str) -> Result:
        return self.run(self.argv("restore", domain=domain))

    def ps(self, domain: str, check: bool = False) -> Result:
        return self.run(self.argv("ps", domain=domain), check=check)

    def logs(self, domain: str, check: bool = False) -> Result:
        return self.run(self.argv("logs", domain=domain), check=check, timeout=120)

    def ls(self, server: str) -> list:
        """Apps on ``server`` as abra's machine-readable listing reports them."""
        return parse_app_ls(self.run(self.argv("ls", server=server)).stdout, server)


# -- parsers ----------------------------------------------------------------------------------
_SECRET_ROW_RE = re.compile(r"^\s*[│|]?\s*(?P<name>[a-z0-9_]+)\s*[│|]\s*(?P<value>\S+)\s*[│|]?\s*$")


def parse_generated_secrets(text: str) -> dict:
    """``{secret name: value}`` from ``abra app secret generate --machine`` (a JSON list of
    ``{"name", "value"}``), or from its table form (NAME and VALUE columns)."""
    found = {}
    stripped = (text or "").strip()
    if stripped.startswith("["):
        try:
            return {str(i["name"]): str(i["value"]) for i in json.loads(stripped) if "name" in i and "value" in i}
        except (ValueError, TypeError, KeyError):
            pass
    for line in _ANSI_RE.sub("", text or "").splitlines():
        m = _SECRET_ROW_RE.match(line)
        if not m:
            continue
        name, value = m.group("name"), m.group("value")
        if name.upper() == name and value.upper() == value and name.lower() in ("name", "secret"):
            continue  # header row
        if name in ("name", "secret") and value in ("value", "VALUE"):
            continue
        found[name] = value
    return found


def parse_app_ls(text: str, server: str | None = None) -> list:
    """Apps from ``abra app ls -m``: a JSON object keyed by server, each with an ``apps`` list.

    Returns a list of dicts with at least ``domain``, ``recipe``, ``server``, ``status`` and
    ``version``.
    """
    text = (text or "").strip()
    if not text:
        return []
    data = json.loads(text)
    apps = []
    servers = data.items() if isinstance(data, dict) else [(server, {"apps": data})]
    for srv, body in servers:
        rows = body.get("apps", []) if isinstance(body, dict) else body
        for row in rows or []:
            low = {str(k).lower(): v for k, v in row.items()}
            apps.append({
                "server": low.get("server", srv),
                "domain": low.get("domain") or low.get("appname") or low.get("name"),
                "recipe": low.get("recipe"),
                "status": low.get("status"),
                "version": low.get("version"),
                "chaos": low.get("chaos"),
            })
    return apps


def read_env_file(path: str) -> dict:
    """An app's ``.env`` as ``{KEY: value}`` of its active lines (:func:`_envfile.read_env`)."""
    return read_env(path).active


def env_file_path(abra_dir: str, server: str, domain: str) -> str:
    return os.path.join(abra_dir, "servers", server, domain + ".env")
