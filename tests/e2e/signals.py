"""What the signal tests share: the receiver, a SignalSource with its token, and posting over real HTTP."""

from __future__ import annotations

import json
import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.localenv.processes import Service
from tests.e2e.conftest import Trader

# A strategy alert's message as a trader writes it in TradingView; TradingView fills in the {{...}} placeholders.
TRADINGVIEW_MESSAGE = (
    '{"token": "%TOKEN%", "action": "open", "symbol": "{{ticker}}", "side": "{{strategy.order.action}}", '
    '"time": "{{timenow}}", "notional": "650", "stopLoss": "63000"}'
)


def tradingview_alert(token: str, ticker: str, action: str, when: datetime) -> bytes:
    """The body TradingView posts: the message with its placeholders filled in."""
    filled = (
        TRADINGVIEW_MESSAGE.replace("%TOKEN%", token)
        .replace("{{ticker}}", ticker)
        .replace("{{strategy.order.action}}", action)
        .replace("{{timenow}}", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    return filled.encode()


@dataclass
class Answer:
    code: int
    body: dict[str, Any]


@dataclass
class Sender:
    """Posts signals for one namespace to the receiver at ``url``."""

    trader: Trader
    url: str
    context: ssl.SSLContext | None = None

    def post(self, source: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        request = urllib.request.Request(
            f"{self.url}/v1/signals/{self.trader.namespace}/{source}",
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return Answer(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, json.loads(error.read() or b"{}"))

    def signal(self, source: str, token: str | None, **fields: Any) -> Answer:
        base: dict[str, Any] = {"token": token, "time": now().isoformat(), "symbol": "BTCUSDT.P", "side": "buy"}
        base.update(fields)
        return self.post(source, json.dumps({k: v for k, v in base.items() if v is not None}).encode())

    def add_source(self, name: str, account: str = "paper", **spec: Any) -> str:
        """A SignalSource and the Secret with its (new) token; returns the token."""
        token = f"sig-token-{secrets.token_hex(20)}"
        self.trader.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-token"},
                "stringData": {"token": token},
            }
        )
        self.trader.apply(
            {
                "apiVersion": "trading.warden.dev/v1alpha1",
                "kind": "SignalSource",
                "metadata": {"name": name},
                "spec": {
                    "accountRef": {"name": account},
                    "secretRef": {"name": f"{name}-token"},
                    "allowedSymbols": ["BTC/USDT:USDT"],
                    "template": {"stopLoss": {"price": "63000"}, "notional": "650"},
                    **spec,
                },
            }
        )
        return token

    def positions(self) -> list[dict[str, Any]]:
        done = self.trader.stack.kubectl("get", "positions", "-n", self.trader.namespace, "-o", "json")
        items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
        return items

    def source_status(self, name: str) -> dict[str, Any]:
        done = self.trader.stack.kubectl("get", "signalsource", name, "-n", self.trader.namespace, "-o", "json")
        status: dict[str, Any] = json.loads(done.stdout).get("status") or {}
        return status


def now() -> datetime:
    return datetime.now(UTC)


def start_receiver(trader: Trader) -> tuple[Service, str]:
    return trader.stack.start_signals(f"signals-{secrets.token_hex(3)}")


STALE = timedelta(minutes=5)
