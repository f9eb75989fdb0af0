"""The machines of a file (a part of the Checker): the ``[hosts]`` table, and the
``host`` of namespaces and bridges.

``hosts`` is either the old flag (``hosts = true``: name files) or a table of
machines, each a table of its own::

    [hosts.a]
    ssh = "root@10.0.0.1"      # required: [user@]host, as ssh takes it
    underlay = "10.0.0.1"      # optional: the address the other machines reach it
                               # at (default: the ssh host, when it is an address)
    port = 22                  # optional
    identity_file = "~/.ssh/lab"   # optional: ssh's -i
    sudo = false               # optional: run every command through sudo -n

With a table, ``hosts_files = true`` asks for the name files instead.  A namespace
is placed on a machine by writing it as a table, ``{ name = "red", host = "b" }``;
a bridge on the host side has a ``host`` key; a bridge in a namespace is on that
namespace's machine.  Left out, the machine is the first of the table.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

from .. import validate
from ..spec import HostSpec
from .base import CheckerBase, at, given, kind

HOST_KEYS = ("ssh", "underlay", "port", "identity_file", "sudo")
NAMESPACE_KEYS = ("name", "host", "router", "loopback")


class MachineChecks(CheckerBase):
    """The ``[hosts]`` table and the ``host`` keys (a part of the Checker)."""

    machines: dict[str, HostSpec]
    placement: dict[str, str]

    def read_machines(self, data: Mapping[str, object]) -> tuple[HostSpec, ...]:
        self.machines, self.placement = {}, {}
        value = data.get("hosts")
        if not isinstance(value, Mapping) or not value:
            return ()  # the name-files flag, or not: Checker.flag says
        underlays: dict[str, str] = {}
        for name, item in value.items():
            path = at("hosts", name)
            checked = self.checked(path, name, validate.namespace_name)
            if not isinstance(item, Mapping):
                self.add(path, f"must be a table (ssh, underlay...), not {kind(item)}")
                continue
            self.keys(path, item, HOST_KEYS, ("ssh",))
            spec = self._machine(path, checked, item)
            if spec is None:
                continue
            address = spec.underlay or spec.host
            if address in underlays:
                self.add(at(path, "underlay"), f"'{address}' is already {underlays[address]}'s")
                continue
            underlays[address] = path
            self.machines[spec.name] = spec
        return tuple(self.machines.values())

    def _machine(self, path: str, name: str | None, item: Mapping[str, object]) -> HostSpec | None:
        target = item.get("ssh")
        user = host = None
        if isinstance(target, str):
            login, _, host_text = target.rpartition("@")
            host = self.checked(at(path, "ssh"), host_text, validate.ssh_host)
            if login:
                user = self.checked(at(path, "ssh"), login, validate.ssh_user)
        elif "ssh" in item:
            self.add(at(path, "ssh"), f"must be [user@]host, not {kind(target)}")
        port = 22
        if given(item, "port"):
            port = self.checked(at(path, "port"), item["port"], _port) or 0
        identity = item.get("identity_file")
        if identity is not None and (not isinstance(identity, str) or not identity):
            self.add(at(path, "identity_file"), f"must be a path, not {kind(identity)}")
            identity = None
        sudo = item.get("sudo", False)
        if not isinstance(sudo, bool):
            self.add(at(path, "sudo"), f"must be true or false, not {kind(sudo)}")
        underlay = None
        if given(item, "underlay"):
            found = self.checked(at(path, "underlay"), item["underlay"], validate.address)
            underlay = None if found is None else str(found)
        elif host is not None and not _is_address(host):
            self.add(path, f"needs an underlay address: its ssh host {host!r} is not one")
            return None
        if name is None or host is None or not port or not isinstance(sudo, bool):
            return None
        home = None if identity is None else os.path.expanduser(str(identity))
        return HostSpec(name, host, user, port, home, sudo, underlay)

    def unplaced(self, path: str, raw: object) -> tuple[object, str | None]:
        """A ``namespaces`` item: its name, and the machine a table places it on."""
        if not isinstance(raw, Mapping):
            return raw, None
        self.keys(path, raw, NAMESPACE_KEYS, ("name",))
        host = self.machine_ref(at(path, "host"), raw.get("host"))
        return raw.get("name"), host

    def machine_ref(self, path: str, value: object) -> str | None:
        """A ``host`` key: one of the file's machines (``None`` when not given)."""
        if value is None:
            return None
        if not self.machines:
            self.add(path, "names a machine, but the file has no [hosts] table of machines")
            return None
        if not isinstance(value, str) or value not in self.machines:
            self.add(
                path, f"{value!r} is not one of the machines in [hosts] ({list(self.machines)})"
            )
            return None
        return value

    def bridge_machine(
        self, path: str, item: Mapping[str, object], namespace: str | None
    ) -> str | None:
        """A bridge's machine: its ``host``, or its namespace's."""
        host = self.machine_ref(at(path, "host"), item.get("host"))
        if namespace is None:
            return host
        home = self.placement.get(namespace, next(iter(self.machines), None))
        if host is not None and host != home:
            self.add(
                at(path, "host"),
                f"{host!r} is not where namespace {namespace!r} is ({home!r}): "
                "a bridge in a namespace is on that namespace's machine",
            )
        return None


def _port(value: object, field: str) -> int:
    return validate.positive_int(value, field, maximum=65535)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
