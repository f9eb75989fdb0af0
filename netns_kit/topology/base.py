"""What every part of the whole-file check shares: the keys of a file, the helpers that
report a problem with its path, and :class:`CheckerBase`, which remembers what the file
defined so far (namespaces, bridges, the interfaces they hold)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from netns_kit import validate
from netns_kit.errors import ValidationError, bounded_repr
from netns_kit.spec import BridgeSpec
from netns_kit.spec.keys import SECTIONS as KEY_SECTIONS
from netns_kit.spec.keys import TOP
from netns_kit.topology.places import End, Place
from netns_kit.topology.suggest import Names, suggest

_T = TypeVar("_T")

#: The top-level keys, and each section's keys with which of them are required: read
#: from the one table of keys (spec/keys.py), which the JSON Schema is made from too.
TOP_KEYS = TOP.allowed
SECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    name: (table.allowed, table.required) for name, table in KEY_SECTIONS.items()
}
HOST = "the lab's host side"
#: Keys that 0.3 renamed (old: new): a file that still writes one is told so.
RENAMED = {"host": "machine", "hosts": "machines"}

#: The longest key written as-is in a path; longer or odd ones are shown by bounded_repr.
_KEY_MAX = 64


def _key_text(key: object) -> str:
    """A key as a path shows it: plain when it is a short printable string (all real
    keys are), else bounded (a YAML key may be a huge number or a megabyte of text)."""
    if isinstance(key, str) and 0 < len(key) <= _KEY_MAX and key.isprintable():
        return key
    return bounded_repr(key)


def at(path: str, key: object) -> str:
    text = _key_text(key)
    return text if not path else f"{path}.{text}"


def kind(value: object) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
        type(None): "null",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if not isinstance(value, bool | int | float | str):
        return kind
    shown = bounded_repr(value)
    return shown if shown.startswith(kind) else f"{kind} ({shown})"  # "an integer of N digits"


def given(item: Mapping[str, object], key: str) -> bool:
    """An optional key is given when present and not null (YAML's ``~``)."""
    return item.get(key) is not None


def where_text(namespace: str | None) -> str:
    return HOST if namespace is None else f"namespace {namespace!r}"


class CheckerBase:
    """What every part of the check shares: the problems so far, what is defined, and
    the helpers that read a value and report what is wrong with it.

    Items with a problem in their own fields are left out of the checks that need
    the whole item (names, subnets), so that one typo is reported once, not again
    as a consequence elsewhere.  Names that were written but were invalid still
    count as defined, for the same reason.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.isolated = False
        self.namespaces: dict[str, str] = {}  # name -> path
        self.bridges: dict[str, tuple[str, BridgeSpec]] = {}  # name -> (path, spec)
        self.written: set[str] = set()  # every namespace/bridge name written, valid or not
        self.ends: list[End] = []
        # Built on first use, for the checks that look things up once per item: a
        # scan of every name or interface per item made whole-file checks quadratic.
        self._choices: dict[tuple[bool, int, int], Names] = {}
        self._places: dict[str | None, Place] = {}
        self._placed = 0  # how many of self.ends self._places holds

    # -- helpers ---------------------------------------------------------------------
    def add(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}" if path else text)

    def checked(self, path: str, value: object, check: Callable[[object, str], _T]) -> _T | None:
        try:
            return check(value, path)
        except ValidationError as error:
            self.add(path, f"{bounded_repr(error.value)} {error.reason}")
            return None

    def keys(
        self,
        path: str,
        table: Mapping[Any, object],
        allowed: Sequence[str],
        required: Sequence[str],
    ) -> None:
        for key in table:
            if key not in allowed and RENAMED.get(key) in allowed:
                self.add(at(path, key), f"renamed to {RENAMED[key]} in 0.3")
            elif key not in allowed:
                self.add(at(path, key), "unknown key" + suggest(key, allowed, limit=len(allowed)))
        for key in required:
            if key not in table:
                self.add(at(path, key), "required key is missing")

    def array(self, top: Mapping[str, object], key: str) -> list[tuple[str, Mapping[str, object]]]:
        value = top.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(key, f"must be an array of tables ([[{key}]] in TOML), not {kind(value)}")
            return []
        allowed, required = SECTIONS[key]
        items = []
        for index, item in enumerate(value):
            path = f"{key}[{index}]"
            if not isinstance(item, Mapping):
                self.add(path, f"must be a table, not {kind(item)}")
                continue
            self.keys(path, item, allowed, required)
            items.append((path, item))
        return items

    def reference(self, path: str, value: object, *, bridges: bool) -> str | None:
        """A namespace (or bridge, when ``bridges``) the item names; None if undefined."""
        name = self.checked(path, value, validate.namespace_name)
        if name is None:
            return None
        if name in self.namespaces or (bridges and name in self.bridges):
            return name
        if name in self.bridges:
            self.add(path, f"{name!r} is a bridge, not a namespace")
        elif name not in self.written:
            what = "a namespace or bridge" if bridges else "a namespace"
            self.add(
                path,
                f"{name!r} is not {what} of this lab"
                + suggest(name, self.choices(bridges=bridges), listing="defined"),
            )
        return None

    def choices(self, *, bridges: bool) -> Names:
        """The names a reference may use, indexed once (until more are defined)."""
        key = (bridges, len(self.namespaces), len(self.bridges))
        if key not in self._choices:
            names = list(self.namespaces) + (list(self.bridges) if bridges else [])
            self._choices[key] = Names(names)
        return self._choices[key]

    def where(self, path: str, item: Mapping[str, object]) -> tuple[bool, str | None]:
        """The namespace an item acts in (None: the host side), and whether it is known."""
        if not given(item, "namespace"):
            return True, None
        name = self.reference(at(path, "namespace"), item["namespace"], bridges=False)
        return name is not None, name

    def place(self, namespace: str | None) -> Place | None:
        """The interfaces the lab makes there, indexed; None when unknown (the host side
        of a lab that is not isolated)."""
        if namespace is None and not self.isolated:
            return None
        if self._placed != len(self.ends):
            self._places = {}
            for end in self.ends:
                self._places.setdefault(end.namespace, Place()).add(end)
            self._placed = len(self.ends)
        found = self._places.get(namespace)
        return found if found is not None else Place()

    def host_address(self, path: str, address: validate.IPInterface) -> None:
        """Refuse a subnet's network or broadcast address as an interface's own."""
        network = address.network
        if network.version != 4 or network.prefixlen >= 31:
            return
        if address.ip == network.network_address:
            self.add(path, f"'{address}' is the network address of {network}, not a host's")
        elif address.ip == network.broadcast_address:
            self.add(path, f"'{address}' is the broadcast address of {network}, not a host's")
