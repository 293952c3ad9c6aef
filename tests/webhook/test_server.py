"""The webhook over real HTTPS: gunicorn, TLS, certificates, the real engine and policies.

One server is started the way `make run` starts it (``python -m webhook --dev``,
the feed replaying the bundled demo traces in the master) and shared by the
tests of this module.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbongate import settings as settings_mod
from carbongate import timefmt
from tests.reliability import grid, servers
from tests.support import webhook_server
from tests.webhook import builders
from webhook import reviews
from webhook import server as server_mod

pytestmark = pytest.mark.xdist_group("webhook-server")


# Half past a GB hour of the demo trace that is dirty with a much cleaner window within ten hours.
# The feed replays the trace from here ("keeps hours on hours"), so the wall clock of the run,
# whatever the date and hour, sees that dirty hour.
DIRTY_REPLAY_START = grid.dirty_hour_in("GB", after=datetime(2023, 1, 9, tzinfo=UTC)) + timedelta(minutes=30)

# A body must arrive whole within this long (webhook.body_timeout_s, 5 s by default): short
# here so the stalled-body tests below wait little, long enough for 4 MiB on a loaded machine.
BODY_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webhook_server.RunningWebhook]:
    replay = {"feed": {"trace_clock": timefmt.format_time(DIRTY_REPLAY_START)},
              "webhook": {"body_timeout_s": BODY_TIMEOUT_S}}
    with webhook_server.running_webhook(tmp_path_factory.mktemp("webhook"), sections=replay) as running:
        yield running


def tier3_pod_at_high_intensity() -> dict:
    """A tier-3 pod allowed a day's delay, decided at a dirty hour of the replayed demo trace."""
    return builders.review(builders.pod(labels={"carbongate.io/tier": "3", "carbongate.io/team": "ml"},
                                        annotations={"carbongate.io/max-delay": "24h",
                                                     "carbongate.io/expected-duration": "1h"}))


def test_readyz_answers_once_policies_and_grid_are_loaded(server: webhook_server.RunningWebhook) -> None:
    status, body = server.get("/readyz")
    assert status == 200
    ready = json.loads(body)
    assert ready["ready"] is True and ready["grid"] is True and ready["policies"]


def test_a_tier1_pod_comes_back_unchanged(server: webhook_server.RunningWebhook) -> None:
    document = builders.loopback("02_create-pod_api-canary.json")
    response = server.review(document)["response"]
    assert response["uid"] == document["request"]["uid"]
    assert response["allowed"] is True
    assert "patch" not in response


def test_a_tier3_pod_is_decided_with_annotations_and_a_warning(server: webhook_server.RunningWebhook) -> None:
    review = server.review(tier3_pod_at_high_intensity())
    response = review["response"]
    assert response["allowed"] is True
    ops = reviews.decoded_patch(review)
    paths = {op["path"] for op in ops}
    assert any(p.startswith("/metadata/annotations") for p in paths), ops
    assert response["warnings"] and response["warnings"][0].startswith("carbongate")


@pytest.mark.parametrize("body", [
    b"garbage", b"{}", b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
])
def test_garbage_gets_a_400_that_says_why(server: webhook_server.RunningWebhook, body: bytes) -> None:
    status, payload = server.post("/mutate", body)
    assert status == 400
    assert json.loads(payload)["error"]


