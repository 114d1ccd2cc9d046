"""``[serve]`` in comms.toml and ``comms serve``'s options: where the review server
listens, the address people reach it at, and which proxies it trusts.

Standard library only: the check of the table runs at the start of every command (through
``comms.bootstrap.TABLE_CHECKS``), which must not pay for Starlette or uvicorn.

```toml
[serve]
host = "127.0.0.1"                     # address to listen on
port = 8750
public_url = "https://comms.example"   # the address people use: links, Secure cookies
trusted_proxies = ["10.0.0.5/32"]      # the only peers whose X-Forwarded-* are believed
proxy_header = "X-WEBAUTH-USER"        # opt-in: a trusted proxy names the signed-in user
```
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from comms.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from comms.config_check import TableContext

KEYS = ("host", "port", "public_url", "trusted_proxies", "proxy_header")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750
# As Grafana's auth proxy names it (shown in help; proxy sign-in is off until one is set).
DEFAULT_PROXY_HEADER = "X-WEBAUTH-USER"
# An HTTP header name is a token (RFC 9110 §5.1); letters, digits and - are what proxies use.
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ServeConfig:
    """How ``comms serve`` runs.

    ``public_url`` (None: unknown) is the address people use; an ``https`` one makes the
    session cookie Secure even when a proxy terminates TLS.  ``trusted_proxies`` are the
    only peers whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed.  Sign-in by
    header is a separate opt-in: only with ``proxy_header`` set does a trusted proxy name
    the user in it (trusting a TLS-terminating proxy for addresses must not let every
    client name any user through a header that proxy passes on).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    public_url: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    proxy_header: str | None = None

    def __post_init__(self) -> None:
        plain = tuple(_ipv4_network(n) for n in self.trusted_proxies)
        if plain != self.trusted_proxies:
            object.__setattr__(self, "trusted_proxies", plain)

    @property
    def https(self) -> bool:
        """True when people reach the server over HTTPS (by ``public_url``)."""
        return bool(self.public_url and self.public_url.lower().startswith("https://"))

    @property
    def proxy_auth(self) -> bool:
        """True when a trusted proxy may name the user in ``proxy_header`` (both set)."""
        return bool(self.trusted_proxies) and self.proxy_header is not None

    def trusts(self, address: str | None) -> bool:
        """Whether the peer at ``address`` is one of ``trusted_proxies``.  An IPv4 proxy
        counts in either form: a server listening on ``::`` sees 10.0.0.5 as
        ``::ffff:10.0.0.5`` (and ``trusted_proxies`` hold such networks as IPv4 ones)."""
        if not address or not self.trusted_proxies:
            return False
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:  # a Unix socket path, or "testclient"
            return False
        plain = getattr(peer, "ipv4_mapped", None) or peer
        return any(plain in network or peer in network for network in self.trusted_proxies)

    def link(self, path: str) -> str | None:
        """The absolute address of ``path`` (``/drafts/3``) at ``public_url``, or None."""
        if not self.public_url:
            return None
        return self.public_url.rstrip("/") + path


def parse_port(value: Any) -> int:
    """A TCP port, 0 to 65535 (0: any free port); ``ValueError`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ValueError(f"must be a whole number from 0 to 65535, not {value!r}")
    return value


def parse_host(value: Any) -> str:
    """An address or host name to listen on; ``ValueError`` otherwise."""
    if not isinstance(value, str) or not value.strip() or re.search(r"[\s/]", value):
        raise ValueError(f"must be an address like 127.0.0.1 or 0.0.0.0, not {value!r}")
    return value.strip()


def parse_public_url(value: Any) -> str:
    """An ``http://`` or ``https://`` URL with a host and no query or fragment."""
    if not isinstance(value, str):
        raise ValueError(f"must be a URL like https://comms.example.com, not {value!r}")
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or re.search(r"[\s\x00-\x1f\x7f]", value)
    ):
        raise ValueError(
            f"must be an http:// or https:// URL with a host and no query, like "
            f"https://comms.example.com, not {value!r}"
        )
    return value.strip().rstrip("/")


