"""The six recipes on the bench, alone and in their failure modes (issue: the six recipes).

What the sweep of the six shows (mumble's handshake under load, mattermost-lts's restore,
discourse's slow boot and stale test, bluesky-pds's alias warning) is asserted once, on that
sweep, in test_sweep.py."""
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
