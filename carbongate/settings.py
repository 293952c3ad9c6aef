"""One typed settings object for every carbongate process.

Configuration flows from here and nowhere else: components receive the
section they need (``settings.webhook``, ``settings.feed`` ...) as a frozen
dataclass. Values come, in increasing precedence, from the field defaults,
an optional TOML file (``CARBONGATE_CONFIG`` or ``--config``) and environment
variables named ``CARBONGATE_<SECTION>_<FIELD>`` (for example
``CARBONGATE_WEBHOOK_BIND=0.0.0.0:8443``). This module is the only place that
reads ``os.environ``.

Secrets (provider credentials, database passwords) are never fields here:
the settings name the environment variable or mounted file that holds them,
so a settings dump can be logged safely.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ENV_PREFIX = "CARBONGATE_"
# Where the packages are: the checkout in a development install, site-packages
# in a wheel install. Shipped data is found through the packages themselves
# (package data), never relative to a checkout.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _package_data(package: str, *parts: str) -> Path:
    """A directory shipped inside ``package``: the wheel installs unzipped, so it is on disk."""
    return Path(str(importlib.resources.files(package).joinpath(*parts)))


# The Rego policies and their platform config (package ``policies``).
DEFAULT_POLICY_DIR = _package_data("policies", "rego")
# The demo grid traces (carbongate/demo_grid; examples/grid in a checkout
# points there): what the feed replays, and ``carbongate review`` plans with,
# when no providers or trace files are configured.
DEMO_GRID_DIR = _package_data("carbongate", "demo_grid")

EngineKind = Literal["embedded", "opa"]


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


# Settings that were replaced, and what to write instead.
RENAMED = {
    "exempt_namespaces": "webhook.exempt_namespaces moved to the platform config: exempt_namespaces in "
                         "the policies' carbongate/config/data.json, the one list the webhook and the "
                         "policy both read (docs/policies.md)",
    "max_age_s": "grid.max_age_s was replaced by grid.stale_grace_s: data is stale once its "
                 "provider's next observation is overdue by stale_grace_s (docs/carbon_feed.md)",
}


@dataclass(frozen=True)
class EngineSettings:
    """Which policy engine decides, and where its policies live."""

    kind: EngineKind = "embedded"
    policy_dir: Path = DEFAULT_POLICY_DIR
    # How often the embedded engine checks the policy files for edits.
    reload_interval_s: float = 2.0
    # OPA server (sidecar) REST API; only used when kind == "opa".
    opa_url: str = "http://127.0.0.1:8181"
    # Name of the environment variable holding the OPA bearer token, if any.
    opa_token_env: str = "CARBONGATE_OPA_TOKEN"
    opa_timeout_s: float = 0.5
    # How long start-up waits for the OPA server's GET /health before failing.
    opa_startup_wait_s: float = 10.0
    # Identical embedded engines per policy/data version, so that threads of
    # one worker evaluate in parallel. Engines per worker times workers should
    # match the cores: with the default 2 workers on 2 cores, one engine each
    # serves more requests, with a third of the p99 and 20 MB less per worker
    # (docs/engines.md, docs/performance.md).
    embedded_pool_size: int = 1


@dataclass(frozen=True)
class WebhookSettings:
    """The admission webhook's HTTP server and request handling."""

    bind: str = "127.0.0.1:8443"
    certfile: Path = Path(".dev-certs/tls.crt")
    keyfile: Path = Path(".dev-certs/tls.key")
    # CA bundle to verify the API server's client certificate (mTLS); empty: off.
    client_ca_file: Path | None = None
    # The gunicorn worker: "asgi" (webhook/worker.py: TLS handshakes and request reading in
    # an event loop, only whole requests reach the decision threads; slow clients cannot
    # stall it) or "gthread" (handshakes and reads in the pool threads; kept to compare
    # against, docs/performance.md "Slow clients").
    worker_class: Literal["asgi", "gthread"] = "asgi"
    # Sized by measurement on 2 cores (docs/performance.md, "Sizing"): 2 workers x 8
    # threads x 1 engine (engine.embedded_pool_size) served the fan-out burst and distinct
    # workloads best; 2 x 4 x 1 served fewer distinct requests, and 1 x 8 x 2 used less
    # CPU and memory in total but one GIL held the burst at 0.60 of the floor. Workers
    # times engines should equal the cores.
    workers: int = 2
    # Decision threads per worker (gthread: the pool threads, which also read and handshake).
    threads: int = 8
    # A client must finish its TLS handshake within this long, and send its request's
    # headers within this long of the handshake (or, on a kept-alive connection, of the
    # request's first byte), or the connection is dropped. asgi worker only.
    handshake_timeout_s: float = 5.0
    header_timeout_s: float = 5.0
    # Open connections a worker keeps (asgi worker only): one past this is closed as its
    # handshake completes and counted in carbongate_connections_refused_total. The API
    # server keeps a few tens; the bound keeps a flood of idle connections from taking
    # every file descriptor.
    max_connections: int = 1024
    max_body_bytes: int = 3 * 1024 * 1024
    # The whole request body must arrive within this long, or the request gets a 400
    # and the connection is closed: a client that stops sending mid-body (or declares a
    # chunk it never sends) must not hold a worker thread.
    body_timeout_s: float = 5.0
    # A decision slower than this is abandoned: admitted unchanged (fail-open).
    decision_deadline_ms: int = 250
    # Decisions kept per worker for inputs seen again (webhook/decision_cache.py); 0: off.
    decision_cache_entries: int = 512
    # Hand the policy the whole object as input.object (no shipped policy reads it; it
    # costs engine time on every request and defeats the decision cache): docs/policies.md.
    policy_input_object: bool = False
    # Which regions the policy's plan holds: "asked" (home and the regions a workload names in
    # carbongate.io/regions: all the shipped windows.allowed can choose, and the cheaper
    # input) or "all" (every region of the grid, for a policy edited to place workloads in
    # regions they did not name). docs/policies.md, "What the policy sees".
    plan_regions: Literal["asked", "all"] = "asked"
    # carbongate's own namespace: never mutated.
    own_namespace: str = "carbongate"
    # Where namespace labels come from: "api" (read through the [kube] client: in-cluster
    # or a kubeconfig; `serve --kubeconfig/--context` sets it), "file" (Namespace manifests in
    # namespace_labels_file: make run, demos) or "none" (every namespace unlabelled: dryrun).
    namespace_labels_source: Literal["api", "file", "none"] = "none"
    namespace_labels_file: Path | None = None
    namespace_cache_ttl_s: float = 30.0
    # Prometheus multiprocess directory for gunicorn workers.
    metrics_dir: Path = Path(".state/metrics")


