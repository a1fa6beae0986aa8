"""The addresses a phone on the same network could reach this machine at."""

from __future__ import annotations

import contextlib
import ipaddress
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


def qr_text(url: str) -> str:
    """A QR code of ``url`` drawn with text blocks, for a terminal."""
    import io

    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(url)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()
