"""Every rule: should-flag and should-pass examples in one table (proselint's examples idea).

The meta-test fails for a shipped rule that has no flag example or no pass example.
Examples are ours, not from the shared corpus.
"""

from __future__ import annotations

from typing import Any

import pytest

from comms.lint import lint
from comms.lint.rules import default_packs

UPDATE = {"kind": "update"}
OPEN_S1 = {"kind": "update", "severity": "S1", "status": "investigating"}
RESOLVED = {"kind": "resolved"}
TENANTS = {"audience": "Acme Corp", "tenants": ["Acme Corp", "Globex", "Initech"]}

# rule id -> (should flag, should pass, keyword arguments for lint)
EXAMPLES: dict[str, tuple[list[str], list[str], dict[str, Any]]] = {
    "Leak.PrivateKey": (
        [
            "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n"
            "-----END RSA PRIVATE KEY-----\n"
        ],
        ["We rotated the signing keys as a precaution."],
        {},
    ),
    "Leak.Secret": (
        [
            "use glpat-AbCdEfGhIjKlMnOpQrStUv to log in",
            "AKIAIOSFODNN7EXAMPLE was in the log",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdefXYZ",
            "set password=s3cretValue in the env",
            "token xoxb-1234567890-abcdefghij leaked",
        ],
        ["Please sign in again with a new personal access token.", "Note: access is restored."],
        {},
    ),
    "Leak.PaymentCard": (
        ["card 4111 1111 1111 1111 was charged"],
        ["order 1234 5678 9012 3456 shipped", "We served 1,234,567 requests."],
        {},
    ),
    "Leak.CodeBlock": (
        ["Output:\n```\nsome pasted output\n```\nDone."],
        ["Output was as expected. We used `inline code` once."],
        {},
    ),
    "Leak.StackTrace": (
        [
            "Traceback (most recent call last):\n"
            '  File "app.py", line 3, in <module>\nValueError: boom\n',
            "java.lang.NullPointerException: oops\n"
            "    at com.example.Foo.bar(Foo.java:12)\n"
            "    at com.example.Main.main(Main.java:3)\n",
        ],
        ["Some users saw errors when opening merge requests."],
        {},
    ),
    "Leak.LogLine": (
        [
            '{"level":"error","msg":"connection refused"}\n',
            "2024-05-01 10:00:01 ERROR worker crashed\n",
            "E0501 10:00:01.123456   123 reflector.go:138] failed to list\n",
            "time=2024-05-01 level=error msg=timeout\n",
        ],
        ["2024-05-01 10:00 UTC - We are investigating reports of errors."],
        {},
    ),
    "Leak.ShellCommand": (
        ["We ran:\nkubectl -n gitlab delete pod web-1\n", "$ sudo gitlab-ctl restart\n"],
        ["We restarted the affected service.", "Helm charts are available for download."],
        {},
    ),
    "Leak.InlineCommand": (
        ["We ran `kubectl rollout restart deploy/web` to recover."],
        ["We ran `a health check` to confirm."],
        {},
    ),
    "Leak.SQL": (
        [
            "We executed UPDATE users SET state = 'active' WHERE id = 4;",
            "select * from ci_builds where id = 1;\n",
        ],
        ["Select a project from the list, then update the settings."],
        {},
    ),
    "Leak.InternalURL": (
        [
            "See https://dashboards.gitlab.net/d/abc for the graph.",
            "Runbook: https://gitlab.com/gitlab-com/runbooks/-/issues/123",
            "Open http://10.0.0.5:8080/health",
        ],
        [
            "See https://docs.gitlab.com/ee/administration/ for details.",
            "Status: https://status.gitlab.com",
        ],
        {},
    ),
    "Leak.Email": (
        ["Contact jane.doe@example.com for access."],
        ["Contact support@gitlab.com for help."],
        {},
    ),
    "Leak.Handle": (
        ["Thanks @jdoe for the quick fix.", "cc @gitlab-org"],
        ["Write to support@gitlab.com; it is @ 10:00 UTC.", "The package @scope/name is fine."],
        {},
    ),
    "Leak.CloudResource": (
        [
            "arn:aws:iam::123456789012:role/gitlab-runner was denied",
            "instance i-0abc12345def67890 was replaced",
            "volume vol-049df61146c4d7901 filled up",
            "node ip-10-0-1-23.ec2.internal went NotReady",
            "gke-prod-default-pool-4b1c2d3e-x7k9 rebooted",
        ],
        ["The i-th request and a vol-au-vent were served."],
        {},
    ),
    "Leak.PodName": (
        ["webservice-7d9f8b6c5d-x2x4z restarted"],
        ["A well-known-and-loved feature stays."],
        {},
    ),
    "Leak.AccountId": (
        ["The AWS account 123456789012 hit a quota."],
        ["We processed 123456789012 events this year."],
        {},
    ),
    "Leak.IPAddress": (
        [
            "Traffic from 10.1.2.3 was dropped.",
            "The 192.168.0.0/16 range",
            "fe80::1ff:fe23:4567:890a failed",
        ],
        ["Upgrade to version 1.2.3.4 when ready.", "The window is 13:00-17:00 UTC.", "ratio 3:2"],
        {},
    ),
    "Leak.HostName": (
        [
            "db-main.prod.internal stopped",
            "redis.gitlab.svc.cluster.local timed out",
            "gitaly-01.gprd.gitlab.net is slow",
        ],
        [
            "Your instance acme.gitlab-dedicated.com is available.",
            "See docs.gitlab.com for details.",
            "Read the README.md file, e.g. the setup section.",
        ],
        {},
    ),
    "Leak.BareHost": (
        [
            "db1001 ran out of disk",
            "web-03 was removed from the pool",
            "patroni-main-2004 failed over",
        ],
        ["COVID-19 and UTF-8 and SHA-256 are fine.", "We use sha256 and base64.", "top-10 issues"],
        {},
    ),
    "Leak.Channel": (
        ["Join #incident-1234 for updates.", "posted in #production"],
        ["Issue number 5 is #1 on the list.", "Colour #fff and C# are fine."],
        {},
    ),
    "Leak.TicketRef": (
        [
            "Tracked in INFRA-4521.",
            "See #123456 for the details.",
            "Fixed by !4567.",
            "gitlab-org/gitlab#12345",
            "Reviewed in PM2019-001.",
        ],
        [
            "COVID-19 and ISO-8601 dates.",
            "We are #1 in support.",
            "CVE-2021-44228 is patched.",
            "Since 2019-01-23 and x-AB-12 and ABC-12-34.",
        ],
        {},
    ),
    "Leak.InternalRole": (
        ["The IMOC paged the EOC.", "SIRT approved this message."],
        ["Our incident team is working on it.", "The eoc word in lower case is not a role."],
        {},
    ),
    "Leak.InternalTool": (
        ["The PagerDuty alert fired.", "We discussed it in Slack."],
        ["Our engineers were alerted and are investigating."],
        {},
    ),
    "Leak.StaffName": (
        ["Jane Doe is looking into it."],
        ["Our engineers are looking into it."],
        {"config": "roster"},
    ),
    "Leak.OtherTenant": (
        ["Globex is also affected."],
        ["Acme Corp users may see errors."],
        TENANTS,
    ),
    "Impact.Blame": (
        ["The outage was caused by human error.", "An engineer accidentally deleted the volume."],
        ["A configuration change caused errors; we reverted it."],
        {},
    ),
    "Impact.Speculation": (
        [
            "This is probably a network issue.",
            "We think the cache is stale.",
            "It appears to be caused by a bad node.",
        ],
        ["Customers may experience slow page loads.", "The cause is under investigation."],
        {},
    ),
    "Impact.Jargon": (
        [
            "Several pods were OOM killed.",
            "We saw replication lag on the database.",
            "A bad deploy went out.",
        ],
        ["Some requests were slower than usual.", "We deployed a fix."],
        {},
    ),
    "Impact.Minimising": (
        ["It was just a minor blip.", "Only a few users were affected."],
        ["Some users were affected for 20 minutes."],
        {},
    ),
    "Impact.OverPromising": (
        ["This will never happen again.", "Uptime is guaranteed."],
        ["We are taking steps to prevent a recurrence."],
        {},
    ),
    "Impact.FixTime": (
        ["The service will be restored by 14:00 UTC."],
        ["We expect the service will be restored by 14:00 UTC."],
        {},
    ),
    "Impact.SentenceLength": (
        [" ".join(["word"] * 45) + "."],
        ["A short sentence. Another one."],
        {},
    ),
    "Struct.Status": (
        ["Some users see errors when pushing."],
        ["We are investigating errors when pushing."],
        UPDATE,
    ),
    "Struct.Impact": (
        ["We are investigating."],
        ["We are investigating errors when pushing."],
        UPDATE,
    ),
    "Struct.Actions": (
        ["Pushes fail for some users."],
        ["Pushes fail for some users; our engineers are investigating."],
        UPDATE,
    ),
    "Struct.NextUpdate": (
        ["We are investigating errors when pushing."],
        ["We are investigating errors when pushing. Next update by 14:30 UTC."],
        OPEN_S1,
    ),
    "Struct.StartTime": (
        ["The incident is resolved. Service was restored at 11:00 UTC."],
        ["The incident is resolved. Impact started at 10:00 UTC and ended at 11:00 UTC."],
        RESOLVED,
    ),
    "Struct.EndTime": (
        ["The incident is resolved. Impact began 10:00 UTC."],
        ["The incident is resolved. Impact began 10:00 UTC and was restored at 11:00 UTC."],
        RESOLVED,
    ),
    "Struct.TimeZone": (
        ["Next update at 14:30.", "We started at 3pm."],
        [
            "Next update at 14:30 UTC.",
            "Window 13:00–17:00 UTC.",
            "At 09:00 (UTC+2).",
        ],
        UPDATE,
    ),
}


