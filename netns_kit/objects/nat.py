"""Kernel settings and NAT: :class:`Sysctl`, :class:`Masquerade`, :class:`PortForward`.

Both emit steps (:mod:`netns_kit.engine.step`), as every object does: the change, and what
undoes it, decided at the time of the change.  A :class:`~netns_kit.Lab` journals
those steps; used on their own, ``apply``/``enable`` run the same steps and keep
their undo for ``restore``/``disable``.  So there is one undo model: a setting is
put back only if it was changed, and a rule that was already there is left alone.
"""

from __future__ import annotations

import abc
import ipaddress
from typing import Self

import attrs

from netns_kit import validate
from netns_kit.command import Command, in_namespace, sysctl_command
from netns_kit.engine.runner import Runner, apply_steps, undo_of
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import ValidationError
from netns_kit.executors import Executor, default_executor
from netns_kit.spec import PortForwardSpec


def _ns(value: object) -> str | None:
    return validate.optional_namespace(value, "namespace")


@attrs.define
class Sysctl:
    """One kernel setting, per namespace (``ip netns exec NS sysctl -w key=value``)."""

    key: str = attrs.field(converter=validate.sysctl_key)
    value: str = attrs.field(converter=validate.sysctl_value)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    previous: str | None = attrs.field(default=None, init=False, eq=False)
    changed: bool = attrs.field(default=False, init=False, eq=False)
    _undo: list[Command] = attrs.field(factory=list, init=False, eq=False, repr=False)

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    def read_command(self) -> Command:
        return in_namespace(("sysctl", "-n", self.key), self.namespace, read=True, mounts=False)

    def write_commands(self, value: str | None = None) -> list[Command]:
        """In a namespace, a command the real kernel's executor carries out by
        writing ``/proc/sys`` from a thread inside it (no ``ip netns exec``, whose
        copy of the mount table grows with every namespace of the machine)."""
        text = self.value if value is None else validate.sysctl_value(value)
        if self.namespace is not None:
            return [sysctl_command([(self.key, text)], self.namespace)]
        argv = ("sysctl", "-q", "-w", f"{self.key}={text}")
        return [in_namespace(argv, self.namespace, mounts=False)]

    def steps(self, current: str | None, *, restore: bool = True) -> list[Step]:
        """The write, unless ``current`` (what the setting holds now) is the value
        already.  With ``restore`` its undo puts ``current`` back; without, nothing
        is put back (a lab's own namespace, which goes away whole)."""
        if current == self.value:
            return []
        undo: tuple[Command, ...] = ()
        entry = None
        if restore and current:
            undo = tuple(self.write_commands(current))
            entry = Entry(
                "sysctl",
                self.key,
                self.namespace,
                undo=undo[0].argv,
                value=self.value,
                previous=current,
            )
        return [Step(self.write_commands()[0], undo, entry, Phase.CONFIGURE)]

    def read(self) -> str:
        return Runner(self._ex).run(self.read_command()).stdout.strip()

    def apply(self) -> Self:
        """Set the value, remembering the old one; no write when it already holds."""
        current = self.read()
        steps = self.steps(current)
        if steps:
            self._undo = undo_of(apply_steps(self._ex, steps)) + self._undo
            self.previous = current or None
            self.changed = True
        return self

    def restore(self) -> None:
        """Put back what :meth:`apply` found, if apply changed anything."""
        undo, self._undo = self._undo, []
        if undo:
            Runner(self._ex).run_all(undo).check()
        self.changed = False


def _source(value: object) -> str:
    return str(validate.network(value, "source"))


def _out(value: object) -> str | None:
    return None if value is None else validate.interface_name(value, "out_interface")


def _comment(value: object) -> str:
    return validate.plain_text(value, "comment", limit=256)


