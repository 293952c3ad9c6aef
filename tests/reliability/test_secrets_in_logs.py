"""No credential reaches a log: the processes run on real secrets, their logs are grepped for them.

Three processes get credentials and are driven through the paths most likely
to print one: providers that refuse them, an OPA that refuses a token, a
database that cannot be reached.

- The feed sidecar (``python -m carbon_feed --log-level DEBUG``): a WattTime
  password (HTTP Basic on ``/login``, which hands out a bearer token, itself a
  secret, that every data call then refuses, so the feed logs in again and
  gives up), an Electricity Maps token (refused), and an OPA token that the
  OPA double's authorization refuses when the feed publishes.
- The webhook (``python -m webhook --dev``, as ``make run``; the feed in its
  master on the same providers file): an OPA token that may push policies
  but not ask for decisions, so every review fails open with the OPA error.
- Governance (``carbongate governance --log-level DEBUG``): a PostgreSQL URL
  with a password, from ``CARBONGATE_DATABASE_URL``, to a port nobody listens on.

Every secret is checked to have reached its server first (the test would
otherwise prove nothing), then searched for in every log, also as the Base64
of HTTP Basic credentials.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_feed import publisher
from tests.reliability import grid, servers
from tests.support import kube_api, opa_rest_double, webhook_server

pytestmark = pytest.mark.xdist_group("reliability")

EXAMPLES = servers.ROOT / "examples" / "grid"


class Secrets:
    """Fresh random values, so a hit in a log can only come from the process under test."""

    def __init__(self) -> None:
        self.watttime_user = "wt-user-" + secrets.token_hex(4)
        self.watttime_password = "wt-pass-" + secrets.token_hex(12)
        self.watttime_bearer = "wt-bearer-" + secrets.token_hex(12)
        self.em_token = "em-token-" + secrets.token_hex(12)
        self.opa_webhook = "opa-webhook-" + secrets.token_hex(12)
        self.opa_feed = "opa-feed-" + secrets.token_hex(12)
        self.db_password = "db-pass-" + secrets.token_hex(12)

    def basic(self) -> str:
        return base64.b64encode(f"{self.watttime_user}:{self.watttime_password}".encode()).decode()

    def searched(self) -> dict[str, str]:
        """Every value that must not appear, by what it is."""
        return {"WattTime password": self.watttime_password, "WattTime Basic credentials": self.basic(),
                "WattTime bearer token": self.watttime_bearer, "Electricity Maps token": self.em_token,
                "webhook OPA token": self.opa_webhook, "feed OPA token": self.opa_feed,
                "database password": self.db_password}

    def environment(self) -> dict[str, str]:
        return {"WT_USER": self.watttime_user, "WT_PASSWORD": self.watttime_password, "EM_TOKEN": self.em_token}


def authz_policy(webhook_token: str) -> str:
    """The webhook's token may push policies and data but not decide; no other token may do anything."""
    return ("package system.authz\n\n"
            "default allow := false\n\n"
            f'allow if {{\n\tinput.identity == "{webhook_token}"\n\tinput.method != "POST"\n}}\n')


def fake_providers(httpserver: HTTPServer, found: Secrets) -> None:
    """WattTime logs in with the right Basic credentials, then refuses its own token; EM refuses all."""

    def login(request: Request) -> Response:
        if request.headers.get("Authorization") != f"Basic {found.basic()}":
            return Response('{"error": "bad credentials"}', status=403, content_type="application/json")
        return Response(f'{{"token": "{found.watttime_bearer}"}}', content_type="application/json")

    httpserver.expect_request("/login").respond_with_handler(login)
    for path in ("/v3/forecast", "/v3/historical"):
        httpserver.expect_request(path).respond_with_json({"error": "token expired"}, status=401)
    httpserver.expect_request("/v3/carbon-intensity/latest").respond_with_json(
        {"error": "Invalid auth-token"}, status=401)


def providers_file(directory: Path, httpserver: HTTPServer) -> Path:
    document = {
        "providers": {
            "watttime": {"url": httpserver.url_for(""), "username": {"env": "WT_USER"},
                         "password": {"env": "WT_PASSWORD"}},
            "electricitymaps": {"url": httpserver.url_for(""), "token": {"env": "EM_TOKEN"}},
            "trace": {"files": [str(EXAMPLES / "GB_2023_hourly.csv"), str(EXAMPLES / "DE_2023_hourly.csv")]},
        },
        "regions": {"GB": [{"provider": "watttime", "zone": "UK"}, "trace"],
                    "DE": [{"provider": "electricitymaps", "zone": "DE"}, "trace"]},
    }
    path = directory / "providers.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def found() -> Secrets:
    return Secrets()


@pytest.fixture
def opa(found: Secrets) -> Iterator[opa_rest_double.OpaRestDouble]:
    with opa_rest_double.OpaRestDouble(authorization_policy=authz_policy(found.opa_webhook)) as double:
        yield double


