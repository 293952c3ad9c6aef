"""Kubernetes resource quantities (``500m``, ``2``, ``4Gi``, ``512M``, ``1e3``) as numbers.

The energy model reads what a pod asks for, and pods state it in the
apimachinery quantity grammar: a signed decimal number followed by a binary
suffix (``Ki`` … ``Ei``), a decimal suffix (``n u m k M G T P E``) or a decimal
exponent (``e3``, ``E-2``). We parse it ourselves, exactly (``Decimal``), so a
malformed value gets an error that names it instead of a silent zero.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
# sign, digits with an optional fraction (".5" and "5." are valid), then a suffix.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)


class QuantityError(ValueError):
    """A resource quantity that does not follow the Kubernetes grammar."""


def parse_quantity(value: object) -> Decimal:
    """The exact value of a quantity (``"500m"`` -> ``0.5``, ``"4Gi"`` -> ``4294967296``).

    Plain numbers are accepted too, because YAML manifests often carry
    ``cpu: 2`` unquoted. Negative quantities are refused: nothing a container
    requests can be below zero, so a minus sign is a mistake worth reporting.
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a resource quantity")
    if isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise QuantityError(f"{value!r} is not a resource quantity")
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(
            f"{value!r} is not a resource quantity (expected e.g. 500m, 2, 4Gi, 512M, 1e3)"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as error:  # pragma: no cover - the pattern guarantees a number
        raise QuantityError(f"{value!r} is not a resource quantity") from error
    if number < 0:
        raise QuantityError(f"{value!r} is negative; resource quantities cannot be")
    return number * _multiplier(match["suffix"] or "")


def _multiplier(suffix: str) -> Decimal:
    if suffix in _BINARY:
        return Decimal(_BINARY[suffix])
    if suffix in _DECIMAL:
        return _DECIMAL[suffix]
    return Decimal(10) ** int(suffix[1:])  # decimal exponent: e3, E-2
