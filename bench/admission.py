"""Admission benchmark: carbongate beside its floor, on the same server, driven over HTTPS.

One invocation starts, one after the other, on 127.0.0.1 with fresh certificates:

* ``floor``: a no-op Flask webhook (``bench/floor.py``) under exactly carbongate's
  server setup: what the HTTP/TLS/WSGI stack alone serves;
* ``carbongate``: ``python -m webhook`` with the embedded engine and a grid snapshot
  from the bundled demo traces, driven twice: ``burst`` sends one workload again
  and again (a Job or ReplicaSet fanning out identical pods: decisions come from
  the cache) and ``distinct`` sends workloads whose facts differ on every request
  (a label numbered per request: every decision is a miss).

Each row is closed-loop load from 8 keep-alive connections (2 processes × 4
threads) with real Pod reviews captured from a Kubernetes v1.28 API server, and
reports requests/s, p50/p95/p99, worker CPU per request, RSS per worker and
fail-opens counted apart from served requests (a deadline fail-open is not a
decision). Ratios to the floor measured in the same run are the figures to
compare: other processes share the machine.

``--slow`` adds the second benchmark: 32 connections that send part of a TLS
ClientHello and 32 that send headers and part of a body are held open while
real reviews, one at a time on new connections, must be answered within 1 s.

``--servers asgi,gthread`` runs every row under each gunicorn worker class
(``webhook.worker_class``; the floor on the same one as carbongate), side by
side; ``granian`` (if installed: ``pip install granian``) serves the same
Flask apps (``bench/granian_app.py``).

``--rounds 3`` measures each server three times, the order reversed each round.

    nice .venv/bin/python bench/admission.py [--seconds 10] [--slow] [--servers asgi,gthread]
                                             [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402  (after the sys.path line: runs as a script)
from tests.support import webhook_server  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "admission"
POD_REVIEWS = [
    "k8s-v1.28-loopback/02_create-pod_api-canary.json",
    "k8s-v1.28-loopback/03_create-pod_nightly-train.json",
    "k8s-v1.28-loopback/06_create-pod_ci-runner-b6d64db6b.json",
    "k8s-v1.28-loopback/09_create-pod_manual-run.json",
    "k8s-v1.28-loopback/12_create-pod_deferred-etl.json",
    "k8s-v1.28-loopback/15_create-pod_gated-batch.json",
    "pod-create_replicaset-controller_gke__salesforce.json",
    "pod-create_bare-pod_by-serviceaccount_openshift__datree-capture.json",
]
# The fan-out: a tier-3 pod of a Job in an opted-in namespace, decided in full.
BURST_REVIEW = "k8s-v1.28-loopback/03_create-pod_nightly-train.json"
DISTINCT_COUNT = 4000
CONNECTIONS = (2, 4)  # processes × threads: 8 keep-alive connections
SLOW_EACH = 32
REVIEW_WITHIN_S = 1.0
# gunicorn worker classes (webhook.worker_class); any other --servers name is granian.
GUNICORN_WORKERS = ("asgi", "gthread")


def bodies() -> list[bytes]:
    """Real Pod CREATE reviews, each in a tier-3 variant too so decisions run the full path."""
    found = []
    for name in POD_REVIEWS:
        document = json.loads((FIXTURES / name).read_text())
        found.append(json.dumps(document).encode())
        found.append(json.dumps(_tier3(document)).encode())
    return found


def _tier3(document: dict[str, Any]) -> dict[str, Any]:
    labels = document["request"]["object"]["metadata"].get("labels") or {}
    document["request"]["object"]["metadata"]["labels"] = {**labels, "carbongate.io/tier": "3"}
    return document


def burst_bodies() -> list[bytes]:
    """One workload: the same pod again and again (only names and uids would differ)."""
    return [json.dumps(_tier3(json.loads((FIXTURES / BURST_REVIEW).read_text()))).encode()]


def distinct_bodies(count: int = DISTINCT_COUNT) -> list[bytes]:
    """The real reviews with a label numbered per body: no two inputs alike."""
    base = [json.loads(body) for body in bodies()]
    found = []
    for n in range(count):
        document = base[n % len(base)]
        document["request"]["object"]["metadata"].setdefault("labels", {})["bench/sequence"] = str(n)
        found.append(json.dumps(document).encode())
    return found


# ------------------------------------------------------------------------------- servers


@contextmanager
def serving(directory: Path, app: str, server: str) -> Iterator[webhook_server.RunningWebhook]:
    """``app`` (floor or carbongate) under ``server`` (asgi, gthread or granian), ready."""
    directory.mkdir(parents=True, exist_ok=True)
    webhook_server.generate_certs(directory / "certs")
    _write_grid(directory)
    port = webhook_server.free_port()
    gunicorn = server in GUNICORN_WORKERS
    sections = {"webhook": {"worker_class": server}} if gunicorn else {}
    config = webhook_server.write_config(directory, port=port, sections=sections)
    if gunicorn:
        module = "bench.floor" if app == "floor" else "webhook"
        command = [sys.executable, "-m", module, "--config", str(config)]
    else:
        target = f"bench.granian_app:{app}"
        command = [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--factory",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--blocking-threads", "8",
                   "--ssl-certificate", str(directory / "certs" / "tls.crt"),
                   "--ssl-keyfile", str(_pkcs8(directory / "certs" / "tls.key")),
                   "--ssl-protocol-min", "tls1.2", "--no-ws", "--log-level", "warning", target]
    log = open(directory / "server.log", "wb")
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "CARBONGATE_BENCH_CONFIG": str(config),
                   "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment)
    running = webhook_server.RunningWebhook(url=f"https://127.0.0.1:{port}", ca_file=directory / "certs" / "ca.crt",
                                            directory=directory, process=process)
    try:
        webhook_server.wait_ready(running, 90)
        yield running
    finally:
        webhook_server.stop(process)
        log.close()


def _write_grid(directory: Path) -> None:
    from bench.engine import write_grid
    from carbongate import settings as settings_mod

    shutil.move(str(write_grid(directory, settings_mod.load(environ={}))), directory / "grid.json")


def _pkcs8(key: Path) -> Path:
    """granian reads PKCS#8 keys only."""
    converted = key.with_suffix(".pk8")
    subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(key), "-out", str(converted)],
                   check=True, stdout=subprocess.DEVNULL)
    return converted


