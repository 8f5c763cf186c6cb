"""Generate the CustomResourceDefinitions from the pydantic types.

``python -m controller.api.crdgen`` rewrites ``crds/`` and the chart's copy; a test fails when the
committed YAML differs from what this produces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from controller.api.v1alpha1 import (
    GROUP,
    VERSION,
    ExchangeAccountSpec,
    ExchangeAccountStatus,
    PositionSpec,
    PositionStatus,
    SignalSourceSpec,
    SignalSourceStatus,
)

REPO = Path(__file__).resolve().parents[2]
OUTPUT_DIRS = (REPO / "crds", REPO / "charts" / "warden" / "crds")
_DROPPED_KEYS = {"title", "additionalProperties", "$defs"}
_RULES = "x-kubernetes-validations"


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Turn pydantic's JSON schema into a Kubernetes structural schema (refs inlined, nulls dropped)."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    while "$ref" in node or "anyOf" in node:
        if "$ref" in node:
            target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
            # A field's own rules (e.g. immutability) come on top of its type's rules, not instead of them.
            rules = [*target.get(_RULES, []), *node.get(_RULES, [])]
            node = {**target, **node} | ({_RULES: rules} if rules else {})
        else:
            # Optional[X] is "X or null"; Kubernetes expresses optionality by leaving X out of `required`.
            variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
            if len(variants) != 1:
                raise ValueError(f"unions are not structural: {variants}")
            node = {**variants[0], **node}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("default", "absent") is None:
        del node["default"]
    if node.get("format") == "date-time":
        node["type"] = "string"
    return {key: _structural(value, defs) for key, value in node.items() if key not in _DROPPED_KEYS}


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    result: dict[str, Any] = _structural(schema, schema.get("$defs", {}))
    return result


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    spec_model: type[BaseModel],
    status_model: type[BaseModel],
    printer_columns: list[dict[str, str]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["warden"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(spec_model),
                                "status": openapi_schema(status_model),
                            },
                        }
                    },
                }
            ],
        },
    }


def _column(name: str, path: str, type_: str = "string") -> dict[str, str]:
    return {"name": name, "type": type_, "jsonPath": path}


def render() -> dict[str, str]:
    """File name → YAML text for every CRD."""
    crds = {
        f"{GROUP}_exchangeaccounts.yaml": _crd(
            "ExchangeAccount",
            "exchangeaccounts",
            ["xacct"],
            ExchangeAccountSpec,
            ExchangeAccountStatus,
            [
                _column("EXCHANGE", ".spec.exchange"),
                _column("READY", '.status.conditions[?(@.type=="Ready")].status'),
                _column("AGE", ".metadata.creationTimestamp", "date"),
            ],
        ),
        f"{GROUP}_positions.yaml": _crd(
            "Position",
            "positions",
            ["pos"],
            PositionSpec,
            PositionStatus,
            [
                _column("SYMBOL", ".spec.symbol"),
                _column("SIDE", ".spec.side"),
                # Resolved at entry: the spec may size by notional or risk.
                _column("AMOUNT", ".status.display.amount"),
                _column("PHASE", ".status.phase"),
                _column("ENTRY", ".status.display.entry"),
                # The resting stop, not the spec: percent-based and trailing stops move.
                _column("STOP", ".status.display.stop"),
                _column("UPNL", ".status.display.unrealizedPnl"),
                _column("PNL", ".status.display.realizedPnl"),
                _column("AGE", ".metadata.creationTimestamp", "date"),
            ],
        ),
        f"{GROUP}_signalsources.yaml": _crd(
            "SignalSource",
            "signalsources",
            ["sigsrc"],
            SignalSourceSpec,
            SignalSourceStatus,
            [
                _column("ACCOUNT", ".spec.accountRef.name"),
                _column("READY", '.status.conditions[?(@.type=="Ready")].status'),
                _column("ACCEPTED", ".status.accepted", "integer"),
                _column("REFUSED", ".status.refused", "integer"),
                _column("DUPLICATE", ".status.duplicate", "integer"),
                _column("LAST", ".status.lastSignalTime", "date"),
                _column("AGE", ".metadata.creationTimestamp", "date"),
            ],
        ),
    }
    header = "# Generated by `python -m controller.api.crdgen` from controller/api; do not edit.\n"
    return {name: header + yaml.safe_dump(crd, sort_keys=False, width=120) for name, crd in crds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = parser.parse_args(argv)
    stale = []
    for directory in OUTPUT_DIRS:
        for name, text in render().items():
            path = directory / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print("CRDs are out of date; run `make crds`:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
