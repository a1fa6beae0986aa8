"""The addresses a phone on the same network could reach this machine at, and whether the
address a request names (its ``Host``) is one of them."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading

#: Addresses in private and unique-local networks a UDP socket is "connected" to, to learn
#: which local address the routing table would send from; no packet is sent.
_ROUTE_PROBES = {
    socket.AF_INET: ("192.168.255.255", "172.31.255.255", "10.255.255.255"),
    socket.AF_INET6: ("fd00::1", "2001:db8::1"),
}


def lan_addresses(family: socket.AddressFamily = socket.AF_INET) -> list[str]:
    """This machine's addresses other machines could reach it at, the likeliest first.

    From the routing table (the source address towards private networks), then
    from the host name; loopback addresses are left out, which is what
    ``gethostbyname(gethostname())`` gives on a usual Debian install (127.0.1.1).
    """
    found: list[str] = []

    def add(address: str) -> None:
        address = address.split("%", 1)[0]
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return
        if not (parsed.is_loopback or parsed.is_unspecified or parsed.is_link_local
                or address in found):
            found.append(address)

    for probe in _ROUTE_PROBES[family]:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                add(udp.getsockname()[0])
        except OSError:
            continue
    for address in _host_name_addresses(family):
        add(address)
    return found


#: How long the host name's own addresses are waited for: where the name is in no hosts
#: file and DNS does not answer, the lookup would otherwise hold up ``serve`` for many seconds.
HOST_LOOKUP_S = 1.0


def _host_name_addresses(family: socket.AddressFamily) -> list[str]:
    found: list[str] = []

    def look_up() -> None:
        with contextlib.suppress(OSError):
            found.extend(str(info[4][0]) for info in socket.getaddrinfo(
                socket.gethostname(), None, family, socket.SOCK_DGRAM))

    lookup = threading.Thread(target=look_up, daemon=True, name="host-name-lookup")
    lookup.start()
    lookup.join(HOST_LOOKUP_S)
    return list(found) if not lookup.is_alive() else []


def _url(address: str, port: int) -> str:
    return f"http://[{address}]:{port}/" if ":" in address else f"http://{address}:{port}/"


def public_urls(host: str, port: int) -> tuple[list[str], bool]:
    """(URLs a phone could use, the likeliest first; whether they reach beyond this machine)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.lower().rstrip(".") == "localhost":  # loopback by definition (RFC 6761)
            return [f"http://{host}:{port}/"], False
        try:
            resolved = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                        for info in socket.getaddrinfo(host, port)}
        except (OSError, ValueError):
            resolved = set()
        beyond = not resolved or not all(a.is_loopback for a in resolved)
        return [f"http://{host}:{port}/"], beyond
    if address.is_loopback:
        return [_url(host, port)], False
    if address.is_unspecified:
        found = lan_addresses(socket.AF_INET)
        if address.version == 6:
            found += lan_addresses(socket.AF_INET6)
        loopback = "::1" if address.version == 6 and not found else "127.0.0.1"
        return [_url(a, port) for a in found] or [_url(loopback, port)], True
    return [_url(host, port)], True


def public_url(host: str, port: int) -> tuple[str, bool]:
    """(URL a phone would use, whether it reaches beyond this machine)."""
    urls, beyond = public_urls(host, port)
    return urls[0], beyond


#: ``host[:port]``: an IPv6 literal in brackets, or a name or IPv4 address (letters, digits,
#: dots and hyphens).
_AUTHORITY = re.compile(
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(?::([0-9]{1,5}))?")


def split_authority(value: str) -> tuple[str, int | None] | None:
    """(host, port or None) of a ``Host`` header, an IPv6 literal without its brackets;
    None when it is no host and port at all."""
    match = _AUTHORITY.fullmatch(value)
    if match is None:
        return None
    host = match[1]
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return host, int(match[2]) if match[2] else None


def plain_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``address`` parsed, an IPv4 address mapped into IPv6 (a dual-stack socket's view of
    an IPv4 client) as itself. Raises ValueError for anything but an address."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def machine_names() -> frozenset[str]:
    """This machine's host name, in lower case: as it is, its first label, and that under
    ``.local`` (what a phone finds it at by mDNS). No lookup: the names are only compared."""
    name = socket.gethostname().lower().rstrip(".")
    if not name:
        return frozenset()
    short = name.split(".", 1)[0]
    return frozenset({name, short, short + ".local"})


def names_this_server(host: str, port: int | None, local: tuple[str, int], bound: str) -> bool:
    """Whether a request's ``host:port`` names the server bound to ``bound`` (its ``--host``),
    on a connection whose server end is ``local`` (address, port).

    The port must be the one listened on (80 when none is given). The host must be the
    address the connection reached, or any address of this machine when the server listens
    on all of them; ``localhost`` over loopback; the name the server was bound to; or, from
    beyond loopback, this machine's name. Any other name could be a DNS-rebinding page's,
    reading what is served through a browser on this network.
    """
    if (80 if port is None else port) != local[1]:
        return False
    reached = plain_address(local[0])
    try:
        address = plain_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        if name == "localhost":
            return reached.is_loopback
        return name == bound.lower().rstrip(".") or (not reached.is_loopback
                                                     and name in machine_names())
    if address == reached:
        return True
    try:
        any_address = plain_address(bound).is_unspecified
    except ValueError:
        any_address = False
    return any_address and _is_own(address)


def _is_own(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is one of this machine's: only then can a socket be bound to it
    (a system call, no lookup)."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return not address.is_unspecified and not address.is_multicast


#: Foreground and background SGR codes for dark and light modules: black and bright white,
#: set for every character so that the terminal's own colours (light on dark, or dark on
#: light) never show through and invert the code.
_INK = {True: ("30", "40"), False: ("97", "107")}
#: Light modules around the code: a scanner needs at least 4.
QUIET_ZONE = 4


def qr_text(url: str) -> str:
    """A QR code of ``url`` for a terminal: dark modules on light, in colours of its own.

    Each character is two modules, one above the other ("▀" in the upper one's colour on
    the lower one's), and each line ends by resetting the colours.
    """
    import qrcode

    qr = qrcode.QRCode(border=QUIET_ZONE)
    qr.add_data(url)
    matrix: list[list[bool]] = qr.get_matrix()
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    lines = []
    for upper, lower in zip(matrix[::2], matrix[1::2], strict=True):
        line, colours = "", ""
        for top, bottom in zip(upper, lower, strict=True):
            cell = f"\033[{_INK[top][0]};{_INK[bottom][1]}m"
            line += ("" if cell == colours else cell) + "▀"
            colours = cell
        lines.append(line + "\033[0m")
    return "\n".join(lines) + "\n"
