"""Integration tests for the bench's abra stand-in (roles/bench/files/abra).

They run against the real Docker engine and single-node swarm of the bench
machine, with a throwaway image (canon-standin-test/busybox:t1/t2), throwaway
recipe repositories and a throwaway ABRA_DIR.  Everything a test creates
(stacks, secrets, volumes, configs, networks, files, images) is removed by
fixture finalizers, whether the test passes or fails.

Run: python -m pytest -q tests/integration/test_abra_standin.py
"""

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STANDIN = os.path.join(REPO, "roles", "bench", "files", "abra")
IMAGE = "canon-standin-test/busybox"
BUSYBOX = "/usr/bin/busybox" if os.path.exists("/usr/bin/busybox") else "/bin/busybox"
NS = "com.docker.stack.namespace"


def sh(*cmd, check=True, input=None):
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(cmd), p.stderr))
    return p


def docker_ok():
    try:
        return sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}", check=False).stdout.strip() == "active"
    except FileNotFoundError:
        return False


pytestmark = pytest.mark.skipif(not docker_ok(), reason="needs a docker engine in an active swarm")


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------
def _rootfs_tar(path, marker):
    applets = sh(BUSYBOX, "--list").stdout.split()
    with tarfile.open(path, "w") as tar:
        for d, mode in (("bin", 0o755), ("tmp", 0o1777), ("data", 0o755), ("etc", 0o755), ("run", 0o755)):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, mode
            tar.addfile(ti)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for a in applets:
            if a == "busybox":
                continue
            ti = tarfile.TarInfo("bin/" + a)
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(ti)
        data = ("%s\n" % marker).encode()
        ti = tarfile.TarInfo("etc/standin-image")
        ti.size = len(data)
        import io
        tar.addfile(ti, io.BytesIO(data))


@pytest.fixture(scope="session")
def images():
    tmp = tempfile.mkdtemp(prefix="standin-img-")
    made = []
    try:
        for tag in ("t1", "t2"):
            tarpath = os.path.join(tmp, tag + ".tar")
            _rootfs_tar(tarpath, tag)
            ref = "%s:%s" % (IMAGE, tag)
            sh("docker", "import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/bin", tarpath, ref)
            made.append(ref)
        yield made
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for ref in made:
            sh("docker", "rmi", "-f", ref, check=False)


# --------------------------------------------------------------------------
# a throwaway bench: bin/abra, bench.json, repos/, abra/
# --------------------------------------------------------------------------
APP_COMPOSE = """\
version: "3.8"
services:
  app:
    image: canon-standin-test/busybox:{tag}
    command: ["sh", "-c", "mkdir -p /data && exec httpd -f -p 8080 -h /data"]
    stop_grace_period: 1s
    volumes:
      - data:/data
    networks:
      - internal
    secrets:
      - db_password
      - api_key
    healthcheck:
      test: ["CMD", "sh", "-c", "test -d /data"]
      interval: 1s
      timeout: 2s
      retries: 3
    deploy:
      endpoint_mode: dnsrr
      update_config:
        order: stop-first
        failure_action: rollback
      labels:
        - "traefik.enable=true"
        - "traefik.http.services.${{STACK_NAME}}.loadbalancer.server.port=8080"
        - "traefik.http.routers.${{STACK_NAME}}.rule=Host(`${{DOMAIN}}`)"
        - "coop-cloud.${{STACK_NAME}}.version={version}"
        - "coop-cloud.${{STACK_NAME}}.timeout=${{TIMEOUT:-60}}"
        - "backupbot.backup=true"
        - "backupbot.backup.path=/data"
        - "backupbot.backup.pre-hook=test -s /run/secrets/db_password && date > /data/prehook"
        - "backupbot.backup.post-hook=rm -f /data/prehook"
        - "backupbot.restore.pre-hook=touch /tmp/restore-pre"
        - "backupbot.restore.post-hook=touch /tmp/restore-post"
networks:
  internal:
secrets:
  db_password:
    external: true
    name: ${{STACK_NAME}}_db_password_${{SECRET_DB_PASSWORD_VERSION}}
  api_key:
    external: true
    name: ${{STACK_NAME}}_api_key_${{SECRET_API_KEY_VERSION}}
volumes:
  data:
"""

