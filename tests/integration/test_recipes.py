"""The six sweep failures, reproduced on the bench and told apart (issue: the six recipes)."""
import glob
import json
import os

from conftest import leftovers, run_playbook


def tiers(doc):
    return {t["name"]: t for t in doc["tiers"]}


def evidence(results_dir, pattern):
    out = []
    for path in glob.glob(os.path.join(results_dir, "*", "evidence", "**", pattern), recursive=True):
        with open(path, errors="replace") as fh:
            out.append(fh.read())
    return "\n".join(out)


def test_mumble_is_green_alone_with_its_readiness_probe(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="mumble",
                      canon_tier_order=["install", "backup_restore", "custom"])
    assert pb.rc == 0, pb.stdout[-3000:]
    [doc] = pb.results
    assert [t["outcome"] for t in doc["tiers"]] == ["pass"] * 4
    assert "ready after" in evidence(results_dir, "readiness.txt")
    assert leftovers(doc["domains"].values()) == {}


def test_mumble_handshake_fails_inside_its_warm_up_without_the_probe(results_dir):
    # What load does to mumble, set directly: the warm-up after the restore's restart made far
    # longer than the gap between the restore and the custom suite. Under real load (six busy
    # loops) the window was a few seconds and the harness's gap grew with the load too: in a CI
    # run of 2026-12-07 the suite came after the warm-up and found the server ready. 20 x the
    # recipe's work (RESTART_WORK, the restarts' only; the first start stays quick, so the
    # restore's hook finds the server) is about 20 s idle and longer loaded, so the outcome no
    # longer depends on how busy the machine is. The sweep of the six (test_sweep.py) still shows
    # the flake under real load, and its classification.
    pb = run_playbook("isolate.yml", results_dir, recipe="mumble",
                      canon_tier_order=["install", "backup_restore", "custom"],
                      canon_settings_overrides={"readiness": [], "env": {"RESTART_WORK": "6000000"}})
    assert pb.rc != 0
    [doc] = pb.results
    t = tiers(doc)
    assert t["backup_restore"]["outcome"] == "pass"      # the restore restarted the server...
    assert t["custom"]["outcome"] == "fail"              # ...and the test ran inside its warm-up
    assert "channels: Root,Lobby" in t["custom"]["error"]
    assert leftovers(doc["domains"].values()) == {}


def test_mattermost_restore_is_red_alone_and_the_dump_was_taken(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="mattermost-lts",
                      canon_tier_order=["install", "backup_restore"])
    assert pb.rc != 0
    [doc] = pb.results
    t = tiers(doc)
    assert t["install"]["outcome"] == "pass"
    assert t["backup_restore"]["outcome"] == "fail"
    assert "the restore did not bring back the state" in t["backup_restore"]["error"]
    # The dump was taken and verified real (tables in it)...
    verify = evidence(results_dir, "backup-verify.txt")
    assert "attempt 1: True" in verify or "attempt 2: True" in verify or "attempt 3: True" in verify, verify
    # ...and restored, but nothing re-imported it: the marker still holds the post-backup value.
    assert "changed-%s" % doc["run_id"] in t["backup_restore"]["error"]
    assert any("abra-app-restore" in f for f in os.listdir(os.path.join(results_dir, doc["run_id"], "evidence", "commands")))
    assert leftovers(doc["domains"].values()) == {}


def test_discourse_preflight_reports_the_orphan_overlay_reference(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="discourse",
                      canon_settings_overrides={"overlays": ["compose.smtpauth.yml"]})
    assert pb.rc != 0
    [doc] = pb.results
    pre = tiers(doc)["preflight"]
    assert pre["outcome"] == "fail"
    assert "depends_on smtp, which no file in COMPOSE_FILE defines" in pre["error"]
    assert all(t["outcome"] == "skipped" for t in doc["tiers"] if t["name"] != "preflight")
    assert leftovers(doc["domains"].values()) == {}


def test_discourse_wedge_is_declared_fast(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="discourse", canon_tier_order=["install"],
                      canon_settings_overrides={"overlays": ["compose.wedge.yml"], "deploy_timeout": 3600,
                                                "wedge_window": 20})
    assert pb.rc != 0
    [doc] = pb.results
    install = tiers(doc)["install"]
    assert install["outcome"] == "fail"
    assert install["error"].startswith("wedged: no progress for")
    assert install["duration"] < 120          # not the 3600 s timeout
    assert json.loads(evidence(results_dir, "verdict.json"))["verdict"] == "wedged"
    # the evidence shows what it was stuck on
    assert "waiting for smtp.invalid:25" in evidence(results_dir, "*.logs.txt")
    assert leftovers(doc["domains"].values()) == {}


def test_discourse_slow_first_boot_converges_and_its_stale_test_is_red(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="discourse", canon_tier_order=["install", "custom"])
    assert pb.rc != 0
    [doc] = pb.results
    t = tiers(doc)
    assert t["install"]["outcome"] == "pass", t["install"]
    assert "bootstrap: step 20/20" in evidence(results_dir, "*.logs.txt")
    assert t["custom"]["outcome"] == "fail"
    assert "no top-level 'version' in /about.json" in t["custom"]["error"]
    assert leftovers(doc["domains"].values()) == {}


def test_bluesky_is_green_cold_and_preflight_names_the_alias_collision(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="bluesky-pds", canon_tier_order=["install", "custom"])
    assert pb.rc == 0, pb.stdout[-3000:]
    [doc] = pb.results
    warnings = tiers(doc)["preflight"]["warnings"]
    # the live keycloak's "app" shares the proxy network
    assert any("web reaches app by its short name on the shared network proxy" in w
               and "warm-keycloak_bench_canon_test" in w for w in warnings), warnings
    assert leftovers(doc["domains"].values()) == {}
