"""The controller process loads only the ccxt exchanges Warden supports (controller/exchange/subset.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import get_args

from controller.api.v1alpha1 import ExchangeAccountSpec
from controller.exchange import subset
from controller.exchange.client import SUPPORTED_EXCHANGES

# Run in a fresh interpreter: this test process has imported the whole of ccxt already.
_PROBE = """
import json, sys
from controller.exchange import subset
subset.install()
from controller.exchange.client import make_exchange, SUPPORTED_EXCHANGES
import ccxt.async_support
clients = [make_exchange(e, "key", "secret", base_url="http://127.0.0.1:9", pro=pro)
           for e in sorted(SUPPORTED_EXCHANGES) for pro in (False, True)]
try:
    ccxt.async_support.okx()
    refused = ""
except RuntimeError as error:
    refused = str(error)
names = ("ccxt.okx", "ccxt.pro.okx", "ccxt.abstract.okx", "ccxt.binanceusdm", "ccxt.pro.binanceusdm", "ccxt.bybit",
         "ccxt.pro.bybit")
with_code = sorted(m for m in names if hasattr(sys.modules.get(m), "__file__"))
print(json.dumps({"clients": [type(c).__module__ for c in clients], "refused": refused, "with_code": with_code}))
"""


def test_every_supported_exchange_is_kept() -> None:
    assert subset.KEPT >= SUPPORTED_EXCHANGES


def test_with_the_subset_the_supported_exchange_works_and_the_others_are_placeholders_that_refuse() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert found["clients"] == [
        "ccxt.async_support.binanceusdm",
        "ccxt.pro.binanceusdm",
        "ccxt.async_support.bybit",
        "ccxt.pro.bybit",
    ]
    assert found["refused"] == "ccxt.async_support.okx is not loaded: Warden loads only the ccxt exchanges it supports"
    # the others are placeholders
    assert found["with_code"] == ["ccxt.binanceusdm", "ccxt.bybit", "ccxt.pro.binanceusdm", "ccxt.pro.bybit"]


def test_every_exchange_an_account_may_name_has_an_adapter_and_is_kept() -> None:
    named = set(get_args(ExchangeAccountSpec.model_fields["exchange"].annotation))
    assert named == SUPPORTED_EXCHANGES == {"binanceusdm", "bybit"}
