"""``canon``: sweeps, isolation re-runs and classification on abra servers.

    canon sweep [RECIPE ...] [--cap N] [--load cpu=6] [--profile FILE] [--resume DIR]
    canon isolate RECIPE [--runs N] [--tiers install,custom] [--version V]
    canon classify RECIPE --from results/<sweep-id> [--budget N] [--load cpu=6]
    canon redfix [RECIPE ...] [--profile FILE] [--load cpu=6] [--no-forge]
    canon report results/<sweep-id>
    canon --version

Every input is checked before anything runs; a refusal is one line on stderr.

Exit codes: 0 green, 1 red (a recipe or promote failed, or a verdict is not clear), 2 refused
(bad input, another sweep or isolation holds the server), 3 infra (the bench failed, not a
recipe), 130 interrupted (Ctrl-C / SIGTERM; what finished is written).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import sys
import threading
import time

import yaml

from canon import ROOT
from canon.inventory import InventoryError, default_inventory, load_servers
from canon.load import BUSY_CPU_PCT, LoadArm, LoadError, parse_spec, reap_orphans
from ansible_collections.coopcloud.canon.plugins.module_utils._flock import Busy, flocked

EXIT_OK, EXIT_RED, EXIT_REFUSED, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_RESULTS = os.path.join(ROOT, "results")


class Refused(Exception):
    pass


# -- progress (canon/progress.py: a live line on a TTY, one line per event elsewhere) -------
from canon.progress import QUIET, VERBOSE, Progress, clock, shorten  # noqa: E402,F401  (kept importable from here)


# -- shared pieces -------------------------------------------------------------------------
def pick_server(args):
    servers = load_servers(args.inventory)
    if args.server:
        if len(args.server) > 1:
            raise Refused("canon %s works on one server: --server was given %d times" % (args.command, len(args.server)))
        want = args.server[0]
        chosen = [s for s in servers if want in (s.host, s.name)]
        if not chosen:
            raise Refused("no server %s in %s (servers: %s)" % (want, args.inventory,
                                                                ", ".join(s.name for s in servers)))
        return chosen[0]
    return servers[0]


class ServerLock:
    """One sweep or classification per server at a time (a flock: it dies with its holder)."""

    # how long a loser that reads the lock file empty waits for the winner to write its name
    HOLDER_WAIT = 2.0

    def __init__(self, server, what: str, wait: bool):
        os.makedirs(server.state_dir, exist_ok=True)
        self.path = os.path.join(server.state_dir, "driver-%s.lock" % server.name)
        self.what, self.wait, self.server = what, wait, server
        self._held = None

    def __enter__(self):
        held = flocked(self.path, wait=self.wait, holder_wait=self.HOLDER_WAIT,
                       holder="%s by pid %d since %s" % (self.what, os.getpid(), time.strftime("%H:%M:%S")))
        try:
            held.__enter__()
        except Busy as exc:
            raise Refused("server %s is busy: %s; wait for it to finish (or pass --wait)"
                          % (self.server.name, exc.holder or "another canon process")) from None
        self._held = held
        return self

    def __exit__(self, *exc):
        held, self._held = self._held, None
        held.__exit__(*exc)
        return False


def live_harness_runs(server) -> list:
    from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import Ledger
    return Ledger(server.state_dir).live_runs(server=server.name)


def on_signals(stop: threading.Event, progress: Progress):
    def handler(signum, _frame):
        if not stop.is_set():
            progress.say("%s: no new work; stopping what runs and tearing it down ..." % signal.Signals(signum).name)
            stop.set()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def load_profile(path: str | None, known: list | None = None) -> dict:
    """A profile's ``recipes`` mapping; a missing, unreadable or malformed profile, or one naming
    a recipe outside ``known`` (when given), is refused in one line, never a traceback."""
    if not path:
        return {}
    if not os.path.isfile(path):
        raise Refused("profile %s: no such file" % path)
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused("profile %s: cannot be read: %s" % (path, exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d)" % (mark.line + 1) if mark is not None else ""
        raise Refused("profile %s: not YAML%s: %s" % (path, where, getattr(exc, "problem", None) or exc)) from None
    recipes = data.get("recipes") if isinstance(data, dict) else None
    if not isinstance(recipes, dict):
        raise Refused("profile %s: expected a mapping `recipes: {<recipe>: {settings: ..., warm_drift: ...}}`" % path)
    for name, entry in recipes.items():
        if entry is not None and not isinstance(entry, dict):
            raise Refused("profile %s: recipes.%s must be a mapping (settings:, warm_drift:, warm:), not %r"
                          % (path, name, entry))
        if entry and not isinstance(entry.get("settings", {}) or {}, dict):
            raise Refused("profile %s: recipes.%s.settings must be a mapping" % (path, name))
    if known is not None:
        from ansible_collections.coopcloud.canon.plugins.plugin_utils._inputs import recipe_problems
        problems = recipe_problems(list(recipes), known)
        if problems:
            raise Refused("profile %s: %s" % (path, "; ".join(problems)))
    return recipes


def probe_image(server) -> str:
    """The load arm's and probes' image: the server's ``canon_probe_image`` from the inventory
    in use (never the bench's file, whichever inventory was named)."""
    return str((server.vars or {}).get("canon_probe_image") or "busybox:stable")


def render(sweep_dir: str):
    from canon.report import write_all
    sweep = json.load(open(os.path.join(sweep_dir, "sweep.json")))
    classifications = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(sweep_dir, "classify", "*.json")))]
    return write_all(sweep, classifications, sweep_dir)


