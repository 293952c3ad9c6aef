"""The TLS-alert loop is used only where asyncio's private members are what it was written against."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from webhook import worker


def test_this_pythons_asyncio_fits_the_alerting_loop() -> None:
    """Python 3.11 (this project's CI): the refusal tests in tests/reliability rely on the alert."""
    assert worker.alerting_loop_fits()


def test_a_changed_private_signature_falls_back_to_the_stock_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def _make_ssl_transport(self: Any, rawsock: Any, protocol: Any, sslcontext: Any, *,
                            context: Any = None) -> Any:  # a later asyncio's shape, say
        raise AssertionError("never called")

    monkeypatch.setattr(asyncio.SelectorEventLoop, "_make_ssl_transport", _make_ssl_transport)
    assert not worker.alerting_loop_fits()


def test_a_missing_private_member_falls_back_to_the_stock_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(asyncio.sslproto.SSLProtocol, "_process_outgoing")
    assert not worker.alerting_loop_fits()
