"""The webhook's own processes failing under traffic: a worker killed, the server told to stop.

The real server (``python -m webhook``: gunicorn master, two asgi
workers, TLS, the embedded OPA engine) takes a steady stream of reviews
from four keep-alive clients (tests/reliability/traffic.py) while:

- a worker is SIGKILLed (an OOM kill) while it holds a request whose body
  is half-sent, so the kill provably lands mid-request. Nothing a worker
  had not answered can be answered by another, so the requests it held
  fail at the connection (the API server then applies the webhook's
  ``failurePolicy: Ignore``: admitted) and must succeed when sent again;
  no request may get an error status or a wrong answer, and the master must
  replace the worker;
- the master gets SIGTERM (a rolling update, a node drain): every request
  already sent must be answered, including one still arriving, and the
  server must exit 0 within gunicorn's graceful timeout.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import checks, servers, traffic
from tests.support import webhook_server

pytestmark = pytest.mark.xdist_group("reliability")

GRACEFUL_TIMEOUT_S = 20  # webhook/server.py


@pytest.fixture
def server(tmp_path: Path) -> Iterator[webhook_server.RunningWebhook]:
    with servers.webhook(tmp_path) as running:
        yield running


def held_by_a_worker(server: webhook_server.RunningWebhook, request: traffic.PartialRequest) -> int:
    pid: int = servers.wait_for(lambda: traffic.worker_holding(server, request.local_port), timeout_s=10,
                                what="a worker accepting the half-sent request")
    return pid


def test_a_worker_killed_mid_request_loses_no_admission_and_is_replaced(
        server: webhook_server.RunningWebhook) -> None:
    workers = server.worker_pids()
    assert len(workers) == 2
    with traffic.Traffic(server, threads=6, retry=True, name="kill") as load:
        servers.wait_for(lambda: load.count() >= 40, timeout_s=30, what="40 reviews answered before the kill")
        held = traffic.partial_request(server, "held-by-the-victim")
        victim = held_by_a_worker(server, held)

        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        assert held.finish()[0] == "transport"  # no answer, and certainly no wrong one
        client = traffic.Client(server)
        again, detail = client.post("held-by-the-victim")  # what the caller's retry gets
        client.close()
        assert again == "ok", detail

        replaced = servers.wait_for(lambda: len(set(server.worker_pids()) - {victim}) == 2, timeout_s=30,
                                    what="the master replacing the killed worker")
        respawn_s = time.monotonic() - killed_at
        after = load.count()
        servers.wait_for(lambda: load.count() >= after + 40, timeout_s=30, what="40 reviews after the kill")
    assert replaced and victim not in server.worker_pids()

    kinds = load.kinds()
    lost = [o for o in load.outcomes if o.kind == "transport"]
    assert kinds["http"] == kinds["malformed"] == 0, [o for o in load.outcomes if o.kind in ("http", "malformed")]
    assert len(lost) <= 6, lost  # at most what the victim held: one request per client
    assert all(o.retried_ok for o in lost), lost
    assert server.process.poll() is None
    assert servers.metric(server, "carbongate_fail_open_total", reason="internal-error") == 0
    assert checks.fail_open_reason(server.review(servers.tier3_review("after"))) in (None, "deadline")
    print(f"\nworker killed: {load.count()} reviews, {len(lost)} cut at the connection (all answered when "
          f"sent again), replacement worker after {respawn_s:.1f} s")


def test_sigterm_under_load_answers_every_request_already_sent_and_exits_cleanly(
        server: webhook_server.RunningWebhook) -> None:
    with traffic.Traffic(server, threads=4, name="term") as load:
        servers.wait_for(lambda: load.count() >= 40, timeout_s=30, what="40 reviews answered before SIGTERM")
        arriving = traffic.partial_request(server, "still-arriving")
        held_by_a_worker(server, arriving)

        term_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        finished = arriving.finish()  # the rest of the body comes after SIGTERM
        servers.wait_for(lambda: server.process.poll() is not None, timeout_s=GRACEFUL_TIMEOUT_S + 10,
                         interval_s=0.2, what="the server exiting after SIGTERM")
        exit_s = time.monotonic() - term_at
    assert finished == ("ok", ""), finished
    assert server.process.returncode == 0, server.log()[-3000:]

    before = [o for o in load.outcomes if o.sent_at < term_at]
    after = [o for o in load.outcomes if o.sent_at >= term_at]
    assert before and all(o.kind == "ok" for o in before), [o for o in before if o.kind != "ok"]
    assert not [o for o in after if o.kind in ("http", "malformed")], after
    assert exit_s < GRACEFUL_TIMEOUT_S
    print(f"\nSIGTERM: {len(before)} reviews sent before it all answered; after it "
          f"{traffic.summary(after)}; exited 0 after {exit_s:.1f} s")