# -- commands ------------------------------------------------------------------------------
def sweep_servers(args) -> list:
    """``--server`` (repeatable) names the servers; without it, every server of the inventory."""
    servers = load_servers(args.inventory)
    if not args.server:
        return servers
    chosen = []
    for want in args.server:
        match = [s for s in servers if want in (s.host, s.name)]
        if not match:
            raise Refused("no server %s in %s (servers: %s)" % (want, args.inventory,
                                                                ", ".join(s.name for s in servers)))
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def sweep_plans(servers, names: list) -> tuple:
    """The recipes (named, else every server's ``canon_enrolled`` in inventory order) and, per
    recipe, its enrolment and the servers that enrol it (where it may run)."""
    enrolled, where = {}, {}
    for server in servers:
        for e in server.enrolled:
            enrolled.setdefault(e["recipe"], e)
            where.setdefault(e["recipe"], []).append(server.name)
    return (names or list(enrolled)), enrolled, where


def cmd_sweep(args, progress) -> int:
    from contextlib import ExitStack
    from canon.sweep import Sweep, SweepError
    servers = sweep_servers(args)
    server = servers[0]
    profile = load_profile(args.profile)
    names, enrolled, where = sweep_plans(servers, args.recipes)
    resume = None
    if args.resume:
        path = os.path.join(args.resume, "sweep.json")
        if not os.path.exists(path):
            raise Refused("nothing to resume: %s does not exist" % path)
        resume = json.load(open(path))
        names = names if args.recipes else [r["recipe"] for r in resume["recipes"]]
    plans = []
    for name in names:
        plan = dict(enrolled.get(name) or {"recipe": name, "warm": False, "settings": {}, "warm_drift": True})
        extra = profile.get(name) or {}
        plan["settings"] = dict(plan.get("settings") or {}, **(extra.get("settings") or {}))
        if "warm_drift" in extra:
            plan["warm_drift"] = bool(extra["warm_drift"])
        if "warm" in extra:
            plan["warm"] = bool(extra["warm"])
        if len(servers) > 1 and where.get(name):
            plan["servers"] = list(where[name])   # enrolled on these servers only
        plans.append(plan)
    spec = parse_spec(args.load)
    stop = threading.Event()
    try:
        sweep = Sweep(servers if len(servers) > 1 else server, plans,
                      os.path.dirname(os.path.abspath(args.resume)) if args.resume else args.results,
                      args.inventory, cap=args.cap, deadline=args.deadline, progress=progress, resume=resume)
    except SweepError as exc:
        raise Refused(str(exc)) from None
    if args.plan:
        print(json.dumps(shard_plan(sweep), indent=2))
        return EXIT_OK
    with ExitStack() as locks:
        # Every server of the sweep to itself (in name order: two multi-server sweeps never
        # hold one lock each while waiting for the other's).
        for s in sorted(servers, key=lambda s: s.name):
            locks.enter_context(ServerLock(s, "a sweep", args.wait))
            isolating = [r["run_id"] for r in live_harness_runs(s) if r.get("exclusive")]
            if isolating:
                raise Refused("server %s is in an isolation run (%s)" % (s.name, ", ".join(isolating)))
            reap_orphans(s)
        loads = [LoadArm(s, spec, probe_image(s), deploy_runner=None) for s in servers] if any(spec.values()) else []
        sweep.load_arms, sweep.load_arm = loads, (loads[0] if loads else None)
        sweep.stop = stop
        on_signals(stop, progress)
        progress.estimate = sweep.plan_estimate()
        for s in servers:
            progress.started("sweep %s started: %d recipe(s) on %s, cap %d%s" % (
                sweep.sweep_id, sum(1 for p in plans if p["server"] == s.name), s.name, sweep.caps[s.name],
                ", load %s" % spec if loads else ""))
        doc = sweep.run()
    paths = render(sweep.dir)
    summarise_sweep(doc, sweep.dir, paths)
    return {"pass": EXIT_OK, "fail": EXIT_RED, "infra": EXIT_INFRA, "interrupted": EXIT_INTERRUPTED}[doc["outcome"]]


