#!/usr/bin/env bash
# Placeholder replaced by the governance work: installs PostgreSQL for the ledger tests.
exit 0
