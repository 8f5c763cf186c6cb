"""Serve Warden's Binance USDⓈ-M futures paper exchange (REST, user-data websocket and the /_paper admin API).

Time runs at wall speed unless --clock manual (then POST /_paper/clock {"advance_ms": N} steps it). Prices stay
where they are set (POST /_paper/price) unless --walk or --price-script give them a path. The admin API is
documented in docs/paper-exchange.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from aiohttp import web

from paper.app import create_app
from paper.engine import MAX_OPEN_ALGO_ORDERS
from paper.faults import read_rules
from paper.markets import load_markets
from paper.prices import WalkConfig
from paper.ratelimit import RateLimits
from paper.services import PaperOptions
from paper.venue import Venue

log = logging.getLogger("paper")


def _parser() -> argparse.ArgumentParser:
    defaults, walk = RateLimits(), WalkConfig()
    parser = argparse.ArgumentParser(
        prog="python -m paper", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the fault-injection RNG and the random walk (default: 0)"
    )
    parser.add_argument(
        "--state", type=Path, metavar="FILE", help="keep the venue's state in FILE: loaded at start, saved on change"
    )
    parser.add_argument(
        "--faults", type=Path, metavar="FILE", help="YAML list of fault rules to load at start (see the docs)"
    )
    parser.add_argument(
        "--markets", type=Path, metavar="FILE", help="markets JSON in the format of the shipped markets.json"
    )
    parser.add_argument(
        "--clock", choices=("wall", "manual"), default="wall", help="wall time, or frozen until advanced"
    )
    parser.add_argument(
        "--walk", action="store_true", help="move every mark price along a seeded random walk from the start"
    )
    parser.add_argument(
        "--walk-tick-ms", type=int, default=walk.tick_ms, help=f"random-walk step (default: {walk.tick_ms})"
    )
    parser.add_argument(
        "--price-script", type=Path, metavar="CSV", help="scripted prices: rows of offset_ms,symbol,price"
    )
    limits = parser.add_argument_group("rate limits (Binance's by default; also POST /_paper/limits)")
    limits.add_argument(
        "--weight-limit", type=int, default=defaults.weight_per_minute, help="request weight per minute per IP"
    )
    limits.add_argument(
        "--orders-per-10s", type=int, default=defaults.orders_per_10s, help="new orders per 10 s per account"
    )
    limits.add_argument(
        "--orders-per-minute", type=int, default=defaults.orders_per_minute, help="new orders per minute per account"
    )
    limits.add_argument("--ban-ms", type=int, default=defaults.ban_ms, help="first IP ban (418); doubles on repeats")
    limits.add_argument(
        "--max-algo-orders",
        type=int,
        default=MAX_OPEN_ALGO_ORDERS,
        help=f"open conditional orders per account (default: Binance's {MAX_OPEN_ALGO_ORDERS}; -4045 beyond)",
    )
    limits.add_argument(
        "--bybit-ip-limit", type=int, default=defaults.bybit_ip_per_5s, help="Bybit: requests per 5 s per IP"
    )
    limits.add_argument(
        "--bybit-ban-ms",
        type=int,
        default=defaults.bybit_ban_ms,
        help="Bybit: how long 403 lasts once the IP limit broke",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    markets = load_markets(args.markets.read_text(encoding="utf-8")) if args.markets else None
    options = PaperOptions(
        seed=args.seed,
        limits=RateLimits(
            args.weight_limit,
            args.orders_per_10s,
            args.orders_per_minute,
            args.ban_ms,
            bybit_ip_per_5s=args.bybit_ip_limit,
            bybit_ban_ms=args.bybit_ban_ms,
        ),
        fault_rules=read_rules(args.faults.read_text(encoding="utf-8")) if args.faults else [],
        state_path=args.state,
        walk=WalkConfig(tick_ms=args.walk_tick_ms) if args.walk else None,
        price_script=args.price_script.read_text(encoding="utf-8") if args.price_script else None,
        clock_mode=args.clock,
    )

    def announce(_: str) -> None:
        log.info("paper exchange listening on http://%s:%d", args.host, args.port)

    venue = Venue(markets)
    venue.max_open_algo_orders = args.max_algo_orders
    app = create_app(venue, options)
    web.run_app(app, host=args.host, port=args.port, print=announce, access_log=None)


if __name__ == "__main__":
    main()