def shard_plan(sweep) -> dict:
    """What ``canon sweep --plan`` prints: the shards, without running anything (one AWX job per
    shard runs ``canon sweep --server <name> <its recipes>``)."""
    from canon.shard import estimates
    names = [s.name for s in sweep.servers]
    est = estimates(sweep.plans, [(n, sweep.caps[n]) for n in names], sweep.assignment, sweep.last_durations())
    return {"servers": [{"name": s.name, "host": s.host, "cap": sweep.caps[s.name],
                         "recipes": [p["recipe"] for p in sweep.order(sweep.plans) if p["server"] == s.name],
                         "estimated_seconds": est[s.name]} for s in sweep.servers]}


def summarise_sweep(doc, directory, paths):
    """The end summary on stdout: the outcome, the banner the reports open with (the same words:
    red, infra, interrupted and not run counted apart), systemic events, one line per recipe."""
    from canon.report import banner_text
    multi = len(doc.get("servers") or []) > 1
    where = ", ".join("%s (cap %s)" % (s["name"], s["cap"]) for s in doc["servers"]) if multi else None
    print("sweep %s on %s: %s in %.0f s (cap %d)" % (doc["sweep_id"], where or doc["server"], doc["outcome"].upper(),
                                                     doc["duration"] or 0, doc["cap"]) if not multi else
          "sweep %s on %s: %s in %.0f s" % (doc["sweep_id"], where, doc["outcome"].upper(), doc["duration"] or 0))
    print("  " + banner_text(doc))
    for ev in doc.get("systemic") or []:
        print("  systemic event in %s: %s" % (", ".join(ev["recipes"]), shorten(ev["normalised"], 160)))
    for r in doc["recipes"]:
        f = r["cold"].get("failure") or {}
        cold = r["cold"]["outcome"] + (" (%s)" % r["cold"]["infra"] if r["cold"].get("infra") else "")
        task = " task '%s'" % f["task"] if f.get("task") and r["cold"].get("infra") == "harness-error" else ""
        print("  %-16s %scold %-11s promote %-20s %s" % (
            r["recipe"], ("on %-18s " % r.get("server")) if multi else "", cold,
            r["promote"]["outcome"], ("%s%s: %s" % (f.get("tier"), task, shorten(f.get("error", ""), 160))) if f else ""))
    print("results: %s" % directory)
    for p in (paths or {}).values():
        print("  %s" % p)


