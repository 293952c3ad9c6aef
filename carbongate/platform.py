"""The platform's policy settings (``data.carbongate.config``), typed, and what follows from them.

The platform team edits one file, the policies' ``carbongate/config/data.json``:
tiers, thresholds, regions, the home region, the default duration, the exempt
namespaces. Rego reads it as ``data.carbongate.config``; every Python process
that needs one of those values (the webhook before it asks the policy, the
controller computing a release time, governance pricing a run, ``carbongate
deferred``, the simulator) reads it through :class:`PlatformConfig`, so the
rules below are written once:

* the home region: ``grid.home_region`` in the settings when set (a cluster's
  deployment names where it runs), else the config's ``home_region``, else the
  first region with grid data; for a grid given by hand (``carbongate review
  --grid``) the first two count only when the traces hold them;
* the default duration of a workload that names none: the config's
  ``default_duration_s`` (the webhook's deadline arithmetic uses it in Rego, so
  the controller must subtract the same figure), else
  ``deferral.default_expected_duration_s``;
* the exempt namespaces: the config's ``exempt_namespaces`` only (a setting
  of the same name existed and silently won over the file; it is gone).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbongate import files
from carbongate import settings as settings_mod

log = logging.getLogger(__name__)

CONFIG_FILE = Path("carbongate") / "config" / "data.json"


class PlatformConfigError(settings_mod.SettingsError):
    """The platform config cannot be read where a process cannot run without it."""


@dataclass(frozen=True)
class PlatformConfig:
    """``data.carbongate.config`` as shipped with the policies, with typed accessors."""

    document: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, document: Mapping[str, Any] | None) -> PlatformConfig:
        return cls(document=document or {})

    @property
    def configured_home_region(self) -> str:
        value = self.document.get("home_region")
        return value if isinstance(value, str) else ""

    @property
    def exempt_namespaces(self) -> frozenset[str]:
        value = self.document.get("exempt_namespaces")
        if not isinstance(value, list | tuple):
            return frozenset()
        return frozenset(str(name) for name in value)

    @property
    def default_tier(self) -> str:
        return str(self.document.get("default_tier") or "2")

    @property
    def network_kwh_per_gb(self) -> float:
        value = self.document.get("network_kwh_per_gb")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0

    def home_region(self, settings: settings_mod.Settings, regions: Iterable[str] = (), *,
                    within: bool = False) -> str:
        """Settings, then this config, then the first of ``regions`` (those with grid data); else ''.

        ``within``: for a grid given by hand (``carbongate review --grid``), where a
        home region the traces do not hold means nothing: the settings' or the
        config's choice counts only when it is one of ``regions``.
        """
        regions = list(regions)
        for chosen in (settings.grid.home_region, self.configured_home_region):
            if chosen and (not within or not regions or chosen in regions):
                return chosen
        return regions[0] if regions else ""

    def default_duration_s(self, settings: settings_mod.Settings) -> int:
        """The duration assumed for a workload that names none (the module's docstring says why)."""
        value = self.document.get("default_duration_s")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return int(value)
        return settings.deferral.default_expected_duration_s


def load(policy_dir: Path) -> PlatformConfig:
    """The config beside the policies; :class:`PlatformConfigError` when it cannot be read."""
    path = policy_dir / CONFIG_FILE
    try:
        return PlatformConfig.of(files.load_json(path))
    except (OSError, ValueError) as error:
        raise PlatformConfigError(f"cannot read the platform config {path}: {error}") from error


def read(policy_dir: Path) -> PlatformConfig:
    """The config beside the policies, or an empty one (logged) for a process that can run on defaults."""
    try:
        return load(policy_dir)
    except PlatformConfigError as error:
        log.warning("%s: carrying on with the defaults", error)
        return PlatformConfig()
