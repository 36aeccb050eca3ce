"""No secret value the bench generated during the session appears in anything the suite produced.

Named to run after the other integration tests. The values are the ones the bench's abra
generated while the session ran (the journal, see conftest.secret_journal) and the bench forge's
token; the files are everything under pytest's base temporary directory (every test's results
folders, evidence bundles, sweep folders with results.md, junit.xml, index.html and sweep.json,
reports) and the repository's default results/ folder that ``canon`` writes to.
"""
import os
import shutil
import tempfile

from conftest import BENCH_ROOT, ROOT
from secret_scan import bench_secret_values, read_journal, scan


def planted_value_is_found(value: str) -> bool:
    """The scan finds a real value planted in a binary file (outside the trees scanned below)."""
    d = tempfile.mkdtemp(prefix="canon-scan-control-")
    try:
        with open(os.path.join(d, "blob.bin"), "wb") as fh:
            fh.write(b"\x00\xff\x1f\x8b" + value.encode() + b"\x00tail")
        found = scan([d], {value})
        return [h[0] for h in found.hits] == [os.path.join(d, "blob.bin")]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_no_generated_secret_value_in_any_result(secret_journal, tmp_path_factory, request):
    journal = read_journal(secret_journal)
    assert journal, ("the secret journal %s is empty: no secret was generated in this session (run this after "
                     "tests that deploy apps, e.g. test_isolate.py), or the abra stand-in at %s/bin/abra predates "
                     "journal_secret (ansible-playbook playbooks/bench.yml)" % (secret_journal, BENCH_ROOT))
    assert planted_value_is_found(sorted(journal)[0]), "the scan misses a value planted in a binary file"
    values = journal | bench_secret_values(BENCH_ROOT)
    roots = [str(tmp_path_factory.getbasetemp()), os.path.join(ROOT, "results")]
    result = scan(roots, values, exclude=[secret_journal])
    summary = "%s (%d generated in this session)" % (result.summary(), len(journal))
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + summary)
    print(summary)
    assert result.files > 0, summary
    assert not result.hits, "%s:\n%s" % (summary, "\n".join("%s: %s" % h for h in result.hits[:50]))
