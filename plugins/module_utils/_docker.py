# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-mostly access to the swarm through the docker CLI: inspection for evidence and
convergence, data markers inside a service's container, and removal of what a stack left.

App operations (new, deploy, undeploy, remove, backup, restore) go through abra, never here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

try:
    import yaml
except ImportError:  # PyYAML comes with Ansible on the controller, not necessarily on the server
    yaml = None

from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError, Result, run

STACK_LABEL = "com.docker.stack.namespace"
SERVICE_LABEL = "com.docker.swarm.service.name"
PROBE_LABEL = "coopcloud.canon.probe"
KINDS = ("service", "volume", "secret", "config", "network")


class DockerError(CommandError):
    pass


class StackConfigError(DockerError):
    """docker's compose loader refused the files: the message is docker's own."""


# ``docker stack config`` (docker's compose loader, the code path of ``docker stack deploy``)
# arrived in docker CLI 23.0.
STACK_CONFIG_MIN_MAJOR = 23
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# What of the controller's environment the loader may see: the recipe's env decides every
# interpolation, so a stray DOMAIN or COMPOSE_FILE in the caller's shell cannot leak into it.
_LOADER_ENV_KEYS = ("PATH", "HOME", "DOCKER_CONFIG")


def client_too_old(version_text: str) -> str | None:
    """Why ``docker stack config`` is missing from the client that printed ``version_text``
    (``docker --version``), or None when it is recent enough or unknown."""
    m = _VERSION_RE.search(version_text or "")
    if m and int(m.group(1)) < STACK_CONFIG_MIN_MAJOR:
        return ("docker client %s has no `docker stack config` (docker's compose loader, needed to read "
                "a recipe's compose files as a deploy does): install docker CLI %d or later"
                % (m.group(0), STACK_CONFIG_MIN_MAJOR))
    return None


def endpoint_is_local(endpoint: str) -> bool:
    """Whether a daemon address is a socket on this machine (``unix://``): only then is the
    engine's machine the caller's. ``ssh://``, ``tcp://`` (a tunnel, a forwarded port) or an
    unknown address are another machine as far as the caller can tell."""
    return (endpoint or "").strip().startswith("unix://")