class TaggedRule(abc.ABC):
    """What a masquerade and a port forward share: one iptables rule in the nat
    table, found again by ``-C`` (so it is appended once and recovery can tell it is
    still there), and the forwarding it needs to see any traffic at all.

    A subclass says which IP version it is, what its record entry is called, and how
    its rule is written for an iptables operation (``-C``, ``-A``, ``-D``).
    """

    __slots__ = ()

    namespace: str | None
    executor: Executor | None

    @property
    @abc.abstractmethod
    def version(self) -> int:
        """4 or 6: which of iptables and ip6tables writes the rule."""

    @property
    @abc.abstractmethod
    def _entry_name(self) -> str:
        """The rule's name in the lab's record."""

    @abc.abstractmethod
    def _iptables(self, operation: str) -> Command:
        """The rule as an iptables command for ``operation`` (-C, -A or -D)."""

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def forwarding_key(self) -> str:
        return "net.ipv4.ip_forward" if self.version == 4 else "net.ipv6.conf.all.forwarding"

    def forwarding(self) -> Sysctl:
        """The setting the rule needs: forwarding on, in the rule's namespace."""
        return Sysctl(self.forwarding_key, "1", self.namespace, executor=self.executor)

    def check_command(self) -> Command:
        return self._iptables("-C")

    def add_commands(self) -> list[Command]:
        """Append the rule unless an identical one is already there."""
        return [attrs.evolve(self._iptables("-A"), unless=self.check_command())]

    def delete_commands(self) -> list[Command]:
        return [self._iptables("-D")]

    def rule_step(self) -> Step:
        """The rule, recorded with the check that tells recovery it is still there."""
        delete = self.delete_commands()[0]
        entry = Entry(
            "iptables",
            self._entry_name,
            self.namespace,
            undo=delete.argv,
            check=self.check_command().argv,
        )
        return Step(self.add_commands()[0], (delete,), entry, Phase.FILTER)

    def exists(self) -> bool:
        return bool(Runner(self._ex).run(self.check_command(), check=False))


@attrs.define
class Masquerade(TaggedRule):
    """NAT by IP masquerade for ``source``, tagged with ``comment``, for traffic that
    leaves ``source``'s network (``-s NET ! -d NET``).

    The rule is appended only when ``iptables -C`` says it is missing (``-A`` twice
    makes two rules), and forwarding is turned back off only if :meth:`enable` was
    the one that turned it on.
    """

    source: str = attrs.field(converter=_source)
    out_interface: str | None = attrs.field(default=None, converter=_out)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    comment: str = attrs.field(default="netns-kit", converter=_comment)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    #: Whether enable() added the rule (True) or found it there (False); None before.
    added: bool | None = attrs.field(default=None, init=False, eq=False, repr=False)
    _undo: list[Command] | None = attrs.field(default=None, init=False, eq=False, repr=False)

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.source).version

    @property
    def _entry_name(self) -> str:
        return self.source

    def _iptables(self, operation: str) -> Command:
        tool = "iptables" if self.version == 4 else "ip6tables"
        # "! -d SOURCE": traffic that stays inside the source network is never NATed.
        # With br_netfilter, frames bridged between two ports of one bridge pass
        # iptables too, and a bare "-s NET" rule would rewrite LAN traffic (libvirt
        # writes the same exclusion).
        argv = [tool, "-w", "-t", "nat", operation, "POSTROUTING", "-s", self.source]
        argv += ["!", "-d", self.source]
        if self.out_interface:
            argv += ["-o", self.out_interface]
        argv += ["-m", "comment", "--comment", self.comment, "-j", "MASQUERADE"]
        return in_namespace(argv, self.namespace, read=operation == "-C", mounts=False)

    def enable(self) -> Self:
        """Turn forwarding on and add the rule; on failure, put forwarding back."""
        forwarding, rule = self.forwarding(), self.rule_step()
        ran = apply_steps(self._ex, [*forwarding.steps(forwarding.read()), rule])
        self.added = bool(self.added) or rule in ran
        self._undo = undo_of(ran) + (self._undo or [])
        return self

    def disable(self) -> None:
        """Remove the rule, and put forwarding back if enable() turned it on.

        A rule that enable() found already there is left alone: it is not ours.
        Without enable(), disable() removes the rule (NotFoundError if there is none).
        """
        undo = self.delete_commands() if self._undo is None else self._undo
        self._undo = None
        self.added = None
        Runner(self._ex).run_all(undo, keep_going=True).check()


