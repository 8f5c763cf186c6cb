"""The peers as processes the harness starts, commands and kills: freqtrade (its REST API's ``forceenter`` /
``forceexit``) and nautilus_trader (``inpeer/nautilus_policy.py``, commanded through a file). Each runs from its own
cached venv (scripts/peers-venv.sh) against the paper exchange on loopback, with its own paper account."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from bench.warden.env import unified, wait_for
from devtools.localenv.stack import PaperAccount

HERE = Path(__file__).resolve().parent
INPEER = HERE / "inpeer"
CACHE = Path(os.environ.get("WARDEN_CACHE", Path.home() / ".cache" / "warden")) / "peers"
FREQTRADE_VENV = CACHE / "freqtrade-2026.9"
NAUTILUS_VENV = CACHE / "nautilus-1.231.0"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "SEIUSDT")
STOP_PERCENT = "5"
# Every ccxt.binance API group (freqtrade uses ``binance`` with defaultType swap, whose constructor ``urls`` are
# deep-merged: a group left out keeps Binance's real host). Path suffix per group.
CCXT_GROUPS = {
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}


class Peer(Protocol):
    name: str
    account: PaperAccount

    def start(self) -> None: ...
    def kill9(self) -> None: ...
    def stop(self) -> None: ...
    def alive(self) -> bool: ...
    def enter_market(self, symbol: str, qty: Decimal) -> None: ...
    def enter_limit(self, symbol: str, qty: Decimal, price: Decimal) -> None: ...
    def exit(self, symbol: str) -> None: ...


@dataclass
class Process:
    """One peer process, started in its own session and stopped by its own pid."""

    argv: list[str]
    log: Path
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill9()


class ProcessPeer:
    """A peer that is one ``Process``: alive, SIGKILL and stop go to it."""

    process: Process

    def alive(self) -> bool:
        return self.process.alive()

    def kill9(self) -> None:
        self.process.kill9()

    def stop(self) -> None:
        self.process.stop()


# --- freqtrade -----------------------------------------------------------------------------------------------


def freqtrade_config(paper_url: str, account: PaperAccount, port: int, throttle_s: int, db: Path) -> dict[str, Any]:
    pricing = {"price_side": "other", "use_order_book": True, "order_book_top": 1}
    return {
        "bot_name": "bench",
        "max_open_trades": len(SYMBOLS),
        "stake_currency": "USDT",
        "stake_amount": 200,
        "tradable_balance_ratio": 0.99,
        "fiat_display_currency": "",
        "dry_run": False,
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "db_url": f"sqlite:///{db}",
        "initial_state": "running",
        "force_entry_enable": True,
        "unfilledtimeout": {"entry": 30, "exit": 30, "unit": "minutes"},
        "entry_pricing": pricing,
        "exit_pricing": pricing,
        "order_types": {
            "entry": "market",
            "exit": "market",
            "force_entry": "market",
            "force_exit": "market",
            "emergency_exit": "market",
            "stoploss": "market",
            "stoploss_on_exchange": True,
            "stoploss_on_exchange_interval": 60,
            "stoploss_price_type": "mark",
        },
        "exchange": {
            "name": "binance",
            "key": account.api_key,
            "secret": account.secret,
            "enable_ws": False,
            "ccxt_config": {
                "enableRateLimit": True,
                "options": {"fetchCurrencies": False, "fetchMarkets": {"types": ["linear"]}},
                "urls": {"api": {group: f"{paper_url}{suffix}" for group, suffix in CCXT_GROUPS.items()}},
            },
            "ccxt_async_config": {"enableRateLimit": True},
            "pair_whitelist": [unified(s) for s in SYMBOLS],
            "pair_blacklist": [],
        },
        "pairlists": [{"method": "StaticPairList"}],
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "api_server": {
            "enabled": True,
            "listen_ip_address": "127.0.0.1",
            "listen_port": port,
            "verbosity": "error",
            "jwt_secret_key": "bench-peers-jwt-secret-key-0123456789abcdef",
            "ws_token": "bench-peers-ws-token",
            "username": "bench",
            "password": "bench",
        },
        "internals": {"process_throttle_secs": throttle_s},
    }


@dataclass
class Freqtrade(ProcessPeer):
    name: str
    account: PaperAccount
    paper_url: str
    workdir: Path
    port: int
    throttle_s: int
    process: Process = field(init=False)
    trades: dict[str, int] = field(default_factory=dict)  # symbol -> open trade id

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = freqtrade_config(self.paper_url, self.account, self.port, self.throttle_s, self.workdir / "ft.sqlite")
        (self.workdir / "config.json").write_text(json.dumps(config, indent=2))
        argv = [str(FREQTRADE_VENV / "bin" / "freqtrade"), "trade", "--config", "config.json"]
        argv += ["--strategy", "NeverEnters", "--strategy-path", str(INPEER), "--userdir", str(self.workdir / "user")]
        (self.workdir / "user").mkdir(exist_ok=True)
        self.process = Process(argv, self.workdir / "freqtrade.log", self.workdir)

    def _api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        auth = base64.b64encode(b"bench:bench").decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def start(self) -> None:
        self.process.start()

        def running() -> bool:
            if not self.process.alive():
                raise RuntimeError(f"{self.name} exited; see {self.process.log}")
            try:
                return bool(self._api("/show_config").get("state") == "running")
            except OSError:
                return False

        wait_for(f"{self.name} running", running, 180, 0.5)

    def _enter(self, symbol: str, body: dict[str, Any]) -> None:
        trade = self._api("/forceenter", {"pair": unified(symbol), "side": "long", **body})
        self.trades[symbol] = int(trade["trade_id"])

    def enter_market(self, symbol: str, qty: Decimal) -> None:
        self._enter(symbol, {})  # freqtrade sizes by stake_amount

    def enter_limit(self, symbol: str, qty: Decimal, price: Decimal) -> None:
        self._enter(symbol, {"ordertype": "limit", "price": float(price)})

    def exit(self, symbol: str) -> None:
        trade_id = self.trades.pop(symbol, None)
        if trade_id is None:
            return
        self._api("/forceexit", {"tradeid": str(trade_id), "ordertype": "market"})

        def closed() -> bool:
            return all(int(t["trade_id"]) != trade_id for t in self._api("/status"))

        wait_for(f"{self.name} trade {trade_id} closed", closed, 60, 0.5)


# --- nautilus_trader -------------------------------------------------------------------------------------------


@dataclass
class Nautilus(ProcessPeer):
    name: str
    account: PaperAccount
    paper_url: str
    workdir: Path
    process: Process = field(init=False)
    commands: Path = field(init=False)
    _starts: int = 0  # connections seen in the (appended) log so far

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.commands = self.workdir / "commands.jsonl"
        config = {
            "url": self.paper_url,
            "ws": self.paper_url.replace("http://", "ws://") + "/private",
            "apiKey": self.account.api_key,
            "secret": self.account.secret,
            "commands": str(self.commands),
            "symbols": list(SYMBOLS),
            "stopPercent": STOP_PERCENT,
        }
        (self.workdir / "nautilus.json").write_text(json.dumps(config, indent=2))
        argv = [str(NAUTILUS_VENV / "bin" / "python"), str(INPEER / "nautilus_policy.py"), "nautilus.json"]
        self.process = Process(argv, self.workdir / "nautilus.log", self.workdir)

    def start(self) -> None:
        self.commands.write_text("")  # a restarted node starts reading at the start: no command is replayed
        self.process.start()

        def connected() -> bool:
            if not self.process.alive():
                raise RuntimeError(f"{self.name} exited; see {self.process.log}")
            text = self.process.log.read_text(errors="replace")
            return text.count("Connected to Binance Futures user data stream") > self._starts

        wait_for(f"{self.name} connected", connected, 120, 0.25)
        self._starts += 1
        time.sleep(1.0)  # the strategy's command timer starts once the node is running

    def _send(self, command: dict[str, str]) -> None:
        with self.commands.open("a") as f:
            f.write(json.dumps(command) + "\n")

    def enter_market(self, symbol: str, qty: Decimal) -> None:
        self._send({"cmd": "market", "symbol": symbol, "qty": f"{qty:f}"})

    def enter_limit(self, symbol: str, qty: Decimal, price: Decimal) -> None:
        self._send({"cmd": "limit", "symbol": symbol, "qty": f"{qty:f}", "price": f"{price:f}"})

    def exit(self, symbol: str) -> None:
        self._send({"cmd": "exit", "symbol": symbol})
