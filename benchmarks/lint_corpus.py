"""Measure the linter on real text nobody here wrote (../shared/corpus).

    .venv/bin/python benchmarks/lint_corpus.py [CORPUS_DIR] [--show N]

Prints:
- the share of GitHub's customer-facing status updates with any error-level finding
  (target <= 2%), with GitHub's public domains allow-listed as comms.toml would;
- findings per rule, for the updates and for the postmortems;
- the internal tokens (IP, e-mail, @handle, channel, host name, ticket id) still present in
  the postmortems after `fix` (target: none), found by independent plain regexes;
- the share of characters `fix` removes from the customer-facing updates (target < 5%).

The status updates are HTML; they are reduced to the text a reader saw (tags dropped,
entities decoded) before linting.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
GITHUB_LINT = {
    "public_domains": [
        "github.com",
        "githubstatus.com",
        "githubusercontent.com",
        "github.io",
        "githubapp.com",
        "githubassets.com",
        "github.blog",
        "github.community",
        "npmjs.com",
        "npmjs.org",
        "twitter.com",
        "status.github.com",
        "git.io",
    ],
    "support_emails": ["support@github.com"],
}
# Independent recognisers for what must not survive --fix (deliberately plain: they are the
# yardstick, not the linter).
SURVIVORS = {
    "ip": re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)"),
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE),
    # npm scopes ("@posthog/plugin") are package names, not people.
    "handle": re.compile(r"(?<![\w@./])@[A-Za-z][\w-]{1,}(?![\w/-])"),
    "channel": re.compile(r"(?<![\w&#/])#[a-z][a-z0-9]*-[a-z0-9-]+"),
    "host": re.compile(
        r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:internal|local|svc|cluster\.local|corp|lan)\b"
        r"|\b(?:db|web|api|gitaly|redis|patroni|node|worker)-?\d{1,4}\b|\bip-\d+-\d+-\d+-\d+\b"
    ),
    "ticket": re.compile(r"(?<![\w&/#])#\d{3,}\b|\b(?:PM|INC|JIRA|OPS)-?\d{3,}(?:-\d+)?\b"),
}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("li", "p", "br", "div"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(body: str) -> str:
    parser = _Text()
    parser.feed(body)
    parser.close()
    text = html.unescape("".join(parser.parts))
    return re.sub(r"\n{2,}", "\n", text).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--show", type=int, default=5, help="examples to print per problem")
    args = parser.parse_args()

    from comms.lint import LintConfig, blocking, fix, lint

    config = LintConfig.model_validate(GITHUB_LINT)
    updates_path = args.corpus / "customer_facing" / "github_status_updates_2018_2020.jsonl"
    updates = [
        visible_text(json.loads(line)["body"]) for line in updates_path.open(encoding="utf-8")
    ]

    per_rule: Counter[str] = Counter()
    with_errors = []
    removed_chars = total_chars = 0
    for text in updates:
        findings = lint(text, config=config)
        per_rule.update(f.rule for f in findings)
        errors = blocking(findings)
        if errors:
            with_errors.append((text, errors))
        result = fix(text, config=config)
        total_chars += len(text)
        removed_chars += max(0, len(text) - len(result.text)) + sum(
            f.end - f.start for f in result.removed if f.replacement
        )
    share = len(with_errors) / len(updates)
    print(f"customer-facing updates: {len(updates)}")
    print(f"  with any error-level finding: {len(with_errors)} ({share:.2%}; target <= 2%)")
    for text, errors in with_errors[: args.show]:
        print(f"    - {[(e.rule, e.match) for e in errors]} in {text[:120]!r}")
    print(
        f"  characters removed or replaced by fix: {removed_chars} of {total_chars} "
        f"({removed_chars / total_chars:.2%}; target < 5%)"
    )
    print("  findings per rule:")
    for rule, n in per_rule.most_common():
        print(f"    {rule:28} {n}")

    # The postmortems come from other publishers (Kubernetes, DFDS, PostHog): lint them with
    # the default configuration, whose allow-list is GitLab's.
    internal = sorted(
        p
        for p in (args.corpus / "internal").rglob("*")
        if p.is_file() and p.suffix in ("", ".md") and "LICENSE" not in p.name
    )
    pm_rules: Counter[str] = Counter()
    survivors: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    before_counts: Counter[str] = Counter()
    for path in internal:
        text = path.read_text(encoding="utf-8", errors="replace")
        pm_rules.update(f.rule for f in lint(text))
        for name, rx in SURVIVORS.items():
            before_counts[name] += len(rx.findall(text))
        fixed = fix(text).text
        for name, rx in SURVIVORS.items():
            for m in rx.finditer(fixed):
                survivors[name] += 1
                examples.setdefault(name, []).append(m.group())
    print(f"\npostmortems: {len(internal)} files")
    print("  findings per rule:")
    for rule, n in pm_rules.most_common():
        print(f"    {rule:28} {n}")
    print("  internal tokens before fix -> surviving fix (target: none survive):")
    for name in SURVIVORS:
        print(
            f"    {name:8} {before_counts[name]:5} -> {survivors[name]}"
            + (f"   e.g. {examples[name][: args.show]}" if survivors[name] else "")
        )
    ok = share <= 0.02 and not survivors and removed_chars / total_chars < 0.05
    print(f"\ntargets {'met' if ok else 'NOT all met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
