#!/usr/bin/env bash
# custom-html's cold lifecycle as a plain shell script: the abra calls that
# `canon isolate custom-html` makes (read from a run's evidence/commands/*.log),
# in the same order, with the same HTTP checks through the bench proxy, and
# nothing else. The baseline of `python3 benchmarks/driver.py overhead`.
#
# Differences from the harness, on purpose (a plain script would do it so):
#   - deploys run without --no-converge-checks: abra itself waits for the
#     services, where the harness deploys with it and watches swarm instead;
#   - one shared ABRA_DIR (the bench's), where the harness gives each run its own;
#   - no evidence, ledger, guardian, readiness probes, data markers or
#     teardown checks (docs/performance.md lists what the harness adds).
#
# Usage: bash benchmarks/plain_lifecycle.sh
# Environment (all optional):
#   HEAD, PREV   the release tested and the one upgraded from (default 1.1.0+1.37, 1.0.0+1.36)
#   PLAIN_TRACE  a file to which every abra call is appended, one per line, as
#                "<main|cleanup><TAB><milliseconds><TAB><argv>" (the driver compares
#                it with the harness's evidence)
# It prints "[<seconds> s] <tier>: done" at the end of each tier (the driver reads them).
# Use the bench lock: flock /tmp/canon-bench.lock bash benchmarks/plain_lifecycle.sh
set -euo pipefail

export ABRA_DIR=/var/lib/canon-bench/abra
ABRA_BIN=/var/lib/canon-bench/bin/abra
SERVER=default
PROXY=http://127.0.0.1:8480
RECIPE=custom-html
HEAD=${HEAD:-1.1.0+1.37}
PREV=${PREV:-1.0.0+1.36}
MARKER='<h1>custom-html</h1>'
PLAIN_TRACE=${PLAIN_TRACE:-/dev/null}

# Two fresh domains, like the harness's <recipe[:4]>-<6 hex>.bench.canon.test.
hex() { head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
BASE="plain-$(hex).bench.canon.test"
UP="plain-$(hex).bench.canon.test"
PHASE=main
CREATED=()
T0=$(date +%s%N)

say() { local ds=$(( ($(date +%s%N) - T0) / 100000000 )); printf '[%4d.%d s] %s\n' $((ds / 10)) $((ds % 10)) "$*" >&2; }

abra() {
    local t rc=0
    t=$(date +%s%N)
    "$ABRA_BIN" "$@" || rc=$?
    printf '%s\t%s\t%s\n' "$PHASE" $(( ($(date +%s%N) - t) / 1000000 )) "$*" >>"$PLAIN_TRACE"
    return "$rc"
}

# GET $path on $domain through the proxy until it answers $code (10 tries, 2 s apart,
# 10 s each, as the harness's http_check); with $marker, the body must contain it.
http_check() {
    local domain=$1 path=$2 code=$3 marker=${4:-} body status try
    body=$(mktemp)
    for try in 1 2 3 4 5 6 7 8 9 10; do
        status=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 -H "Host: $domain" "$PROXY$path" || true)
        [ "$status" = "$code" ] && break
        sleep 2
    done
    if [ "$status" != "$code" ]; then
        echo "GET $path on $domain: $status after $try tries, wanted $code" >&2; rm -f "$body"; return 1
    fi
    if [ -n "$marker" ] && ! grep -qF "$marker" "$body"; then
        echo "GET $path on $domain: $code without '$marker'" >&2; rm -f "$body"; return 1
    fi
    rm -f "$body"
    say "GET $path on $domain: $status"
}

# Whatever happens (a failed step, Ctrl-C, SIGTERM), remove the apps this script created;
# three tries 5 s apart, for an engine that is restarting.
cleanup() {
    local rc=$? domain try
    PHASE=cleanup
    trap - EXIT INT TERM
    for domain in "${CREATED[@]}"; do
        for try in 1 2 3; do
            [ -f "$ABRA_DIR/servers/$SERVER/$domain.env" ] || break
            [ "$try" = 1 ] || sleep 5
            abra app undeploy "$domain" -n >/dev/null 2>&1 || true
            abra app remove "$domain" --force -n >/dev/null 2>&1 || true
        done
        if [ -f "$ABRA_DIR/servers/$SERVER/$domain.env" ]; then
            echo "could not remove $domain: ABRA_DIR=$ABRA_DIR $ABRA_BIN app remove $domain --force -n" >&2
            if [ "$rc" = 0 ]; then rc=1; fi
        fi
    done
    say "cleaned up (exit $rc)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "$RECIPE $PREV -> $HEAD on $BASE and $UP"
abra recipe fetch "$RECIPE" -n >/dev/null 2>&1
say "preflight: done"

# install: the head release on the base domain, then its page through the proxy.
CREATED+=("$BASE")
abra app new "$RECIPE" "$HEAD" --server "$SERVER" --domain "$BASE" -n >/dev/null
abra app secret generate "$BASE" --all --machine -n >/dev/null   # stdout holds the secrets
abra app deploy "$BASE" "$HEAD" -n >/dev/null
http_check "$BASE" / 200 "$MARKER"
say "install: done"

# upgrade: the previous release on a second domain, upgraded to the head, then removed.
CREATED+=("$UP")
abra app new "$RECIPE" "$PREV" --server "$SERVER" --domain "$UP" -n >/dev/null
abra app secret generate "$UP" --all --machine -n >/dev/null
abra app deploy "$UP" "$PREV" -n >/dev/null
abra recipe fetch "$RECIPE" -n >/dev/null 2>&1   # the harness fetches again before an upgrade
abra app upgrade "$UP" "$HEAD" -n >/dev/null
http_check "$UP" / 200 "$MARKER"
abra app undeploy "$UP" -n >/dev/null
abra app remove "$UP" --force -n >/dev/null 2>&1
say "upgrade: done"

# backup_restore: a backup and a restore of the base app; it still answers.
abra app backup create "$BASE" -n >/dev/null
abra app restore "$BASE" -n >/dev/null
http_check "$BASE" / 200 "$MARKER"
say "backup_restore: done"

# custom: what tests/suites/custom-html checks, with curl.
http_check "$BASE" / 200 "$MARKER"
http_check "$BASE" "/no-such-page-${BASE//./_}.html" 404
say "custom: done"
say "PASS"
