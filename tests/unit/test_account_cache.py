"""An account read fine is served from the cache while an older copy is re-read in the background; what the
re-read finds (the account gone, the API server failing) reaches the next pass, not the one that started it."""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace
from typing import Any, cast

import pytest

from controller.api.vocabulary import Reason
from controller.handlers import runtime as runtime_module
from controller.handlers.runtime import AccountNotReady, Runtime
from tests.fakes import FakeKube

KEY = ("ns", "paper")


class Kube(FakeKube):
    """The fake API server with the account's Secret, and a switch that fails every read."""

    failing: Exception | None = None

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        if self.failing is not None:
            raise self.failing
        return await super().get(plural, namespace, name)

    async def secret(self, namespace: str, name: str) -> Any:
        data = {k: base64.b64encode(v.encode()).decode() for k, v in (("apiKey", "key"), ("secret", "shh"))}
        return SimpleNamespace(data=data, metadata=SimpleNamespace(resource_version="1"))


def account_object() -> dict[str, Any]:
    spec = {"exchange": "binanceusdm", "apiBaseUrl": "http://127.0.0.1:9", "credentialsSecretRef": {"name": "c"}}
    return {"metadata": {"name": "paper", "generation": 1}, "spec": spec}


def age(runtime: Runtime) -> None:
    """Make the cached copy older than the cache's age."""
    version, read_at, account = runtime._accounts[KEY]
    runtime._accounts[KEY] = (version, read_at - runtime_module.ACCOUNT_CACHE_SECONDS - 1, account)


async def reread_done(runtime: Runtime) -> None:
    await asyncio.gather(*runtime._rereads.values())


@pytest.fixture
async def setup() -> Any:
    kube = Kube()
    kube.objects["exchangeaccounts", *KEY] = account_object()
    runtime = Runtime(kube=kube, audit=cast(Any, SimpleNamespace(close=lambda: asyncio.sleep(0))))
    yield kube, runtime
    await runtime.close()


async def test_an_old_copy_is_served_at_once_and_re_read_behind_it(setup: tuple[Kube, Runtime]) -> None:
    kube, runtime = setup
    first = await runtime.account(*KEY)
    assert kube.reads == ["paper"]
    assert await runtime.account(*KEY) is first and kube.reads == ["paper"]  # young: no read
    age(runtime)
    assert await runtime.account(*KEY) is first and kube.reads == ["paper"]  # old: served, the read runs behind
    assert list(runtime._rereads) == [KEY]
    assert await runtime.account(*KEY) is first and len(runtime._rereads) == 1  # one re-read at a time
    await reread_done(runtime)
    assert kube.reads == ["paper", "paper"] and not runtime._rereads
    assert await runtime.account(*KEY) is first  # unchanged generation and Secret: the same clients


async def test_an_account_the_re_read_found_gone_is_the_next_passes_answer(setup: tuple[Kube, Runtime]) -> None:
    kube, runtime = setup
    await runtime.account(*KEY)
    age(runtime)
    del kube.objects["exchangeaccounts", *KEY]
    await runtime.account(*KEY)  # the pass that started the re-read goes on with the copy it had
    await reread_done(runtime)
    with pytest.raises(AccountNotReady) as raised:
        await runtime.account(*KEY)
    assert raised.value.reason is Reason.ACCOUNT_NOT_FOUND


async def test_a_re_read_that_failed_is_read_again_by_the_next_pass(setup: tuple[Kube, Runtime]) -> None:
    kube, runtime = setup
    first = await runtime.account(*KEY)
    age(runtime)
    kube.failing = ConnectionError("the API server is restarting")
    await runtime.account(*KEY)
    await reread_done(runtime)
    with pytest.raises(ConnectionError):  # the next pass reads itself, and meets the failure
        await runtime.account(*KEY)
    kube.failing = None
    assert await runtime.account(*KEY) is first
    age(runtime)
    assert await runtime.account(*KEY) is first and KEY in runtime._rereads  # served from the cache again


async def test_fresh_reads_before_it_answers(setup: tuple[Kube, Runtime]) -> None:
    kube, runtime = setup
    await runtime.account(*KEY)
    await runtime.account(*KEY, fresh=True)  # an entry: risk-increasing, it waits for a read
    assert kube.reads == ["paper", "paper"] and not runtime._rereads


async def test_accounts_on_one_venue_endpoint_share_its_mark_stream(setup: tuple[Kube, Runtime]) -> None:
    kube, runtime = setup
    for name, url in (("other", "http://127.0.0.1:9"), ("elsewhere", "http://127.0.0.1:10")):
        obj = account_object()
        obj["metadata"]["name"], obj["spec"]["apiBaseUrl"] = name, url
        kube.objects["exchangeaccounts", "ns", name] = obj
    paper, other, elsewhere = [await runtime.account("ns", name) for name in ("paper", "other", "elsewhere")]
    assert paper.observer.marks is not None and paper.observer.marks is other.observer.marks
    assert elsewhere.observer.marks is not None and elsewhere.observer.marks is not paper.observer.marks
    assert paper.observer.stream_client is not other.observer.stream_client  # the user-data streams are not
    assert paper.observer.marks.client.apiKey == ""  # the mark stream is public: no account's keys
