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
    "Leak.InvisibleCharacter": (
        [
            "The service is \u202ederotser\u202c now.",
            "We are\u200b investigating.",
            "Re\u00adstored.",
        ],
        [
            "A family emoji \U0001f468\u200d\U0001f469\u200d\U0001f467 is fine.",
            "Caf\u00e9, \u2014 dashes and \u201cquotes\u201d are plain text.",
        ],
        {},
    ),
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
            "See https://gitlab.com/gitlab-com/gl-infra/production/-/issues/17000",
            "Join https://gitlab.zoom.us/j/123 now.",
            # A numbered issue or merge request of a project: a tracker reference, public
            # or not (as gitlab-org/gitlab#412345 is).
            "Bug: https://gitlab.com/gitlab-org/gitlab/-/issues/412345",
            "Fix: https://gitlab.com/gitlab-org/gitlab-runner/-/merge_requests/4567#note_1",
        ],
        [
            "See https://docs.gitlab.com/ee/administration/ for details.",
            "Status: https://status.gitlab.com",
            "Follow https://status.gitlab.com/incidents/abc123 for updates.",
            "Read https://docs.gitlab.com/ee/user/project/issues/ first.",
            "All issues: https://gitlab.com/gitlab-org/gitlab/-/issues",
        ],
        {},
    ),
    "Leak.Email": (
        ["Contact jane.doe@example.com for access."],
        ["Contact support@gitlab.com for help."],
        {},
    ),
    "Leak.UserAtHost": (
        ["<alice@deploy2002> started the rollout", "bob@deploy2002: sync done"],
        ["Write to support@gitlab.com for help.", "Say hi to alice@home today."],
        {},
    ),
    "Leak.Handle": (
        [
            "Thanks @jdoe for the quick fix.",
            "cc @gitlab-org",
            "@_stark restarted it",
            "as @0stark said",
            "@acme-org/ecosystem-team please review",
        ],
        [
            "Write to support@gitlab.com; it is @ 10:00 UTC.",
            "The package @scope/name is fine.",
            "Meet @10am, scaled @2x, on the @3rd.",
            "Install @types/node and @octokit/rest.",
        ],
        {},
    ),
    "Leak.DisplayName": (
        [
            "    Odalys Fenwright @ofenwright · 2 years ago\n    looks good",
            "Jane Quorvik 🌴 @jquorvik mentioned in issue #12",
            "Edited 3 days ago by Hesper Quillon",
            "Created By: Benjamin Elmar <bel@example.org>",
        ],
        [
            "We thank Support @ the help desk.",
            "Please follow GitHub Status on Twitter.",
            "It was created by the outage and fixed by AWS Support.",
            "Edited by Support Team members.",
        ],
        {},
    ),
    "Leak.NamedInText": (
        [
            "Jane Quorvik @jquorvik · 1 day ago\nQuorvik's change was rolled back.",
            ">zelmor [1:26 PM]\nstuck builds\nthen zelmor fixed it",
            # Cues: a timeline subject, a name thanked, meeting notes, an action owner, a
            # people field or list, a cluster.
            "| 10:05 | Orvald evaluated the logs |\nOrvald then left.",
            "| 09:15 | Ross evaluated two repositories |\nRoss then left.",
            "We noticed it early (thanks, Brannoc Quillfeather).",
            "  Tamsin: Could we have seen this on staging first?\n"
            "  Obed: Probably not, the canary had no traffic.",
            "- Review the alert thresholds (Yorrin to follow up)",
            "Author: Pellam Drost\n\nThe cache filled up.",
            "## Attendees\n\n- kvossler\n- mtandry\n",
            "We deployed a driver to our Vexmoor Kubernetes cluster; Vexmoor then failed.",
            "Users could not deploy to Oxygen (Kubernetes cluster).",
        ],
        [
            "Quorvik restarted the primary.",
            "Will Chase @wchase · 1 day ago\nWill we chase it? It may be.",
            "Thanks for your patience while we investigate.",
            "14:05 UTC We identified the cause and deployed a fix.",
            "| 09:15 | Ross evaluated two repositories |\nross is a word here.",
            "Update: We are investigating reports of degraded performance for Actions.",
            "Our Production Kubernetes cluster and the Redis cluster are healthy.",
            "Gitaly Cluster and Geo replication are unaffected.",
        ],
        {},
    ),
    "Leak.PersonName": (
        [
            "We paged the on-call (Marcus Oyelaran) at once.",
            "Later Anneliese suggested a pause, and Raghav agreed.",
            "| 08:10 | Henrik and Mette identify a bad push |",
            "Closed by Henrik; cc Signe.",
            "Vaskeloth is looking at it.",
            "Ole Brandvik rolled it back.",
        ],
        [
            "GitHub Pages is degraded; Git Operations and API Requests are slow.",
            "Everything is back up. We're investigating; We'll post an update.",
            "By Monday the fix is out; thanks for your patience. Hi Team.",
            "Prometheus noticed it and Kubernetes restarted the pods.",
            "Grant Access stays a button; May and August are months.",
            "Hi John, thanks for your patience.",
        ],
        {},
    ),
    "Leak.ChatUser": (
        [
            ">cblecker [1:26 PM]\nsomething is wrong with the bot",
            "jdoe42 [09:14]\nrestarting it",
            "tony-yang [1:27 PM]\nlooking",
            "[10:02] <alice_w> restarting the primary",
            "10:02 bjensen: restarting the primary",
            ">Benjamin Elmar [2:17 PM]\nlooking at the nodes",
        ],
        [
            "Update [10:30 AM]\nAll systems are operational.",
            "<div> markup is not a chat log",
            "14:30 update: we are monitoring the fix.",
            "Resolved [10:30 UTC]: all good.",
            "Status Update [10:30 AM]\nAll systems are operational.",
            "Good Morning [10:30 AM] from the team.",
        ],
        {},
    ),
    "Leak.CloudResource": (
        [
            "arn:aws:iam::123456789012:role/gitlab-runner was denied",
            "instance i-0abc12345def67890 was replaced",
            "volume vol-049df61146c4d7901 filled up",
            "node ip-10-0-1-23.ec2.internal went NotReady",
            "gke-prod-default-pool-4b1c2d3e-x7k9 rebooted",
            "Cluster: gke_acme-ci-builds_us-central1-f_prow",
            "disk projects/acme-prod-42/zones/us-east1-b/disks/data-1 filled up",
            "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/rg-web was removed",
        ],
        [
            "The i-th request and a vol-au-vent were served.",
            "Our projects/zones page lists regions.",
        ],
        {},
    ),
    "Leak.OpaqueId": (
        [
            "Request 7c1f0a9e4b2d4e8f9a3b6c5d2e1f0a9b failed.",
            "The tenant 5b0e3c2a-9f41-4d7e-8a26-1c3b4d5e6f70 was moved.",
            "Reverted c0ffee1234abcd5678ef9012a3b4c5d6e7f80912 in the deploy.",
            "Request id deadbeef12345678 timed out.",
        ],
        [
            "We served 1234567890123456 requests.",
            "The colour deadbeef and the word faded stay.",
            "Version 2024-05-01 and build 12abc are fine.",
            "Build 1a2b3c4d is short.",
        ],
        {},
    ),
    "Leak.ClusterName": (
        [
            "The k8s-orcanet project ran out of quota.",
            "Nodes of gke-orcanet-builds were drained.",
            "The zorbit-eks cluster was upgraded.",
        ],
        [
            "We run k8s-1.29 with eks-optimized images.",
            "The kube-system namespace and aks-engine are public names.",
            "Our k8s-infra and gke-prod names are generic.",
        ],
        {},
    ),
    "Leak.ObjectName": (
        [
            "The statefulset redis-cart lost a replica.",
            "Pods in namespace payments crashed.",
            "kubectl -n qorvex-apps get pods",
            "HelmRelease podinfo failed; (ns storefront) too.",
            "The cluster prod-europe-west1 and the `apps-prod` Kustomization were fine.",
            "The aks-weu-prod-01 cluster and the orvex-api deployment restarted.",
        ],
        [
            "The fileserver cluster and the pod namespace instead.",
            "We set pod anti-affinity on our 100-node cluster.",
            "Pods crash-looping and pods crashlooping recovered.",
            "Use head -n 20 and grep -n foo.",
            "The default namespace and kube-system namespace are fine.",
        ],
        {},
    ),
    "Leak.KubernetesObject": (
        [
            "We ran a rollout restart of deployment/orvex-api.",
            "svc/ledger-web and sts/quorra-db were fine.",
            "deployment.apps/orvex-api restarted",
            "pod/orvex-api-7d9f8b6c5d-x2k4q was deleted",
            "Controlled By: ReplicaSet/orvex-api-5f7b8c9d4",
            "kustomization.kustomize.toolkit.fluxcd.io/apps-zeta reconciled",
        ],
        [
            "Select read/write, and/or the job/task view.",
            "Throughput was 12 cm/s; no/yes answers; pod/container limits.",
            "We are adding rollout/annotation controls.",
            "Logs under /var/lib/kubelet/pods/ were rotated.",
        ],
        {},
    ),
    "Leak.PodName": (
        [
            "webservice-7d9f8b6c5d-x2x4z restarted",
            "orvex-api-6b7c9d8f5-pqr7s failed readiness",
            "kube-proxy-8zv4w and ledger-agent-b7x2m were evicted",
            "Then orvex-api-5f7b8c9d4 scaled down.",
            "Job nightly-export-28012345 failed; its pod nightly-export-28012345-h7xkp too.",
            "legacy-web-2035384211-7ci7o (an old decimal hash) restarted",
        ],
        [
            "A well-known-and-loved feature stays.",
            "A state-based, cloud-native and event-driven setup.",
            "Build 20240115 and covid-19 and x86-64 are fine.",
            "The check-in and sign-on flows are back.",
        ],
        {},
    ),
    "Leak.EnvironmentName": (
        [
            "Our nonprod-log cluster is unavailable.",
            "The gprd-redis-cache pool filled up.",
            "When the ExternalLBProd resource group was deleted",
            "Jobs on ci-stg-2 failed.",
        ],
        [
            "The fix is prod-ready and staging-like.",
            "We tested it in pre-prod and non-prod first.",
            "Production and staging are healthy; NonProd is a word here.",
        ],
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
            "Calls to api.svc.dc1.corpnet fail.",
            "nfs-file-02.stor.gitlab.com filled up.",
            "The api.corpnet:8443 endpoint failed.",
            "lb01.dc2 and web-3.iad1 drained connections.",
            "The image ghcr.io/orvex/podinfo:6.3.5 was missing.",
        ],
        [
            "Your instance acme.gitlab-dedicated.com is available.",
            "See docs.gitlab.com for details.",
            "Read the README.md file, e.g. the setup section.",
            "Packages come from debian.org and images from ghcr.io.",
            "Call os.path.join; the fix was deployed.We are monitoring.",
            "Upgrade to python3.11 or ubuntu20.04; version 1.2.3 is out.",
        ],
        {},
    ),
    "Leak.BareHost": (
        [
            "db1001 ran out of disk",
            "web-03 was removed from the pool",
            "patroni-main-2004 failed over",
            "lb-fe2003 dropped connections",
            "mc104 was slow",
            "db2041:3306 refused connections",
            "we restarted web100[1-4] and cache300*",
            "DB3 host metrics and NFS-07 disk usage",
            "shared-runners-manager-4 stopped",
            # An environment or site label after the number, a zero-padded number, a
            # stateful service's ordinal, a port.
            "gitlab-01-sv-gprd and frontend-01 were drained",
            "zookeeper-2, elasticsearch-master-2 and mongo-rs2-b lost quorum",
            "haproxy on edge-fra-2:8443 was fine",
        ],
        [
            "COVID-19 and UTF-8 and SHA-256 are fine.",
            "We use sha256 and base64.",
            "top-10 issues",
            "ubuntu22, python3 and jan2024 images",
            "ES6, PG13, S1 and HTTP2 are not machines.",
            "Step 1 of phase-2 and tier-1 support; python-3 and x86-64 builds.",
        ],
        {},
    ),
    "Leak.ThirdPartySite": (
        ["Images are on ghcr.io now.", "See https://www.debian.org/security/ for the advisory."],
        ["See https://docs.gitlab.com/ee/ for details.", "Read README.md first."],
        {},
    ),
    "Leak.Channel": (
        ["Join #incident-1234 for updates.", "posted in #production"],
        ["Issue number 5 is #1 on the list.", "Colour #fff and C# are fine."],
        {},
    ),
    "Leak.ChangeRequest": (
        [
            "Rolled back in PR 512.",
            "See MR !45 and MRs 12.",
            "Merged as pull request 1777; merge request 99 follows.",
        ],
        [
            "Our PR team wrote a post.",
            "Pull requests work again; merge requests too.",
            "PRs 2x faster since Monday.",
        ],
        {},
    ),
    "Leak.TicketRef": (
        [
            "Tracked in INFRA-4521.",
            "Logged as INC-2023-0412.",
            "Part of epic &42 and group/project&7.",
            "Rolled back; fixes #12 (see #9).",
            "Revert the cache change (#87)",
            "Discussed in merge request !45 and issue #7.",
            "See #123456 for the details.",
            "Fixed by !4567.",
            "gitlab-org/gitlab#12345",
            "Reviewed in PM2019-001.",
            "Tracked in ENG-1234 (Linear).",
        ],
        [
            "COVID-19 and ISO-8601 dates.",
            "We are #1 in support.",
            "CVE-2021-44228 is patched.",
            "Since 2019-01-23 and x-AB-12 and ABC-12-34.",
            "We are the #2 choice; R&D, AT&T, Q&A and 5&6 are fine.",
            "ISO-2022-1 and &#123; stay.",
        ],
        {},
    ),
    "Leak.TrackerNumber": (
        [
            "Support case 01234567 is open with the vendor.",
            "The provider opened issue nr 98765432101 for it.",
            "See ticket number 4521.",
            "Case no. 778812 was escalated.",
        ],
        [
            "In case 2 users were affected, we restored them.",
            "We handled 123456 requests.",
            "Issue 42 of the newsletter and ticket 12345 are fine.",
            "The change 2024 is planned.",
        ],
        {},
    ),
    "Leak.PhabricatorTask": (
        ["Tracked in T123456.", "See T98765 for details."],
        ["Started 2024-05-01T14:00:00Z, ended T14:45Z.", "The T4 and T1000 models."],
        {},
    ),
    "Leak.ServiceNowRecord": (
        ["See INC0012345.", "Change CHG0034567 is approved."],
        ["Incident INC-style wording.", "CS50 students and REQ 1 are fine."],
        {},
    ),
    "Leak.BugzillaBug": (
        ["Filed as bug 1234567 upstream.", "See rhbz#1234567.", "Bugzilla bug #123456"],
        ["We fixed a bug 10 minutes ago.", "The bug 2 weeks old is gone; debug 12345 lines."],
        {},
    ),
    "Leak.ZendeskTicket": (
        ["Reported in ZD#456789.", "See Zendesk ticket 456789."],
        ["Zendesk is our help desk.", "ZDNet wrote about it."],
        {},
    ),
    "Leak.PagerDutyIncident": (
        ["PagerDuty incident Q1W2E3R4T5Y6U7 fired.", "PD #12345 paged us."],
        ["PDF exports work.", "PagerDuty paged the team."],
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
    "Leak.Vocabulary": (
        [
            "The Hellman cluster is degraded.",
            "Hellman's nodes restarted.",
            "Builds on k8s-prow-builds are slow.",
            "cblecker restarted it; Cblecker confirmed.",
            "Thanks to Jane Quorvik and Jane\nQuorvik.",
        ],
        [
            "The hellman cluster (lower case) and HellmanX are other names.",
            "See @cblecker, cblecker.example.org and #k8s-prow.",
            "Jane answered; Quorvikson is someone else.",
        ],
        {"config": "vocabulary"},
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
        [
            "Next update at 14:30.",
            "We started at 3pm.",
            # A range's end is taken as written: "-14:00" is no zone offset after it.
            "Window 13:00-14:00 today.",
        ],
        [
            "Next update at 14:30 UTC.",
            "Window 13:00–17:00 UTC.",
            "Window 13:00 to 17:00 (UTC).",
            "At 09:00 (UTC+2).",
        ],
        UPDATE,
    ),
}


VOCABULARY = "# learned\nHellman  # a cluster\nk8s-prow\ncblecker\nJane Quorvik\n"


def _kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    if kw.get("config") == "roster":
        from comms.lint import LintConfig

        return {"config": LintConfig(roster=["Jane Doe"])}
    if kw.get("config") == "vocabulary":
        import tempfile
        from pathlib import Path

        from comms.lint import LintConfig

        folder = Path(tempfile.mkdtemp())
        (folder / "vocabulary.txt").write_text(VOCABULARY, encoding="utf-8")
        return {
            "config": LintConfig.model_validate(
                {"vocabulary": "vocabulary.txt"}, context={"base_dir": folder}
            )
        }
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