def cmd_isolate(args, progress) -> int:
    from canon.runner import Job
    from canon.sweep import cold_record, engine_problem
    server = pick_server(args)
    stop = threading.Event()
    on_signals(stop, progress)
    outcomes = []
    with ServerLock(server, "an isolation of %s" % args.recipe, args.wait):
        live = live_harness_runs(server)
        if live:
            raise Refused("refusing to isolate %s: other harness runs are live on %s (%s)"
                          % (args.recipe, server.name, ", ".join(r["run_id"] for r in live)))
        for n in range(1, args.runs + 1):
            if stop.is_set():
                break
            extravars = {"recipe": args.recipe, "canon_hosts": server.host, "canon_results_dir": args.results,
                         "canon_exclusive": True, "canon_deadline": args.deadline}
            if args.version:
                extravars["version"] = args.version
            if args.tiers:
                extravars["canon_tier_order"] = args.tiers.split(",")
            progress.say("%s: run %d of %d started" % (args.recipe, n, args.runs))
            began = time.time()
            res = Job("isolate.yml", extravars, "isolate-%s-%d-%d" % (args.recipe, os.getpid(), n), args.inventory,
                      timeout=args.deadline + 300, cancel=stop,
                      on_progress=lambda _i, tier: progress.tier_started(args.recipe, tier, time.time() - began),
                      on_tier=lambda _i, rec: progress.tier_done(args.recipe, rec, time.time() - began)).run()
            rec = cold_record(res, args.results, server)
            outcomes.append(rec)
            f = rec.get("failure") or {}
            print("%s run %d/%d: %s%s  %s" % (args.recipe, n, args.runs, rec["outcome"].upper(),
                                              (" (%s: %s)" % (f.get("tier"), shorten((f.get("error") or "").strip().split("\n")[0], 160))) if f else "",
                                              os.path.dirname(rec["result"] or "") or ""))
    if stop.is_set():
        return EXIT_INTERRUPTED
    if any(o["outcome"] == "infra" for o in outcomes) or engine_problem(server):
        return EXIT_INFRA
    return EXIT_OK if outcomes and all(o["outcome"] == "pass" for o in outcomes) else EXIT_RED


def cmd_classify(args, progress) -> int:
    from canon.classifier import ClassifyError, Classifier, classify_target
    server = pick_server(args)
    try:  # a sweep's folder or a single run's; relative to the caller's working directory
        entry, loaded, args.sweep = classify_target(args.sweep, args.recipe)
    except ClassifyError as exc:
        raise Refused(str(exc))
    if not args.server and entry.get("server") and entry["server"] != server.name:
        # a sharded sweep: re-run the failure on the server it ran on
        args.server = [entry["server"]]
        server = pick_server(args)
    spec = parse_spec(args.load or ["cpu=6"])
    stop = threading.Event()
    on_signals(stop, progress)
    with ServerLock(server, "a classification of %s" % args.recipe, args.wait):
        try:
            clf = Classifier(server, args.inventory, args.recipe, args.sweep, entry, loaded, spec, probe_image(server),
                             budget=args.budget, deadline=args.deadline, kind=args.kind, progress=progress.say, stop=stop,
                             busy_from=args.busy_cpu)
        except ClassifyError as exc:
            raise Refused(str(exc))
        try:
            doc = clf.run()
        except ClassifyError as exc:  # a reset the recipe itself stopped (not the server): no verdict
            raise Refused("the classification of %s stopped: %s" % (args.recipe, exc))
    c = doc["confidence"]
    print("%s (%s): %s%s — %s" % (args.recipe, doc["kind"], doc["verdict"], "" if doc["clear"] else " (not clear)",
                                  doc["reason"]))
    level = (doc["location"].get("confidence") or {}).get("level")
    print("  where: %s%s — %s" % (doc["location"]["where"], " (confidence: %s)" % level if level else "",
                                  doc["location"].get("detail", "")))
    for ev in doc["location"].get("evidence", []):
        print("    evidence: %s" % ev)
    print("  confidence: p=%.3g (%s); isolated clean %s of %s needed; runs used %d of %d" % (
        c.get("p_value", 1.0), c.get("test"), c.get("isolated_clean"), c.get("isolated_clean_needed"),
        doc["budget"]["used"], doc["budget"]["runs"]))
    try:
        render(args.sweep)
    except FileNotFoundError:
        pass
    if doc.get("interrupted"):
        return EXIT_INTERRUPTED
    if doc["verdict"] == "infra":
        return EXIT_INFRA
    return EXIT_OK if doc["clear"] else EXIT_RED


