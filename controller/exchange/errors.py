"""ccxt exception classes mapped to what Warden does about them (freqtrade's split, made explicit).

This is the one place errors are classified; ``controller.reconcile.results`` turns an outcome into status.
"""

from __future__ import annotations

import ccxt

from controller.reconcile.model import Outcome

__all__ = ["Outcome", "classify", "describe"]


def classify(error: Exception) -> Outcome:
    # Order matters: DuplicateOrderId is an InvalidOrder, but it means "it already exists" - look it up.
    if isinstance(error, ccxt.DuplicateOrderId):
        return Outcome.UNKNOWN
    if isinstance(error, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return Outcome.ACCOUNT
    # Refused before execution (rate limits, clock skew) or the venue is down: try again after a pause.
    if isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded | ccxt.InvalidNonce | ccxt.ExchangeNotAvailable):
        return Outcome.RETRY
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
