"""``python -m controller``: Warden's command line (``controller.cli``), with only the ccxt exchanges it uses."""

import sys

from controller.exchange import subset

subset.install()  # before anything imports ccxt

from controller.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