def _workers(process: subprocess.Popen[bytes]) -> list[int]:
    """The server's worker processes (children of the master; granian's too)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _cpu_s(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _rss_mb(pids: list[int]) -> list[float]:
    sizes = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


# ------------------------------------------------------------------------------- rows


def load_row(running: webhook_server.RunningWebhook, payloads: list[bytes], seconds: float) -> dict[str, Any]:
    url, ca_file = running.url + "/mutate", str(running.ca_file)
    loadgen.saturation(url, payloads[:64], seconds=1, ca_file=ca_file, processes=1, threads=2)  # warm up
    pids = _workers(running.process)
    cpu_before = _cpu_s(pids)
    stats = loadgen.saturation(url, payloads, seconds=seconds, ca_file=ca_file,
                               processes=CONNECTIONS[0], threads=CONNECTIONS[1])
    served = max(1, stats.sent - stats.errors)
    row: dict[str, Any] = dict(stats.summary())
    row["cpu_ms_per_request"] = round((_cpu_s(pids) - cpu_before) / served * 1000, 2)
    row["rss_mb_per_worker"] = _rss_mb(pids)
    return row


def slow_clients(running: webhook_server.RunningWebhook, review: bytes, *, reviews: int = 10) -> dict[str, Any]:
    """Hold unfinished handshakes and bodies open; time real reviews on fresh connections."""
    host, port = "127.0.0.1", int(running.url.rsplit(":", 1)[1])
    held: list[socket.socket] = []
    refused = 0
    context = ssl.create_default_context(cafile=str(running.ca_file))
    for _ in range(SLOW_EACH):  # unfinished bodies first: their handshakes must still complete
        try:
            tls = context.wrap_socket(socket.create_connection((host, port), timeout=5), server_hostname=host)
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 10000\r\n\r\n{\"apiVersion\"")
            held.append(tls)
        except OSError:
            refused += 1  # the server did not complete the handshake within 5 s
    for _ in range(SLOW_EACH):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello, cut short
        held.append(sock)
    time.sleep(0.5)
    timings: list[float] = []
    answered = 0
    for _ in range(reviews):
        began = time.perf_counter()
        try:
            status, body = running.post("/mutate", review, timeout=5)
            answered += status == 200 and b'"allowed"' in body and (time.perf_counter() - began) <= REVIEW_WITHIN_S
        except OSError:
            pass
        timings.append(round((time.perf_counter() - began) * 1000, 1))
    for held_open in held:
        held_open.close()
    return {"held_open": len(held), "bodies_not_connected": refused, "reviews": reviews,
            "answered_within_1s": answered, "ms": timings}


def measure(server: str, seconds: float, slow: bool) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"cg-bench-{server}-") as tmp:
        with serving(Path(tmp) / "floor", "floor", server) as running:
            rows["floor"] = load_row(running, bodies(), seconds)
        with serving(Path(tmp) / "carbongate", "carbongate", server) as running:
            rows["burst"] = load_row(running, burst_bodies(), seconds)
            rows["distinct"] = load_row(running, distinct_bodies(), seconds)
            _, metrics = running.get("/metrics")
            rows["cache"] = {line.split("{")[1].split("}")[0]: line.rsplit(" ", 1)[1]
                             for line in metrics.decode().splitlines()
                             if line.startswith("carbongate_decision_cache_lookups_total{")}
            if slow:
                rows["slow_clients"] = slow_clients(running, burst_bodies()[0])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--servers", default="asgi,gthread")
    parser.add_argument("--slow", action="store_true", help="also the slow-client benchmark")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every server this many times, the order reversed each round "
                             "(so the machine's changing load does not favour the server run first)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = {}
    for round_ in range(args.rounds):
        names = args.servers.split(",")
        for server in names if round_ % 2 == 0 else names[::-1]:
            label = server if args.rounds == 1 else f"{server}#{round_ + 1}"
            results[label] = measure(server, args.seconds, args.slow)
            results[label]["load_average"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"admission benchmark, {os.cpu_count()} cores, {args.seconds:.0f} s per row, 8 connections, "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print(f"{'server':<10} {'row':<9} {'req/s':>7} {'/floor':>6} {'p50':>6} {'p95':>6} {'p99':>6} "
          f"{'cpu ms':>6} {'errors':>6} {'f-open':>6}  RSS MB/worker")
    for server, rows in results.items():
        floor = rows["floor"]["rps"] or 1e-9
        for name in ("floor", "burst", "distinct"):
            row = rows[name]
            print(f"{server:<10} {name:<9} {row['rps']:>7} {row['rps'] / floor:>6.2f} {row['p50_ms']:>6} "
                  f"{row['p95_ms']:>6} {row['p99_ms']:>6} {row['cpu_ms_per_request']:>6} {row['errors']:>6} "
                  f"{row['fail_opens']:>6}  {row['rss_mb_per_worker']}")
        print(f"{server:<10} decision cache lookups: {rows['cache']}; load average after: {rows['load_average']}")
        if "slow_clients" in rows:
            slow = rows["slow_clients"]
            print(f"{server:<10} slow clients: {slow['held_open']} held open; {slow['answered_within_1s']}/"
                  f"{slow['reviews']} reviews answered within 1 s; ms: {slow['ms']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
