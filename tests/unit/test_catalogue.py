"""The audit event catalogue and its document agree."""

from __future__ import annotations

from controller.audit.catalogue import CATALOGUE, DOC, render


def test_document_is_generated_from_the_catalogue() -> None:
    assert DOC.read_text() == render(), "run `python -m controller.audit.catalogue` to regenerate docs/audit-events.md"


def test_every_type_is_documented_once() -> None:
    text = render()
    for name in CATALOGUE:
        assert text.count(f"| `{name}` |") == 1, name
