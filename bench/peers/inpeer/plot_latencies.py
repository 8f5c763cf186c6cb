"""Runs in the peers' tooling venv (the freqtrade venv has matplotlib), not the project's: draws the latency
distributions of ``make bench-peers`` from its raw samples. Not type-checked with the repository.

    python plot_latencies.py peers-<date>-samples.json peers-<date>.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SCENARIOS = [
    ("fill_to_protect", "(1) market fill → stop"),
    ("limit_fill_to_protect", "(2) limit fill → stop"),
    ("stop_cancelled_to_replaced", "(3a) stop cancelled → new stop"),
    ("external_close_to_cleanup", "(3b) closed outside → stop cancelled"),
]


def main(src: str, dst: str) -> None:
    with open(src) as f:
        systems = {k: v["samples"] for k, v in json.load(f)["systems"].items() if "samples" in v}
    fig, axes = plt.subplots(1, len(SCENARIOS), figsize=(4.2 * len(SCENARIOS), 4.2), sharey=False)
    for ax, (key, title) in zip(axes, SCENARIOS, strict=True):
        names = list(systems)
        everything = []
        for i, name in enumerate(names, start=1):
            raw = systems[name].get(key, [])
            values = [max(v, 0.5) for v in raw if v is not None]
            missing = len(raw) - len(values)
            if values:
                ax.boxplot([values], positions=[i], whis=(0, 100), showfliers=False, widths=0.5)
                ax.scatter([i] * len(values), values, s=8, alpha=0.6)
                everything += values
            if missing:
                ax.annotate(f"never x{missing}", (i, 0.5), xycoords=("data", "axes fraction"), ha="center", fontsize=8)
        if everything:
            ax.set_yscale("log")
        ax.set_xlim(0.5, len(names) + 0.5)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("ms (log)")
    fig.suptitle("Warden and its peers on one paper exchange (every sample; whiskers min-max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
