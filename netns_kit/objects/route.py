"""Routes (``ip route add DEST [via GW] [dev DEV]``)."""

from __future__ import annotations

from typing import Self

import attrs

from netns_kit import validate
from netns_kit.command import Command, ip
from netns_kit.engine.runner import act
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import ValidationError
from netns_kit.executors import Executor, default_executor


def _destination(value: object) -> str:
    if value == "default":
        return "default"
    return str(validate.network(value, "destination"))


def _via(value: object) -> str | None:
    return None if value is None else str(validate.address(value, "via"))


def _dev(value: object) -> str | None:
    return None if value is None else validate.interface_name(value, "dev")


def _ns(value: object) -> str | None:
    return validate.optional_namespace(value, "namespace")


def _version(text: str) -> int:
    return validate.network(text).version if "/" in text else validate.address(text).version


def mismatch(destination: str, via: str | None) -> str | None:
    """Why a gateway cannot serve a destination (another IP version), or ``None``.

    ``default`` takes its version from the gateway; one rule for the objects and the
    topology check alike.
    """
    if via is None or destination == "default" or _version(via) == _version(destination):
        return None
    return f"is IPv{_version(via)} but the destination {destination} is not"


def version(destination: str, via: str | None) -> int:
    """The IP version of a route: the destination's, or for ``default`` the gateway's."""
    if destination != "default":
        return _version(destination)
    return _version(via) if via else 4


@attrs.define
class Route:
    """A route: ``destination`` is ``"default"`` or a network; ``via`` a bare address.

    IPv6 routes get ``ip -6``: without it ``default`` means the IPv4 default.
    """

    destination: str = attrs.field(converter=_destination)
    via: str | None = attrs.field(default=None, converter=_via)
    dev: str | None = attrs.field(default=None, converter=_dev)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.via is None and self.dev is None:
            raise ValidationError("via", None, "is missing: a route needs a gateway or a dev")
        problem = mismatch(self.destination, self.via)
        if problem is not None:
            raise ValidationError("via", self.via, problem)

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def version(self) -> int:
        return version(self.destination, self.via)

    def _command(self, verb: str) -> Command:
        args: list[str] = ["-6"] if self.version == 6 else []
        args += ["route", verb, self.destination]
        if self.via:
            args += ["via", self.via]
        if self.dev:
            args += ["dev", self.dev]
        return ip(*args, namespace=self.namespace)

    def add_commands(self) -> list[Command]:
        return [self._command("add")]

    def delete_commands(self) -> list[Command]:
        return [self._command("delete")]

    def replace_commands(self) -> list[Command]:
        return [self._command("replace")]

    def add_step(self) -> Step:
        """Recorded, undone by deleting it; an IPv6 route waits for IPv6 addresses."""
        (undo,) = self.delete_commands()
        entry = Entry("route", self.destination, self.namespace, undo=undo.argv)
        phase = Phase.ADDRESS6 if self.version == 6 else Phase.CONFIGURE
        return Step(self.add_commands()[0], (undo,), entry, phase)

    def add(self) -> Self:
        act(self._ex, self.add_commands())
        return self

    def delete(self) -> None:
        act(self._ex, self.delete_commands())

    def replace(self) -> Self:
        act(self._ex, self.replace_commands())
        return self
