"""Find secrets in one value, cheaply: the ``Leak.Secret`` and ``Leak.PrivateKey`` rules alone.

    from comms.lint.secrets import find_secret, shown, masked
    find_secret("glpat-abcdefghij1234567890")   # 'GitLab personal access token'
    shown("glpat-abcdefghij1234567890")         # '[secret, 26 characters]'

The core refuses a secret at input (titles, draft values, edited text) and error messages
show values through ``shown``/``masked``, so a pasted token is never stored or echoed.  The
patterns come from the shipped pack (packs.json) and candidates go through the pack's own
``secret`` validator, so this agrees with ``comms lint`` without loading the engine.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

_RULES = ("Leak.PrivateKey", "Leak.Secret")
# Leak.Secret's patterns, in the pack's order (tests/lint/test_secrets.py keeps them in step).
SECRET_KINDS = (
    "GitLab token",
    "GitLab runner registration token",
    "AWS access key id",
    "bearer token",
    "credential",
    "Slack token",
    "GitHub token",
    "JSON web token",
    "Stripe secret key",
)
_GITLAB = {
    "glpat": "GitLab personal access token",
    "gldt": "GitLab deploy token",
    "glrt": "GitLab runner token",
    "glptt": "GitLab pipeline trigger token",
    "glcbt": "GitLab CI/CD job token",
    "gloas": "GitLab OAuth application secret",
    "glft": "GitLab feed token",
    "glimt": "GitLab incoming mail token",
    "glsoat": "GitLab SCIM token",
    "glagent": "GitLab agent token",
}


_CREDENTIAL_KEYS = (  # compiled on first use by re's own cache
    r"[\"']?(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|"
    r"client[_-]?secret|aws_?secret_?access_?key|private[_-]token|x-api-key|x-auth-token|"
    r"secret[_-]?key|token)[\"']?"
)


def is_secret(value: str) -> bool:
    """The pack's ``secret`` validator: tokens are recognised by their own shape; key=value
    only for credential keys."""
    head = _regex(r"[\w\"'-]*?(?=[:=])").match(value)
    if head is None or value[len(head.group()) :][:1] not in (":", "="):
        return True
    key = head.group()
    if _regex(r"gl[a-z]+|gh[pousr]|sk").fullmatch(key.split("-")[0].split("_")[0]) and not (
        ":" in key or "=" in key
    ):
        return True
    return bool(_regex(_CREDENTIAL_KEYS, re.IGNORECASE).fullmatch(key))


@lru_cache(maxsize=16)
def _regex(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compiled once per process, from the store of compiled patterns when there is one."""
    from comms.lint import compiled

    return compiled.compile(pattern, flags)


def mask(value: str) -> str:
    """How a secret is shown: its length only (the linter's mask)."""
    return f"[secret, {len(value)} characters]"


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[re.Pattern[str], str | None, str, str | None], ...]:
    """(regex, extend_left class, kind, validator) for each secret pattern of the pack."""
    import json

    path = os.path.join(os.path.dirname(__file__), "packs.json")
    with open(path, encoding="utf-8") as fh:
        rules = json.load(fh)["leak"]["data"]["rule"]
    out = []
    for rule in rules:
        if rule["id"] not in _RULES:
            continue
        for index, pattern in enumerate(rule["patterns"]):
            if rule["id"] == "Leak.PrivateKey":
                kind = "private key"
            else:
                kind = SECRET_KINDS[index] if index < len(SECRET_KINDS) else "secret"
            extend = rule.get("extend_left")
            out.append((re.compile(pattern), extend, kind, rule.get("validator")))
    return tuple(out)


def _spans(text: str) -> list[tuple[int, int, str]]:
    # Match on the linter's normalised copy (invisible characters removed, look-alikes as
    # Latin), so a zero-width space inside a token hides nothing; spans are the original's.
    from comms.lint.shadow import shadow

    copy = shadow(text)
    if copy is None:
        return _raw_spans(text)
    return [(*copy.span(start, end), kind) for start, end, kind in _raw_spans(copy.text)]


def _raw_spans(text: str) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []
    for regex, extend, kind, validator in _patterns():
        grow = re.compile(extend) if extend else None
        for hit in regex.finditer(text):
            start, end = hit.start(), hit.end()
            while grow is not None and start > 0 and grow.match(text[start - 1]):
                start -= 1
            while start < end and text[start] in "\"'":  # a quote before a token is not in it
                start += 1
            if validator == "secret" and not is_secret(text[start:end]):
                continue
            if kind == "GitLab token":
                kind_here = _GITLAB.get(text[start:end].split("-")[0].lower(), kind)
            else:
                kind_here = kind
            found.append((start, end, kind_here))
    found.sort()
    merged: list[tuple[int, int, str]] = []
    for span in found:
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], span[1]), last[2])
        else:
            merged.append(span)
    return merged


def find_secret(text: str) -> str | None:
    """The kind of the first secret in ``text`` (e.g. 'GitLab personal access token'), or None."""
    spans = _spans(text) if text else []
    return spans[0][2] if spans else None


def describe(text: str) -> str | None:
    """'KIND, [secret, N characters]' for the first secret in ``text``, or None."""
    spans = _spans(text) if text else []
    if not spans:
        return None
    start, end, kind = spans[0]
    return f"{kind}, {mask(text[start:end])}"


def shown(value: str) -> str:
    """``value`` as an error message may show it: itself, or its mask when it holds a secret."""
    return mask(value) if find_secret(value) else value


def masked(text: str) -> str:
    """``text`` with every secret in it replaced by its mask (for whole messages)."""
    spans = _spans(text) if text else []
    for start, end, _ in reversed(spans):
        text = text[:start] + mask(text[start:end]) + text[end:]
    return text


def redact(text: str, marker: str = "[redacted secret]") -> tuple[str, dict[str, int]]:
    """``text`` with every secret replaced by ``marker``, and the count of each kind."""
    counts: dict[str, int] = {}
    for start, end, kind in reversed(_spans(text) if text else []):
        text = text[:start] + marker + text[end:]
        counts[kind] = counts.get(kind, 0) + 1
    return text, counts


def refuse(field: str, text: str) -> None:
    """Raise ``UsageError`` when ``text`` holds a secret, naming ``field`` and the kind."""
    found = describe(text)
    if found is not None:
        from comms.errors import UsageError

        raise UsageError(f"{field} contains a secret ({found}); remove it — nothing was stored")