#: What a port forward forwards: TCP connections, or UDP datagrams (conntrack keeps
#: a UDP "connection" too, so the replies go back through the same translation).
PROTOCOLS = ("tcp", "udp")


def _protocol(value: object) -> str:
    if value not in PROTOCOLS:
        raise ValidationError("protocol", value, "must be 'tcp' or 'udp' (forward both: twice)")
    return str(value)


def _in(value: object) -> str | None:
    return None if value is None else validate.interface_name(value, "in_interface")


def _port(value: object) -> str:
    return validate.port_text(validate.ports(value, "port"))


def _to(value: object) -> str:
    host, span = validate.target(value, "to")
    shown = f"[{host}]" if host.version == 6 and span is not None else str(host)
    return shown if span is None else f"{shown}:{validate.port_text(span)}"


@attrs.define
class PortForward(TaggedRule):
    """A port forward: connections to ``port`` (arriving on ``in_interface``, or on any
    interface) are sent on to ``to``, by DNAT in the nat table's PREROUTING chain,
    tagged with ``comment``.

    ``port`` is a port or a range ``"8000-8010"``; ``to`` is ``ADDR`` (the port stays
    the same), ``ADDR:PORT`` or ``[IPV6]:PORT``.  A range keeps each connection's port:
    ``to`` then has no port, or exactly the same range (anything else would send many
    ports to one, or map them in no order).  Only traffic that passes through the
    namespace is forwarded: a connection the namespace makes itself, or one from the
    target's own network to the namespace's address (hairpin), is not.  Like a
    masquerade, it needs forwarding on (:meth:`forwarding`): without it the kernel
    drops a forwarded connection silently.
    """

    port: str = attrs.field(converter=_port)
    to: str = attrs.field(converter=_to)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    in_interface: str | None = attrs.field(default=None, converter=_in)
    protocol: str = attrs.field(default="tcp", converter=_protocol)
    comment: str = attrs.field(default="netns-kit", converter=_comment)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        span = validate.ports(self.port)
        _, target = validate.target(self.to)
        if span[0] != span[1] and target is not None and target != span:
            raise ValidationError(
                "to",
                self.to,
                f"gives ports for the range {self.port}: a range keeps each port, so 'to' "
                "takes no port (or the same range)",
            )
        if span[0] != span[1] and target is not None:  # the same range: the same rule
            self.to = str(self.address)

    @property
    def address(self) -> validate.IPAddress:
        return validate.target(self.to)[0]

    @property
    def ports(self) -> tuple[int, int]:
        return validate.ports(self.port)

    @property
    def version(self) -> int:
        return self.address.version

    @property
    def _entry_name(self) -> str:
        return f"{self.protocol} {self.port}"

    def _iptables(self, operation: str) -> Command:
        tool = "iptables" if self.version == 4 else "ip6tables"
        argv = [tool, "-w", "-t", "nat", operation, "PREROUTING"]
        if self.in_interface:
            argv += ["-i", self.in_interface]
        argv += ["-p", self.protocol, "--dport", validate.port_text(self.ports, ":")]
        argv += ["-m", "comment", "--comment", self.comment]
        argv += ["-j", "DNAT", "--to-destination", self.to]
        return in_namespace(argv, self.namespace, read=operation == "-C", mounts=False)

    def spec(self, namespace: str | None) -> PortForwardSpec:
        """Its description; ``namespace`` as a topology says it (``None``: host side)."""
        return PortForwardSpec(self.port, self.to, self.protocol, self.in_interface, namespace)


def overlap(a: PortForwardSpec, b: PortForwardSpec) -> bool:
    """Whether two forwards would catch the same connections: the same namespace and
    protocol, ports in common, and the same interface or either on every interface.
    The second such rule would never see a connection, and its undo would remove the
    first one's rule when the two are the same."""
    if (a.namespace, a.protocol) != (b.namespace, b.protocol):
        return False
    if a.in_interface and b.in_interface and a.in_interface != b.in_interface:
        return False
    first, second = validate.ports(a.port), validate.ports(b.port)
    return first[0] <= second[1] and second[0] <= first[1]
