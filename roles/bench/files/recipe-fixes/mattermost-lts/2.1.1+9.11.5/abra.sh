#!/usr/bin/env bash
# Sourced by abra: config/secret versions and `abra app cmd` functions.
# This bench recipe has no configs, so there is nothing to export yet.
