#!/usr/bin/env bash
# Sourced by abra: config/secret versions and `abra app cmd` functions.
# Bump APP_INI_VERSION whenever app.ini.tmpl changes (swarm configs are immutable).
export APP_INI_VERSION=v2
