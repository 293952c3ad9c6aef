"""The providers file: which provider serves which region, in what order, with which credentials.

A YAML file named by ``feed.providers_file``::

    providers:
      electricitymaps:
        token: {env: ELECTRICITYMAPS_TOKEN}       # or {file: /var/run/secrets/em/token}
        emission_factor: lifecycle
      watttime:
        username: {env: WATTTIME_USER}
        password: {file: /var/run/secrets/watttime/password}
      ukci: {}
      trace:
        files: [examples/grid/GB_2023_hourly.csv]
    regions:
      GB: [ukci, {provider: electricitymaps, zone: GB}, trace]
      CAISO: [{provider: watttime, zone: CAISO_NORTH}]

Each region lists its chain, primary first; an entry is a provider name or
``{provider, zone}`` when the provider calls the region something else, or
``{provider: electricitymaps, cloud_region: gcp/europe-west1}`` to let
Electricity Maps find the zone that powers a cloud region.
Credentials are never values in the file, only where to find them, and are
held in :class:`Secret` so that no ``repr`` or log line can show them.
Everything is checked at start-up: a feed that cannot serve a region says so
before it publishes anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from carbon_feed import errors, source
from carbongate import clock as clock_mod
from carbongate import settings as settings_mod


@dataclass(frozen=True)
class Secret:
    """A credential: its value is never part of ``repr`` or ``str``."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True)
class ChainEntry:
    """One link of a region's chain: a provider and its name for the region."""

    provider: str
    zone: str


@dataclass(frozen=True)
class ProvidersFile:
    """The parsed file: provider options by name and the chain of every region."""

    providers: Mapping[str, Mapping[str, Any]]
    regions: Mapping[str, tuple[ChainEntry, ...]]
    base_dir: Path


@dataclass(frozen=True)
class BuildContext:
    """What every provider factory may need besides its own options."""

    timeout_s: float
    base_dir: Path
    clock: clock_mod.Clock
    environ: Mapping[str, str] | None = None
    # Default replay clock of trace providers ("wall" or an RFC 3339 start).
    trace_clock: str = "wall"
    # Default forecast horizon (hours) where a provider lets us choose.
    horizon_h: int = 48

    def secret(self, spec: Any, *, where: str) -> Secret:
        """Resolve ``{env: NAME}`` or ``{file: PATH}`` to a :class:`Secret`."""
        return resolve_secret(spec, where=where, environ=self.environ, base_dir=self.base_dir)


Factory = Callable[[str, Mapping[str, Any], Mapping[str, str], BuildContext], source.IntensitySource]


