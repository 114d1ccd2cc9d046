"""``comms serve``: its options over ``[serve]``, the refusals before it listens, and a real
process that serves and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from web_support import NOW, add_team, bearer

from comms.bootstrap import Runtime
from comms.cli import cli
from comms.errors import ConfigError, UsageError
from comms.web.config import DEFAULT_PORT, KEYS, ServeConfig, check_serve, serve_config


def test_no_users_yet_is_exit_3_with_the_way_out() -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 3
    assert "no users yet: comms users add NAME --role admin" in result.output


def test_a_bad_option_is_exit_2() -> None:
    with Runtime(clock=lambda: NOW) as rt:
        add_team(rt)
    for args, needle in (
        (["--public-url", "ftp://x"], "--public-url must be an http://"),
        (["--trusted-proxy", "not-an-address"], "--trusted-proxy 'not-an-address'"),
        (["--proxy-header", "X Bad"], "--proxy-header must be a header name"),
        (["--port", "70000"], "70000"),
    ):
        result = CliRunner().invoke(cli, ["serve", *args])
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output


def test_a_bad_serve_table_stops_every_command(tmp_path: Path) -> None:
    (tmp_path / "comms.toml").write_text('[serve]\nport = 8750\ntrusted_proxies = ["nope"]\n')
    for args in (["serve"], ["incident", "list"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 3, result.output
        assert "comms.toml:3: serve.trusted_proxies 'nope' is not an address" in result.output
    checked = CliRunner().invoke(cli, ["config", "check"])
    assert checked.exit_code == 3
    assert "comms.toml:3: serve.trusted_proxies" in checked.output


def test_options_override_the_serve_table() -> None:
    table = {
        "host": "0.0.0.0",
        "port": 9000,
        "public_url": "https://comms.example.com/",
        "trusted_proxies": ["10.0.0.0/24"],
        "proxy_header": "X-Forwarded-User",
    }
    from_file = check_serve(table)
    assert from_file.port == 9000
    assert from_file.public_url == "https://comms.example.com"
    assert from_file.https
    assert from_file.proxy_auth
    assert from_file.trusts("10.0.0.7")
    assert not from_file.trusts("10.0.1.7")
    assert from_file.link("/drafts/3") == "https://comms.example.com/drafts/3"
    chosen = serve_config(table, port=8000, trusted_proxies=["192.0.2.1"])
    assert chosen.port == 8000
    assert chosen.host == "0.0.0.0"
    assert chosen.trusts("192.0.2.1")
    assert not chosen.trusts("10.0.0.7")
    assert serve_config({}) == ServeConfig()
    assert ServeConfig().port == DEFAULT_PORT
    assert not ServeConfig().trusts("127.0.0.1")  # no proxy is trusted unless named
    with pytest.raises(UsageError, match="--port"):
        serve_config({}, port=-1)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"colour": "red"}, "unknown key 'serve.colour' (known: " + ", ".join(KEYS) + ")"),
        ({"port": "80"}, "serve.port must be a whole number"),
        ({"port": True}, "serve.port must be a whole number"),
        ({"trusted_proxies": "10.0.0.1"}, "serve.trusted_proxies must be a list"),
        ({"trusted_proxies": ["10.0.0.300"]}, "'10.0.0.300' is not an address"),
        ({"public_url": "https://x.example/?q=1"}, "serve.public_url must be"),
        ({"proxy_header": ""}, "serve.proxy_header must be a header name"),
        ({"proxy_header": "X-WEBAUTH-USER"}, "serve.proxy_header needs serve.trusted_proxies"),
        ({"host": "a b"}, "serve.host must be an address"),
    ],
)
def test_the_serve_table_check(table: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_serve(table)
    assert needle in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_real_process_serves_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    with Runtime(clock=lambda: NOW) as rt:
        add_team(rt)
    # The port from [serve] in comms.toml (0: a free one, announced).
    (tmp_path / "comms.toml").write_text('[serve]\nport = 0\nhost = "127.0.0.1"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "comms", "serve", "--log-level", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = ""
        deadline = time.monotonic() + 30
        assert process.stderr is not None
        while time.monotonic() < deadline and not url:
            line = process.stderr.readline()
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:"), url
        with httpx.Client(base_url=url, timeout=5) as client:
            assert client.get("/api/health").json() == {"status": "ok"}
            assert client.get("/api/queue", headers=bearer("sam")).json()["drafts"] == []
            assert client.get("/api/queue?token=secret-in-a-query").status_code == 401
    finally:
        process.send_signal(stop)
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert '"GET /api/queue" 200' in err
    assert "secret-in-a-query" not in err  # the access log never has a query string


def test_the_pages_and_stylesheet_are_package_data() -> None:
    """Every template and static file is matched by pyproject's package-data for comms.web,
    so an installed comms serves them too (not only a source checkout)."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    tool = config["tool"]["setuptools"]
    assert "comms.web" in tool["packages"]
    patterns = tool["package-data"]["comms.web"]
    web = root / "comms" / "web"
    files = [
        p.relative_to(web).as_posix()
        for folder in ("templates", "static")
        for p in (web / folder).rglob("*")
        if p.is_file()
    ]
    assert files
    unmatched = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert unmatched == []
