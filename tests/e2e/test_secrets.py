"""Secrets never leak: after a whole lifecycle, neither the API key nor the secret (nor their base64 forms, as a
Secret stores them) is in the controller's log, the namespace's events, the Position and ExchangeAccount objects,
the audit store's rows or the metrics; nor is a SignalSource's token, after signals of every outcome."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import urllib.request

import asyncpg

from devtools.localenv.processes import Service
from devtools.localenv.stack import PaperAccount
from tests.e2e.conftest import EACH_VENUE, Trader, wait_for
from tests.e2e.signals import Sender, start_receiver
from tests.e2e.test_rbac import run_lifecycle


def _needles(account: PaperAccount) -> dict[str, str]:
    raw = {"api key": account.api_key, "secret": account.secret}
    needles = dict(raw)
    for what, value in raw.items():
        needles[f"base64 {what}"] = base64.b64encode(value.encode()).decode()
        # The random part alone, shortened: a truncated or re-prefixed copy is a leak too.
        needles[f"part of the {what}"] = value.rsplit("-", 1)[1][:16]
    return needles


async def _audit_rows(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [
            r["row"] for table in ("events", "fills") for r in await conn.fetch(f"SELECT t::text AS row FROM {table} t")
        ]
    finally:
        await conn.close()


@EACH_VENUE
def test_credentials_appear_nowhere(trader: Trader, controller: Service) -> None:
    stack = trader.stack
    venue = trader.account.venue
    canary = PaperAccount(f"canary-key-{secrets.token_hex(16)}", f"canary-secret-{secrets.token_hex(24)}", venue)
    stack.paper_admin(
        "/_paper/accounts",
        {"apiKey": canary.api_key, "secret": canary.secret, "balance": "100000", "venue": venue.value},
    )
    # The trader's ExchangeAccount now uses the canary credentials (the controller rereads a changed Secret).
    trader.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "paper-credentials"},
            "stringData": {"apiKey": canary.api_key, "secret": canary.secret},
        }
    )
    logged_before = controller.log.stat().st_size
    positions = run_lifecycle(trader, controller, canary, "paper")
    assert stack.paper_admin(f"/_paper/trades?apiKey={canary.api_key}"), "the lifecycle traded on the canary"

    account = json.loads(stack.kubectl("get", "exchangeaccount", "paper", "-n", trader.namespace, "-o", "json").stdout)
    events = json.loads(stack.kubectl("get", "events", "-n", trader.namespace, "-o", "json").stdout)["items"]
    rows = asyncio.run(_audit_rows(stack.postgres.url))
    port = (controller.env or {})["WARDEN_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    haystacks = {
        "controller log": controller.log.read_text(errors="replace"),
        "events": json.dumps(events),
        "positions": json.dumps(positions),
        "exchange account": json.dumps(account),
        "audit rows": "\n".join(rows),
        "metrics": metrics,
    }
    # Each haystack holds this lifecycle's traces, so a search in it could find a leak.
    assert len(haystacks["controller log"]) > logged_before, "the controller logged during the lifecycle"
    assert len(events) > 0 and all(p.get("status", {}).get("phase") for p in positions)
    assert account.get("status", {}).get("conditions"), account
    assert sum(trader.namespace in row for row in rows) > 0
    assert f'account="{trader.namespace}/paper"' in metrics

    leaks = [
        (what, where)
        for what, needle in _needles(canary).items()
        for where, text in haystacks.items()
        if needle in text
    ]
    assert leaks == [], f"credentials leaked: {leaks}"
    sizes = ", ".join(f"{where}: {len(text)} chars" for where, text in haystacks.items())
    print(f"\nno credentials in {sizes} ({len(events)} events, {len(rows)} audit rows)")


def test_the_signal_token_appears_nowhere(trader: Trader, controller: Service) -> None:
    """Signals accepted, refused, duplicate and dry run: the source's token is in no log, event, object (status
    included), audit row or metric."""
    stack = trader.stack
    logged_before = controller.log.stat().st_size
    receiver, url = start_receiver(trader)
    try:
        sender = Sender(trader, url)
        token = sender.add_source("secret-tv")
        rehearsal = sender.add_source("secret-rehearsal", dryRun=True)
        answers = [
            sender.signal("secret-tv", token, id="t1"),
            sender.signal("secret-tv", token, id="t1"),
            sender.signal("secret-tv", token[:-1], id="t2"),  # nearly the token: refused
            sender.signal("secret-tv", token, id="t3", symbol="SOLUSDT"),
            sender.signal("secret-tv", token, id="t4", colour="red"),
            sender.post("secret-tv", b'{"token": "' + token.encode() + b'"'),
            sender.signal("secret-rehearsal", rehearsal, id="t5"),
        ]
        assert [a.code for a in answers] == [201, 200, 401, 422, 422, 422, 202]
        name = answers[0].body["name"]
        trader.wait_phase(name, "Protected", controller)
        # Each source's counts are written in its own status patch: wait for both before stopping the receiver.
        wait_for(
            "the counts in status",
            lambda: (
                sender.source_status("secret-tv").get("refused") == 4
                and sender.source_status("secret-rehearsal").get("accepted") == 1
            ),
            30,
        )
        with urllib.request.urlopen(
            f"http://127.0.0.1:{(receiver.env or {})['WARDEN_SIGNALS_METRICS_PORT']}/metrics", timeout=5
        ) as response:
            metrics = response.read().decode()
    finally:
        receiver.stop()
    objects = {
        kind: stack.kubectl("get", kind, "-n", trader.namespace, "-o", "json").stdout
        for kind in ("positions", "signalsources", "events")
    }
    rows = asyncio.run(_audit_rows(stack.postgres.url))
    haystacks = {
        "receiver log": receiver.log.read_text(errors="replace"),
        "controller log": controller.log.read_text(errors="replace"),
        **objects,
        "audit rows": "\n".join(rows),
        "receiver metrics": metrics,
        "answers": json.dumps([a.body for a in answers]),
    }
    # Each haystack holds this test's traces, so a search in it could find a leak.
    assert "secret-tv" in haystacks["receiver log"] and len(haystacks["controller log"]) > logged_before
    assert {s["metadata"]["name"]: s["status"]["accepted"] for s in json.loads(objects["signalsources"])["items"]} == {
        "secret-tv": 1,
        "secret-rehearsal": 1,
    }
    assert sum("SignalRefused" in row and trader.namespace in row for row in rows) == 4
    assert 'source="secret-tv"' in metrics
    needles = {
        "token": token,
        "base64 token": base64.b64encode(token.encode()).decode(),
        "part of the token": token.rsplit("-", 1)[1][:16],
        "dry-run token": rehearsal,
    }
    leaks = [(what, where) for what, needle in needles.items() for where, text in haystacks.items() if needle in text]
    assert leaks == [], f"the signal token leaked: {leaks}"
