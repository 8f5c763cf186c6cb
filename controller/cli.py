"""Warden's command line: ``python -m controller [run | migrate | history ...]`` (``run`` is the default).

``run`` starts the controller. ``migrate`` applies the audit store's migrations and exits (the Helm chart runs
it before the controller starts). ``history NAMESPACE/NAME`` prints a Position's timeline from the audit store;
``history --account NAME --day YYYY-MM-DD`` summarizes an account's day.

Configuration comes from ``WARDEN_*`` variables, read once at start: ``controller/settings.py`` declares them
all, and the README's table of settings is generated from it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import kopf
import prometheus_client
from aiohttp import web

import controller.handlers  # noqa: F401 - registers the handlers with kopf
from controller import failpoints
from controller.api.v1alpha1 import GROUP
from controller.api.vocabulary import EventType
from controller.audit import history
from controller.audit.migrations import migrate
from controller.audit.store import AuditStore, AuditUnavailable
from controller.handlers import sweep
from controller.handlers.fleet import health_app, keep_refreshing
from controller.handlers.leader import Announce, Leadership
from controller.handlers.runtime import Runtime
from controller.kube import Kube
from controller.memory import freeze_imports, keep_trimming
from controller.settings import Settings, SettingsError


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own names for kopf's bookkeeping, so it is visibly Warden's.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.INFO
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 60
    settings.background.cancellation_polling = 1
    # One watched namespace: kopf would otherwise list and watch every namespace (cluster-scoped) to find it,
    # and watch CRDs; a namespaced install grants neither, so the namespace is taken as given.
    runtime: Runtime = memo["runtime"]
    settings.scanning.disabled = runtime.settings.scope.namespace is not None


@kopf.on.startup()
async def announce_start(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo["runtime"]
    await runtime.audit_event(EventType.CONTROLLER_STARTED, f"replica {runtime.replica} started")


@kopf.on.cleanup()
async def end_observation(memo: kopf.Memo, **_: Any) -> None:
    """kopf has stopped the handlers (a timer under way is left running): end the account observers' loops too,
    or kopf waits its whole grace period for them before it returns and the Lease can be handed over."""
    runtime: Runtime = memo["runtime"]
    await runtime.stop_observing()


def _quiet_watch_events(record: logging.LogRecord) -> bool:
    """kopf says "Handler 'position_changed' succeeded." for every watch event of every Position: noise."""
    return "'position_changed' succeeded" not in record.getMessage()


async def run(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf.objects").addFilter(_quiet_watch_events)
    for name in Settings.unknown(os.environ):
        logging.getLogger("warden").warning("%s is not a Warden setting (misspelt?): ignored", name)
    failpoints.arm(settings.testing.failpoints)
    sweep.register(settings.observation.sweep_interval_s)
    serving = settings.serving
    prometheus_client.start_http_server(serving.metrics_port, addr=serving.metrics_addr)
    audit = AuditStore(settings.audit.dsn())
    try:
        await audit.ready()
    except AuditUnavailable as error:
        # Protection must not wait for the audit store: start anyway; entries wait until it is back.
        logging.getLogger("warden").warning("starting without the audit store: %s", error)
    runtime = Runtime(kube=Kube(), audit=audit, settings=settings)
    if settings.lease.election:
        runtime.leadership = Leadership(runtime.replica, settings.lease, announce=announcer(runtime))
    namespace = settings.scope.namespace
    health = web.AppRunner(health_app(runtime))
    await health.setup()
    await web.TCPSite(health, serving.health_addr, serving.health_port).start()
    background = [asyncio.create_task(keep_refreshing(runtime, namespace)), asyncio.create_task(keep_trimming())]
    freeze_imports()  # last before the operator: from here on, what is made belongs to the Positions
    if runtime.leadership is not None:
        background.append(asyncio.create_task(runtime.leadership.run()))
    try:
        await kopf.operator(
            standalone=True,
            clusterwide=namespace is None,
            namespaces=[namespace] if namespace else [],
            memo=kopf.Memo(runtime=runtime),
        )
    finally:
        # Only now is nothing of this replica left running (kopf cancelled whatever outlived its handlers): stop
        # acting and hand the Lease to a standby at once, rather than let it wait out the lease duration.
        if runtime.leadership is not None:
            await runtime.leadership.release()
        await runtime.audit_event(EventType.CONTROLLER_STOPPED, f"replica {runtime.replica} stopped")
        for task in background:
            task.cancel()
        await health.cleanup()
        await runtime.close()
    return 0


def announcer(runtime: Runtime) -> Announce:
    async def announce(type_: EventType, message: str, epoch: int) -> None:
        await runtime.audit_event(type_, message, epoch=epoch)

    return announce


async def run_migrate(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.audit.dsn())
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    print(f"applied: {', '.join(applied)}" if applied else "the audit store is up to date")
    return 0


async def run_history(settings: Settings, args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(settings.audit.dsn())
    try:
        if args.account:
            day = date.fromisoformat(args.day) if args.day else datetime.now(UTC).date()
            rows = await history.day_summary(conn, args.account, day)
            print(history.to_json(rows) if args.json else history.render_day(rows, args.account, day), end="")
            return 0
        if not args.position or "/" not in args.position:
            raise SystemExit("history needs NAMESPACE/NAME, or --account NAME [--day YYYY-MM-DD]")
        namespace, name = args.position.split("/", 1)
        since = history.parse_since(args.since, datetime.now(UTC))
        found = await history.timeline(conn, namespace, name, since)
    finally:
        await conn.close()
    if args.json:
        print(history.to_json({"events": found.events, "fills": found.fills}))
    else:
        print(history.render_timeline(found, args.position), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m controller", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command")
    commands.add_parser("run", help="run the controller (the default)")
    commands.add_parser("migrate", help="apply the audit store's migrations and exit")
    show = commands.add_parser("history", help="a Position's timeline, or an account's day, from the audit store")
    show.add_argument("position", nargs="?", help="NAMESPACE/NAME")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--since", help="only records after this: 30m, 2h, 7d, or an ISO time")
    show.add_argument("--account", help="summarize this ExchangeAccount's day instead")
    show.add_argument("--day", help="YYYY-MM-DD (UTC) for --account; default today")
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "migrate":
            return asyncio.run(run_migrate(settings))
        if args.command == "history":
            return asyncio.run(run_history(settings, args))
        return asyncio.run(run(settings))
    except SettingsError as error:
        raise SystemExit(f"warden: {error}") from None
