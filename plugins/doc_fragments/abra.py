# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Options shared by every module that runs abra or inspects the swarm. Plain string literals
    # only: ansible-test's yamllint reads them without running Python, so docker_context is
    # written out twice (tests/unit/test_docs_argspec.py keeps the two copies equal).
    DOCUMENTATION = r"""
options:
  abra_bin:
    description: The abra binary to run. On the bench it is the stand-in.
    type: path
    default: abra
  abra_dir:
    description:
      - The C(ABRA_DIR) to run abra with. Falls back to the C(ABRA_DIR) environment variable,
        then to abra's own default (C(~/.abra)).
    type: path
  server:
    description: The abra server the app lives on.
    type: str
    default: default
  docker_bin:
    description: The docker CLI used for inspection and for removing what a stack left.
    type: path
    default: docker
  docker_context:
    description:
      - The docker context that reaches the server's swarm (abra reaches a server through the
        docker context named after it). Empty means docker's own current context.
    type: str
    default: ""
  evidence_dir:
    description:
      - Directory where the output of every command is written, scrubbed of secret values.
      - Falls back to the C(CANON_EVIDENCE_DIR) environment variable. Nothing is written when unset.
    type: path
  redact_file:
    description:
      - The run's private list of secret values to scrub from evidence (mode 0600).
      - Falls back to the C(CANON_REDACT_FILE) environment variable.
    type: path
"""

    # The docker_context option alone, for modules that reach the swarm without running abra.
    DOCKER_CONTEXT = r"""
options:
  docker_context:
    description:
      - The docker context that reaches the server's swarm (abra reaches a server through the
        docker context named after it). Empty means docker's own current context.
    type: str
    default: ""
"""
