# coopcloud.canon — one entry point per thing a person wants to do.
PYTHON ?= python3
RECIPE ?= custom-html
SANITY_VENV ?= /opt/canon-sanity
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup bench bench-down isolate teardown unit test test-sweep test-interrupt showcase build lint sanity

setup:            ## Python dependencies (ansible-core, ansible-runner, pytest, ...)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'

bench: setup      ## the bench: Docker engine, swarm, proxy, images, recipes, abra stand-in
	ansible-playbook playbooks/bench.yml

bench-down:       ## take the bench down (proxy, repos, swarm, the dockerd it started)
	ansible-playbook playbooks/bench.yml -e bench_state=absent

isolate: bench    ## one recipe's full cold lifecycle alone on the bench
	ansible-playbook playbooks/isolate.yml -e recipe=$(RECIPE)

teardown:         ## remove whatever dead harness runs left
	ansible-playbook playbooks/teardown.yml

unit:             ## fast: pure logic and parsers, no swarm (seconds)
	$(PYTHON) -m pytest -q -m "not slow" tests/unit

test: bench       ## everything but the sweep of the six: unit tests on both cores, then the integration tests (the interruption cases too) as two sessions at once, one per bench server (26-32 min with sanity and the bench setup: 1388-1601 s for the integration tests in .ci/run from 4ec95bc to 984e6e8 on 2026-12-07)
	$(PYTHON) -m pytest -q -ra -n 2 --dist loadfile tests/unit
	$(PYTHON) tests/integration/split.py -q -ra --durations=30 -m "not sweep"

test-sweep: bench ## the sweep of the six under load and their classification (880 s, 15 min, in .ci/run at 4ec95bc on 2026-12-07); CI runs it after make test
	$(PYTHON) -m pytest -q -ra --durations=0 -m sweep tests/integration

test-interrupt: bench ## the four interruptions of real runs alone (janitor, SIGINT, SIGKILL, SIGTERM on a warm promote; make test runs them too; 340 s on 2026-12-07)
	$(PYTHON) -m pytest -q -ra --durations=0 -m interrupt tests/integration

showcase: bench   ## the README's showcase: today's six failures seeded on the bench, through canon redfix (1742 s, 29 min, on 2026-12-07)
	$(PYTHON) tests/integration/scenario.py seed results/showcase-scenario
	$(PYTHON) -m canon redfix --load cpu=6 --profile tests/integration/today-bench.yml; rc=$$?; \
	  $(PYTHON) tests/integration/scenario.py unseed results/showcase-scenario; \
	  run=$$(ls -td results/redfix-*/ | head -1); first=$$(ls -d $${run}sweep-*/ | head -1); \
	  cp $${run}M1.md $${run}M2.md $${run}redfix.json $${first}sweep.json docs/showcase/ && \
	  rm -rf docs/showcase/classify docs/showcase/runs && cp -r $${first}classify $${first}runs docs/showcase/ && \
	  $(PYTHON) -m canon report docs/showcase && \
	  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2200 \
	    --user-data-dir=$$(mktemp -d) --screenshot=$(CURDIR)/docs/showcase/index.png \
	    file://$(CURDIR)/docs/showcase/index.html; exit $$rc

build:            ## the collection tarball
	ansible-galaxy collection build --force

sanity:           ## ansible-test sanity (validate-modules, pylint, pep8, yamllint, import, ansible-doc, ...) from its own venv
	PYTHON=$(PYTHON) hacking/sanity.sh $(SANITY_VENV)

lint: sanity
lint:             ## ansible-lint at the root (production profile, .ansible-lint) from its own venv, never the project's ansible-core; antsibull-changelog lint
	test -x /opt/canon-lint/bin/pip || $(PYTHON) -m venv /opt/canon-lint
	/opt/canon-lint/bin/pip install --quiet --disable-pip-version-check \
	  'ansible-lint==25.12.2' 'ansible-compat==26.10.0' 'ansible-core>=2.19,<2.20' 'ansible-builder==3.2.0'
	PATH=/opt/canon-lint/bin:$$PATH ansible-lint
	$(PYTHON) -m antsibull_changelog lint
