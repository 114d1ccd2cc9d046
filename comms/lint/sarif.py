"""SARIF 2.1.0 output, so findings show up in code-review tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from comms.lint.engine import Finding
from comms.lint.rules import default_packs

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "suggestion": "note"}


def to_sarif(results: Sequence[tuple[str, Finding]]) -> dict[str, Any]:
    """One run of tool 'comms-lint'; columns count code points (``columnKind``)."""
    rules: dict[str, dict[str, Any]] = {}
    for pack in default_packs():
        for rule in pack.rules:
            rules.setdefault(rule.id, _descriptor(rule.id, rule.message, rule.level))
    for _, f in results:
        rules.setdefault(f.rule, _descriptor(f.rule, f.message, f.level))
    ids = list(rules)
    out = []
    for path, f in results:
        region: dict[str, Any] = {
            "startLine": f.line,
            "startColumn": f.column,
            "charOffset": f.start,
            "charLength": f.end - f.start,
        }
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": ids.index(f.rule),
            "level": _SARIF_LEVEL.get(f.level, "warning"),
            "message": {"text": f.message},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": _uri(path)}, "region": region}}
            ],
        }
        if f.replacement is not None:
            result["fixes"] = [
                {
                    "description": {
                        "text": "remove"
                        if f.replacement == ""
                        else f"replace with '{f.replacement}'"
                    },
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": _uri(path)},
                            "replacements": [
                                {
                                    "deletedRegion": {
                                        "charOffset": f.start,
                                        "charLength": f.end - f.start,
                                    },
                                    "insertedContent": {"text": f.replacement},
                                }
                            ],
                        }
                    ],
                }
            ]
        out.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "comms-lint",
                        "informationUri": "https://docs.gitlab.com/",
                        "rules": list(rules.values()),
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": out,
            }
        ],
    }


def _descriptor(rule_id: str, message: str, level: str) -> dict[str, Any]:
    text = (
        message.split(":")[0].replace("'{match}'", "").replace("({match})", "").strip() or rule_id
    )
    return {
        "id": rule_id,
        "shortDescription": {"text": text},
        "defaultConfiguration": {"level": _SARIF_LEVEL.get(level, "warning")},
    }


def _uri(path: str) -> str:
    return "stdin" if path == "<stdin>" else path.replace("\\", "/")
