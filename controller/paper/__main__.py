"""``python -m controller.paper [--host 127.0.0.1] [--port 8080]``: serve the paper exchange."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from controller.paper.app import create_app
from controller.paper.venue import Venue

log = logging.getLogger("controller.paper")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m controller.paper", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(_: str) -> None:
        log.info("paper exchange listening on http://%s:%d", args.host, args.port)

    web.run_app(create_app(Venue()), host=args.host, port=args.port, print=announce, access_log=None)


if __name__ == "__main__":
    main()
