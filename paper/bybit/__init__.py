"""The Bybit V5 linear (USDT perpetual) front of the paper venue: the same engine as the Binance front, spoken as
Bybit speaks it (``/v5/...`` on the same port, the ``/v5/private`` websocket). Wire facts: the Bybit reference brief;
model and simplifications: ``docs/paper-exchange.md``."""
