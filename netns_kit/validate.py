"""Input checks that run before any command.

The rules follow the kernel's own (docs/architecture.md, "Names and addresses"): a
name the kernel would refuse, rename (``x%d``), or take as something else (``-v``,
``all``) is refused here with a :class:`ValidationError` naming the field and the
value, so nothing ever runs half-way.  Characters that break an ``ip -batch`` line
(``#``, quotes, backslash) are refused too, because batch lines have no quoting.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from netns_kit.errors import ValidationError

IFNAME_MAX = 15
NSNAME_MAX = 64
_FORBIDDEN = frozenset("/:%#'\"\\")
_RESERVED = frozenset({".", "..", "all", "default"})

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _name(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, value, "is not a name (expected a string)")
    if not value:
        raise ValidationError(field, value, "is empty")
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        raise ValidationError(field, value, f"is longer than {limit} bytes")
    for ch in value:
        if not (0x21 <= ord(ch) <= 0x7E):
            raise ValidationError(
                field, value, f"holds {ch!r}: only printable ASCII without spaces is allowed"
            )
        if ch in _FORBIDDEN:
            raise ValidationError(field, value, f"holds the forbidden character {ch!r}")
    if value.startswith("-"):
        raise ValidationError(field, value, "starts with '-' and would be read as an option")
    if value in _RESERVED:
        raise ValidationError(field, value, "is a reserved name")
    return value


def interface_name(value: object, field: str = "name") -> str:
    """An interface name the kernel takes as-is: 1-15 bytes, printable ASCII."""
    return _name(value, field, IFNAME_MAX)


def namespace_name(value: object, field: str = "namespace") -> str:
    """A network-namespace name: the interface rules, up to 64 bytes."""
    return _name(value, field, NSNAME_MAX)


def optional_namespace(value: object, field: str = "namespace") -> str | None:
    """Accept a Namespace (anything with a ``name``), a name or None, and give back
    the checked name."""
    if value is None:
        return None
    name = getattr(value, "name", value)
    return namespace_name(name, field)


_Parsed = TypeVar("_Parsed", IPInterface, IPNetwork, IPAddress)


def _unscoped(parsed: _Parsed, field: str, value: object) -> _Parsed:
    """Refuse an IPv6 scope id (``fe80::1%eth0``): ``ipaddress`` takes any text after
    the ``%``, spaces, ``#`` and newlines included, and iproute2 takes none."""
    if "%" in str(parsed):
        raise ValidationError(field, value, "holds a scope id ('%...'); name the link with dev")
    return parsed


def interface(value: object, field: str = "address") -> IPInterface:
    """An address with its prefix length, as ``ip addr add`` wants it.

    A bare address is refused: iproute2 would take it as /32 (or /128), and the
    neighbours on the link would then be unreachable, silently.
    """
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return _unscoped(value, field, value)
    if not isinstance(value, str):
        raise ValidationError(field, value, "is not an address with a prefix (a string)")
    if "/" not in value:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            suggestion = "/24" if addr.version == 4 else "/64"
            raise ValidationError(
                field,
                value,
                f"has no prefix length; iproute2 would take it as a host route "
                f"and the link's neighbours would be unreachable "
                f"(did you mean '{value}{suggestion}'?)",
            )
    parsed = _parsed_interface(value)
    if parsed is None:
        raise ValidationError(field, value, "is not an IPv4 or IPv6 interface")
    return _unscoped(parsed, field, value)


#: Texts parsed once and kept: more than a 10,000-namespace lab's addresses (its
#: checks meet each address at several places, far apart), a few MB at most.
PARSED_KEPT = 1 << 16