@dataclass(frozen=True)
class GridSettings:
    """Where the webhook and the controller read grid data from."""

    # The feed's atomic JSON snapshot; the webhook reloads it when it changes.
    snapshot_path: Path = Path(".state/grid-snapshot.json")
    # Region the cluster runs in; empty: the first configured region.
    home_region: str = ""
    forecast_horizon_h: int = 48
    # Window durations precomputed per data update (minutes).
    window_durations_min: tuple[int, ...] = (30, 60, 120, 240, 480)
    # Candidate starts for a workload's plan are spaced at least this far apart.
    plan_step_min: int = 15
    # Grid data is stale once its provider's next observation is overdue by this much
    # (observed_at + the provider's cadence + stale_grace_s): an hourly series observed at
    # 11:00 stays fresh until 12:15. The one setting for data age; it must exceed
    # feed.ttl_s, so that a feed polling normally never lets data turn stale.
    stale_grace_s: int = 900


@dataclass(frozen=True)
class FeedSettings:
    """The carbon feed sidecar: providers, cache, publishing."""

    # YAML file naming the provider chain per region; empty: replay the demo traces.
    providers_file: Path | None = None
    # Trace files replayed by the trace provider when no providers file is given.
    trace_files: tuple[Path, ...] = ()
    # Replay clock: "wall" maps now onto the trace (same time of year), or an
    # RFC 3339 instant to start the replay at.
    trace_clock: str = "wall"
    ttl_s: int = 300
    state_dir: Path = Path(".state/feed")
    publish_to: Literal["embedded", "opa", "file"] = "file"
    bind: str = "127.0.0.1:9102"
    request_timeout_s: float = 10.0
    # A failing provider is retried after ttl_s x 2^(failures-1) plus jitter, at most this.
    backoff_max_s: float = 1800.0
    # A reading observed further than this in the future is rejected (clock skew).
    max_clock_skew_s: float = 300.0
    # How often the refresh loop wakes; providers are still polled at most once per ttl_s.
    tick_s: float = 30.0
    # KEDA external scaler (gRPC) on this host:port; empty: not served. See docs/keda.md.
    keda_bind: str = ""
    # What KEDA is told when the data is stale or missing: "active" (fail-open, as admission)
    # or "inactive" (scale to zero); a trigger's whenStale overrides it.
    keda_when_stale: Literal["active", "inactive"] = "active"
    # Open StreamIsActive calls served at once (one thread each).
    keda_max_streams: int = 32
    # One fetcher per cluster (carbon_feed/cluster.py): the feed sidecars elect the holder of
    # this Lease, which alone polls the providers and writes its readings to the ConfigMap
    # below; the others read them from there. Empty: no election, this feed polls itself.
    lease_name: str = ""
    # carbongate's namespace: where the Lease and the readings ConfigMap live.
    namespace: str = "carbongate"
    readings_configmap: str = "carbongate-grid-readings"
    lease_duration_s: int = 15
    # How often the leader renews (and a follower retries) the Lease.
    lease_renew_s: float = 2.0
    # This feed's Lease holderIdentity; empty: hostname and process id.
    identity: str = ""


