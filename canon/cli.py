"""``canon``: the command line (filled in by the driver)."""
import sys


def main(argv=None) -> int:
    print("canon: not yet", file=sys.stderr)
    return 2