@functools.lru_cache(maxsize=PARSED_KEPT)
def _parsed_interface(text: str) -> IPInterface | None:
    """``ipaddress`` is slow (about 20 us an address), and a lab checks each address at
    several places (the file, the builder, the step): parse each text once."""
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def address(value: object, field: str = "address") -> IPAddress:
    """A bare address (a gateway, a ping target)."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return _unscoped(value, field, value)
    if not isinstance(value, str):
        raise ValidationError(field, value, "is not an IP address (a string)")
    parsed = _parsed_address(value)
    if parsed is None:
        raise ValidationError(field, value, "is not an IPv4 or IPv6 address")
    return _unscoped(parsed, field, value)


@functools.lru_cache(maxsize=PARSED_KEPT)
def _parsed_address(text: str) -> IPAddress | None:
    """As :func:`_parsed_interface`, for bare addresses (gateways)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def network(value: object, field: str = "network") -> IPNetwork:
    """A network with no host bits set, as ``ip route`` and iptables want it."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return _unscoped(value, field, value)
    if not isinstance(value, str):
        raise ValidationError(field, value, "is not a network (a string)")
    try:
        parsed = ipaddress.ip_network(value)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValidationError(field, value, "is not an IPv4 or IPv6 network") from None
        raise ValidationError(
            field, value, f"has host bits set (did you mean '{loose}'?)"
        ) from None
    return _unscoped(parsed, field, value)


def positive_int(value: object, field: str, *, minimum: int = 1, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "is not a whole number")
    if not minimum <= value <= maximum:
        raise ValidationError(field, value, f"is not between {minimum} and {maximum}")
    return value


def plain_text(value: object, field: str, *, limit: int = 255) -> str:
    """Free text that must stay one argv element and one batch/script line."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "is not a string")
    if not value or len(value) > limit:
        raise ValidationError(field, value, f"must be 1 to {limit} characters")
    if any(not ch.isprintable() for ch in value) or any(ch in "#'\"\\" for ch in value):
        raise ValidationError(field, value, "holds a control, quote, '#' or backslash character")
    return value


def argv(value: object, field: str = "argv") -> tuple[str, ...]:
    """A command to run: a non-empty sequence of strings, never one shell string."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError(
            field,
            value,
            "must be a list of arguments (not a shell string), e.g. ['ping', '-c1', 'x']",
        )
    if not value or not all(isinstance(a, str) for a in value):
        raise ValidationError(field, value, "must be a non-empty list of strings")
    return tuple(value)


_SYSCTL_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\Z")


def sysctl_key(value: object, field: str = "key") -> str:
    """A kernel setting's name, as ``sysctl`` takes it (``net.ipv4.ip_forward``)."""
    if not isinstance(value, str) or not _SYSCTL_KEY.match(value) or ".." in value:
        raise ValidationError(field, value, "is not a sysctl key (like 'net.ipv4.ip_forward')")
    return value


def sysctl_value(value: object, field: str = "value") -> str:
    """A kernel setting's value: a string or an integer, one line, printable."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(field, value, "is not a string or an integer")
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        # Beyond the kernel's 64-bit settings; and str() of a huge one raises ValueError.
        raise ValidationError(field, value, "does not fit in 64 bits, as a sysctl value must")
    text = str(value)
    if not text or any(not ch.isprintable() or ch in "\t\n" for ch in text):
        raise ValidationError(field, value, "is empty or holds control characters")
    return text


#: A lab's name leaves room for the suffixes of the lab's own namespaces (64 bytes).
LAB_NAME_MAX = 58


def lab_name(value: object, field: str = "name") -> str:
    """A lab's name: a namespace name short enough to take ``-host`` after it."""
    name = namespace_name(value, field)
    if len(name.encode()) > LAB_NAME_MAX:
        raise ValidationError(
            field,
            value,
            f"is longer than {LAB_NAME_MAX} bytes (the lab's own namespace "
            "names add a suffix to it)",
        )
    return name


_PORTS = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?\Z")


