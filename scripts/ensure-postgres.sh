#!/usr/bin/env bash
# Make PostgreSQL's server binaries available for the ledger tests (`make test`).
#
# The tests start their own throwaway cluster (initdb into a temporary
# directory, a free port on 127.0.0.1, run as the `postgres` user when root);
# all they need from the machine is `initdb` and `pg_ctl`. On Debian those
# come with the `postgresql` package, under /usr/lib/postgresql/<version>/bin.
# This script installs that package when the binaries are missing, and does
# nothing else: no cluster, no service, no configuration.
set -euo pipefail

have_server() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

if have_server; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: initdb/pg_ctl not found and apt-get is not available;" \
         "install the PostgreSQL server for the ledger tests" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "ensure-postgres: installing Debian's postgresql package for the ledger tests" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null

if ! have_server; then
    echo "ensure-postgres: postgresql installed but initdb/pg_ctl still not found" >&2
    exit 1
fi