def _kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    if kw.get("config") == "roster":
        from comms.lint import LintConfig

        return {"config": LintConfig(roster=["Jane Doe"])}
    return kw


def _shipped_rules() -> list[str]:
    return [rule.id for pack in default_packs() for rule in pack.rules]


def test_every_rule_has_flag_and_pass_examples() -> None:
    missing = [
        rid
        for rid in _shipped_rules()
        if rid not in EXAMPLES or not EXAMPLES[rid][0] or not EXAMPLES[rid][1]
    ]
    assert missing == [], f"rules without should-flag and should-pass examples: {missing}"
    unknown = sorted(set(EXAMPLES) - set(_shipped_rules()))
    assert unknown == [], f"examples for rules that do not exist: {unknown}"


@pytest.mark.parametrize(
    ("rule", "text", "kw"),
    [(rid, text, kw) for rid, (flag, _, kw) in EXAMPLES.items() for text in flag],
)
def test_flags(rule: str, text: str, kw: dict[str, Any]) -> None:
    assert rule in {f.rule for f in lint(text, **_kwargs(kw))}


@pytest.mark.parametrize(
    ("rule", "text", "kw"),
    [(rid, text, kw) for rid, (_, passing, kw) in EXAMPLES.items() for text in passing],
)
def test_passes(rule: str, text: str, kw: dict[str, Any]) -> None:
    found = [(f.rule, f.match) for f in lint(text, **_kwargs(kw)) if f.rule == rule]
    assert found == []