def assert_no_secret_in(log: str, found: Secrets, *, process: str) -> None:
    assert log.strip(), f"{process} logged nothing: the test would prove nothing"
    leaked = [what for what, value in found.searched().items() if value in log]
    assert not leaked, f"{process} logged the {', '.join(leaked)}"


def sent_by(opa: opa_rest_double.OpaRestDouble, token: str) -> list[opa_rest_double.SeenRequest]:
    return [seen for seen in opa.seen if seen.authorization == f"Bearer {token}"]


def test_the_feed_logs_no_provider_credential_or_opa_token(
        httpserver: HTTPServer, opa: opa_rest_double.OpaRestDouble, found: Secrets, tmp_path: Path) -> None:
    fake_providers(httpserver, found)
    config = servers.write_toml(tmp_path / "feed.toml", {
        "engine": {"opa_url": opa.url},
        "grid": {"snapshot_path": tmp_path / "grid.json"},
        "feed": {"providers_file": providers_file(tmp_path, httpserver), "state_dir": tmp_path / "feed",
                 "publish_to": "opa", "bind": f"127.0.0.1:{webhook_server.free_port()}", "tick_s": 0.5,
                 "ttl_s": 1, "backoff_max_s": 1},
    })
    feed = servers.Process("feed", servers.carbongate("--log-level", "DEBUG", "feed", "--config", str(config)),
                           directory=tmp_path, env={**found.environment(), "CARBONGATE_OPA_TOKEN": found.opa_feed})
    with servers.running(feed):
        servers.wait_for(lambda: sent_by(opa, found.opa_feed), timeout_s=30, what="the feed publishing to OPA")
        servers.wait_for(lambda: _provider_calls(httpserver, found) >= 2, timeout_s=30,
                         what="the providers called with the credentials twice")
    assert "401" in feed.log() or "refused" in feed.log(), feed.log()[-2000:]
    assert_no_secret_in(feed.log(), found, process="the feed")


def test_the_webhook_logs_no_opa_token_or_provider_credential(
        httpserver: HTTPServer, opa: opa_rest_double.OpaRestDouble, found: Secrets, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_providers(httpserver, found)
    # The OPA sidecar's grid comes from the feed sidecar in a pod; here the test puts it.
    snapshot: Any = grid.build(datetime.now(timezone.utc))
    publisher.OpaServer(url=opa.url, token=found.opa_webhook, timeout_s=5).put(snapshot)
    sections: dict[str, dict[str, Any]] = {
        "engine": {"kind": "opa", "opa_url": opa.url, "opa_timeout_s": 5.0},
        "feed": {"providers_file": str(providers_file(tmp_path, httpserver))},
    }
    for key, value in {**found.environment(), "CARBONGATE_OPA_TOKEN": found.opa_webhook}.items():
        monkeypatch.setenv(key, value)  # inherited by the server process
    with webhook_server.running_webhook(tmp_path / "webhook", sections=sections) as server:
        for n in range(5):
            response = server.review(servers.tier3_review(f"secret-{n}"))["response"]
            assert response["allowed"] is True and response.get("warnings"), response
        log = server.log()
    assert sent_by(opa, found.opa_webhook), "the webhook never used its OPA token"
    assert _provider_calls(httpserver, found) >= 1, "the feed in the master never used the credentials"
    assert_no_secret_in(log, found, process="the webhook")


def test_governance_logs_no_database_password(found: Secrets, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    with kube_api.serve(kube_api.FakeKubeApi()) as kube:
        kube.write_kubeconfig(kubeconfig)
        config = servers.write_toml(tmp_path / "governance.toml", {
            "kube": {"kubeconfig": kubeconfig}, "governance": {
                "bind": f"127.0.0.1:{webhook_server.free_port()}",
                "budgets_snapshot_path": tmp_path / "budgets.json"}})
        closed_port = webhook_server.free_port()
        url = f"postgresql://carbongate:{found.db_password}@127.0.0.1:{closed_port}/ledger"
        governance = servers.Process(
            "governance", servers.carbongate("--log-level", "DEBUG", "governance", "--config", str(config)),
            directory=tmp_path, env={"CARBONGATE_DATABASE_URL": url})
        with servers.running(governance):
            servers.wait_for(lambda: not governance.alive() or "ledger" in governance.log(), timeout_s=30,
                             what="governance failing to reach its database")
    assert "Connection refused" in governance.log(), governance.log()
    assert_no_secret_in(governance.log(), found, process="governance")


def _provider_calls(httpserver: HTTPServer, found: Secrets) -> int:
    """Requests that carried a credential: Basic on /login, the bearer token, the EM token."""
    carried = 0
    for request, _ in httpserver.log:
        headers = request.headers
        if headers.get("Authorization") in (f"Basic {found.basic()}", f"Bearer {found.watttime_bearer}") \
                or headers.get("auth-token") == found.em_token:
            carried += 1
    return carried
