"""The few Kubernetes API calls Warden makes itself (kopf does the watching), and the signal receiver's.

The official client is synchronous, so calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.v1alpha1 import GROUP, VERSION


class Kube:
    def __init__(self) -> None:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        api = kubernetes.client.ApiClient()
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

    async def list(self, plural: str, namespace: str | None, selector: str = "") -> list[dict[str, Any]]:
        """All objects of a kind (with the labels ``selector`` names) in a namespace, or in every namespace when it
        is None."""
        if namespace is None:
            found = await asyncio.to_thread(
                self.custom.list_cluster_custom_object, GROUP, VERSION, plural, label_selector=selector
            )
        else:
            found = await asyncio.to_thread(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural, label_selector=selector
            )
        return cast(list[dict[str, Any]], cast(dict[str, Any], found)["items"])

    async def create(self, plural: str, namespace: str, body: dict[str, Any], *, dry_run: bool = False) -> bool:
        """Create the object (``dry_run``: only ask the API server whether it would); False if one of that name
        exists already."""
        try:
            await asyncio.to_thread(
                self.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                body,
                dry_run="All" if dry_run else None,
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def patch(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A merge patch of the object (not its status)."""
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, plural, name, patch
        )

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> str:
        """Returns the object's new resourceVersion; with ``resource_version``, only if the object is still at it
        (else a 409)."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        patched = await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, plural, name, body
        )
        return str(cast(dict[str, Any], patched)["metadata"]["resourceVersion"])

    async def secret(self, namespace: str, name: str) -> Any:
        return await asyncio.to_thread(self.core.read_namespaced_secret, name, namespace)
