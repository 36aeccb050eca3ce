"""docker's own compose loader for the unit tests: the docker CLI that has ``docker stack config``
(23 and later; Debian's 20.10 client lacks it), or None, and the skip mark for tests that need it."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest


@functools.lru_cache(maxsize=1)
def stack_config_docker() -> str | None:
    for candidate in (shutil.which("docker"), "/usr/local/bin/docker"):
        if candidate and os.path.exists(candidate) and subprocess.run(
                [candidate, "stack", "config", "--help"], capture_output=True).returncode == 0:
            return candidate
    return None


needs_loader = pytest.mark.skipif(stack_config_docker() is None,
                                  reason="no docker CLI 23+ (docker stack config) on this machine")