def test_a_body_over_the_limit_is_refused_without_reading_it_all(server: webhook_server.RunningWebhook) -> None:
    """Only the headers are sent: the 413 must come from Content-Length alone."""
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=server.context(), timeout=5)
    connection.putrequest("POST", "/mutate")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(3 * 1024 * 1024 + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert "over" in json.loads(response.read())["error"]
    connection.close()


def chunked_review(padding: int) -> Iterator[bytes]:
    """A real review padded by a label of ``padding`` bytes, in 64 KiB pieces (Transfer-Encoding: chunked)."""
    document = builders.loopback("02_create-pod_api-canary.json")
    document["request"]["object"]["metadata"].setdefault("labels", {})["pad"] = "x" * padding
    data = json.dumps(document).encode()
    return (data[i:i + 65536] for i in range(0, len(data), 65536))


@pytest.mark.parametrize(("padding", "status"), [(1024 * 1024, 200), (4 * 1024 * 1024, 413)])
def test_a_chunked_body_is_held_to_the_same_limit(server: webhook_server.RunningWebhook,
                                                   padding: int, status: int) -> None:
    """Without Content-Length the limit is found while reading: over it is 413, never the truncated body."""
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=server.context(), timeout=30)
    connection.request("POST", "/mutate", body=chunked_review(padding), encode_chunked=True,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == status, response.read()[:200]
    connection.close()
    assert server.get("/healthz")[0] == 200


def raw_exchange(server: webhook_server.RunningWebhook, request: bytes, *,
                 timeout_s: float = 30) -> tuple[int, bytes, float]:
    """Send ``request`` as is over TLS (as ``openssl s_client`` would) and read the answer.

    Returns the status, the body and the seconds until the answer came; the
    connection is left open after sending, as a client that stalls would.
    """
    host, port = server.url.removeprefix("https://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout_s) as raw, \
            server.context().wrap_socket(raw, server_hostname="carbongate-webhook.carbongate.svc") as tls:
        tls.sendall(request)
        response = http.client.HTTPResponse(tls)  # type: ignore[arg-type]
        response.begin()
        body = response.read()
        return response.status, body, time.monotonic() - started


def chunked_request(chunks: bytes) -> bytes:
    return (b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks)


def test_a_malformed_chunk_size_gets_a_json_400_not_a_500(server: webhook_server.RunningWebhook) -> None:
    """Issue 15: ``zz`` as a chunk size reached Flask as an uncaught error (an HTML 500)."""
    status, body, _ = raw_exchange(server, chunked_request(b"zz\r\nabc\r\n0\r\n\r\n"))
    assert status == 400, body[:300]
    assert "chunk" in json.loads(body)["error"].lower()


def test_a_chunk_declared_huge_and_never_sent_gets_a_400_within_the_body_timeout(
        server: webhook_server.RunningWebhook) -> None:
    """Issue 15: a chunk of ffffffffffffffffffff bytes followed by 3 held a thread for as long
    as the client kept the connection open."""
    status, body, seconds = raw_exchange(server, chunked_request(b"ffffffffffffffffffff\r\nabc"))
    assert status == 400, body[:300]
    assert "within" in json.loads(body)["error"]
    assert BODY_TIMEOUT_S <= seconds < BODY_TIMEOUT_S + 10
    assert server.get("/healthz")[0] == 200


def test_a_body_shorter_than_its_content_length_gets_a_400_within_the_body_timeout(
        server: webhook_server.RunningWebhook) -> None:
    request = (b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 1000\r\n\r\n{\"apiVersion\":")
    status, body, seconds = raw_exchange(server, request)
    assert status == 400, body[:300]
    assert json.loads(body)["error"]
    assert seconds < BODY_TIMEOUT_S + 10


def test_every_refusal_is_counted_a_413_from_content_length_too(server: webhook_server.RunningWebhook) -> None:
    """Issue 15: the 413 answered from Content-Length alone was not counted."""
    before = servers.metric(server, "carbongate_bad_requests_total")
    test_a_body_over_the_limit_is_refused_without_reading_it_all(server)
    test_a_malformed_chunk_size_gets_a_json_400_not_a_500(server)
    assert server.post("/mutate", b"garbage")[0] == 400
    counted = servers.wait_for(
        lambda: servers.metric(server, "carbongate_bad_requests_total") >= before + 3 or None,
        timeout_s=5, what="three more bad requests counted")
    assert counted
    assert servers.metric(server, "carbongate_bad_requests_total") == before + 3


def test_connections_are_kept_alive_across_requests(server: webhook_server.RunningWebhook) -> None:
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=server.context(), timeout=5)
    body = json.dumps(builders.review()).encode()
    sockets = set()
    for _ in range(5):
        connection.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1


def test_tls_below_1_2_is_refused_by_the_server(server: webhook_server.RunningWebhook) -> None:
    """The client offers only TLS 1.1 (allowed on its side); the server must refuse it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(server.ca_file))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    host, port = server.url.removeprefix("https://").split(":")
    with pytest.raises(ssl.SSLError) as refused, socket.create_connection((host, int(port)), timeout=5) as raw:
        context.wrap_socket(raw, server_hostname="localhost")
    assert "PROTOCOL_VERSION" in str(refused.value).upper() or "WRONG_VERSION" in str(refused.value).upper()


@pytest.mark.parametrize("cipher", [
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",        # CBC with a SHA-1 MAC
    "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384",  # CBC
])
def test_tls_1_2_with_only_a_weak_cipher_is_refused(server: webhook_server.RunningWebhook, cipher: str) -> None:
    """The serving key is ECDSA, so these CBC suites are the weak ones it could otherwise
    negotiate (OpenSSL's defaults accept each of them with this certificate); suites for
    RSA keys would fail for want of an RSA certificate and prove nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(server.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(f"{cipher}:@SECLEVEL=0")
    host, port = server.url.removeprefix("https://").split(":")
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE|NO_SHARED_CIPHER|NO_CIPHERS"), \
            socket.create_connection((host, int(port)), timeout=5) as raw:
        context.wrap_socket(raw, server_hostname="localhost")


def test_the_server_offers_only_forward_secret_aead_suites_below_tls_1_3(tmp_path: Path) -> None:
    webhook_server.generate_certs(tmp_path)
    settings = settings_mod.load(environ={})

    def default_factory() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
        return context

    context = server_mod.tls_context(settings.webhook)(None, default_factory)
    below_1_3 = [c for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert below_1_3 and all(c["kea"] == "kx-ecdhe" and c["aead"] for c in below_1_3), below_1_3
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_1_3_is_accepted(server: webhook_server.RunningWebhook) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(server.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    host, port = server.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() == "TLSv1.3"


def test_tls_1_2_with_a_modern_cipher_is_accepted(server: webhook_server.RunningWebhook) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(server.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    host, port = server.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() == "TLSv1.2"
        assert tls.cipher()[0].startswith("ECDHE")


def test_metrics_count_decisions_across_workers(server: webhook_server.RunningWebhook) -> None:
    for _ in range(6):
        server.review(tier3_pod_at_high_intensity())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, body = server.get("/metrics")
        text = body.decode()
        if "carbongate_admission_decisions_total{" in text:
            break
        time.sleep(0.2)
    assert status == 200
    assert "carbongate_admission_decisions_total{" in text
    assert "carbongate_bad_requests_total" in text
    # The served certificate (carbongate certs generate: 365 days), as every live worker reads it.
    expiry = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith("carbongate_webhook_certificate_expiry_seconds")]
    assert len(expiry) == 1 and 364 * 86400 < expiry[0] <= 365 * 86400


def test_the_snapshot_written_by_the_feed_names_its_source(server: webhook_server.RunningWebhook) -> None:
    snapshot = json.loads(Path(server.directory / "grid.json").read_text())
    assert set(snapshot["regions"]) >= {"GB", "DE", "NO"}
    assert all(region["source"].endswith("trace") or "trace" in region["source"]
               for region in snapshot["regions"].values())
