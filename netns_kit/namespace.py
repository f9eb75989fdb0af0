"""Network namespaces."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Self

import attrs

from . import validate
from .command import Command, in_namespace, ip
from .errors import ValidationError, command_error
from .executor import Executor, Process, Result, default_executor
from .inspect import AddressInfo, LinkInfo, Reader, RouteInfo
from .ping import PingResult


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
        return [
            ip("netns", "add", self.name),
            ip("link", "set", "dev", "lo", "up", namespace=self.name),
        ]

    def delete_commands(self) -> list[Command]:
        return [ip("netns", "delete", self.name)]

    @staticmethod
    def list_command() -> Command:
        return ip("-j", "netns", "list", read=True)

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
        self._ex.run_all(self.create_commands())
        return self

    def delete(self) -> None:
        self._ex.run_all(self.delete_commands())

    def exists(self) -> bool:
        return self.name in list_namespaces(self._ex)

    def run(self, argv: Sequence[str], check: bool = True, timeout: float | None = None) -> Result:
        """Run a program inside the namespace (``ip netns exec``)."""
        return self._ex.run(self.run_command(argv), check=check, timeout=timeout)

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
        result = self._ex.run(command, check=False, timeout=budget)
        if result.returncode not in (0, 1):  # 1 is "no reply"; anything else is an error
            raise command_error(result.argv, result.returncode, result.stdout, result.stderr)
        return PingResult.parse(str(command.argv[-1]), result.stdout)

    # -- readers (ip -j, see netns_kit.inspect) ----------------------------------
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
        from . import render
        from .inspect import snapshot

        return render.to_html_table(snapshot(self._ex, [self.name]))


def list_namespaces(executor: Executor | None = None) -> list[str]:
    """Names of the namespaces ``ip netns`` knows.  Empty output means none."""
    result = (executor or default_executor()).run(Namespace.list_command())
    if not result.stdout.strip():
        return []
    return [entry["name"] for entry in json.loads(result.stdout)]


def _seconds(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ValidationError(field, value, "is not a number of seconds in (0, 3600]")
    return f"{value:g}"
