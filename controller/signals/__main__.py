"""``python -m controller.signals``: the signal receiver, a process of its own (the chart's ``signals.enabled``).

It reads SignalSources and their Secrets and creates or closes Positions; the controller trades them. Settings are
``WARDEN_SIGNALS_*`` (and ``WARDEN_DATABASE_URL``, ``WARDEN_NAMESPACE``, ``WARDEN_METRICS_ADDR``), read once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

import prometheus_client
from aiohttp import web

from controller.audit.store import AuditStore, AuditUnavailable
from controller.kube import Kube
from controller.settings import Settings, SettingsError
from controller.signals.server import Receiver, app, tls_context


async def serve(settings: Settings) -> None:
    signals = settings.signals
    prometheus_client.start_http_server(signals.metrics_port, addr=settings.serving.metrics_addr)
    audit = AuditStore(settings.audit.dsn()) if settings.audit.database_url else None
    if audit is not None:
        try:
            await audit.ready()
        except AuditUnavailable as error:
            logging.getLogger("warden.signals").warning("starting without the audit store: %s", error)
    receiver = Receiver(settings, Kube(), audit)
    runner = web.AppRunner(app(receiver), access_log=None)  # an access log would show paths only; ours says more
    await runner.setup()
    site = web.TCPSite(runner, signals.addr, signals.port, ssl_context=tls_context(settings))
    await site.start()
    scheme = "https" if signals.tls_cert else "http"
    logging.getLogger("warden.signals").info("receiving signals on %s://%s:%s", scheme, signals.addr, signals.port)
    status = asyncio.create_task(receiver.keep_status())
    try:
        await asyncio.Event().wait()
    finally:
        status.cancel()
        await runner.cleanup()
        await receiver.close_http()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"warden signals: {error}", file=sys.stderr)
        return 2
    for name in Settings.unknown(os.environ):
        logging.getLogger("warden.signals").warning("%s is not a Warden setting (misspelt?): ignored", name)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