@dataclass(frozen=True)
class DeferralSettings:
    """The deferral controller."""

    namespace: str = "carbongate"
    lease_name: str = "carbongate-deferral"
    lease_duration_s: int = 15
    # How often the leader renews (and a standby retries) the Lease.
    lease_renew_s: float = 2.0
    # This replica's Lease holderIdentity; empty: hostname and process id.
    identity: str = ""
    # Full relist of pods and jobs this often (repairs any missed watch event).
    resync_s: int = 60
    # Each watch request asks the API server to end the stream after this long.
    watch_timeout_s: int = 300
    watch_backoff_initial_s: float = 0.5
    watch_backoff_max_s: float = 30.0
    # Waiting workloads are re-decided this often (intensity may fall under the threshold).
    recheck_s: int = 300
    # The deadline path fires this long before release_by; more than the lease
    # duration, so a leader change cannot make a release late.
    deadline_lead_s: int = 30
    # Expected duration assumed when the annotation is missing and the platform
    # config (data.json default_duration_s, what the webhook uses) has none.
    default_expected_duration_s: int = 3600
    # A failed release (API error) is retried after this long.
    retry_s: float = 5.0
    request_timeout_s: float = 10.0
    bind: str = "127.0.0.1:9103"


@dataclass(frozen=True)
class GovernanceSettings:
    """The governance service: ledger, budgets, reports."""

    database_url: str = "sqlite:///.state/ledger.db"
    # Name of the environment variable holding a database URL with a password.
    database_url_env: str = "CARBONGATE_DATABASE_URL"
    budgets_file: Path | None = None
    # The published budgets document; the webhook loads it into its engine.
    budgets_snapshot_path: Path = Path(".state/budgets.json")
    energy_model_file: Path | None = None
    bind: str = "127.0.0.1:9104"
    # How often budgets are recomputed and published (also after each recorded run).
    publish_interval_s: float = 30.0
    # A pod watch is re-established after this long (the server may end it sooner).
    watch_timeout_s: int = 300
    # Kubernetes namespace of the budgets ConfigMap and the Lease (carbongate's own).
    namespace: str = "carbongate"
    # ConfigMap the budgets document is also published to (key budgets.json), which
    # every webhook pod mounts; empty: not published to the cluster.
    budgets_configmap: str = ""
    # Lease for leader election (only its holder collects and publishes); empty: no
    # election, this process always collects.
    lease_name: str = ""
    lease_duration_s: int = 15
    # How often the leader renews (and a standby retries) the Lease.
    lease_renew_s: float = 2.0
    # This replica's Lease holderIdentity; empty: hostname and process id.
    identity: str = ""