APP_ENV = """\
TYPE=standin-app
DOMAIN=standin-app.example.com
#LETS_ENCRYPT_ENV=production
COMPOSE_FILE="compose.yml"
SECRET_DB_PASSWORD_VERSION=v1 # length=32
SECRET_API_KEY_VERSION=v1
"""

CFG_OVERLAY = """\
version: "3.8"
services:
  app:
    environment:
      - LITERAL=a$$b
      - FROMENV=${DOMAIN}:${EXTRA_SETTING:-dflt}
    configs:
      - source: app_conf
        target: /etc/standin.conf
configs:
  app_conf:
    name: ${STACK_NAME}_app_conf_${APP_CONF_VERSION:-v1}
    file: app.conf
"""

CRASH_COMPOSE = """\
version: "3.8"
services:
  app:
    image: canon-standin-test/busybox:t1
    command: ["sh", "-c", "{command}"]
    stop_grace_period: 1s
    deploy:
      endpoint_mode: dnsrr
      restart_policy:
        condition: any
        delay: 1s
      update_config:
        order: stop-first
        failure_action: rollback
        monitor: 3s
      rollback_config:
        order: stop-first
        monitor: 1s
      labels:
        - "coop-cloud.${{STACK_NAME}}.version={version}"
        - "coop-cloud.${{STACK_NAME}}.timeout=${{TIMEOUT:-40}}"
"""

CRASH_ENV = """\
TYPE=standin-crash
DOMAIN=standin-crash.example.com
COMPOSE_FILE="compose.yml"
"""


