"""The committed CRDs are exactly what the pydantic types generate."""

from __future__ import annotations

from controller.api import crdgen


def test_committed_crds_match_the_types() -> None:
    assert crdgen.main(["--check"]) == 0, "run `make crds` and commit the result"


def test_money_fields_are_strings_never_numbers() -> None:
    text = "".join(crdgen.render().values())
    assert "type: number" not in text


def test_rendering_twice_gives_the_same_crds() -> None:
    # A rule appended to a schema dict pydantic shares between generations would pile up on every render.
    assert crdgen.render() == crdgen.render()
