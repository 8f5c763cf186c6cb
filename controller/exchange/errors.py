"""ccxt exception classes mapped to what Warden does about them (freqtrade's split, made explicit)."""

from __future__ import annotations

from enum import StrEnum

import ccxt


class Outcome(StrEnum):
    REJECTED = "Rejected"
    """The exchange definitively refused this order; sending it again would be refused again."""
    UNKNOWN = "Unknown"
    """The request may or may not have taken effect; observe (look the order up) before acting again."""
    ACCOUNT = "Account"
    """Credentials or permissions are wrong; nothing will work until a human fixes the account."""


def classify(error: Exception) -> Outcome:
    # Order matters: DuplicateOrderId is an InvalidOrder, but it means "it already exists" - look it up.
    if isinstance(error, ccxt.DuplicateOrderId):
        return Outcome.UNKNOWN
    if isinstance(error, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return Outcome.ACCOUNT
    if isinstance(error, ccxt.NetworkError):
        return Outcome.UNKNOWN
    if isinstance(error, ccxt.InvalidOrder | ccxt.InsufficientFunds | ccxt.BadRequest | ccxt.OperationRejected):
        return Outcome.REJECTED
    return Outcome.UNKNOWN


def describe(error: Exception) -> str:
    """A one-line message safe for status, events and audit: ccxt messages never carry the API secret,
    but signed request URLs can; keep only the exchange's own text."""
    text = str(error)
    marker = text.find("{")
    return (f"{type(error).__name__}: {text[marker:] if marker >= 0 else text}")[:500]