def load(path: Path) -> ProvidersFile:
    """Read and check a providers file; :class:`errors.ConfigError` names what is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise errors.ConfigError(f"cannot read providers file {path}: {error}") from error
    return parse(document, base_dir=path.resolve().parent, where=str(path))


def parse(document: Any, *, base_dir: Path, where: str = "providers file") -> ProvidersFile:
    """Check the shape of a providers document (already decoded)."""
    if not isinstance(document, Mapping):
        raise errors.ConfigError(f"{where}: must be a mapping with 'providers' and 'regions'")
    providers = document.get("providers") or {}
    regions = document.get("regions")
    if not isinstance(providers, Mapping) or not all(
        isinstance(v, Mapping) or v is None for v in providers.values()
    ):
        raise errors.ConfigError(f"{where}: 'providers' must map names to option mappings")
    if not isinstance(regions, Mapping) or not regions:
        raise errors.ConfigError(f"{where}: 'regions' must name at least one region and its chain")
    options = {str(name): dict(value or {}) for name, value in providers.items()}
    chains = {str(region): _chain(str(region), chain, options, where) for region, chain in regions.items()}
    return ProvidersFile(providers=options, regions=chains, base_dir=base_dir)


def _chain(region: str, chain: Any, providers: Mapping[str, Any], where: str) -> tuple[ChainEntry, ...]:
    if isinstance(chain, str | Mapping):
        chain = [chain]
    if not isinstance(chain, list) or not chain:
        raise errors.ConfigError(f"{where}: region {region!r} needs a list of providers")
    entries = []
    for item in chain:
        name, zone = (item, region) if isinstance(item, str) else _entry(region, item, where, providers)
        if name not in providers and name not in BUILTIN_DEFAULTS:
            raise errors.ConfigError(f"{where}: region {region!r} uses provider {name!r}, "
                                     f"which 'providers' does not define")
        entries.append(ChainEntry(provider=name, zone=zone))
    return tuple(entries)


def _entry(region: str, item: Any, where: str, providers: Mapping[str, Any]) -> tuple[str, str]:
    if not isinstance(item, Mapping) or not isinstance(item.get("provider"), str):
        raise errors.ConfigError(f"{where}: region {region!r}: each entry is a name or {{provider, zone}}")
    name = item["provider"]
    if "cloud_region" not in item:
        return name, str(item.get("zone", region))
    return name, _cloud_zone(region, item, where, kind=str((providers.get(name) or {}).get("type", name)))


# A chain entry's ``cloud_region: gcp/europe-west1`` travels as this zone; the
# provider asks for the data centre (Electricity Maps dataCenterProvider/Region).
CLOUD_ZONE_PREFIX = "cloud:"
CLOUD_REGION_PROVIDERS = frozenset({"electricitymaps"})
_CLOUD_REGION = re.compile(r"^[a-z0-9]+/[a-z0-9][a-z0-9-]*$")


def _cloud_zone(region: str, item: Mapping[str, Any], where: str, *, kind: str) -> str:
    """``cloud:<provider>/<region>`` for an entry naming a cloud region instead of a zone."""
    value = item["cloud_region"]
    if "zone" in item:
        raise errors.ConfigError(f"{where}: region {region!r}: give a zone or a cloud_region, not both")
    if kind not in CLOUD_REGION_PROVIDERS:
        raise errors.ConfigError(f"{where}: region {region!r}: provider {item['provider']!r} cannot look "
                                 "up a cloud region; only electricitymaps can")
    if not isinstance(value, str) or not _CLOUD_REGION.match(value):
        raise errors.ConfigError(f"{where}: region {region!r}: cloud_region is '<provider>/<region>' in "
                                 f"lower case, like gcp/europe-west1 or aws/eu-west-3, not {value!r}")
    return CLOUD_ZONE_PREFIX + value


# Providers usable without options (no credentials needed).
BUILTIN_DEFAULTS = frozenset({"ukci"})


def resolve_secret(
    spec: Any, *, where: str, environ: Mapping[str, str] | None = None, base_dir: Path = Path(".")
) -> Secret:
    """A credential from an environment variable or a mounted file, never from the file itself."""
    if not isinstance(spec, Mapping) or len(spec) != 1 or not ({"env", "file"} & set(spec)):
        raise errors.ConfigError(
            f"{where}: give credentials as {{env: VARIABLE}} or {{file: /mounted/path}}, "
            "never as a value in the providers file"
        )
    if "env" in spec:
        value = settings_mod.environment_value(str(spec["env"]), environ=environ)
        if not value:
            raise errors.ConfigError(f"{where}: environment variable {spec['env']} is not set")
        return Secret(value.strip())
    path = Path(str(spec["file"]))
    path = path if path.is_absolute() else base_dir / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise errors.ConfigError(f"{where}: cannot read credential file {path}: {error.strerror}") from error
    if not value:
        raise errors.ConfigError(f"{where}: credential file {path} is empty")
    return Secret(value)


def build_sources(
    config: ProvidersFile, *, factories: Mapping[str, Factory], context: BuildContext
) -> dict[str, source.IntensitySource]:
    """One source per provider name, serving every region that names it.

    A provider's ``type`` option picks the implementation (default: its name),
    so two Electricity Maps entries (``lifecycle`` and ``direct``) can coexist.
    Any provider may state ``cadence_s``, how often it publishes a new value,
    where its answers do not say (a provider of one's own, a double): data is
    stale once that cadence plus ``grid.stale_grace_s`` has passed.
    """
    zones: dict[str, dict[str, str]] = {}
    for region, chain in config.regions.items():
        for entry in chain:
            zones.setdefault(entry.provider, {})[region] = entry.zone
    built: dict[str, source.IntensitySource] = {}
    for name, region_zones in zones.items():
        options = dict(config.providers.get(name, {}))
        cadence_s = options.pop("cadence_s", None)
        kind = str(options.get("type", name))
        if kind not in factories:
            raise errors.ConfigError(f"provider {name!r}: unknown type {kind!r}; "
                                     f"known: {', '.join(sorted(factories))}")
        built[name] = factories[kind](name, options, region_zones, context)
        if cadence_s is not None:
            built[name] = source.WithCadence(built[name], cadence_s=_cadence(name, cadence_s))
    return built


def _cadence(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise errors.ConfigError(f"provider {name!r}: cadence_s must be a whole number of seconds > 0, not {value!r}")
    return value


def check_options(name: str, options: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse options a provider does not know: a typo must not silently fall back to a default."""
    unknown = set(options) - allowed - {"type"}
    if unknown:
        raise errors.ConfigError(f"provider {name!r}: unknown option(s) {sorted(unknown)}; "
                                 f"allowed: {sorted(allowed)}")


def positive_int(name: str, options: Mapping[str, Any], key: str, default: int) -> int:
    """An integer option that must be >= 0."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.ConfigError(f"provider {name!r}: {key} must be a whole number >= 0, not {value!r}")
    return value
