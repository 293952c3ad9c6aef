"""Build the configured policy engine: ``factory.build(settings.engine)``.

Start-up is where a misconfiguration should fail, loudly and once: an
unknown kind, policies that do not compile, or an OPA server that does not
answer within ``opa_startup_wait_s`` raise here with a message naming the
setting to fix. Call it in the process that evaluates (for gunicorn: in the
worker, after the fork), never at import time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from carbongate import settings as carbongate_settings
from policy_engine import embedded, engine, errors

if TYPE_CHECKING:
    from policy_engine import opa_server

log = logging.getLogger(__name__)


def build(settings: carbongate_settings.EngineSettings, *, watch: bool = False) -> engine.PolicyEngine:
    """A ready-to-evaluate engine with the policy directory loaded (and watched if asked).

    Raises :class:`errors.EngineConfigError` for an unknown kind or a bad URL,
    :class:`errors.PolicyCompileError` when the policies do not compile and
    :class:`errors.EngineUnavailableError` when the OPA server is unreachable.
    """
    built: engine.PolicyEngine
    if settings.kind == "embedded":
        built = embedded.EmbeddedEngine(policy_dir=settings.policy_dir,
                                        pool_size=settings.embedded_pool_size)
    elif settings.kind == "opa":
        built = _opa(settings)
    else:
        raise errors.EngineConfigError(
            f"engine.kind {settings.kind!r} is unknown: use 'embedded' or 'opa'")
    if watch:
        built.start_watching(settings.reload_interval_s)
    log.info("policy engine %s ready to evaluate, policies %s", settings.kind, built.version)
    return built


def _opa(settings: carbongate_settings.EngineSettings) -> opa_server.OpaServerEngine:
    # Imported here: the REST client brings aiohttp and requests (about 25 MB per
    # process), which a worker on the embedded engine never uses.
    from policy_engine import opa_server

    server = opa_server.OpaServerEngine(
        url=settings.opa_url,
        policy_dir=settings.policy_dir,
        token=carbongate_settings.environment_value(settings.opa_token_env),
        timeout_s=settings.opa_timeout_s,
    )
    try:
        server.wait_until_reachable(settings.opa_startup_wait_s)
        server.reload_policies()
    except errors.PolicyEngineError:
        server.close()
        raise
    return server
