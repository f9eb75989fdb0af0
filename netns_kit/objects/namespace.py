"""Network namespaces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import attrs

from netns_kit import validate
from netns_kit.command import Command, in_namespace, ip, sysctl_command
from netns_kit.engine.runner import Runner, act
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import ValidationError, result_error
from netns_kit.executors import Executor, Process, default_executor
from netns_kit.objects.ping import PingResult
from netns_kit.readback.reader import (
    AddressInfo,
    LinkInfo,
    Reader,
    RouteInfo,
    namespace_names,
    namespaces_command,
)
from netns_kit.readback.snapshot import snapshot
from netns_kit.readback.tables import to_html_table
from netns_kit.result import Result


@attrs.define
class Namespace:
    """A named network namespace (``ip netns add NAME``)."""

    name: str = attrs.field(converter=validate.namespace_name)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    #: Told about every process :meth:`popen` starts; a Lab uses it to stop them.
    on_start: Callable[[Process], None] | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=False
    )

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    # -- commands (pure) ---------------------------------------------------------
    def create_commands(self) -> list[Command]:
        """Add the namespace and bring its loopback up, which nearly every test needs."""
        return [ip("netns", "add", self.name), self._lo_up()]

    def _lo_up(self, *tag: str) -> Command:
        return ip("link", "set", "dev", "lo", "up", *tag, namespace=self.name)

    def delete_commands(self) -> list[Command]:
        return [ip("netns", "delete", self.name)]

    @staticmethod
    def list_command() -> Command:
        return namespaces_command()

    def create_steps(self, tag: str | None = None) -> list[Step]:
        """Add it (recorded, undone by deleting it), then ``lo`` up with the lab's tag.

        The tag on ``lo`` is how recovery knows a namespace of that name is the lab's.
        Deleting the namespace is never skipped at teardown (``lives_in`` is empty).
        """
        (delete,) = self.delete_commands()
        add = Step(
            ip("netns", "add", self.name),
            (delete,),
            Entry("namespace", self.name),
            Phase.NAMESPACE,
            frozenset(),
        )
        return [add, Step(self._lo_up(*(("alias", tag) if tag else ())))]

    def setting_step(self, *settings: tuple[str, object], missing_ok: bool = False) -> Step:
        """Kernel settings of this namespace, made right after it is created, before
        any of its links (:attr:`Phase.SETTINGS`).

        The command is the namespace's own (:func:`~netns_kit.command.sysctl_command`):
        the real kernel's executor writes ``/proc/sys`` from a thread inside the
        namespace, without a process; other executors run ``ip netns exec NS sysctl``.
        (A line of the root's ``ip -batch`` made every build O(N^2): each such line
        copies the machine's whole mount table.)  ``missing_ok`` ignores settings
        this kernel does not have (``sysctl -e``).  Nothing undoes them: they go with
        the namespace.
        """
        pairs = [(validate.sysctl_key(k), validate.sysctl_value(v)) for k, v in settings]
        command = sysctl_command(pairs, self.name, missing_ok=missing_ok)
        return Step(command, phase=Phase.SETTINGS, lives_in=frozenset({self.name}))

    def run_command(self, argv: Sequence[str]) -> Command:
        return in_namespace(validate.argv(argv), self.name)

    def ping_command(
        self, address: str, count: int = 1, interval: float = 0.2, timeout: float = 1.0
    ) -> Command:
        target = validate.address(address)
        count = validate.positive_int(count, "count", maximum=100_000)
        return in_namespace(
            (
                "ping",
                "-n",
                "-q",
                "-c",
                str(count),
                "-i",
                _seconds(interval, "interval"),
                "-W",
                _seconds(timeout, "timeout"),
                str(target),
            ),
            self.name,
            read=True,
        )

    # -- actions -----------------------------------------------------------------
    def create(self) -> Self:
        act(self._ex, self.create_commands())
        return self

    def delete(self) -> None:
        act(self._ex, self.delete_commands())

    def exists(self) -> bool:
        return self.name in namespace_names(self._ex)

    def run(self, argv: Sequence[str], check: bool = True, timeout: float | None = None) -> Result:
        """Run a program inside the namespace (``ip netns exec``)."""
        return Runner(self._ex).run(self.run_command(argv), check=check, timeout=timeout)

    def popen(self, argv: Sequence[str]) -> Process:
        """Start a program in the namespace in the background (a server, say).

        The Process has ``pid``, ``stop()`` and ``wait()``; a lab stops every process
        its namespaces started before it deletes them.
        """
        process = self._ex.start(self.run_command(argv))
        if self.on_start is not None:
            self.on_start(process)
        return process

    def ping(
        self, address: str, count: int = 1, interval: float = 0.2, timeout: float = 1.0
    ) -> PingResult:
        """Ping from inside the namespace; no reply is a falsy result, not an error."""
        command = self.ping_command(address, count, interval, timeout)
        budget = count * interval + timeout + 5.0
        result = Runner(self._ex).run(command, check=False, timeout=budget)
        if result.returncode not in (0, 1):  # 1 is "no reply"; anything else is an error
            raise result_error(result)
        return PingResult.parse(str(validate.address(address)), result.stdout)

    # -- readers (ip -j, see netns_kit.readback.reader) ------------------------------------
    def links(self) -> list[LinkInfo]:
        """The namespace's interfaces, with each veth's peer named where possible."""
        return Reader(self._ex).links(self.name)

    def addresses(self) -> list[AddressInfo]:
        return Reader(self._ex).addresses(self.name)

    def routes(self) -> list[RouteInfo]:
        """The main table: IPv4 routes, then IPv6."""
        return Reader(self._ex).routes(self.name)

    def _repr_html_(self) -> str:
        """Jupyter: this namespace's interfaces, addresses, states and masters."""
        return to_html_table(snapshot(self._ex, [self.name]))


def list_namespaces(executor: Executor | None = None) -> list[str]:
    """Names of the namespaces ``ip netns`` knows.  Empty output means none."""
    return namespace_names(executor or default_executor())


def _seconds(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ValidationError(field, value, "is not a number of seconds in (0, 3600]")
    return f"{value:g}"