class DockerClient:
    def __init__(self, binary: str = "docker", timeout: float = 300, log=None, context: str = "",
                 host: str = ""):
        self.binary = binary
        self.timeout = timeout
        self.log = log
        # The docker context of the app's server (abra reaches a server through the context of
        # the same name); empty: docker's own current context.
        self.context = context or ""
        # A daemon address (the driver's ``canon_docker_host``); it wins over the context.
        self.host = host or ""

    def argv(self, args: list) -> list:
        """The full command line: ``--host`` or ``--context`` win over a DOCKER_HOST in the
        environment (docker refuses both at once, so the host wins)."""
        if self.host:
            target = ["--host", self.host]
        elif self.context:
            target = ["--context", self.context]
        else:
            target = []
        return [self.binary] + target + list(args)

    def run(self, args: list, check: bool = True, input_text=None, timeout=None) -> Result:
        result = run(self.argv(args), timeout=timeout or self.timeout, input_text=input_text)
        if self.log:
            self.log(result)
        if check and not result.ok:
            what = " ".join(args[:2])
            raise DockerError("docker %s failed (exit %d): %s" % (what, result.rc, result.stderr.strip()[-500:]),
                              result)
        return result

    def stack_config(self, files: list, env: dict, cwd: str, timeout: float = 60) -> dict:
        """The merged, interpolated stack of ``files`` (paths relative to ``cwd``, the recipe
        checkout) as ``docker stack config -c f1 -c f2 ...`` prints it, with ``env`` (and only
        ``env``, plus PATH/HOME) as the environment it interpolates from.

        No ``--context``: the loader runs in the client alone and needs no engine, so a server
        context that this controller lacks does not matter. Raises :class:`StackConfigError` with
        docker's message when the files do not load, :class:`DockerError` naming the version when
        the client is too old.
        """
        args = ["stack", "config"]
        for f in files:
            args += ["-c", f]
        base = {k: os.environ[k] for k in _LOADER_ENV_KEYS if k in os.environ}
        result = run([self.binary] + args, env_extra=env, env_base=base, cwd=cwd, timeout=timeout)
        if self.log:
            self.log(result)
        if not result.ok:
            version = run([self.binary, "--version"], env_base=base, timeout=20)
            old = client_too_old(version.stdout) if version.ok else None
            if old:
                raise DockerError(old, result)
            if version.rc == 127:
                raise DockerError("docker client %s cannot run: %s" % (self.binary, version.stderr.strip()), result)
            raise StackConfigError("docker stack config -c %s: %s"
                                   % (" -c ".join(files), result.stderr.strip()[-800:]), result)
        if yaml is None:
            raise StackConfigError("reading what docker stack config prints needs PyYAML (python3-yaml) on the "
                                   "host the module runs on", result)
        try:
            stack = yaml.safe_load(result.stdout) or {}
        except yaml.YAMLError as exc:
            raise StackConfigError("docker stack config printed what is not YAML: %s" % exc, result)
        if not isinstance(stack, dict):
            raise StackConfigError("docker stack config printed no mapping", result)
        return stack

    def endpoint(self, timeout: float = 20) -> str:
        """The daemon address this client reaches: its ``host``, else the endpoint of its context
        (of docker's current one when it names none, which a DOCKER_HOST makes ``default``); ''
        when docker cannot tell."""
        if self.host:
            return self.host
        res = self.run(["context", "inspect", "--format", "{{.Endpoints.docker.Host}}"], check=False,
                       timeout=timeout)
        return res.stdout.strip() if res.ok else ""

    def data_root(self, timeout: float = 30) -> str:
        """``docker info``'s DockerRootDir: where the engine keeps images, containers and volumes,
        on the engine's machine ('' when docker cannot tell)."""
        res = self.run(["info", "--format", "{{.DockerRootDir}}"], check=False, timeout=timeout)
        return res.stdout.strip() if res.ok else ""

    def available(self) -> bool:
        return self.run(["info", "--format", "{{.ServerVersion}}"], check=False, timeout=20).ok

    def swarm_state(self, timeout: float = 30) -> Result:
        """``docker info``'s swarm state of this node (``active`` when it can take deploys)."""
        return self.run(["info", "--format", "{{.Swarm.LocalNodeState}}"], check=False, timeout=timeout)

    def stack_names(self) -> list:
        """Every stack on the swarm."""
        return self.run(["stack", "ls", "--format", "{{.Name}}"]).stdout.split()

    def stack_rm(self, stack: str) -> Result:
        return self.run(["stack", "rm", stack], check=False)

    # -- throwaway containers (readiness probes, load) --------------------------------------
    def run_detached(self, image: str, command: list, network: str, labels: dict) -> str:
        """Start a ``--rm`` container in the background; its id."""
        args = ["run", "-d", "--rm", "--network", network]
        for key, value in labels.items():
            args += ["--label", "%s=%s" % (key, value)]
        return self.run(args + [image] + list(command)).stdout.strip()

    def remove_containers(self, ids: list, timeout: float | None = None) -> Result | None:
        """``docker rm -f`` of ``ids`` (none: nothing is run)."""
        if not ids:
            return None
        return self.run(["rm", "-f"] + list(ids), check=False, timeout=timeout)

    def containers_labelled(self, label: str) -> list:
        """``docker ps -a`` rows (as dicts) of every container carrying ``label``."""
        res = self.run(["ps", "-a", "--filter", "label=%s" % label, "--format", "{{json .}}"], check=False)
        return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]

    def container_events(self, since: float, until: float, events=("start", "die")) -> Result:
        """Container ``events`` between two epochs, one status per line."""
        args = ["events", "--since", "%.3f" % since, "--until", "%.3f" % until, "--filter", "type=container"]
        for event in events:
            args += ["--filter", "event=%s" % event]
        return self.run(args + ["--format", "{{.Status}}"], check=False)

    # -- what a stack owns ------------------------------------------------------------------
    def list_names(self, kind: str, label: str | None = None, name_prefix: str | None = None) -> list:
        args = [kind, "ls", "--format", "{{.Name}}"]
        if kind == "volume":
            args = ["volume", "ls", "--format", "{{.Name}}"]
        if label:
            args += ["--filter", "label=" + label]
        names = [n for n in self.run(args).stdout.split() if n]
        if name_prefix is not None:
            names = [n for n in names if n.startswith(name_prefix)]
        return sorted(set(names))

    def stack_objects(self, stack: str) -> dict:
        """Every swarm object of ``stack``: by the stack label, and secrets/configs by the
        ``<stack>_`` prefix too (abra creates secrets outside the stack, without the label)."""
        found = {}
        for kind in KINDS:
            names = set(self.list_names(kind, label="%s=%s" % (STACK_LABEL, stack)))
            if kind in ("secret", "config", "volume"):
                names |= set(self.list_names(kind, name_prefix=stack + "_"))
            found[kind] = sorted(names)
        return found

    def remove(self, kind: str, names: list) -> list:
        removed = []
        for name in names:
            res = self.run([kind, "rm", name], check=False)
            if res.ok or "No such" in res.stderr or "not found" in res.stderr:
                removed.append(name)
        return removed

    def wait_gone(self, stack: str, kinds=("service", "network"), timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [k for k in kinds if self.list_names(k, label="%s=%s" % (STACK_LABEL, stack))]
            if not left and not self.stack_containers(stack):
                return True
            time.sleep(1)
        return False

    def probe_containers(self, stack: str) -> list:
        """Throwaway probe containers the harness started against ``stack`` (readiness)."""
        res = self.run(["ps", "-aq", "--filter", "label=%s=%s" % (PROBE_LABEL, stack)], check=False)
        return res.stdout.split()

    def stack_containers(self, stack: str) -> list:
        res = self.run(["ps", "-aq", "--filter", "label=%s=%s" % (STACK_LABEL, stack)], check=False)
        return res.stdout.split()

    # -- inspection ------------------------------------------------------------------------
    def services(self, stack: str) -> list:
        names = self.list_names("service", label="%s=%s" % (STACK_LABEL, stack))
        if not names:
            return []
        res = self.run(["service", "inspect"] + names)
        return json.loads(res.stdout or "[]")

    def service_ps(self, service: str) -> str:
        return self.run(["service", "ps", "--no-trunc", service], check=False).stdout

    def service_tasks(self, service: str) -> list:
        fmt = "{{json .}}"
        res = self.run(["service", "ps", "--no-trunc", "--format", fmt, service], check=False)
        return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]

    def service_logs(self, service: str, tail: int = 500) -> str:
        res = self.run(["service", "logs", "--no-task-ids", "--timestamps", "--tail", str(tail), service],
                       check=False, timeout=60)
        return res.stdout + res.stderr

    def running_container(self, stack: str, service: str) -> str | None:
        res = self.run(["ps", "-q", "--filter", "label=%s=%s_%s" % (SERVICE_LABEL, stack, service),
                        "--filter", "status=running"], check=False)
        ids = res.stdout.split()
        return ids[0] if ids else None

    def exec(self, container: str, argv: list, input_text=None, check: bool = True) -> Result:
        args = ["exec"] + (["-i"] if input_text is not None else []) + [container] + list(argv)
        return self.run(args, input_text=input_text, check=check, timeout=60)

    def exec_stream(self, container: str, argv: list):
        """``docker exec -i <container> argv`` with its stdin and stdout as byte pipes the caller
        drives: a TLS handshake through the probe container's ``nc`` answers what it reads, which
        :meth:`exec` (its input given whole up front) cannot. The caller ends it with
        :meth:`close_stream`. ``None`` when docker cannot be started."""
        full = self.argv(["exec", "-i", container] + list(argv))
        try:
            proc = subprocess.Popen([str(a) for a in full], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True,
                                    env=dict(os.environ, LC_ALL="C", LANG="C"))
        except OSError:
            return None
        proc.canon_started = time.monotonic()
        return proc

    def close_stream(self, proc) -> Result:
        """End a :meth:`exec_stream` process (its input closed, then killed if it lingers) and
        log it like any other command; its exit code and stderr say why a connection failed."""
        try:
            _out, err = proc.communicate(timeout=1)   # nc may wait for the server; it has answered
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
        result = Result(argv=list(proc.args), rc=proc.returncode, stdout="",
                        stderr=(err or b"").decode("utf-8", "replace"),
                        duration=round(time.monotonic() - getattr(proc, "canon_started", time.monotonic()), 3))
        if self.log:
            self.log(result)
        return result

    def network_aliases(self, networks) -> dict:
        """``{network: {alias: [stacks]}}``: the names other services answer to on ``networks``."""
        wanted = {}
        for net in networks:
            res = self.run(["network", "inspect", "--format", "{{.ID}}", net], check=False)
            if res.ok and res.stdout.strip():
                wanted[res.stdout.strip()] = net
        out = {net: {} for net in wanted.values()}
        names = self.list_names("service")
        if not wanted or not names:
            return out
        for svc in json.loads(self.run(["service", "inspect"] + names).stdout or "[]"):
            spec = svc.get("Spec", {})
            stack = (spec.get("Labels") or {}).get(STACK_LABEL, "")
            for att in (spec.get("TaskTemplate", {}).get("Networks") or []):
                net = wanted.get(att.get("Target"))
                if not net:
                    continue
                for alias in att.get("Aliases") or []:
                    out[net].setdefault(alias, [])
                    if stack not in out[net][alias]:
                        out[net][alias].append(stack)
        return out

    def image_id(self, image: str) -> str | None:
        res = self.run(["image", "inspect", "--format", "{{.Id}}", image], check=False)
        return res.stdout.strip() or None

    # -- convergence (swarm_converge) ------------------------------------------------------
    def task_ids(self, services: list) -> list:
        """Every task of ``services``, task history included."""
        if not services:
            return []
        res = self.run(["service", "ps", "--quiet", "--no-trunc"] + list(services), check=False)
        return sorted(set(res.stdout.split()))

    def inspect(self, ids: list, kind: str) -> list:
        """``docker inspect --type <kind>`` of ``ids``; ids that vanished meanwhile are skipped."""
        if not ids:
            return []
        res = self.run(["inspect", "--type", kind] + list(ids), check=False)
        try:
            return json.loads(res.stdout or "[]")
        except ValueError:
            return []

    def container_logs(self, container: str, since: str | None = None, tail: int = 200) -> Result:
        """A task container's log lines (stdout and stderr) with timestamps, bounded.

        ``docker service logs`` shows nothing of a task still ``starting`` (a healthcheck not
        passed yet), which is exactly the task a slow first boot sits in; its container's log does.
        """
        args = ["logs", "--timestamps", "--tail", str(tail)]
        if since:
            args += ["--since", since]
        return self.run(args + [container], check=False, timeout=60)

    def service_logs_since(self, service: str, since: str | None = None, tail: int = 200) -> Result:
        args = ["service", "logs", "--timestamps", "--raw", "--tail", str(tail)]
        if since:
            args += ["--since", since]
        return self.run(args + [service], check=False, timeout=60)