@dataclass(frozen=True)
class KubeSettings:
    """How every component reaches the Kubernetes API, by kubectl's rules (carbongate/kube.py).

    Empty fields mean: ``$KUBECONFIG`` if set, else the in-cluster service
    account, else ``~/.kube/config``. Every command that talks to a cluster
    sets these with ``--kubeconfig`` and ``--context``.
    """

    # A kubeconfig file; empty: $KUBECONFIG, in-cluster, then ~/.kube/config.
    kubeconfig: Path | None = None
    # The kubeconfig context to use; empty: the file's current-context.
    context: str = ""
    # A plain URL without credentials (``kubectl proxy``, a local API double); wins over the rest.
    api_url: str = ""


@dataclass(frozen=True)
class Settings:
    """Everything, one section per component."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    grid: GridSettings = field(default_factory=GridSettings)
    feed: FeedSettings = field(default_factory=FeedSettings)
    deferral: DeferralSettings = field(default_factory=DeferralSettings)
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    kube: KubeSettings = field(default_factory=KubeSettings)


def load(
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings from defaults, a TOML file, the environment and overrides.

    ``overrides`` (section -> field -> value) come last: that is how command-line
    flags reach the settings without a second path of configuration.
    """
    env = dict(os.environ if environ is None else environ)
    if config_file is None and env.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(env[ENV_PREFIX + "CONFIG"])
    layered: dict[str, dict[str, Any]] = {}
    if config_file is not None:
        layered = _merge(layered, _read_toml(Path(config_file)))
    layered = _merge(layered, _from_environment(env))
    if overrides:
        layered = _merge(layered, {k: dict(v) for k, v in overrides.items()})
    settings: Settings = _build(Settings, layered, "")
    _check_consistent(settings)
    return settings


def _check_consistent(settings: Settings) -> None:
    """Refuse combinations that cannot work, naming both settings."""
    if settings.grid.stale_grace_s <= settings.feed.ttl_s:
        raise SettingsError(
            f"grid.stale_grace_s ({settings.grid.stale_grace_s}) must exceed feed.ttl_s ({settings.feed.ttl_s}): "
            "a feed that polls every ttl_s would otherwise publish stale data in normal operation")


def environment_value(name: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """Read one secret's value from the environment variable a setting names."""
    env = os.environ if environ is None else environ
    return env.get(name) or None


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"cannot read settings file {path}: {error}") from error


def _from_environment(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(Settings):
        section_type = typing.get_type_hints(Settings)[section.name]
        for item in dataclasses.fields(section_type):
            name = f"{ENV_PREFIX}{section.name}_{item.name}".upper()
            if name in env:
                result.setdefault(section.name, {})[item.name] = env[name]
        for old, hint in RENAMED.items():  # a variable of a setting that is gone is an error, not ignored
            if f"{ENV_PREFIX}{section.name}_{old}".upper() in env:
                raise SettingsError(f"{ENV_PREFIX}{section.name}_{old}".upper() + f" is no setting: {hint}")
    return result


def _merge(base: dict[str, dict[str, Any]], top: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    merged = {key: dict(value) for key, value in base.items()}
    for section, values in top.items():
        if not isinstance(values, Mapping):
            raise SettingsError(f"settings section {section!r} must be a table")
        merged.setdefault(section, {}).update(values)
    return merged


def _build(cls: type[Any], values: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        hints_text = "".join(f"; {RENAMED[key]}" for key in sorted(unknown) if key in RENAMED)
        raise SettingsError(f"unknown setting(s) {sorted(unknown)} in [{where or 'root'}]{hints_text}")
    kwargs: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.name not in values:
            continue
        label = f"{where}.{item.name}" if where else item.name
        hint = hints[item.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[item.name] = _build(hint, values[item.name], label)
        else:
            kwargs[item.name] = _coerce(values[item.name], hint, label)
    return cls(**kwargs)


def _coerce(raw: Any, hint: Any, label: str) -> Any:
    """Turn a TOML value or an environment string into the field's type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw in (None, "") and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(raw, inner, label)
    if origin is Literal:
        if raw not in args:
            raise SettingsError(f"{label} must be one of {list(args)}, not {raw!r}")
        return raw
    if origin is tuple:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(_coerce(i.strip() if isinstance(i, str) else i, args[0], label)
                     for i in items if i != "")
    try:
        if hint is bool:
            return _boolean(raw)
        if hint is Path:
            return Path(raw)
        return hint(raw)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"{label}: cannot use {raw!r} as {getattr(hint, '__name__', hint)}") from error


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