def _ipv4_network(network: Network) -> Network:
    """An IPv4-mapped IPv6 network (``::ffff:10.0.0.0/120``) as the IPv4 one it maps
    (``10.0.0.0/24``); any other network as it is."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def parse_networks(values: Iterable[Any]) -> tuple[Network, ...]:
    """Addresses or networks in CIDR form (``10.0.0.5``, ``10.0.0.0/24``, ``::1``); an
    IPv4-mapped one (``::ffff:10.0.0.5``) as the IPv4 one it maps."""
    found: list[Network] = []
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"must be addresses or networks like 10.0.0.0/24, not {value!r}")
        try:
            found.append(_ipv4_network(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(
                f"'{value}' is not an address or network; write it like 10.0.0.5 or 10.0.0.0/24"
            ) from None
    return tuple(found)


def parse_header(value: Any) -> str:
    """An HTTP header name such as ``X-WEBAUTH-USER``."""
    if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value.strip()):
        raise ValueError(f"must be a header name like X-WEBAUTH-USER, not {value!r}")
    return value.strip()


_OPTIONS = {
    "host": "--host",
    "port": "--port",
    "public_url": "--public-url",
    "trusted_proxies": "--trusted-proxy",
    "proxy_header": "--proxy-header",
}
_PARSERS = {
    "host": parse_host,
    "port": parse_port,
    "public_url": parse_public_url,
    "trusted_proxies": lambda v: parse_networks(v if isinstance(v, list) else [v]),
    "proxy_header": parse_header,
}


def check_serve(table: Mapping[str, Any], context: TableContext | None = None) -> ServeConfig:
    """The full check of ``[serve]``: ``ConfigError`` at its first problem, else the
    configuration it describes (the defaults for what it leaves out)."""
    unknown = [key for key in table if key not in KEYS]
    if unknown:
        raise ConfigError(f"unknown key 'serve.{unknown[0]}' (known: {', '.join(KEYS)})")
    if "trusted_proxies" in table and not isinstance(table["trusted_proxies"], list):
        raise ConfigError('serve.trusted_proxies must be a list like ["10.0.0.5/32"]')
    values: dict[str, Any] = {}
    for key, value in table.items():
        try:
            values[key] = _PARSERS[key](value)
        except ValueError as exc:
            raise ConfigError(f"serve.{key} {exc}") from None
    if values.get("proxy_header") and not values.get("trusted_proxies"):
        raise ConfigError(
            "serve.proxy_header needs serve.trusted_proxies: the header is believed only from "
            "those proxies"
        )
    return ServeConfig(**values)


def serve_config(
    table: Mapping[str, Any],
    *,
    host: str | None = None,
    port: int | None = None,
    public_url: str | None = None,
    trusted_proxies: Sequence[str] = (),
    proxy_header: str | None = None,
) -> ServeConfig:
    """``[serve]`` with the command line's options over it (an option given wins; the
    ``--trusted-proxy`` list replaces the table's).  A bad option is a ``UsageError``."""
    base = check_serve(table)
    options = {
        "host": host,
        "port": port,
        "public_url": public_url,
        "trusted_proxies": list(trusted_proxies) or None,
        "proxy_header": proxy_header,
    }
    values: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        try:
            values[key] = _PARSERS[key](value)
        except ValueError as exc:
            raise UsageError(f"{_OPTIONS[key]} {exc}") from None
    chosen = ServeConfig(
        host=values.get("host", base.host),
        port=values.get("port", base.port),
        public_url=values.get("public_url", base.public_url),
        trusted_proxies=values.get("trusted_proxies", base.trusted_proxies),
        proxy_header=values.get("proxy_header", base.proxy_header),
    )
    if chosen.proxy_header and not chosen.trusted_proxies:
        raise UsageError(
            "--proxy-header needs --trusted-proxy: the header is believed only from those proxies"
        )
    return chosen
