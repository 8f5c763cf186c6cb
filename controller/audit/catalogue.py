"""The audit catalogue as a document: ``docs/audit-events.md``, generated from ``EventType`` (every type Warden
writes, with what it means) by ``python -m controller.audit.catalogue``; a test fails on drift."""

from __future__ import annotations

import sys
from pathlib import Path

from controller.api.vocabulary import EventType

CATALOGUE: dict[str, EventType] = {event.value: event for event in EventType}


def render() -> str:
    lines = [
        "# Audit events",
        "",
        "Generated from `EventType` in `controller/api/vocabulary.py` (`python -m controller.audit.catalogue`); "
        "do not edit.",
        "",
        "Every row of the `events` table has: a deterministic `event_id` (so a retried or re-flushed write never",
        "duplicates a row), the Position's uid, namespace and name, account, symbol, `type`, the phase before and",
        "after, client and exchange order ids, amount and price (`NUMERIC`), a message, a JSONB `detail`, the time",
        "it happened (`occurred_at`), the time it was stored (`recorded_at`), and the leadership `epoch` and",
        "`replica` that wrote it. Every exchange trade is also a row of `fills`; `position_summary` sums both.",
        "",
        "Append-only is enforced by triggers: `UPDATE`, `DELETE` and `TRUNCATE` on `events` and `fills` fail.",
        "",
        "## Retention",
        "",
        "`events` is partitioned by month (`events_YYYY_MM`, created three months ahead at every start and",
        "hourly; rows outside them land in `events_default`). To drop whole months older than a cutoff, as the",
        "table owner: `SELECT * FROM warden_drop_events_before('2025-01-01');` — it detaches and drops those",
        "partitions and forgets their ids. Rows are never deleted one by one. Archive a partition first with",
        "`pg_dump -t events_2024_12` if it must be kept.",
        "",
        "## Types",
        "",
        "| type | group | meaning | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{e.value}` | {e.group} | {e.meaning} | {e.detail} |" for e in EventType]
    return "\n".join(lines) + "\n"


DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-events.md"

if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if DOC.read_text() == render() else 1)
    DOC.write_text(render())
