"""Per-exchange setup of a trading ccxt.pro instance: credentials, options, client ids, no third-party tags.

Money decisions made here, each checked by a test against the loopback fakes:
- Hyperliquid: ccxt approves a builder fee for its own address and sets its referral code on the first
  private call, and tags every order with ``builder``. The subclass never approves, ``refSet`` stops the
  referral, and with ``approvedBuilderFee`` false no order carries a builder field.
- Binance: ccxt prefixes the client ids it generates with its broker id; we always send our own
  ``newClientOrderId``, and the subclass refuses to generate one, so no code path can add the prefix.
- Bybit: ccxt sends ``Referer: CCXT`` (its broker id) on every POST; the subclass removes the header.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from wispd.config.secrets import read_secrets_file
from wispd.execution.orders import WorkingOrder

# Venues whose live path is tested end to end against a loopback fake of their private API. Bybit's setup
# below (no broker header) is ready and tested on ccxt's request building, but live Bybit stays off until
# its private API has a fake: its amend keeps the orderLinkId (wispd's amend gives the new order its own
# id) and ccxt's fetchOrder on Bybit only sees recent orders, both of which change crash recovery.
LIVE_DRIVERS = ("binance", "hyperliquid")
HL_PREFIX = "0x77"  # Hyperliquid wants a 128-bit hex cloid: 0x + "77" + our 30 hex digits


class CredentialError(Exception):
    pass


def load_credentials(driver: str, creds: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """Read the key and secret named by the config: env variable names (whose values wispd handed this
    process in ``env``: they are in no process's environment) or a 0600 KEY=VALUE file with API_KEY and
    API_SECRET. Hyperliquid's key is the wallet address and its secret the private key."""
    values: dict[str, str] = {}
    if creds.get("secrets_file"):
        values = read_secrets_file(Path(creds["secrets_file"]))
        unknown = sorted(set(values) - {"API_KEY", "API_SECRET"})
        if unknown:
            raise CredentialError(f"{creds['secrets_file']}: unknown key(s) {unknown} (expected API_KEY and "
                                  "API_SECRET)")
    key = env.get(creds["api_key_env"] or "", "") if creds.get("api_key_env") else values.get("API_KEY", "")
    secret = env.get(creds["secret_env"] or "", "") if creds.get("secret_env") else values.get("API_SECRET", "")
    if not key or not secret:
        raise CredentialError("live trading needs an API key and secret (api_key_env/secret_env or a "
                              "secrets_file with API_KEY= and API_SECRET=)")
    if driver == "hyperliquid":
        return {"walletAddress": key, "privateKey": secret}
    return {"apiKey": key, "secret": secret}


def options(driver: str, markets: list[str]) -> dict[str, Any]:
    """Only the market types wispd trades on this driver are loaded (no margin, currency or other calls)."""
    kinds = [{"spot": "spot", "perp": "linear" if driver in ("binance", "bybit") else "swap"}[m] for m in markets]
    opts: dict[str, Any] = {"fetchMarkets": {"types": kinds}, "defaultType": "spot" if "spot" in markets else "swap",
                            "warnOnFetchOpenOrdersWithoutSymbol": False}
    if driver == "binance":
        opts.update({"fetchMargins": False, "fetchCurrencies": False, "adjustForTimeDifference": True})
    elif driver == "bybit":
        opts.update({"enableUnifiedAccount": True, "enableUnifiedMargin": False, "brokerId": ""})
    elif driver == "hyperliquid":
        opts.update({"builderFee": False, "approvedBuilderFee": False, "refSet": True})
    return opts


def exchange_class(driver: str) -> type:
    import ccxt.pro

    base = getattr(ccxt.pro, driver)
    if driver == "hyperliquid":
        class HyperliquidNoBuilder(base):  # type: ignore[misc, valid-type]
            async def handle_builder_fee_approval(self) -> bool:
                return True  # never approve a builder fee for a third party

        return HyperliquidNoBuilder
    if driver == "binance":
        class BinanceOwnIds(base):  # type: ignore[misc, valid-type]
            def generate_client_order_id(self, *args: Any, **kwargs: Any) -> str:
                raise ValueError("wispd sends its own client order id with every order (no broker prefix)")

        return BinanceOwnIds
    if driver == "bybit":
        class BybitNoBroker(base):  # type: ignore[misc, valid-type]
            def sign(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
                request = super().sign(*args, **kwargs)
                (request.get("headers") or {}).pop("Referer", None)
                return request

        return BybitNoBroker
    return base


def venue_client_id(driver: str, client_id: str) -> str:
    return HL_PREFIX + client_id[2:] if driver == "hyperliquid" else client_id


def our_client_id(driver: str, venue_id: Any) -> str | None:
    """Our client id back from the exchange's form of it; None for orders wispd did not place."""
    if not isinstance(venue_id, str):
        return None
    if driver == "hyperliquid":
        return "wd" + venue_id[4:] if venue_id.startswith(HL_PREFIX) and len(venue_id) == 34 else None
    return venue_id if venue_id.startswith("wd") and len(venue_id) == 32 else None


def client_id_param(driver: str, client_id: str) -> dict[str, str]:
    vid = venue_client_id(driver, client_id)
    return {"newClientOrderId": vid} if driver == "binance" else {"clientOrderId": vid}


def order_params(driver: str, order: WorkingOrder) -> dict[str, Any]:
    params: dict[str, Any] = client_id_param(driver, order.client_id)
    if order.price is not None:
        params["timeInForce"] = order.tif
        if order.post_only:
            params["postOnly"] = True
            if driver == "hyperliquid":
                params["timeInForce"] = "Alo"  # ccxt lets an explicit tif win over postOnly: say it in HL's words
    if order.reduce_only and order.market == "perp":
        params["reduceOnly"] = True
    if order.trigger is not None and order.extra.get("native"):
        assert order.trigger.price is not None
        # ccxt's unified names: a stop is a stop-loss order (Binance STOP_LOSS[_LIMIT], Hyperliquid tpsl "sl"),
        # a take-profit a take-profit order; the side says which way the price must cross.
        name = "stopLossPrice" if order.trigger.kind == "stop" else "takeProfitPrice"
        params[name] = float(order.trigger.price)
        if driver == "hyperliquid":
            params.pop("timeInForce", None)  # a Hyperliquid trigger's limit form rests (GTC) once it fires
    return params


def perp_cash(driver: str, balance: dict[str, Any]) -> dict[str, Decimal] | None:
    """A perp account's cash (deposits + realised PnL - fees - funding): what the journal's balance is.
    Hyperliquid's account value includes the open positions' unrealised PnL; it is taken out with the
    figures of the same response (a second request would see another mark)."""
    info = balance.get("info") if driver == "hyperliquid" else None
    if not isinstance(info, dict) or not isinstance(info.get("marginSummary"), dict):
        return None
    try:
        value = Decimal(str(info["marginSummary"]["accountValue"]))
        upnl = sum((Decimal(str(p["position"]["unrealizedPnl"])) for p in info.get("assetPositions") or []),
                   Decimal(0))
    except (KeyError, TypeError, ArithmeticError):
        return None
    return {"USDC": value - upnl}


def lookup_params(driver: str, client_id: str) -> dict[str, str]:
    vid = venue_client_id(driver, client_id)
    return {"origClientOrderId": vid} if driver == "binance" else {"clientOrderId": vid}
