"""From a TradingView alert to a protected Position, over real HTTP to the receiver, on the real API server, Postgres
and paper exchange; every refusal answered with its code and creating nothing; a flood limited; a receiver killed
mid-flood losing no accepted signal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from controller.signals.wire import SIGNATURE_HEADER, signed
from devtools.localenv.pki import LocalCA
from devtools.localenv.processes import Service
from devtools.localenv.stack import Stack
from tests.e2e.conftest import Trader, wait_for
from tests.e2e.signals import STALE, Answer, Sender, now, start_receiver, tradingview_alert


@pytest.fixture(scope="module")
def receiver(stack: Stack) -> Iterator[tuple[Service, str]]:
    service, url = stack.start_signals("signals")
    yield service, url
    service.stop()


@pytest.fixture
def sender(trader: Trader, receiver: tuple[Service, str]) -> Sender:
    return Sender(trader, receiver[1])


async def signal_events(url: str, namespace: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT type, detail->>'reason' AS reason FROM events WHERE namespace = $1 AND type LIKE 'Signal%' "
            "ORDER BY occurred_at",
            namespace,
        )
        return [(r["type"], r["reason"]) for r in rows]
    finally:
        await conn.close()


def test_a_tradingview_alert_opens_a_protected_position_resends_create_nothing_and_a_close_closes_it(
    sender: Sender, controller: Service
) -> None:
    trader = sender.trader
    token = sender.add_source("tv")
    alert = tradingview_alert(token, "BINANCE:BTCUSDT.P", "buy", now())
    first = sender.post("tv", alert)
    assert first.code == 201, first
    name = first.body["name"]
    assert first.body["namespace"] == trader.namespace
    status = trader.wait_phase(name, "Protected", controller)
    assert (Decimal(status["amount"]), status["stopOrder"]["triggerPrice"]) == (Decimal("0.010"), "63000")
    assert trader.exchange_position() == Decimal("0.010")
    position = trader.position(name)
    assert position is not None
    assert position["metadata"]["labels"] == {"trading.warden.dev/signal-source": "tv"}

    # TradingView resends what it thinks failed; a replay is the same alert again: nothing more is created.
    for _ in range(3):
        again = sender.post("tv", alert)
        assert (again.code, again.body["reason"], again.body["name"]) == (200, "Duplicate", name)
    assert [p["metadata"]["name"] for p in sender.positions()] == [name]

    close = tradingview_alert(token, "BTCUSDT", "sell", now()).replace(b'"open"', b'"close"')
    closed = sender.post("tv", close)
    assert (closed.code, closed.body["reason"], closed.body["names"]) == (200, "Closed", [name])
    status = trader.wait_phase(name, "Closed", controller)
    assert status["exitReason"] == "Requested"
    assert trader.exchange_position() == 0
    nothing_left = sender.post("tv", close)
    assert (nothing_left.code, nothing_left.body["reason"]) == (200, "Duplicate")

    counts = wait_for(
        "the source's counts",
        lambda: (s := sender.source_status("tv")).get("duplicate") == 4 and s,
        30,
    )
    assert (counts["accepted"], counts["refused"], counts["lastSignalTime"] is not None) == (2, 0, True)
    assert next(c for c in counts["conditions"] if c["type"] == "Ready")["status"] == "True"
    events = asyncio.run(signal_events(trader.stack.postgres.url, trader.namespace))
    assert Counter(events) == {
        ("SignalAccepted", "Created"): 1,
        ("SignalDuplicate", "Duplicate"): 4,
        ("SignalAccepted", "Closed"): 1,
    }


def test_a_dry_run_answers_with_the_position_and_creates_nothing(sender: Sender) -> None:
    token = sender.add_source("rehearsal", dryRun=True)
    answer = sender.signal("rehearsal", token, id="dry-1", risk="20", stopLoss="63000")
    assert answer.code == 202, answer
    assert answer.body["position"]["spec"]["risk"] == "20"
    assert answer.body["position"]["spec"]["symbol"] == "BTC/USDT:USDT"
    assert token not in json.dumps(answer.body)
    assert sender.positions() == []


def refusals(sender: Sender, token: str) -> dict[str, Answer]:
    big = "x" * (17 * 1024)
    return {
        "wrong token": sender.signal("guarded", "not-the-token", id="r1"),
        "no token": sender.signal("guarded", None, id="r2"),
        "unknown source": sender.signal("no-such-source", token, id="r3"),
        "a name no source can have": sender.signal("Not_A%0AName", token, id="r3b"),
        "stale": sender.signal("guarded", token, id="r4", time=(now() - STALE).isoformat()),
        "too large": sender.signal("guarded", token, id="r5", comment=big),
        "malformed JSON": sender.post("guarded", b'{"token": "' + token.encode() + b'", "id": '),
        "unknown field": sender.signal("guarded", token, id="r7", leverage=20),
        "unknown symbol": sender.signal("guarded", token, id="r8", symbol="BINANCE:SOLUSDT.P"),
        "over the notional limit": sender.signal("guarded", token, id="r9", notional="5000"),
        "a Position the API server would refuse": sender.signal(
            "guarded", token, id="r10", amount="0.01", notional="9"
        ),
    }


def test_every_refusal_has_its_code_and_creates_nothing(sender: Sender) -> None:
    token = sender.add_source("guarded", limits={"maxNotional": "1000"})
    answers = refusals(sender, token)
    codes = {what: (a.code, a.body.get("reason")) for what, a in answers.items()}
    assert codes == {
        "wrong token": (401, "Unauthorized"),
        "no token": (401, "Unauthorized"),
        "unknown source": (401, "Unauthorized"),
        "a name no source can have": (401, "Unauthorized"),
        "stale": (409, "Stale"),
        "too large": (413, "TooLarge"),
        "malformed JSON": (422, "Malformed"),
        "unknown field": (422, "Invalid"),
        "unknown symbol": (422, "UnknownSymbol"),
        "over the notional limit": (422, "OverLimit"),
        "a Position the API server would refuse": (422, "Invalid"),
    }
    # An unknown source cannot be told from a wrong token.
    assert answers["unknown source"].body == answers["wrong token"].body == answers["a name no source can have"].body
    assert answers["unknown field"].body["message"] == 'unknown field "leverage"'
    assert (
        "set only one of amount, notional or risk" in answers["a Position the API server would refuse"].body["message"]
    )
    assert "limits.maxNotional 1000" in answers["over the notional limit"].body["message"]
    assert sender.positions() == []
    assert sender.signal("guarded", token, id="ok", notional="650").code == 201  # the same source does accept


def test_a_signed_body_and_a_source_that_requires_it(sender: Sender) -> None:
    token = sender.add_source("signed", requireSignature=True)
    body = json.dumps({"id": "s1", "time": now().isoformat(), "symbol": "BTCUSDT", "side": "sell"}).encode()
    assert sender.post("signed", body).code == 401
    assert sender.post("signed", body, {SIGNATURE_HEADER: signed(body, "wrong")}).code == 401
    with_token = json.dumps({"token": token, **json.loads(body), "id": "s2"}).encode()
    assert sender.post("signed", with_token, {SIGNATURE_HEADER: signed(with_token, token)}).code == 401
    assert sender.positions() == []
    answer = sender.post("signed", body, {SIGNATURE_HEADER: signed(body, token)})
    assert answer.code == 201, answer
    assert [p["spec"]["side"] for p in sender.positions()] == ["short"]


def flood(
    sender: Sender, source: str, token: str, count: int, answered: Callable[[int], None] | None = None
) -> list[Answer]:
    """``count`` signals at once from 20 threads, each with its own id; ``answered(n)`` after the n-th answer. A
    request the receiver did not answer (refused, reset) is answer -1."""
    lock = threading.Lock()
    seen = 0

    def one(i: int) -> Answer:
        nonlocal seen
        try:
            answer = sender.signal(source, token, id=f"flood-{i}")
        except OSError:
            return Answer(-1, {})
        with lock:
            seen += 1
            if answered is not None:
                answered(seen)
        return answer

    with ThreadPoolExecutor(20) as pool:
        return list(pool.map(one, range(count)))


def test_a_flood_is_answered_429_over_the_rate_and_creates_nothing(sender: Sender) -> None:
    token = sender.add_source("flooded", dryRun=True, limits={"perMinute": 60})
    answers = flood(sender, "flooded", token, 200)
    assert Counter(a.code for a in answers) == {202: 60, 429: 140}
    assert sender.positions() == []


def test_a_receiver_killed_mid_flood_loses_no_accepted_signal(sender: Sender) -> None:
    # An account that does not exist: the Positions wait and trade nothing; only their existence matters here.
    token = sender.add_source("killed", account="no-such-account", limits={"perMinute": 10000})
    service, url = start_receiver(sender.trader)
    local = Sender(sender.trader, url)

    def kill_at_the_30th(n: int) -> None:
        if n == 30:
            os.kill(service.pid, signal.SIGKILL)

    answered = flood(local, "killed", token, 150, kill_at_the_30th)
    service.stop()  # reaped
    assert not service.alive()
    accepted = {a.body["name"] for a in answered if a.code in (200, 201)}
    lost = [a for a in answered if a.code == -1]
    assert accepted and lost, "the receiver was killed while answering"
    existing = {p["metadata"]["name"] for p in local.positions()}
    assert accepted <= existing, f"accepted signals without a Position: {accepted - existing}"
    # TradingView resends what got no answer; a new receiver answers every one, and each signal has one Position.
    again = flood(sender, "killed", token, 150)
    assert {a.code for a in again} <= {200, 201}, Counter(a.code for a in again)
    assert len({a.body["name"] for a in again}) == 150 == len(local.positions())


def test_the_receiver_answers_over_http_on_the_loopback_only(receiver: tuple[Service, str]) -> None:
    assert receiver[1].startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{receiver[1]}/healthz", timeout=5) as response:
        assert response.status == 200


def test_https_with_tradingviews_client_certificate(sender: Sender, tmp_path: Path) -> None:
    """The receiver serves HTTPS from a certificate and answers only a client whose certificate the given CA signed
    for the common name TradingView presents."""
    ca = LocalCA(tmp_path)
    server = ca.issue("server", "signals.local", server=True)
    tradingview = ca.issue("tradingview", "TradingView Webhooks")
    someone = ca.issue("someone", "Someone Else")

    def client(cert: Path | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(ca.cert_path))
        if cert is not None:
            context.load_cert_chain(cert, cert.with_suffix(".key"))
        return context

    tls = {
        "WARDEN_SIGNALS_TLS_CERT": str(server),
        "WARDEN_SIGNALS_TLS_KEY": str(server.with_suffix(".key")),
        "WARDEN_SIGNALS_CLIENT_CA": str(ca.cert_path),
    }
    service, url = sender.trader.stack.start_signals("signals-tls", client(tradingview), **tls)
    try:
        assert url.startswith("https://127.0.0.1:")
        token = sender.add_source("tls-tv", dryRun=True)
        answer = Sender(sender.trader, url, client(tradingview)).signal("tls-tv", token, id="tls-1")
        assert answer.code == 202, answer
        other = Sender(sender.trader, url, client(someone)).signal("tls-tv", token, id="tls-2")
        assert (other.code, other.body["reason"]) == (401, "Unauthorized")
        with pytest.raises(OSError):  # no client certificate: the handshake fails, nothing is answered
            Sender(sender.trader, url, client(None)).signal("tls-tv", token, id="tls-3")
        with pytest.raises(OSError):  # plain HTTP to the HTTPS port
            Sender(sender.trader, url.replace("https://", "http://")).signal("tls-tv", token, id="tls-4")
    finally:
        service.stop()


def test_an_unreachable_api_server_is_answered_503_and_the_resend_is_safe(sender: Sender) -> None:
    """TradingView resends on a 5xx: the receiver answers 503 only when the API server cannot be reached, and the
    resend, once it can, creates the Position once."""
    token = sender.add_source("outage", account="no-such-account")  # its Positions wait: nothing trades
    plane = sender.trader.stack.control_plane
    plane.stop_apiserver()
    try:
        answer = sender.signal("outage", token, id="o1")
    finally:
        plane.start_apiserver()
    assert (answer.code, answer.body["reason"]) == (503, "Unavailable"), answer
    resent = [sender.signal("outage", token, id="o1") for _ in range(2)]
    assert [(a.code, a.body["reason"]) for a in resent] == [(201, "Created"), (200, "Duplicate")]
    assert [p["metadata"]["name"] for p in sender.positions()] == [resent[0].body["name"]]


def test_a_source_whose_secret_is_missing_refuses_everything_and_says_why(sender: Sender) -> None:
    sender.trader.apply(
        {
            "apiVersion": "trading.warden.dev/v1alpha1",
            "kind": "SignalSource",
            "metadata": {"name": "no-secret"},
            "spec": {
                "accountRef": {"name": "paper"},
                "secretRef": {"name": "missing"},
                "allowedSymbols": ["BTC/USDT:USDT"],
            },
        }
    )
    answer = sender.signal("no-secret", "anything", id="m1")
    assert (answer.code, answer.body["reason"]) == (401, "Unauthorized")
    status = wait_for("the source's Ready condition", lambda: sender.source_status("no-secret").get("conditions"), 30)
    [ready] = status
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "CredentialsNotFound")
    assert ready["message"] == "Secret 'missing' could not be read"
    assert sender.source_status("no-secret")["refused"] == 1
    assert sender.positions() == []
