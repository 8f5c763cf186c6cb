"""Run the Warden controller: ``python -m controller``.

Configuration comes from the environment: ``WARDEN_DATABASE_URL`` (required), ``WARDEN_METRICS_ADDR``
and ``WARDEN_METRICS_PORT`` (default 127.0.0.1:9464), ``WARDEN_NAMESPACE`` (default: all namespaces),
``WARDEN_REPLICA_ID`` (default: host name), ``WARDEN_RECONCILE_INTERVAL`` seconds (default 1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import kopf
import prometheus_client

import controller.handlers  # noqa: F401 - registers the handlers with kopf
from controller.api.v1alpha1 import GROUP
from controller.audit.store import AuditStore
from controller.handlers.kube import Kube
from controller.handlers.runtime import Runtime


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own names for kopf's bookkeeping, so it is visibly Warden's.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.INFO
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 60
    settings.background.cancellation_polling = 1


async def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dsn = os.environ.get("WARDEN_DATABASE_URL")
    if not dsn:
        print("WARDEN_DATABASE_URL is required (the audit store)", file=sys.stderr)
        return 2
    addr = os.environ.get("WARDEN_METRICS_ADDR", "127.0.0.1")
    port = int(os.environ.get("WARDEN_METRICS_PORT", "9464"))
    prometheus_client.start_http_server(port, addr=addr)
    audit = await AuditStore.connect(dsn)
    runtime = Runtime(kube=Kube(), audit=audit)
    namespace = os.environ.get("WARDEN_NAMESPACE")
    try:
        await kopf.operator(
            standalone=True,
            clusterwide=namespace is None,
            namespaces=[namespace] if namespace else [],
            memo=kopf.Memo(runtime=runtime),
        )
    finally:
        await runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