class Bench:
    def __init__(self, root):
        self.root = root
        self.bin = os.path.join(root, "bin")
        self.repos = os.path.join(root, "repos")
        self.abra_dir = os.path.join(root, "abra")
        self.sync_log = os.path.join(root, "proxy-sync.log")
        self.stacks = set()
        os.makedirs(self.bin)
        os.makedirs(self.repos)
        shutil.copy(STANDIN, os.path.join(self.bin, "abra"))
        os.chmod(os.path.join(self.bin, "abra"), 0o755)
        sync = os.path.join(self.bin, "bench-proxy-sync")
        with open(sync, "w") as f:
            f.write("#!/bin/sh\necho synced >> %s\n" % self.sync_log)
        os.chmod(sync, 0o755)
        with open(os.path.join(root, "bench.json"), "w") as f:
            json.dump({"recipe_repos": self.repos, "proxy_sync": sync, "proxy_port": 8480,
                       "base_domain": "standin.test"}, f)

    def abra(self, *args, check=None):
        env = dict(os.environ, ABRA_DIR=self.abra_dir)
        p = subprocess.run([os.path.join(self.bin, "abra")] + list(args), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=240)
        if check is True:
            assert p.returncode == 0, "abra %s failed:\n%s\n%s" % (" ".join(args), p.stdout, p.stderr)
        return p

    def domain(self, prefix):
        d = "%s-%s.standin.test" % (prefix, uuid.uuid4().hex[:6])
        self.stacks.add(d.replace(".", "_"))
        return d

    def recipe(self, name, releases):
        """releases: [(tag, {path: content})] committed and tagged in order."""
        repo = os.path.join(self.repos, name)
        os.makedirs(repo)
        sh("git", "-C", repo, "init", "-q", "-b", "main")
        for tag, files in releases:
            for rel, content in files.items():
                p = os.path.join(repo, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as f:
                    f.write(content)
            sh("git", "-C", repo, "add", "-A")
            sh("git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", tag)
            sh("git", "-C", repo, "tag", tag)
        return repo

    def env_file(self, domain):
        return os.path.join(self.abra_dir, "servers", "default", domain + ".env")

    def cleanup(self):
        for stack in self.stacks:
            sh("docker", "stack", "rm", stack, check=False)
        deadline = time.time() + 90
        while time.time() < deadline:
            left = []
            for stack in self.stacks:
                flt = "label=%s=%s" % (NS, stack)
                left += sh("docker", "service", "ls", "-q", "--filter", flt, check=False).stdout.split()
                left += sh("docker", "ps", "-aq", "--filter", flt, check=False).stdout.split()
                left += sh("docker", "network", "ls", "-q", "--filter", flt, check=False).stdout.split()
            if not left:
                break
            time.sleep(0.5)
        for kind in ("secret", "config", "volume", "network"):
            names = sh("docker", kind, "ls", "--format", "{{.Name}}", check=False).stdout.split()
            for n in names:
                if any(n.startswith(s + "_") for s in self.stacks):
                    for _ in range(30):
                        if sh("docker", kind, "rm", n, check=False).returncode == 0:
                            break
                        time.sleep(1)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def bench(images):
    b = Bench(tempfile.mkdtemp(prefix="standin-bench-"))
    try:
        assert b.abra("server", "add", "--local", "-n").returncode == 0
        yield b
    finally:
        b.cleanup()


def leftovers(stack):
    found = []
    for kind in ("secret", "config", "volume", "network"):
        names = sh("docker", kind, "ls", "--format", "{{.Name}}").stdout.split()
        found += ["%s %s" % (kind, n) for n in names if n.startswith(stack + "_")]
    found += sh("docker", "service", "ls", "-q", "--filter", "label=%s=%s" % (NS, stack)).stdout.split()
    return found


def fata(p):
    lines = [l for l in p.stderr.splitlines() if l.startswith("FATA ")]
    return lines[-1][5:] if lines else None


def app_recipe(bench):
    return bench.recipe("standin-app", [
        ("1.0.0+t1", {"compose.yml": APP_COMPOSE.format(tag="t1", version="1.0.0+t1"),
                      ".env.sample": APP_ENV, "abra.sh": "", "release/1.0.0+t1": "first\n"}),
        ("1.1.0+t2", {"compose.yml": APP_COMPOSE.format(tag="t2", version="1.1.0+t2"),
                      "compose.cfg.yml": CFG_OVERLAY, "app.conf": "conf-of-1.1.0\n",
                      "release/1.1.0+t2": "second: new image\n"}),
    ])


def container_of(stack, service="app"):
    out = sh("docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name=%s_%s" % (stack, service),
             "--filter", "status=running").stdout.split()
    assert out, "no running container for %s_%s" % (stack, service)
    return out[0]


def version_label(stack):
    ids = sh("docker", "service", "ls", "-q", "--filter", "label=%s=%s" % (NS, stack)).stdout.split()
    for s in json.loads(sh("docker", "service", "inspect", *ids).stdout):
        v = s["Spec"]["Labels"].get("coop-cloud.%s.version" % stack)
        if v:
            return v, s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    return None, None


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------
def test_full_lifecycle(bench):
    app_recipe(bench)
    d = bench.domain("life")
    stack = d.replace(".", "_")

    p = bench.abra("app", "new", "standin-app", "--server", "default", "--domain", d, "-n", check=True)
    env = open(bench.env_file(d)).read()
    assert "DOMAIN=%s\n" % d in env and "TYPE=standin-app\n" in env
    assert os.path.isdir(os.path.join(bench.abra_dir, "recipes", "standin-app", ".git"))

    p = bench.abra("app", "new", "standin-app", "-s", "default", "-D", d, "-n")
    assert p.returncode == 1 and "already exists" in fata(p)

    p = bench.abra("app", "secret", "generate", d, "--all", "-n", check=True)
    rows = dict(l.split(None, 1) for l in p.stdout.splitlines()[1:] if l.strip())
    assert len(rows["db_password"].strip()) == 32
    assert re.match(r"^[a-z]+(-[a-z]+)+$", rows["api_key"].strip())
    secrets = sh("docker", "secret", "ls", "--format", "{{.Name}}").stdout.split()
    assert "%s_db_password_v1" % stack in secrets and "%s_api_key_v1" % stack in secrets
    p = bench.abra("app", "secret", "generate", d, "-a", "-n", check=True)
    assert "already exists" in p.stderr and rows["db_password"].strip() not in p.stdout

    p = bench.abra("app", "deploy", d, "1.0.0+t1", "-n", check=True)
    assert "deploy succeeded" in p.stderr
    assert "TYPE=standin-app:1.0.0+t1\n" in open(bench.env_file(d)).read()
    assert version_label(stack)[0] == "1.0.0+t1"
    assert os.path.exists(bench.sync_log)

    p = bench.abra("app", "deploy", d, "-n")
    assert p.returncode == 1 and fata(p) == "%s is already deployed" % d

    p = bench.abra("app", "ls", "-m", "-S", check=True)
    data = json.loads(p.stdout)
    (a,) = [x for x in data["default"]["apps"] if x["domain"] == d]
    assert a["status"] == "deployed" and a["version"] == "1.0.0+t1" and a["recipe"] == "standin-app"
    assert a["upgrade"] == "1.1.0+t2" and a["chaos"] == "false" and a["appName"] == d
    assert data["default"]["appCount"] >= 1

    p = bench.abra("app", "ps", d, "-n", check=True)
    assert re.search(r"^app\s+running\s+canon-standin-test/busybox:t1\s+1\.0\.0\+t1$", p.stdout, re.M), p.stdout

    p = bench.abra("app", "logs", d, "app", "-n")
    assert p.returncode == 0

    bench.abra("app", "run", "-n", d, "app", "sh", "-c", "echo before > /data/state", check=True)
    p = bench.abra("app", "backup", "create", d, "-n", check=True)
    m = re.search(r"^snapshot ([0-9a-f]{8}) saved$", p.stdout, re.M)
    assert m, p.stdout
    snaps = os.listdir(os.path.join(bench.abra_dir, "backups", d))
    assert len(snaps) == 1
    assert os.path.isfile(os.path.join(bench.abra_dir, "backups", d, snaps[0], "snapshot.tar.gz"))

    ctr = container_of(stack)
    sh("docker", "exec", ctr, "sh", "-c", "echo after > /data/state")
    bench.abra("app", "restore", d, "-n", check=True)
    assert sh("docker", "exec", ctr, "cat", "/data/state").stdout == "before\n"
    assert sh("docker", "exec", ctr, "ls", "/tmp/restore-pre", "/tmp/restore-post", check=False).returncode == 0

    p = bench.abra("app", "upgrade", d, "1.0.0+t1", "-n")
    assert p.returncode == 1 and fata(p) == "1.0.0+t1 is not an upgrade for 1.0.0+t1?"
    with open(bench.env_file(d), "a") as f:  # the operator enables an overlay that only 1.1.0 has
        f.write('COMPOSE_FILE="compose.yml:compose.cfg.yml"\n')
    p = bench.abra("app", "upgrade", d, "-n", check=True)
    assert "deploy succeeded" in p.stderr and "second: new image" in p.stdout
    ctr = container_of(stack)
    assert sh("docker", "exec", ctr, "cat", "/etc/standin.conf").stdout == "conf-of-1.1.0\n"
    envs = sh("docker", "exec", ctr, "env").stdout.splitlines()
    assert "LITERAL=a$b" in envs and "FROMENV=%s:dflt" % d in envs
    assert version_label(stack) == ("1.1.0+t2", "canon-standin-test/busybox:t2")
    assert "TYPE=standin-app:1.1.0+t2\n" in open(bench.env_file(d)).read()
    p = bench.abra("app", "upgrade", d, "-n", check=True)
    assert "no available upgrades" in p.stderr
    # data volume survived the upgrade
    assert sh("docker", "exec", container_of(stack), "cat", "/data/state").stdout == "before\n"

    p = bench.abra("app", "remove", d, "-n")
    assert p.returncode == 1
    assert fata(p) == '%s is still deployed. Run "abra app undeploy %s"' % (d, d)

    p = bench.abra("app", "undeploy", d, "-n", check=True)
    assert "undeploy succeeded" in p.stderr
    assert not sh("docker", "network", "ls", "-q", "--filter", "label=%s=%s" % (NS, stack)).stdout.strip()
    p = bench.abra("app", "undeploy", d, "-n")
    assert p.returncode == 1 and fata(p) == "%s is not deployed?" % d
    p = bench.abra("app", "ls", "-m", "-S", check=True)
    (a,) = [x for x in json.loads(p.stdout)["default"]["apps"] if x["domain"] == d]
    assert a["status"] == "unknown" and a["version"] == "unknown"

    bench.abra("app", "remove", d, "-n", check=True)
    assert not os.path.exists(bench.env_file(d))
    assert leftovers(stack) == []
    p = bench.abra("app", "ps", d, "-n")
    assert p.returncode == 1 and fata(p) == "cannot find app with name %s" % d


def test_deploy_refuses_untracked_files(bench):
    app_recipe(bench)
    d = bench.domain("dirty")
    stack = d.replace(".", "_")
    bench.abra("app", "new", "standin-app", "1.0.0+t1", "-s", "default", "-D", d, "-S", "-n", check=True)
    assert "TYPE=standin-app:1.0.0+t1\n" in open(bench.env_file(d)).read()
    rdir = os.path.join(bench.abra_dir, "recipes", "standin-app")
    with open(os.path.join(rdir, "untracked.txt"), "w") as f:
        f.write("scratch\n")
    p = bench.abra("app", "deploy", d, "-n")
    assert p.returncode == 1
    assert fata(p) == ("standin-app (%s) has locally unstaged changes? please commit/remove your changes "
                       "before proceeding" % rdir)
    assert sorted(leftovers(stack)) == sorted(["secret %s_api_key_v1" % stack, "secret %s_db_password_v1" % stack])
    p = bench.abra("app", "deploy", d, "--chaos", "--no-converge-checks", "-n", check=True)
    head = sh("git", "-C", rdir, "rev-parse", "--short=8", "HEAD").stdout.strip()
    assert "TYPE=standin-app:%s+U\n" % head in open(bench.env_file(d)).read()
    p = bench.abra("app", "ls", "-m", "-S", check=True)
    (a,) = [x for x in json.loads(p.stdout)["default"]["apps"] if x["domain"] == d]
    assert a["chaos"] == "true" and a["chaosVersion"] == head + "+U" and a["version"] == "1.0.0+t1"
    os.remove(os.path.join(rdir, "untracked.txt"))
    bench.abra("app", "undeploy", d, "-n", check=True)
    bench.abra("app", "remove", d, "-f", "-n", check=True)
    assert leftovers(stack) == []


def crash_recipe(bench):
    return bench.recipe("standin-crash", [
        ("0.1.0+t1", {"compose.yml": CRASH_COMPOSE.format(command="exec sleep 3600", version="0.1.0+t1"),
                      ".env.sample": CRASH_ENV}),
        ("0.2.0+t1", {"compose.yml": CRASH_COMPOSE.format(command="echo boom; exit 3", version="0.2.0+t1")}),
    ])


def test_crash_looping_first_deploy_times_out(bench):
    crash_recipe(bench)
    d = bench.domain("crash")
    bench.abra("app", "new", "standin-crash", "0.2.0+t1", "-s", "default", "-D", d, "-n", check=True)
    with open(bench.env_file(d), "a") as f:
        f.write("TIMEOUT=6\n")
    t0 = time.time()
    p = bench.abra("app", "deploy", d, "-n")
    took = time.time() - t0
    assert p.returncode == 1, p.stderr
    assert fata(p) == "deploy timed out 🟠"
    assert p.stderr.strip().splitlines()[-1].startswith("FATA ")
    assert re.search(r"^ERRO %s_app has not converged: 0/1 running; last task error: task: non-zero exit \(3\)"
                     % d.replace(".", "_"), p.stderr, re.M), p.stderr
    assert took < 30
    # like abra, the failed stack is left deployed
    assert bench.abra("app", "ps", d, "-n").returncode == 0


def test_failed_upgrade_is_rolled_back(bench):
    crash_recipe(bench)
    d = bench.domain("rollb")
    stack = d.replace(".", "_")
    bench.abra("app", "new", "standin-crash", "0.1.0+t1", "-s", "default", "-D", d, "-n", check=True)
    bench.abra("app", "deploy", d, "-n", check=True)
    assert version_label(stack)[0] == "0.1.0+t1"
    t0 = time.time()
    p = bench.abra("app", "upgrade", d, "-n")
    assert p.returncode == 1, p.stderr
    assert fata(p) == "deploy failed 🛑"
    assert re.search(r"^ERRO %s_app: update rolled back" % stack, p.stderr, re.M), p.stderr
    assert time.time() - t0 < 40
    assert version_label(stack)[0] == "0.1.0+t1"


def test_unknown_recipe_and_app(bench):
    p = bench.abra("app", "new", "no-such-recipe", "-s", "default", "-D", "x.standin.test", "-n")
    assert p.returncode == 1 and fata(p) == "no-such-recipe recipe does not exist?"
    assert not os.path.exists(bench.env_file("x.standin.test"))
    p = bench.abra("app", "deploy", "nope.standin.test", "-n")
    assert p.returncode == 1 and fata(p) == "cannot find app with name nope.standin.test"
    p = bench.abra("app", "backup", "create", "nope.standin.test", "-n")
    assert p.returncode == 1
    p = bench.abra("app", "deploy", "--bogus-flag", "-n")
    assert p.returncode == 1 and fata(p)
