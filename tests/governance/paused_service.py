"""The real governance service, stopped dead inside its Nth ledger commit (the crash test).

``python -m tests.governance.paused_service CONFIG N`` runs
``governance.service.run`` unchanged except that the ledger's engine gets a
SQLAlchemy ``commit`` listener: the listener fires after a run's INSERT has
executed and before COMMIT reaches the database. On the Nth commit it
prints ``PAUSED`` and sleeps, so the test can SIGKILL the process exactly
between record and commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from carbongate import settings as settings_mod
from governance import ledger, service


def main(config: Path, pause_at: int) -> int:
    open_ledger = ledger.open_ledger

    def open_and_pause(url: str) -> ledger.SqlLedger:
        store = open_ledger(url)  # migrations are done: from here on, commits are runs
        commits = 0

        @sa.event.listens_for(store.engine, "commit")
        def _pause(_conn: Any) -> None:
            nonlocal commits
            commits += 1
            if commits == pause_at:
                print("PAUSED", flush=True)
                time.sleep(3600)

        return store

    ledger.open_ledger = open_and_pause  # this process only
    return service.run(settings_mod.load(config_file=config))


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
