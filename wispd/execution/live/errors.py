"""What an exchange error means for an order we tried to place: reject it, retry it, or look it up.

The rule (brief section 7): retry only when the exchange provably did not act on the request; when the
outcome is unknown, look the order up by its client id and never send it again.

- refused before acting (rate limited, connection never established): ``retry`` after a backoff;
- a definite answer (insufficient funds, invalid order, auth): ``reject`` with a machine-readable code;
- anything else that may have reached the exchange (timeouts, dropped connections, 5xx, a duplicate
  client id): ``unknown``, resolved by a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from wispd.logs import redact_text

# Answers ccxt files under another class, though they mean the key or signature was refused: Binance
# -2015/-2014/-1022 come with HTTP 401, which ccxt reports as DDoSProtection (it would be retried);
# Hyperliquid's unknown signer is an InvalidOrder to ccxt.
AUTH_MARKERS = ('"code": -2015', '"code": -2014', '"code": -1022', '"code":-2015', '"code":-2014', '"code":-1022',
                "User or API Wallet ")


@dataclass(frozen=True)
class Outcome:
    action: str  # retry | reject | unknown
    code: str  # insufficient_funds | invalid_order | rate_limited | auth | exchange_error | unreachable | unknown


def classify(exc: BaseException) -> Outcome:
    import aiohttp
    import ccxt

    text = str(exc)
    if any(marker in text for marker in AUTH_MARKERS):
        return Outcome("reject", "auth")
    if isinstance(exc, ccxt.DuplicateOrderId):
        return Outcome("unknown", "duplicate_client_id")  # the id exists there: the lookup will find it
    if isinstance(exc, ccxt.InsufficientFunds):
        return Outcome("reject", "insufficient_funds")
    if isinstance(exc, ccxt.InvalidOrder | ccxt.BadSymbol | ccxt.BadRequest | ccxt.ArgumentsRequired):
        return Outcome("reject", "invalid_order")
    if isinstance(exc, ccxt.AuthenticationError | ccxt.InvalidNonce):
        return Outcome("reject", "auth")
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return Outcome("retry", "rate_limited")
    if isinstance(exc, ccxt.ExchangeNotAvailable) and isinstance(exc.__cause__, aiohttp.ClientConnectorError):
        return Outcome("retry", "unreachable")  # the TCP connection was never made: nothing was sent
    if isinstance(exc, ccxt.NetworkError):
        return Outcome("unknown", "unknown")
    if isinstance(exc, ccxt.ExchangeError):
        return Outcome("reject", "exchange_error")
    return Outcome("unknown", "unknown")


def describe(exc: BaseException) -> str:
    """One line for logs and reports: the class and the exchange's message, cut short."""
    text = redact_text(" ".join(str(exc).split()))
    return f"{type(exc).__name__}: {text[:300]}"