def cmd_redfix(args, progress) -> int:
    from canon.redfix import Redfix
    server = pick_server(args)
    profile = load_profile(args.profile)
    enrolled = {e["recipe"]: e for e in server.enrolled}
    names = args.recipes or [e["recipe"] for e in server.enrolled]
    if not names:
        raise Refused("no recipes to redfix: an empty set is not a green sweep")
    plans = []
    for name in names:
        plan = dict(enrolled.get(name) or {"recipe": name, "warm": False, "settings": {}, "warm_drift": True})
        extra = profile.get(name) or {}
        plan["base_settings"] = dict(plan.get("settings") or {})
        plan["settings"] = dict(plan["base_settings"], **(extra.get("settings") or {}))
        plan["warm_drift"] = bool(extra.get("warm_drift", plan.get("warm_drift", True)))
        plans.append(plan)
    spec = parse_spec(args.load)
    stop = threading.Event()
    on_signals(stop, progress)
    with ServerLock(server, "a redfix", args.wait):
        isolating = [r["run_id"] for r in live_harness_runs(server) if r.get("exclusive")]
        if isolating:
            raise Refused("server %s is in an isolation run (%s)" % (server.name, ", ".join(isolating)))
        reap_orphans(server)
        ci = None
        if not args.no_forge:
            from canon.forge_ci import BenchForge
            ci = BenchForge.from_inventory(server, args.inventory, args.results)
        job = Redfix(server, args.inventory, args.results, plans, profile, spec, probe_image(server), cap=args.cap or server.cap,
                     budget=args.budget, deadline=args.deadline, progress=progress, stop=stop, ci=ci,
                     busy_from=args.busy_cpu)
        doc = job.run()
    print(open(os.path.join(job.dir, "M2.md")).read())
    print("results: %s" % job.dir)
    return {"green": EXIT_OK, "not-all-fixed": EXIT_RED, "interrupted": EXIT_INTERRUPTED}[doc["outcome"]]


def cmd_report(args, progress) -> int:
    if not os.path.exists(os.path.join(args.sweep, "sweep.json")):
        raise Refused("no sweep.json in %s" % args.sweep)
    for p in render(args.sweep).values():
        print(p)
    return EXIT_OK


class UsageError(Exception):
    """A command line argparse refuses: ``main`` prints it in one line and exits 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse's own error() prints the usage and exits; one line and exit 2 (refused) is
        # what every other refusal of canon looks like.
        raise UsageError("%s: %s (see %s --help)" % (self.prog, message, self.prog))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


BUSY_HELP = ("an isolated re-run during which the machine's CPUs were PCT%% busy or more counts as loaded: "
             "something else was running (default %(default)g)")


def percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError("must be a percentage above 0 and at most 100, got %s" % text)
    return value


def sweep_cap(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if not 1 <= value <= 3:
        # more deploys at once than that on one node is load, not a sweep
        raise argparse.ArgumentTypeError("cap %d refused: 1 to 3 deploys at once" % value)
    return value


def collection_version(root: str = ROOT) -> str:
    """galaxy.yml's version in a checkout; MANIFEST.json's in an installed collection."""
    try:
        with open(os.path.join(root, "galaxy.yml")) as fh:
            return str((yaml.safe_load(fh) or {}).get("version", "unknown"))
    except OSError:
        pass
    try:
        with open(os.path.join(root, "MANIFEST.json")) as fh:
            return str(json.load(fh)["collection_info"]["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def harness_commit(root: str = ROOT) -> str:
    import subprocess
    try:
        res = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "unknown (not a git checkout)"


class _VersionAction(argparse.Action):
    """``canon --version``: computed when asked (a git call), not each time the parser is built."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print("canon (coopcloud.canon %s, harness commit %s)" % (collection_version(), harness_commit()))
        parser.exit()


