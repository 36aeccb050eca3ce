"""The ``canon`` command: sweeps, isolation re-runs and classification over ansible-runner.

It drives the collection's own playbooks (``playbooks/isolate.yml``, ``playbooks/promote.yml``)
from this checkout; everything it does, the playbooks can do on their own.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if COLLECTIONS not in sys.path:
    # The collection's pure logic (module_utils) is imported from this checkout.
    sys.path.insert(0, COLLECTIONS)

__all__ = ["ROOT", "COLLECTIONS"]
