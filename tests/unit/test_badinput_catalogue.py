"""The bad-input catalogue is well formed, and its README lists every case as the files say."""

from __future__ import annotations

from collections import Counter

import yaml

from tests.badinput import catalogue


def test_readme_is_generated_from_the_files() -> None:
    assert catalogue.main(["--check"]) == 0, "run `python -m tests.badinput.catalogue` and commit README.md"


def test_every_file_is_one_named_case() -> None:
    cases = catalogue.cases()
    assert len(cases) >= 40
    for case in cases:
        last = case.last()
        metadata = last["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["name"] == case.name, f"{case.name}: the last document is named after its file"
        if case.expect != "refused":
            assert last["kind"] == "Position", f"{case.name}: Warden reports on a Position"
    # Accepted cases are applied together in one namespace: no two may create the same object.
    created = Counter(
        (doc["kind"], doc["metadata"]["name"])
        for case in cases
        if case.expect != "refused"
        for doc in map(yaml.safe_load, case.documents)
    )
    assert [key for key, count in created.items() if count > 1] == []


def test_expected_outcomes_cover_the_api_server_and_warden() -> None:
    assert {case.expect for case in catalogue.cases()} == set(catalogue.EXPECTATIONS)