def tier_list(text: str) -> str:
    tiers = [t.strip() for t in text.split(",")]
    bad = [t for t in tiers if t not in _tiers()]
    if bad:
        raise argparse.ArgumentTypeError("unknown tier %s: the tiers are %s" % (", ".join(repr(t) for t in bad), ",".join(_tiers())))
    return ",".join(tiers)


def _tiers() -> tuple:
    # the ladder is defined once, in module_utils/_settings.py
    from ansible_collections.coopcloud.canon.plugins.module_utils._settings import TIERS
    return TIERS


def parser() -> argparse.ArgumentParser:
    # Each subcommand takes only the options it uses: `target` for the ones that run on a server,
    # `results` for the ones that write a results folder of their own.
    def target(several: bool = False) -> argparse.ArgumentParser:
        t = argparse.ArgumentParser(add_help=False)
        t.add_argument("-i", "--inventory", default=default_inventory(), help="Ansible inventory (default: the bench)")
        t.add_argument("--server", action="append",
                       help="inventory host or abra server name; repeat for several (default: every server of "
                            "canon_servers, recipes sharded across them)" if several else
                            "inventory host or abra server name (default: the first in canon_servers)")
        t.add_argument("--deadline", type=positive_int, default=3600,
                       help="seconds one run may take before it is stopped (default 3600)")
        t.add_argument("--wait", action="store_true", help="wait for another sweep on the server instead of refusing")
        talk = t.add_mutually_exclusive_group()
        talk.add_argument("-q", "--quiet", action="store_true",
                          help="no progress on stderr, only the end summary (and errors)")
        talk.add_argument("-v", "--verbose", action="store_true",
                          help="every tier's start and outcome as a line, on a terminal too")
        return t
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument("--results", default=DEFAULT_RESULTS, help="results folder (default: results/)")
    p = _Parser(prog="canon", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=_VersionAction,
                   help="print the collection's version and the harness's git commit, then exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="{sweep,isolate,classify,redfix,report}")

    s = sub.add_parser("sweep", parents=[target(several=True), results], help="cold lifecycle then warm promote of every enrolled recipe")
    s.add_argument("--plan", action="store_true", help="print the shards (recipes per server) as JSON and stop")
    s.add_argument("recipes", nargs="*", help="only these recipes (default: the server's canon_enrolled)")
    s.add_argument("--cap", type=sweep_cap,
                   help="deploys at once per server, 1 to 3 (default: each server's canon_sweep_cap)")
    s.add_argument("--load", action="append", default=[], help="load beside the sweep: cpu=N, io=N (N 0-64)")
    s.add_argument("--profile", help="YAML: per-recipe settings overrides and warm_drift for this sweep")
    s.add_argument("--resume", help="a sweep's results folder: redo only what did not finish")

    i = sub.add_parser("isolate", parents=[target(), results], help="one recipe's cold lifecycle alone on the server, N times")
    i.add_argument("recipe", help="the recipe (a role of this collection, or one the inventory enrols)")
    i.add_argument("--runs", type=positive_int, default=1, help="how many runs, one after the other (default 1)")
    i.add_argument("--version", help="the release to test, a tag like 1.1.0+1.37 (default: the newest)")
    i.add_argument("--tiers", type=tier_list, help="comma-separated tier order (default: %s)" % ",".join(_tiers()))

    c = sub.add_parser("classify", parents=[target()], help="tell genuine from load-flake from flaky, with the runs behind it")
    c.add_argument("recipe", help="the recipe whose failure in the sweep is classified")
    c.add_argument("--from", dest="sweep", required=True, help="the sweep's results folder, or a single run's (its re-runs are written there)")
    c.add_argument("--budget", type=positive_int, default=10, help="re-runs at most (default 10)")
    c.add_argument("--load", action="append", help="the loaded arm's load (default cpu=6)")
    c.add_argument("--kind", choices=["cold", "promote"], help="which failure (default: the one the sweep saw)")
    c.add_argument("--busy-cpu", type=percent, metavar="PCT", default=BUSY_CPU_PCT, help=BUSY_HELP)

    x = sub.add_parser("redfix", parents=[target(), results], help="sweep, classify, fix (PRs or settings), verify, sweep again")
    x.add_argument("recipes", nargs="*", help="only these recipes (default: the server's canon_enrolled)")
    x.add_argument("--profile", default=os.path.join(ROOT, "profiles", "today.yml"),
                   help="the profile that reproduces the failures (default profiles/today.yml)")
    x.add_argument("--load", action="append", default=[], help="load beside the sweeps and the loaded arm: cpu=N, io=N")
    x.add_argument("--cap", type=sweep_cap, help="deploys at once, 1 to 3 (default: the server's canon_sweep_cap)")
    x.add_argument("--budget", type=positive_int, default=10, help="re-runs per classification (default 10)")
    x.add_argument("--busy-cpu", type=percent, metavar="PCT", default=BUSY_CPU_PCT, help=BUSY_HELP)
    x.add_argument("--no-forge", action="store_true", help="no pull requests: recipe and test fixes are reported, not applied")

    r = sub.add_parser("report", help="render results.md, junit.xml and index.html of a sweep")
    r.add_argument("sweep", help="the sweep's results folder (the one holding sweep.json); the reports are written there")
    return p


def check_names(args) -> None:
    """Recipe names and versions are checked before anything runs: a name with shell or path
    characters is refused here (exit 2), never handed to a playbook."""
    from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
        NameError_, validate_recipe, validate_version)
    names = list(getattr(args, "recipes", None) or [])
    if getattr(args, "recipe", None) is not None:
        names.append(args.recipe)
    try:
        for name in names:
            validate_recipe(name)
        if getattr(args, "version", None):
            validate_version(args.version)
    except NameError_ as exc:
        raise Refused(str(exc))