def ports(value: object, field: str = "port") -> tuple[int, int]:
    """A port (1-65535), or a range ``"FIRST-LAST"``: the first and last port."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError(field, value, "is not a port (1-65535) or a range 'FIRST-LAST'")
    if isinstance(value, int):
        return (positive_int(value, field, maximum=65535),) * 2
    found = _PORTS.match(value)
    if found is None:
        raise ValidationError(field, value, "is not a port (1-65535) or a range 'FIRST-LAST'")
    first = int(found.group(1))
    last = int(found.group(2) or first)
    if not 1 <= first <= 65535 or not 1 <= last <= 65535:
        raise ValidationError(field, value, "holds a port outside 1-65535")
    if last < first:
        raise ValidationError(field, value, "is a range that ends before it starts")
    return first, last


def port_text(span: tuple[int, int], sep: str = "-") -> str:
    """``8080``, or ``8000-8010`` (``sep`` is ``:`` for iptables' ``--dport``)."""
    first, last = span
    return str(first) if first == last else f"{first}{sep}{last}"


def target(value: object, field: str = "to") -> tuple[IPAddress, tuple[int, int] | None]:
    """Where a port forward goes: ``ADDR``, ``ADDR:PORT``, ``[V6ADDR]:PORT`` or a bare
    IPv6 address; ports as :func:`ports` reads them."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "is not an address, or ADDR:PORT (a string)")
    text, port = value, None
    if value.startswith("["):
        head, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValidationError(field, value, "is not '[IPV6]:PORT'")
        text, port = head, (rest[1:] if rest else None)
    elif value.count(":") == 1:
        text, _, port = value.partition(":")
    host = address(text, field)
    if value.startswith("[") and host.version != 6:
        raise ValidationError(field, value, "puts an IPv4 address in brackets (write ADDR:PORT)")
    if host.is_unspecified or host.is_multicast or host.is_loopback:
        raise ValidationError(field, value, "is not an address a forwarded port can go to")
    return host, None if port is None else ports(port, field)


_SSH_HOST = re.compile(r"[A-Za-z0-9_.:%-]{1,255}\Z")
_SSH_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\Z")


def ssh_host(value: object, field: str = "host") -> str:
    """A machine as ssh names it: a host name, an ``ssh_config`` alias or an IP
    address (IPv6 without brackets).  No user (``user=`` says it), no port
    (``port=``), and never a leading ``-``, which ssh would take as an option."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "is not a host name or address (a string)")
    if "@" in value:
        raise ValidationError(field, value, "holds '@': give the user as user=...")
    if value.startswith("-"):
        raise ValidationError(field, value, "starts with '-' and would be read as an option")
    if not _SSH_HOST.match(value):
        raise ValidationError(
            field, value, "is not a host name or address (letters, digits and . _ - : % only)"
        )
    return value


def ssh_user(value: object, field: str = "user") -> str:
    """A login name: letters, digits, ``.``, ``_`` and ``-``, not starting with ``-``."""
    if not isinstance(value, str) or not _SSH_USER.match(value):
        raise ValidationError(
            field, value, "is not a login name (up to 32 letters, digits, '.', '_' or '-')"
        )
    return value


def options(value: object, field: str = "ssh_options") -> tuple[str, ...]:
    """Extra arguments for a program (``ssh -o ...``): a sequence of strings, never
    one string (which would split into letters), and no NUL byte (execve refuses it)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError(
            field, value, "must be a list of arguments, e.g. ('-o', 'ConnectTimeout=5')"
        )
    if not all(isinstance(a, str) and "\0" not in a for a in value):
        raise ValidationError(field, value, "must hold strings without NUL bytes")
    return tuple(value)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def renamed_keywords(**renamed: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Refuse keywords that 0.3 renamed, saying what they are called now.

    ``@renamed_keywords(hosts="machines")`` turns ``f(hosts=...)`` into a
    :class:`ValidationError` that names the new keyword, instead of Python's bare
    "unexpected keyword argument".  There are no aliases: the old word meant several
    things, and accepting it would keep the confusion alive.
    """

    def wrap(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            for old, new in renamed.items():
                if old in kwargs:
                    raise ValidationError(
                        old,
                        kwargs[old],
                        f"was renamed to {new}= in netns_kit 0.3 ({function.__qualname__})",
                    )
            return function(*args, **kwargs)

        return checked

    return wrap
