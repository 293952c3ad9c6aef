"""Admission benchmark: the webhook as `make run` starts it, driven over HTTPS.

Starts ``python -m webhook --dev`` (gunicorn, gthread workers, TLS, the feed
replaying the bundled demo traces) on 127.0.0.1 with freshly generated
certificates, then drives ``POST /mutate`` from a second process with real Pod
AdmissionReviews (captured from a Kubernetes v1.28 API server and public
captures), keep-alive on. Prints p50/p95/p99 latency and requests/s at 50 and
200 requests/s and at saturation, for both engines, and RSS per worker.

The ``opa`` engine row talks to the OPA REST test double (an HTTP server
speaking OPA's REST API backed by the same Go engine), because no OPA server
can be installed here: it measures carbongate's REST path, not OPA's server.

Targets on the 2-core machine, embedded engine: p99 <= 10 ms at 200 req/s,
>= 800 req/s at saturation, <= 120 MB RSS per worker.

    .venv/bin/python bench/admission.py [--seconds 20] [--engines embedded,opa] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def bodies() -> list[bytes]:
    """Real Pod CREATE reviews, each in a tier-3 variant too so decisions run the full path."""
    found = []
    for name in POD_REVIEWS:
        document = json.loads((FIXTURES / name).read_text())
        found.append(json.dumps(document).encode())
        labels = document["request"]["object"]["metadata"].setdefault("labels", {}) or {}
        document["request"]["object"]["metadata"]["labels"] = {**labels, "carbongate.io/tier": "3"}
        found.append(json.dumps(document).encode())
    return found


def worker_rss_mb(server: webhook_server.RunningWebhook) -> list[float]:
    """RSS of each gunicorn worker (children of the master), in MB."""
    sizes = []
    for pid in server.worker_pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


@contextmanager
def opa_double() -> Iterator[str]:
    """The OPA REST test double in its own process, so it does not share our GIL.

    The webhook loads the policies into it through the Policy API, as it does
    into an OPA sidecar; the double prints its URL once it listens.
    """
    process = subprocess.Popen([sys.executable, "-m", "tests.support.opa_rest_double"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the OPA REST double did not start (exit code {process.poll()})")
        urllib.request.urlopen(f"{url}/health", timeout=5).close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure(engine: str, seconds: float, *, pool_size: int = 2) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"cg-bench-{engine}-") as tmp:
        directory = Path(tmp)
        if engine == "opa":
            with opa_double() as opa_url:
                return _drive(directory, engine, seconds, opa_url, pool_size)
        return _drive(directory, engine, seconds, "", pool_size)


def _drive(directory: Path, engine: str, seconds: float, opa_url: str, pool_size: int) -> dict[str, object]:
    sections: dict[str, dict[str, object]] = {"engine": {"kind": engine, "embedded_pool_size": pool_size}}
    if opa_url:
        sections["engine"]["opa_url"] = opa_url
        sections["feed"] = {"publish_to": "opa"}
    with webhook_server.running_webhook(directory, sections=sections) as server:
        url, ca_file = server.url, str(server.ca_file)
        payloads = bodies()
        loadgen.fixed_rate(url + "/mutate", payloads, rate=50, seconds=2, ca_file=ca_file)  # warm up
        rows: dict[str, object] = {}
        for rate in (50, 200):
            rows[f"{rate} req/s"] = loadgen.fixed_rate(url + "/mutate", payloads, rate=rate, seconds=seconds,
                                                       ca_file=ca_file).summary()
        rows["saturation"] = loadgen.saturation(url + "/mutate", payloads, seconds=seconds, ca_file=ca_file,
                                                processes=2, threads=4).summary()
        rows["rss_mb_per_worker"] = [round(v, 1) for v in worker_rss_mb(server)]
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--engines", default="embedded,opa")
    parser.add_argument("--pool-sizes", default="2",
                        help="engine.embedded_pool_size values to compare for the embedded engine (e.g. 1,2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pools = [int(p) for p in args.pool_sizes.split(",")]
    results: dict[str, dict[str, object]] = {}
    for engine in args.engines.split(","):
        for pool in pools if engine == "embedded" else [2]:
            label = f"{engine}-p{pool}" if engine == "embedded" and len(pools) > 1 else engine
            results[label] = measure(engine, args.seconds, pool_size=pool)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"admission benchmark, {os.cpu_count()} cores, {args.seconds:.0f} s per row, "
          f"load average {os.getloadavg()[0]:.2f} at the end\n")
    print(f"{'engine':<12} {'load':<11} {'sent':>7} {'errors':>6} {'req/s':>8} "
          f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for engine, rows in results.items():
        for load, row in rows.items():
            if load == "rss_mb_per_worker":
                continue
            assert isinstance(row, dict)
            print(f"{engine:<12} {load:<11} {row['sent']:>7} {row['errors']:>6} {row['rps']:>8} "
                  f"{row['p50_ms']:>8} {row['p95_ms']:>8} {row['p99_ms']:>8}")
        print(f"{engine:<12} RSS per worker (MB): {rows['rss_mb_per_worker']}")
    if {"embedded", "opa"} <= results.keys():
        e, o = results["embedded"]["saturation"], results["opa"]["saturation"]
        assert isinstance(e, dict) and isinstance(o, dict)
        print(f"\nsaturation ratio embedded/opa: {e['rps'] / max(o['rps'], 1e-9):.2f}x req/s, "
              f"p99 {e['p99_ms']} vs {o['p99_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