def check_inputs(args) -> None:
    """Everything the command line names is checked before any lock, ledger, runner or results
    folder: recipe names and versions, that each recipe is known (a role with settings, or
    enrolled on a server of the inventory), the profile, the load spec, the folders read."""
    check_names(args)
    if args.command == "report":
        read_json(os.path.join(args.sweep, "sweep.json"), "no sweep to report")
        return
    from ansible_collections.coopcloud.canon.plugins.plugin_utils._inputs import known_recipes, recipe_problems
    servers = load_servers(args.inventory)
    known = known_recipes(os.path.join(ROOT, "roles"), [e for s in servers for e in s.enrolled])
    names = list(getattr(args, "recipes", None) or []) + ([args.recipe] if getattr(args, "recipe", None) else [])
    problems = recipe_problems(names, known)
    if problems:
        raise Refused("; ".join(problems))
    if getattr(args, "profile", None):
        load_profile(args.profile, known)
    parse_spec(getattr(args, "load", None) or [])
    if getattr(args, "resume", None):
        read_json(os.path.join(args.resume, "sweep.json"), "nothing to resume")
    if args.command == "classify":
        read_json(os.path.join(args.sweep, "sweep.json"), "no sweep (run canon sweep first, or name its results folder)")


def read_json(path: str, missing: str):
    if not os.path.isfile(path):
        raise Refused("%s: %s does not exist" % (missing, path))
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise Refused("%s is not readable JSON: %s" % (path, exc)) from None


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    progress = Progress(verbosity=QUIET if getattr(args, "quiet", False) else
                        VERBOSE if getattr(args, "verbose", False) else 0)
    commands = {"sweep": cmd_sweep, "isolate": cmd_isolate, "classify": cmd_classify, "report": cmd_report,
                "redfix": cmd_redfix}
    try:
        check_inputs(args)
        return commands[args.command](args, progress)
    except (Refused, InventoryError, LoadError) as exc:
        print("canon: %s" % exc, file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:
        from canon.sweep import SweepError
        if isinstance(exc, SweepError):
            print("canon: %s" % exc, file=sys.stderr)
            return EXIT_REFUSED
        raise


if __name__ == "__main__":
    sys.exit(main())
