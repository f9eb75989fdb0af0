"""Kernel settings and NAT: :class:`Sysctl` and :class:`Masquerade`.

Both remember what they changed, so that undoing them puts the machine back exactly
as it was and never turns off a setting that somebody else turned on.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Self

import attrs

from . import validate
from .command import Command, in_namespace
from .errors import ValidationError
from .executor import Executor, default_executor

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\Z")


def _key(value: object) -> str:
    if not isinstance(value, str) or not _KEY.match(value) or ".." in value:
        raise ValidationError("key", value, "is not a sysctl key (like 'net.ipv4.ip_forward')")
    return value


def _value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError("value", value, "is not a string or an integer")
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        # Beyond the kernel's 64-bit settings; and str() of a huge one raises ValueError.
        raise ValidationError("value", value, "does not fit in 64 bits, as a sysctl value must")
    text = str(value)
    if not text or any(not ch.isprintable() or ch in "\t\n" for ch in text):
        raise ValidationError("value", value, "is empty or holds control characters")
    return text


def _ns(value: object) -> str | None:
    return validate.optional_namespace(value, "namespace")  # type: ignore[arg-type]


@attrs.define
class Sysctl:
    """One kernel setting, per namespace (``ip netns exec NS sysctl -w key=value``)."""

    key: str = attrs.field(converter=_key)
    value: str = attrs.field(converter=_value)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    previous: str | None = attrs.field(default=None, init=False, eq=False)
    changed: bool = attrs.field(default=False, init=False, eq=False)

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    def read_command(self) -> Command:
        return in_namespace(("sysctl", "-n", self.key), self.namespace, read=True)

    def write_commands(self, value: str | None = None) -> list[Command]:
        text = self.value if value is None else _value(value)
        return [in_namespace(("sysctl", "-q", "-w", f"{self.key}={text}"), self.namespace)]

    def read(self) -> str:
        return self._ex.run(self.read_command()).stdout.strip()

    def apply(self) -> Self:
        """Set the value, remembering the old one; no write when it already holds."""
        current = self.read()
        if current == self.value:
            return self
        self._ex.run_all(self.write_commands())
        self.previous = current or None
        self.changed = True
        return self

    def restore(self) -> None:
        """Put back what :meth:`apply` found, if apply changed anything."""
        if self.changed and self.previous is not None:
            self._ex.run_all(self.write_commands(self.previous))
        self.changed = False


def _source(value: object) -> str:
    return str(validate.network(value, "source"))


def _out(value: object) -> str | None:
    return None if value is None else validate.interface_name(value, "out_interface")


def _comment(value: object) -> str:
    return validate.plain_text(value, "comment", limit=256)


@attrs.define
class Masquerade:
    """NAT by IP masquerade for ``source``, tagged with ``comment``.

    The rule is appended only when ``iptables -C`` says it is missing (``-A`` twice
    makes two rules), and forwarding is turned back off only if :meth:`enable` was
    the one that turned it on.
    """

    source: str = attrs.field(converter=_source)
    out_interface: str | None = attrs.field(default=None, converter=_out)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    comment: str = attrs.field(default="netns-kit", converter=_comment)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    forwarding: Sysctl | None = attrs.field(default=None, init=False, eq=False, repr=False)
    #: Whether enable() added the rule (True) or found it there (False); None before.
    added: bool | None = attrs.field(default=None, init=False, eq=False, repr=False)

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.source).version

    @property
    def forwarding_key(self) -> str:
        return "net.ipv4.ip_forward" if self.version == 4 else "net.ipv6.conf.all.forwarding"

    def _iptables(self, operation: str) -> Command:
        tool = "iptables" if self.version == 4 else "ip6tables"
        argv = [tool, "-w", "-t", "nat", operation, "POSTROUTING", "-s", self.source]
        if self.out_interface:
            argv += ["-o", self.out_interface]
        argv += ["-m", "comment", "--comment", self.comment, "-j", "MASQUERADE"]
        return in_namespace(argv, self.namespace, read=operation == "-C")

    def check_command(self) -> Command:
        return self._iptables("-C")

    def add_commands(self) -> list[Command]:
        """Append the rule unless an identical one is already there."""
        return [attrs.evolve(self._iptables("-A"), unless=self.check_command())]

    def delete_commands(self) -> list[Command]:
        return [self._iptables("-D")]

    def exists(self) -> bool:
        return bool(self._ex.run(self.check_command(), check=False))

    def enable(self) -> Self:
        """Turn forwarding on and add the rule; on failure, put forwarding back."""
        if self.forwarding is None or not self.forwarding.changed:  # keep what we changed
            self.forwarding = Sysctl(
                self.forwarding_key, "1", self.namespace, executor=self.executor
            ).apply()
        try:
            (result,) = self._ex.run_all(self.add_commands())
        except BaseException:
            self._restore_forwarding()
            raise
        # the guard's own result comes back when the rule was already there
        self.added = bool(self.added) or result.argv != self.check_command().argv
        return self

    def disable(self) -> None:
        """Remove the rule, and put forwarding back if enable() turned it on.

        A rule that enable() found already there is left alone: it is not ours.
        Without enable(), disable() removes the rule (NotFoundError if there is none).
        """
        try:
            if self.added is not False:
                self._ex.run_all(self.delete_commands())
            self.added = None
        finally:
            self._restore_forwarding()

    def _restore_forwarding(self) -> None:
        if self.forwarding is not None:
            self.forwarding.restore()
            self.forwarding = None
