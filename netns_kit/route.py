"""Routes (``ip route add DEST [via GW] [dev DEV]``)."""

from __future__ import annotations

from typing import Self

import attrs

from . import validate
from .command import Command, ip
from .errors import ValidationError
from .executor import Executor, default_executor


def _destination(value: object) -> str:
    if value == "default":
        return "default"
    return str(validate.network(value, "destination"))


def _via(value: object) -> str | None:
    return None if value is None else str(validate.address(value, "via"))


def _dev(value: object) -> str | None:
    return None if value is None else validate.interface_name(value, "dev")


def _ns(value: object) -> str | None:
    return validate.optional_namespace(value, "namespace")  # type: ignore[arg-type]


def _version(text: str) -> int:
    return validate.network(text).version if "/" in text else validate.address(text).version


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
        if (
            self.via is not None
            and self.destination != "default"
            and _version(self.via) != _version(self.destination)
        ):
            raise ValidationError(
                "via", self.via, f"is not of the same IP version as {self.destination}"
            )

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def version(self) -> int:
        if self.destination != "default":
            return _version(self.destination)
        return _version(self.via) if self.via else 4

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

    def add(self) -> Self:
        self._ex.run_all(self.add_commands())
        return self

    def delete(self) -> None:
        self._ex.run_all(self.delete_commands())

    def replace(self) -> Self:
        self._ex.run_all(self.replace_commands())
        return self
