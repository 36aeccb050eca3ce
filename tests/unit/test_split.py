"""tests/integration/split.py: every integration test runs in exactly one of the two sessions."""
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTEGRATION = os.path.join(ROOT, "tests", "integration")
sys.path.insert(0, INTEGRATION)

import split  # noqa: E402


def functions_in(path):
    with open(path) as fh:
        tree = ast.parse(fh.read())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_entry_for_the_second_server_names_a_test_that_exists():
    for entry in split.SECOND:
        name, _, func = entry.partition("::")
        path = os.path.join(INTEGRATION, name)
        assert os.path.isfile(path), entry
        assert not func or func in functions_in(path), entry


def test_the_sessions_split_the_suite_without_overlap():
    s = split.sessions(["-q", "-m", "not sweep"])
    first, second = s["default"], s["bench2.canon.test"]
    rel = "tests/integration/"
    for entry in split.SECOND:
        # the second session runs it; the first ignores the file or deselects the test
        assert rel + entry in second
        flag = "--deselect=" if "::" in entry else "--ignore="
        assert flag + rel + entry in first
    # both keep the caller's options, and each ends with its own secret scan of what it wrote
    assert first[:3] == second[:3] == ["-q", "-m", "not sweep"]
    assert second[-1] == rel + split.SCAN and rel + "test_zz_secret_scan.py" not in [
        a.split("=", 1)[-1] for a in first]
    assert rel.rstrip("/") in first
