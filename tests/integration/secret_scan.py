"""Secret scan: no generated secret value may appear in any file the suite produced.

The values come from the journal the bench's abra stand-in appends every generated secret to when
``CANON_BENCH_SECRET_JOURNAL`` names a file (``roles/bench/files/abra``, ``journal_secret``), and
from the bench's own generated credential (the bench forge's API token). The search is binary-safe:
every file is read as bytes, whatever its type.

Each value is looked for with ``bytes.find`` (C, two-way search) in each file: about 3 GB/s of
value-times-bytes here, so 300 values over 50 MB take about 5 s.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

JOURNAL_ENV = "CANON_BENCH_SECRET_JOURNAL"
MIN_LENGTH = 8


@dataclass
class Scan:
    """What a scan looked at and found."""

    files: int = 0
    bytes: int = 0
    values: int = 0
    roots: list = field(default_factory=list)
    hits: list = field(default_factory=list)   # (path, value shown by its first 4 characters and length)

    def summary(self) -> str:
        return "secret scan: %d value(s) of >= %d characters in %d file(s) (%.1f MB) under %s: %d hit(s)" % (
            self.values, MIN_LENGTH, self.files, self.bytes / 1e6, ", ".join(self.roots) or "nothing",
            len(self.hits))


def read_journal(path: str) -> set:
    """The values in a journal (one per line); empty when it does not exist."""
    try:
        with open(path, "rb") as fh:
            return {line.strip().decode("utf-8", "replace") for line in fh if line.strip()}
    except FileNotFoundError:
        return set()


def bench_secret_values(bench_root: str) -> set:
    """Credentials the bench role generated itself (not through abra): the forge's API token."""
    values = set()
    for path in (os.path.join(bench_root, "forge", "token"),):
        try:
            with open(path) as fh:
                token = fh.readline().strip()
        except OSError:
            continue
        if token:
            values.add(token)
    return values


def scan(roots, values, min_length: int = MIN_LENGTH, exclude=()) -> Scan:
    """Search every file under ``roots`` (missing roots are skipped) for every value of at least
    ``min_length`` characters. Symlinks are not followed; the files in ``exclude`` (the journal
    itself) are skipped."""
    skip = {os.path.realpath(p) for p in exclude}
    wanted = {v.encode() for v in values if isinstance(v, str) and len(v) >= min_length}
    ordered = sorted(wanted)
    result = Scan(values=len(wanted))
    for root in roots:
        if not os.path.isdir(root):
            continue
        result.roots.append(root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path) or os.path.realpath(path) in skip:
                    continue
                try:
                    with open(path, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                result.files += 1
                result.bytes += len(data)
                for value in (v for v in ordered if data.find(v) != -1):
                    shown = value.decode("utf-8", "replace")
                    result.hits.append((path, "%s... (%d characters)" % (shown[:4], len(shown))))
    return result
