"""The machines of a file (a part of the Checker): the ``[machines]`` table, and the
``machine`` of namespaces and bridges.

``machines`` is a table of machines, each a table of its own::

    [machines.a]
    ssh = "root@10.0.0.1"      # required: [user@]address, as ssh takes it
    underlay = "10.0.0.1"      # optional: the address the other machines reach it
                               # at (default: the ssh address, when it is an IP address)
    port = 22                  # optional
    identity_file = "~/.ssh/lab"   # optional: ssh's -i
    sudo = false               # optional: run every command through sudo -n

A namespace is placed on a machine by writing it as a table, ``{ name = "red",
machine = "b" }``; a bridge on the host side has a ``machine`` key; a bridge in a
namespace is on that namespace's machine.  Left out, the machine is the first of the
table.  ``hosts = true`` (or ``hosts_files = true``) still asks for hosts files.
Before 0.3 the table was ``[hosts.NAME]`` and the key ``host``: a file that still
says so is told they were renamed.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

from netns_kit import validate
from netns_kit.spec import MachineSpec
from netns_kit.spec.keys import MACHINE, NAMESPACE
from netns_kit.topology.base import CheckerBase, at, given, kind

MACHINE_KEYS = MACHINE.allowed
NAMESPACE_KEYS = NAMESPACE.allowed


class MachineChecks(CheckerBase):
    """The ``[machines]`` table and the ``machine`` keys (a part of the Checker)."""

    machines: dict[str, MachineSpec]
    placement: dict[str, str]

    def read_machines(self, data: Mapping[str, object]) -> tuple[MachineSpec, ...]:
        self.machines, self.placement = {}, {}
        value = data.get("machines")
        if value is None:
            return ()
        if not isinstance(value, Mapping) or not value:
            self.add(
                "machines", f"must be a table of machines ([machines.NAME]), not {kind(value)}"
            )
            return ()
        underlays: dict[str, str] = {}
        for name, item in value.items():
            path = at("machines", name)
            checked = self.checked(path, name, validate.namespace_name)
            if not isinstance(item, Mapping):
                self.add(path, f"must be a table (ssh, underlay...), not {kind(item)}")
                continue
            self.keys(path, item, MACHINE_KEYS, MACHINE.required)
            spec = self._machine(path, checked, item)
            if spec is None:
                continue
            address = spec.underlay or spec.address
            if address in underlays:
                self.add(at(path, "underlay"), f"'{address}' is already {underlays[address]}'s")
                continue
            underlays[address] = path
            self.machines[spec.name] = spec
        return tuple(self.machines.values())

    def _machine(
        self, path: str, name: str | None, item: Mapping[str, object]
    ) -> MachineSpec | None:
        target = item.get("ssh")
        user = address = None
        if isinstance(target, str):
            login, _, address_text = target.rpartition("@")
            address = self.checked(at(path, "ssh"), address_text, validate.ssh_host)
            if login:
                user = self.checked(at(path, "ssh"), login, validate.ssh_user)
        elif "ssh" in item:
            self.add(at(path, "ssh"), f"must be [user@]address, not {kind(target)}")
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
        elif address is not None and not _is_address(address):
            self.add(path, f"needs an underlay address: its ssh address {address!r} is not one")
            return None
        if name is None or address is None or not port or not isinstance(sudo, bool):
            return None
        home = None if identity is None else os.path.expanduser(str(identity))
        return MachineSpec(name, address, user, port, home, sudo, underlay)

    def unplaced(self, path: str, raw: object) -> tuple[object, str | None]:
        """A ``namespaces`` item: its name, and the machine a table places it on."""
        if not isinstance(raw, Mapping):
            return raw, None
        self.keys(path, raw, NAMESPACE_KEYS, NAMESPACE.required)
        machine = self.machine_ref(at(path, "machine"), raw.get("machine"))
        return raw.get("name"), machine

    def machine_ref(self, path: str, value: object) -> str | None:
        """A ``machine`` key: one of the file's machines (``None`` when not given)."""
        if value is None:
            return None
        if not self.machines:
            self.add(path, "names a machine, but the file has no [machines] table")
            return None
        if not isinstance(value, str) or value not in self.machines:
            self.add(
                path, f"{value!r} is not one of the machines in [machines] ({list(self.machines)})"
            )
            return None
        return value

    def bridge_machine(
        self, path: str, item: Mapping[str, object], namespace: str | None
    ) -> str | None:
        """A bridge's machine: its ``machine``, or its namespace's."""
        machine = self.machine_ref(at(path, "machine"), item.get("machine"))
        if namespace is None:
            return machine
        home = self.placement.get(namespace, next(iter(self.machines), None))
        if machine is not None and machine != home:
            self.add(
                at(path, "machine"),
                f"{machine!r} is not where namespace {namespace!r} is ({home!r}): "
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
