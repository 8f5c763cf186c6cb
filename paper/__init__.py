"""A local paper-trading venue that speaks Binance USDⓈ-M futures' REST API as ccxt ``binanceusdm`` uses it.

Run it with ``python -m paper --port 8080``; build it in-process with
``create_app(Venue())`` from :mod:`paper.app`.
"""
