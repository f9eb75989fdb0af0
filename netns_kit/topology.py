"""Topology files: a whole lab in one TOML (or YAML) file, checked before anything runs.

A file is read into a plain dict (``tomllib``, or PyYAML's ``safe_load`` for ``.yaml``
and ``.yml`` when the ``yaml`` extra is installed), then checked *completely*: every
problem is collected, each with its path in the file, and all of them are raised
together in one :class:`TopologyError`.  Fixing a file should take one round, not one
round per typo, and nothing has touched the machine when the error comes.

The format (TOML; YAML has the same keys)::

    name = "bridge"            # required: the lab's name, namespace rules, <= 58 bytes
    isolated = true            # optional (default false): give the lab its own host
                               # namespace, so bridges, host routes, sysctls and NAT
                               # never touch the machine's root namespace
    ipv6_link_local = false    # optional (default false): see below
    namespaces = ["red", "blue"]

    [[bridges]]                # on the lab's host side
    name = "v-net-0"           # required, an interface name (1-15 bytes)
    address = "192.168.15.5/24"   # optional: the host side's own address on it

    [[links]]                  # a veth pair
    a = "red"                  # required: a namespace
    b = "v-net-0"              # required: another namespace, or a bridge
    addresses = ["192.168.15.1/24"]   # optional: one per end, [a] or [a, b];
                               # "" leaves an end without one; a bridge end
                               # usually has none (the bridge holds the address)
    names = ["veth-red", "veth-red-br"]   # optional: the two ends' interface names
    mtu = 1400                 # optional, 68-65535

    [[routes]]
    namespace = "red"          # optional: left out means the lab's host side
    destination = "default"    # required: "default" or a network ("10.0.0.0/8")
    via = "192.168.15.5"       # a gateway, and/or
    dev = "veth-red"           # an interface; at least one of the two

    [[sysctls]]
    namespace = "red"          # optional: left out means the lab's host side
    key = "net.ipv4.ip_forward"   # required
    value = 1                  # required, a string or an integer

    [[masquerade]]             # NAT on the lab's host side
    source = "192.168.15.0/24" # required, a network
    out_interface = "wan0"     # optional

Default interface names follow :class:`netns_kit.spec.LinkNamer` (``veth-red`` /
``veth-blue`` between namespaces, ``veth-red`` / ``veth-red-br`` to a bridge).

A link with no IPv6 address comes up without an IPv6 link-local address either
(``addrgenmode none``), unless ``ipv6_link_local = true``: every such address starts
DAD, MLD and router-solicitation traffic that a bridge floods to all its ports.

What is checked, beyond each value's own rules (:mod:`netns_kit.validate`): unknown keys
(with a "did you mean"), wrong types, missing required keys, references to namespaces or
bridges that are not defined, duplicate names (a namespace and a bridge may not share
one either, nor a namespace and an isolated lab's ``<name>-host``), two interfaces of
the same name in one namespace (after default naming), a link from a namespace to
itself, the two ends of a link in different subnets, a bridge link's address outside the
bridge's subnet, an address used twice on one segment, a network or broadcast address
given to an interface, a route whose gateway is in none of its namespace's connected
subnets or whose ``dev`` is not there, and the same route, sysctl or masquerade given
twice.  On the host side of a lab that is not isolated the root namespace's own
interfaces are unknown, so host-side ``dev``, ``via`` and ``out_interface`` are only
checked in isolated labs.

A file may come from anywhere, so reading one is bounded whatever it holds: at most
:data:`MAX_FILE_BYTES` are read, data nested deeper than :data:`MAX_DEPTH` levels or
holding more than :data:`MAX_VALUES` values is refused before any check walks it, and
every value a message shows goes through :func:`netns_kit.errors.bounded_repr`.  A
hostile file gets a :class:`TopologyError` like any other bad file, never a traceback.
Checking costs about the same per item however big the file, right or wrong: names
and interfaces are looked up in indexes, not scanned per item, and a message lists the
first :data:`SHOWN_PROBLEMS` problems and counts the rest.
"""

from __future__ import annotations

import difflib
import heapq
import importlib
import ipaddress
import itertools
import os
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from . import validate
from .errors import ValidationError, bounded_repr
from .spec import BridgeSpec, LinkSpec, MasqueradeSpec, RouteSpec, SysctlSpec, Topology

LAB_NAME_MAX = validate.LAB_NAME_MAX
#: The most a topology file may weigh.  A lab of 5,000 namespaces, each with a link,
#: a route and a sysctl, is about 1 MiB of TOML; reading is refused beyond this.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: The deepest nesting of tables and arrays accepted.  A topology needs 4 (the top
#: table, [[links]], a link, its addresses); deeper data is refused before anything
#: walks it, so that no check recurses or loops on it.
MAX_DEPTH = 32
#: The most values (tables, arrays, keys, scalars) walked in one topology.  YAML
#: aliases share one value among many places, so a small file can stand for billions
#: of values ("billion laughs"); each use counts, and the walk stops at this many.
MAX_VALUES = 1_000_000

_T = TypeVar("_T")

_TOP_KEYS = (
    "name",
    "isolated",
    "ipv6_link_local",
    "namespaces",
    "bridges",
    "links",
    "routes",
    "sysctls",
    "masquerade",
)
#: Each section's keys, and which of them are required.
_SECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bridges": (("name", "address"), ("name",)),
    "links": (("a", "b", "addresses", "names", "mtu"), ("a", "b")),
    "routes": (("namespace", "destination", "via", "dev"), ("destination",)),
    "sysctls": (("namespace", "key", "value"), ("key", "value")),
    "masquerade": (("source", "out_interface"), ("source",)),
}
_HOST = "the lab's host side"


#: The most problems an error message lists in full.  Fixing a file takes one round
#: when every problem is listed, but a file with a systematic mistake can have
#: thousands, and a message of thousands of lines helps nobody: the first ones
#: show the mistake, and ``TopologyError.problems`` keeps them all.
SHOWN_PROBLEMS = 50


class TopologyError(ValidationError):
    """A topology that cannot be built; ``problems`` lists every reason at once.

    Each problem starts with its path in the file (``links[2].addresses[0]: ...``);
    ``source`` is the file (or ``"<dict>"``).  As a :class:`ValidationError` it also
    has ``field`` (the source), ``value`` (the problems) and ``reason``.  The message
    lists the first :data:`SHOWN_PROBLEMS` problems and counts the rest.
    """

    def __init__(self, problems: Sequence[str], source: str = "<dict>") -> None:
        self.problems = list(problems)
        self.source = source
        self.field = source
        self.value = self.problems
        count = len(self.problems)
        if count == 1:
            self.reason = self.problems[0]
            message = f"{source}: {self.problems[0]}"
        else:
            self.reason = f"{count:,} problems"
            lines = [f"  {problem}" for problem in self.problems[:SHOWN_PROBLEMS]]
            rest = count - SHOWN_PROBLEMS
            if rest > 0:
                lines.append(f"  … and {rest:,} more problem{'' if rest == 1 else 's'}")
            message = f"{source}: {count:,} problems:\n" + "\n".join(lines)
        super(ValidationError, self).__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.problems, self.source))


# -- reading files -------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Topology:
    """Read and check a topology file (``.toml``, or ``.yaml``/``.yml``)."""
    source = os.fspath(path)
    return from_dict(read(path), source=source)


def read(path: str | os.PathLike[str]) -> object:
    """A topology file's raw data, unchecked; file and syntax errors raise TopologyError."""
    file = Path(path)
    source = os.fspath(path)
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise TopologyError([f"unknown file type {suffix!r}: use .toml, .yaml or .yml"], source)
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise TopologyError(
                [
                    f"is larger than {MAX_FILE_BYTES // 2**20} MiB "
                    f"({MAX_FILE_BYTES:,} bytes), the most a topology file may be"
                ],
                source,
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise TopologyError(["no such file"], source) from None
    except IsADirectoryError:
        raise TopologyError(["is a directory, not a topology file"], source) from None
    except OSError as error:
        raise TopologyError([f"cannot be read ({error.strerror})"], source) from None
    except UnicodeDecodeError as error:
        raise TopologyError([f"is not UTF-8 text (byte {error.start})"], source) from None
    if suffix == ".toml":
        return _parse_toml(text, source)
    return _parse_yaml(text, source)


_TOML_WHERE = re.compile(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")
_INT_DIGITS = re.compile(r"Exceeds the limit \((?P<digits>\d+) digits\)")
#: The longest parser message quoted (PyYAML quotes tags and anchors from the file).
_SAID_MAX = 200


def _parse_toml(text: str, source: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        said = str(error)
        where = _TOML_WHERE.match(said)
        if where:
            said = f"line {where['line']}, column {where['column']}: {where['what']}"
        elif said.endswith(" (at end of document)"):
            said = f"at the end of the file: {said.removesuffix(' (at end of document)')}"
        raise TopologyError([f"TOML syntax error: {_clip(said)}"], source) from None
    except (RecursionError, ValueError, MemoryError) as error:
        raise TopologyError([_unreadable("TOML", error)], source) from None


def _unreadable(language: str, error: BaseException) -> str:
    """Why a parser gave up other than on a syntax error: these come from a hostile
    file (nesting deeper than the parser's recursion, a number too long for ``int``),
    and must end as a TopologyError like any bad file, not as a traceback."""
    if isinstance(error, RecursionError):
        said = f"it is nested too deeply (a topology needs 4 levels, {MAX_DEPTH} are accepted)"
    elif isinstance(error, MemoryError):
        said = "it does not fit in memory"
    elif digits := _INT_DIGITS.search(str(error)):
        said = f"it holds a number of more than {int(digits['digits']):,} digits"
    else:
        said = _clip(str(error) or type(error).__name__)
    return f"{language} could not be read: {said}"


def _clip(text: str, limit: int = _SAID_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_yaml(text: str, source: str) -> object:
    try:
        yaml = importlib.import_module("yaml")
    except ModuleNotFoundError:
        raise TopologyError(
            ["reading YAML needs PyYAML: install the 'yaml' extra (pip install 'netns-kit[yaml]')"],
            source,
        ) from None
    try:
        data: object = yaml.safe_load(text)
    except yaml.YAMLError as error:
        said = _clip(getattr(error, "problem", None) or str(error))
        mark = getattr(error, "problem_mark", None)
        if mark is not None:
            said = f"line {mark.line + 1}, column {mark.column + 1}: {said}"
        raise TopologyError([f"YAML syntax error: {said}"], source) from None
    except (RecursionError, ValueError, MemoryError) as error:
        raise TopologyError([_unreadable("YAML", error)], source) from None
    return data


# -- dicts -----------------------------------------------------------------------------


def from_dict(d: object, *, source: str = "<dict>") -> Topology:
    """Check a topology given as a dict (the shape of the file) and return it.

    Raises :class:`TopologyError` listing every problem found.
    """
    return _Reader(source).topology(d)


def check(topology: Topology, *, source: str = "<topology>") -> Topology:
    """Run a topology made in Python through the same checks as a file."""
    return from_dict(to_dict(topology), source=source)


def to_dict(topology: Topology) -> dict[str, object]:
    """The file form of ``topology`` (what :func:`from_dict` reads back)."""
    out: dict[str, object] = {"name": topology.name, "isolated": topology.isolated}
    if topology.ipv6_link_local:
        out["ipv6_link_local"] = True
    out["namespaces"] = list(topology.namespaces)
    if topology.bridges:
        out["bridges"] = [_without_none(name=b.name, address=b.address) for b in topology.bridges]
    if topology.links:
        out["links"] = [_link_dict(link) for link in topology.links]
    if topology.routes:
        out["routes"] = [
            _without_none(namespace=r.namespace, destination=r.destination, via=r.via, dev=r.dev)
            for r in topology.routes
        ]
    if topology.sysctls:
        out["sysctls"] = [
            _without_none(namespace=s.namespace, key=s.key, value=s.value) for s in topology.sysctls
        ]
    if topology.masquerades:
        out["masquerade"] = [
            _without_none(source=m.source, out_interface=m.out_interface)
            for m in topology.masquerades
        ]
    return out


def _link_dict(link: LinkSpec) -> dict[str, object]:
    out = _without_none(a=link.a, b=link.b, mtu=link.mtu)
    if link.names is not None:
        out["names"] = list(link.names)
    first, second = link.addresses
    if second is not None:
        out["addresses"] = [first or "", second]
    elif first is not None:
        out["addresses"] = [first]
    return out


def _without_none(**values: object) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


# -- the checks ------------------------------------------------------------------------


#: The longest key written as-is in a path; longer or odd ones are shown by bounded_repr.
_KEY_MAX = 64


def _key_text(key: object) -> str:
    """A key as a path shows it: plain when it is a short printable string (all real
    keys are), else bounded (a YAML key may be a huge number or a megabyte of text)."""
    if isinstance(key, str) and 0 < len(key) <= _KEY_MAX and key.isprintable():
        return key
    return bounded_repr(key)


def _at(path: str, key: object) -> str:
    text = _key_text(key)
    return text if not path else f"{path}.{text}"


def _kind(value: object) -> str:
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


def _did_you_mean(word: object, choices: Iterable[str] | _Names) -> str:
    if not isinstance(word, str):  # a YAML key may be a number: no name is close to it
        return ""
    names = choices if isinstance(choices, _Names) else _Names(choices)
    close = names.close(word)
    return f" (did you mean {close!r}?)" if close is not None else ""


def _suggest(
    word: object, choices: Iterable[str] | _Names, *, listing: str = "expected one of"
) -> str:
    """A "did you mean" when something is close, else the list of choices."""
    names = choices if isinstance(choices, _Names) else _Names(choices)
    close = _did_you_mean(word, names)
    if close:
        return close
    if not names.names:
        return " (none are defined)"
    return f" ({listing}: {_listing(names.names)})"


#: The most names a message lists ("defined: ...", "it has: ..."); the rest are counted.
_LISTED = 10


def _listing(names: Collection[str]) -> str:
    """``a, b, c``, or the first _LISTED and a count: one problem stays one short line
    when a namespace has thousands of interfaces or a lab thousands of namespaces."""
    shown = ", ".join(itertools.islice(names, _LISTED))
    if len(names) <= _LISTED:
        return shown
    return f"{shown}, … and {len(names) - _LISTED:,} more"


#: Up to this many names, difflib compares a word with every one, as it always did.
_SMALL = 64
#: How many candidates the index proposes to difflib for one word.
_CANDIDATES = 8
#: How many bigram postings one lookup may read, rarest bigrams first.
_GRAM_BUDGET = 256
#: Pads a name's ends for its bigrams: not a character any checked name may hold.
_PAD_START, _PAD_END = "\x00", "\x01"


class _Names:
    """Names, indexed for "did you mean" so that a lookup costs about the same however
    many names there are.

    ``difflib.get_close_matches`` compares a word with every name: a file in which
    each of N references is misspelt cost N x N comparisons (64 s at 2,000
    namespaces).  Beyond _SMALL names the index first proposes a few candidates, and
    difflib picks among those only, with its usual cutoff:

    - names that share a one-deletion form with the word (SymSpell): each typo of one
      character, a letter wrong, missing, extra, or two letters swapped, is found;
    - when there is none, names sharing the word's rarest bigrams, reading at most
      _GRAM_BUDGET postings, for names further off.  A bigram shared by thousands of
      names ("re" in ``red0`` ... ``red4999``) tells little and is skipped.

    So a suggestion is always one difflib accepts, though with many names a more
    distant one may be missed.  The indexes are built on the first lookup.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.longest = max(map(len, self.names), default=0)
        self._forms: dict[str, list[str]] | None = None
        self._grams: dict[str, list[str]] = {}

    def close(self, word: str) -> str | None:
        """The name most like ``word`` by difflib's measure, if one is like it at all."""
        if 3 * len(word) > 7 * self.longest:
            return None  # difflib's ratio is then below its 0.6 cutoff for every name
        pool = self.names if len(self.names) <= _SMALL else self.candidates(word)
        close = difflib.get_close_matches(word, pool, n=1)
        return close[0] if close else None

    def candidates(self, word: str) -> list[str]:
        forms = self._index()
        score: dict[str, int] = {}
        for form in _deletions(word):
            for name in itertools.islice(forms.get(form, ()), _CANDIDATES):
                score[name] = score.get(name, 0) + 1
        if not score:
            self.share_bigrams(word, score)
        return heapq.nsmallest(
            _CANDIDATES, score, key=lambda name: (-score[name], abs(len(name) - len(word)))
        )

    def share_bigrams(self, word: str, score: dict[str, int]) -> None:
        """Count the bigrams each name shares with ``word``, rarest bigrams first."""
        budget = _GRAM_BUDGET
        for gram in sorted(_bigrams(word), key=lambda g: len(self._grams.get(g, ()))):
            posting = self._grams.get(gram, ())
            if len(posting) > budget:
                break  # every bigram left is at least as common
            budget -= len(posting)
            for name in posting:
                score[name] = score.get(name, 0) + 1

    def _index(self) -> dict[str, list[str]]:
        if self._forms is None:
            self._forms = {}
            for name in self.names:
                for form in _deletions(name):
                    self._forms.setdefault(form, []).append(name)
                for gram in _bigrams(name):
                    self._grams.setdefault(gram, []).append(name)
        return self._forms


def _deletions(word: str) -> set[str]:
    """``word`` and every string one character shorter than it."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def _bigrams(word: str) -> set[str]:
    padded = f"{_PAD_START}{word}{_PAD_END}"
    return {padded[i : i + 2] for i in range(len(padded) - 1)}


def _given(item: Mapping[str, object], key: str) -> bool:
    """An optional key is given when present and not null (YAML's ``~``)."""
    return item.get(key) is not None


def _where(namespace: str | None) -> str:
    return _HOST if namespace is None else f"namespace {namespace!r}"


#: Where a value is: (its container's trail, its key or index, whether it is an index);
#: None at the top.  Built only for tables and arrays, and only made a path on error.
_Trail = tuple["_Trail", object, bool] | None
#: What a file's values mostly are, known by their type alone: much cheaper than asking
#: isinstance(value, Mapping) of each of a million values.
_LEAVES = frozenset({str, int, float, bool, type(None)})
_BRANCHES = frozenset({dict, list, tuple})
#: The longest path shown for data nested too deep (its first levels are enough).
_TRAIL_MAX = 120


def _trail_path(trail: _Trail) -> str:
    """A trail as a path in the file's terms: ``links[0].addresses[1][0]``."""
    keys: list[tuple[object, bool]] = []
    while trail is not None:
        trail, key, index = trail
        keys.append((key, index))
    path = ""
    for key, index in reversed(keys):
        path = f"{path}[{key}]" if index else _at(path, key)
        if len(path) > _TRAIL_MAX:
            return path[:_TRAIL_MAX] + "…"
    return path


@attrs.define
class _End:
    """One interface the topology makes: where it is, its name, its address."""

    namespace: str | None
    name: str
    address: validate.IPInterface | None
    path: str


class _Place:
    """The interfaces of one namespace, indexed for the checks of routes through it.

    Whether a gateway is in a connected subnet is asked once per route; scanning
    every interface each time was quadratic in a hub with thousands of links.  The
    subnets are kept as (version, prefix length, network bits), so that the question
    costs one set lookup per distinct prefix length in the namespace.
    """

    def __init__(self) -> None:
        self.ends: dict[str, _End] = {}  # by interface name
        self.own: set[validate.IPAddress] = set()  # the interfaces' addresses
        self.networks: set[tuple[int, int, int]] = set()
        self.prefixes: set[tuple[int, int]] = set()  # (version, prefix length)
        # What the messages show, made once: a namespace may have thousands of
        # interfaces and as many routes wrong.
        self._names: _Names | None = None
        self._subnets: list[str] | None = None

    def add(self, end: _End) -> None:
        self.ends[end.name] = end
        self._names = self._subnets = None
        if end.address is not None:
            network = end.address.network
            self.own.add(end.address.ip)
            self.networks.add(_network_key(network.version, network.prefixlen, end.address.ip))
            self.prefixes.add((network.version, network.prefixlen))

    def connects(self, via: validate.IPAddress) -> bool:
        """Whether ``via`` is in the subnet of one of the interfaces."""
        return any(
            _network_key(version, prefixlen, via) in self.networks
            for version, prefixlen in self.prefixes
            if version == via.version
        )

    def subnets(self) -> list[str]:
        if self._subnets is None:
            self._subnets = sorted(
                {str(end.address.network) for end in self.ends.values() if end.address is not None}
            )
        return self._subnets

    def have(self) -> str:
        """The interface names, for "(it has: ...)"."""
        return _listing(self.ends) or "none"

    def names(self) -> _Names:
        if self._names is None:
            self._names = _Names(self.ends)
        return self._names


def _network_key(version: int, prefixlen: int, address: validate.IPAddress) -> tuple[int, int, int]:
    bits = 32 if version == 4 else 128
    return version, prefixlen, int(address) >> (bits - prefixlen)


class _Reader:
    """Reads a topology dict section by section, collecting problems as it goes.

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
        self.ends: list[_End] = []
        # Built on first use, for the checks that look things up once per item: a
        # scan of every name or interface per item made whole-file checks quadratic.
        self._choices: dict[tuple[bool, int, int], _Names] = {}
        self._places: dict[str | None, _Place] = {}
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
            if key not in allowed:
                self.add(_at(path, key), "unknown key" + _suggest(key, allowed))
        for key in required:
            if key not in table:
                self.add(_at(path, key), "required key is missing")

    def array(self, top: Mapping[str, object], key: str) -> list[tuple[str, Mapping[str, object]]]:
        value = top.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(key, f"must be an array of tables ([[{key}]] in TOML), not {_kind(value)}")
            return []
        allowed, required = _SECTIONS[key]
        items = []
        for index, item in enumerate(value):
            path = f"{key}[{index}]"
            if not isinstance(item, Mapping):
                self.add(path, f"must be a table, not {_kind(item)}")
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
                + _suggest(name, self.choices(bridges=bridges), listing="defined"),
            )
        return None

    def choices(self, *, bridges: bool) -> _Names:
        """The names a reference may use, indexed once (until more are defined)."""
        key = (bridges, len(self.namespaces), len(self.bridges))
        if key not in self._choices:
            names = list(self.namespaces) + (list(self.bridges) if bridges else [])
            self._choices[key] = _Names(names)
        return self._choices[key]

    # -- the whole -------------------------------------------------------------------
    def topology(self, data: object) -> Topology:
        if not isinstance(data, Mapping):
            self.add("", f"the top level must be a table of keys, not {_kind(data)}")
            raise TopologyError(self.problems, self.source)
        self.bounded(data)
        self.keys("", data, _TOP_KEYS, ("name",))
        name = self.lab_name(data)
        isolated = data.get("isolated", False)
        if not isinstance(isolated, bool):
            self.add("isolated", f"must be true or false, not {_kind(isolated)}")
            isolated = False
        self.isolated = isolated
        link_local = data.get("ipv6_link_local", False)
        if not isinstance(link_local, bool):
            self.add("ipv6_link_local", f"must be true or false, not {_kind(link_local)}")
            link_local = False
        written = data.get("namespaces")
        host = f"{name}-host" if isolated and name is not None else None
        namespaces = self.read_namespaces([] if written is None else written, host)
        bridges = [b for b in map(self.read_bridge, self.array(data, "bridges")) if b]
        links = [link for link in map(self.read_link, self.array(data, "links")) if link]
        self.check_ends(links)
        routes = self.check_routes(self.array(data, "routes"))
        sysctls = self.check_sysctls(self.array(data, "sysctls"))
        masquerades = self.check_masquerades(self.array(data, "masquerade"))
        if self.problems or name is None:
            raise TopologyError(self.problems, self.source)
        return Topology(
            name=name,
            isolated=isolated,
            ipv6_link_local=link_local,
            namespaces=tuple(namespaces),
            bridges=tuple(bridges),
            links=tuple(spec for _, spec in links),
            routes=tuple(routes),
            sysctls=tuple(sysctls),
            masquerades=tuple(masquerades),
        )

    def lab_name(self, data: Mapping[str, object]) -> str | None:
        if "name" not in data:
            return None
        name = self.checked("name", data["name"], validate.namespace_name)
        if name is not None and len(name.encode()) > LAB_NAME_MAX:
            self.add(
                "name",
                f"{name!r} is longer than {LAB_NAME_MAX} bytes "
                "(the lab's namespace names add a suffix to it)",
            )
            return None
        return name

    def bounded(self, data: Mapping[Any, object]) -> None:
        """Refuse data nested deeper than MAX_DEPTH or holding more than MAX_VALUES.

        This runs before any other check, and walks with a list of its own rather than
        by recursion, so that no later check meets data that could exhaust the stack
        (a list nested a thousand deep) or take forever (YAML aliases that fan out to
        billions of uses of a few values).  Only tables and arrays are walked: every
        other value is a leaf to the checks as well.
        """
        count = 0
        pending: list[tuple[object, int, _Trail]] = [(data, 1, None)]
        while pending:
            value, depth, trail = pending.pop()
            children: Iterable[tuple[object, object]]
            index = isinstance(value, list | tuple)
            if index:
                assert isinstance(value, list | tuple)
                count += len(value)
                children = enumerate(value)
            else:
                assert isinstance(value, Mapping)
                count += 2 * len(value)  # its keys and their values
                children = value.items()
            if count > MAX_VALUES:
                raise TopologyError(
                    [
                        f"holds more than {MAX_VALUES:,} values (tables, arrays, keys and "
                        "values; each use of a YAML alias counts): a topology is far smaller"
                    ],
                    self.source,
                )
            for key, child in children:
                kind = type(child)
                if kind in _LEAVES or (
                    kind not in _BRANCHES and not isinstance(child, Mapping | list | tuple)
                ):
                    continue
                if depth >= MAX_DEPTH:
                    where = _trail_path((trail, key, index))
                    said = f"is nested more than {MAX_DEPTH} levels deep (a topology needs 4)"
                    raise TopologyError([f"{where}: {said}"], self.source)
                pending.append((child, depth + 1, (trail, key, index)))

    # -- namespaces and bridges ------------------------------------------------------
    def read_namespaces(self, value: object, host: str | None) -> list[str]:
        if not isinstance(value, list):
            self.add("namespaces", f"must be an array of names, not {_kind(value)}")
            return []
        names = []
        for index, raw in enumerate(value):
            path = f"namespaces[{index}]"
            if isinstance(raw, str):
                self.written.add(raw)
            name = self.checked(path, raw, validate.namespace_name)
            if name is None:
                continue
            if name in self.namespaces:
                self.add(path, f"{name!r} is listed twice (also at {self.namespaces[name]})")
                continue
            if name == host:
                self.add(path, f"{name!r} is the name of the isolated lab's own host namespace")
                continue
            self.namespaces[name] = path
            names.append(name)
        return names

    def read_bridge(self, entry: tuple[str, Mapping[str, object]]) -> BridgeSpec | None:
        path, item = entry
        raw = item.get("name")
        if isinstance(raw, str):
            self.written.add(raw)
        name = None
        if "name" in item:
            name = self.checked(_at(path, "name"), raw, validate.interface_name)
        address = None
        if _given(item, "address"):
            address = self.checked(_at(path, "address"), item["address"], validate.interface)
            if address is None:
                return None
            self.host_address(_at(path, "address"), address)
        if name is None:
            return None
        if name in self.namespaces:
            self.add(
                _at(path, "name"),
                f"{name!r} is already the name of a namespace ({self.namespaces[name]})",
            )
            return None
        if name in self.bridges:
            self.add(_at(path, "name"), f"{name!r} is already the name of {self.bridges[name][0]}")
            return None
        spec = BridgeSpec(name, None if address is None else str(address))
        self.bridges[name] = (path, spec)
        self.ends.append(_End(None, name, address, _at(path, "name")))
        return spec

    def host_address(self, path: str, address: validate.IPInterface) -> None:
        """Refuse a subnet's network or broadcast address as an interface's own."""
        network = address.network
        if network.version != 4 or network.prefixlen >= 31:
            return
        if address.ip == network.network_address:
            self.add(path, f"'{address}' is the network address of {network}, not a host's")
        elif address.ip == network.broadcast_address:
            self.add(path, f"'{address}' is the broadcast address of {network}, not a host's")

    # -- links -----------------------------------------------------------------------
    def read_link(self, entry: tuple[str, Mapping[str, object]]) -> tuple[str, LinkSpec] | None:
        path, item = entry
        a = self.reference(_at(path, "a"), item["a"], bridges=False) if "a" in item else None
        b = self.reference(_at(path, "b"), item["b"], bridges=True) if "b" in item else None
        whole = a is not None and b is not None
        if a is not None and a == b:
            self.add(_at(path, "b"), f"{b!r} is the same namespace as 'a': a link needs two ends")
            whole = False
        names = None
        if _given(item, "names"):
            names = self.link_names(_at(path, "names"), item["names"])
            whole = whole and names is not None
        addresses: tuple[str | None, str | None] = (None, None)
        if _given(item, "addresses"):
            read = self.link_addresses(_at(path, "addresses"), item["addresses"])
            whole = whole and read is not None
            addresses = read or addresses
        mtu = None
        if _given(item, "mtu"):
            mtu = self.checked(_at(path, "mtu"), item["mtu"], _mtu)
            whole = whole and mtu is not None
        if not whole or a is None or b is None:
            return None
        return path, LinkSpec(a, b, names=names, addresses=addresses, mtu=mtu)

    def link_names(self, path: str, value: object) -> tuple[str, str] | None:
        if not isinstance(value, list) or len(value) != 2:
            self.add(path, f"must be an array of two interface names, not {_kind(value)}")
            return None
        first = self.checked(f"{path}[0]", value[0], validate.interface_name)
        second = self.checked(f"{path}[1]", value[1], validate.interface_name)
        return None if first is None or second is None else (first, second)

    def link_addresses(self, path: str, value: object) -> tuple[str | None, str | None] | None:
        if not isinstance(value, list) or not 1 <= len(value) <= 2:
            self.add(
                path,
                f"must be an array of one or two addresses (one per end), not {_kind(value)}",
            )
            return None
        found: list[str | None] = [None, None]
        ok = True
        for end, raw in enumerate(value):
            if raw is None or raw == "":
                continue
            address = self.checked(f"{path}[{end}]", raw, validate.interface)
            if address is None:
                ok = False
                continue
            self.host_address(f"{path}[{end}]", address)
            found[end] = str(address)
        return (found[0], found[1]) if ok else None

    def check_ends(self, links: list[tuple[str, LinkSpec]]) -> None:
        """Names after default naming, and addresses against the other end or bridge."""
        bridges = tuple(spec for _, spec in self.bridges.values())
        named = Topology("check", links=tuple(spec for _, spec in links), bridges=bridges)
        by_name = {(end.namespace, end.name): end.path for end in self.ends}
        on_bridge: dict[str, dict[validate.IPAddress, str]] = {}
        for name, (path, spec) in self.bridges.items():
            if spec.address is not None:
                on_bridge[name] = {ipaddress.ip_interface(spec.address).ip: _at(path, "address")}
        for (path, given), link in zip(links, named.with_link_names().links, strict=True):
            assert link.names is not None
            bridge = self.bridges.get(link.b)
            places = (link.a, None if bridge else link.b)
            addresses = [None if a is None else ipaddress.ip_interface(a) for a in link.addresses]
            for end in (0, 1):
                where, name = places[end], link.names[end]
                if given.names is not None:
                    name_path = f"{path}.names[{end}]"
                    said = f"{name!r}"
                else:
                    name_path = path
                    said = f"its default interface name {name!r}"
                if name == "lo":
                    self.add(name_path, f"{said} is the loopback's name in every namespace")
                elif (where, name) in by_name:
                    hint = "" if given.names is not None else "; give this link 'names'"
                    self.add(
                        name_path,
                        f"{said} is already used in {_where(where)} by "
                        f"{by_name[where, name]}{hint}",
                    )
                else:
                    by_name[where, name] = name_path
                    self.ends.append(_End(where, name, addresses[end], name_path))
            self.link_subnets(path, link, addresses, bridge, on_bridge)

    def link_subnets(
        self,
        path: str,
        link: LinkSpec,
        addresses: list[validate.IPInterface | None],
        bridge: tuple[str, BridgeSpec] | None,
        on_bridge: dict[str, dict[validate.IPAddress, str]],
    ) -> None:
        first, second = addresses
        if bridge is not None:
            bridge_path, spec = bridge
            used = on_bridge.setdefault(spec.name, {})
            for end, address in enumerate(addresses):
                if address is None:
                    continue
                where = f"{path}.addresses[{end}]"
                if spec.address is not None:
                    own = ipaddress.ip_interface(spec.address)
                    if address.network != own.network:
                        self.add(
                            where,
                            f"'{address}' is not in the subnet of bridge {spec.name!r} "
                            f"({own.network}, from {bridge_path}.address)",
                        )
                        continue
                if address.ip in used:
                    self.add(
                        where,
                        f"'{address}' is already used on bridge {spec.name!r} "
                        f"by {used[address.ip]}",
                    )
                    continue
                used[address.ip] = where
            return
        if first is None or second is None:
            return
        where = f"{path}.addresses[1]"
        if first.network != second.network:
            self.add(
                where,
                f"'{second}' is not in the same subnet as the other end's "
                f"'{first}' ({first.network}): a link's two ends share one",
            )
        elif first.ip == second.ip:
            self.add(where, f"'{second}' is the same address as the other end's")

    # -- routes, sysctls, masquerade -------------------------------------------------
    def where(self, path: str, item: Mapping[str, object]) -> tuple[bool, str | None]:
        """The namespace an item acts in (None: the host side), and whether it is known."""
        if not _given(item, "namespace"):
            return True, None
        name = self.reference(_at(path, "namespace"), item["namespace"], bridges=False)
        return name is not None, name

    def place(self, namespace: str | None) -> _Place | None:
        """The interfaces the lab makes there, indexed; None when unknown (the host side
        of a lab that is not isolated)."""
        if namespace is None and not self.isolated:
            return None
        if self._placed != len(self.ends):
            self._places = {}
            for end in self.ends:
                self._places.setdefault(end.namespace, _Place()).add(end)
            self._placed = len(self.ends)
        found = self._places.get(namespace)
        return found if found is not None else _Place()

    def check_routes(self, items: list[tuple[str, Mapping[str, object]]]) -> list[RouteSpec]:
        routes = []
        seen: dict[tuple[str | None, validate.IPNetwork], str] = {}
        for path, item in items:
            known, namespace = self.where(path, item)
            destination = via = dev = None
            if "destination" in item:
                destination = self.checked(_at(path, "destination"), item["destination"], _dest)
            if _given(item, "via"):
                via = self.checked(_at(path, "via"), item["via"], validate.address)
            if _given(item, "dev"):
                dev = self.checked(_at(path, "dev"), item["dev"], validate.interface_name)
            if not _given(item, "via") and not _given(item, "dev"):
                self.add(path, "a route needs 'via' (a gateway) or 'dev' (an interface)")
                continue
            damaged = (via is None and _given(item, "via")) or (dev is None and _given(item, "dev"))
            if not known or destination is None or damaged:
                continue
            if (
                via is not None
                and destination != "default"
                and ipaddress.ip_network(destination).version != via.version
            ):
                self.add(
                    _at(path, "via"),
                    f"'{via}' is IPv{via.version} but the destination {destination} is not",
                )
                continue
            version = via.version if via is not None and destination == "default" else 4
            network = ipaddress.ip_network(
                ("0.0.0.0/0" if version == 4 else "::/0")
                if destination == "default"
                else destination
            )
            if (namespace, network) in seen:
                self.add(
                    path,
                    f"a route to {destination} in {_where(namespace)} is already "
                    f"given by {seen[namespace, network]}",
                )
                continue
            seen[namespace, network] = path
            if not self.route_reaches(path, namespace, via, dev):
                continue
            routes.append(
                RouteSpec(
                    destination,
                    via=None if via is None else str(via),
                    dev=dev,
                    namespace=namespace,
                )
            )
        return routes

    def route_reaches(
        self,
        path: str,
        namespace: str | None,
        via: validate.IPAddress | None,
        dev: str | None,
    ) -> bool:
        place = self.place(namespace)
        if place is None:
            return True
        if dev is not None and dev != "lo" and dev not in place.ends:
            self.add(
                _at(path, "dev"),
                f"{dev!r} is not an interface in {_where(namespace)} (it has: {place.have()})"
                + _did_you_mean(dev, place.names()),
            )
            return False
        if via is None or (via.version == 6 and via.is_link_local):
            return True
        if dev is not None:  # only that interface's own subnet
            end = place.ends.get(dev)
            place = _Place()
            if end is not None:
                place.add(end)
        if via in place.own:
            self.add(_at(path, "via"), f"'{via}' is an address of {_where(namespace)} itself")
            return False
        if not place.connects(via):
            subnets = place.subnets()
            onto = f" on {dev!r}" if dev is not None else ""
            have = f"connected: {_listing(subnets)}" if subnets else "it has no addresses" + onto
            self.add(
                _at(path, "via"),
                f"'{via}' is not in a subnet connected to {_where(namespace)}{onto} ({have})",
            )
            return False
        return True

    def check_sysctls(self, items: list[tuple[str, Mapping[str, object]]]) -> list[SysctlSpec]:
        sysctls = []
        seen: dict[tuple[str | None, str], str] = {}
        for path, item in items:
            known, namespace = self.where(path, item)
            key = value = None
            if "key" in item:
                key = self.checked(_at(path, "key"), item["key"], validate.sysctl_key)
            if "value" in item:
                value = self.checked(_at(path, "value"), item["value"], validate.sysctl_value)
            if not known or key is None or value is None:
                continue
            if (namespace, key) in seen:
                self.add(
                    _at(path, "key"),
                    f"{key!r} is already set in {_where(namespace)} by {seen[namespace, key]}",
                )
                continue
            seen[namespace, key] = path
            sysctls.append(SysctlSpec(key, value, namespace))
        return sysctls

    def check_masquerades(
        self, items: list[tuple[str, Mapping[str, object]]]
    ) -> list[MasqueradeSpec]:
        masquerades = []
        seen: dict[tuple[str, str | None], str] = {}
        for path, item in items:
            source = out = None
            if "source" in item:
                source = self.checked(_at(path, "source"), item["source"], validate.network)
            if _given(item, "out_interface"):
                out = self.checked(
                    _at(path, "out_interface"), item["out_interface"], validate.interface_name
                )
                host = self.place(None)
                if out is not None and host is not None and out not in host.ends:
                    self.add(
                        _at(path, "out_interface"),
                        f"{out!r} is not an interface on {_HOST} (it has: {host.have()})",
                    )
                    continue
                if out is None:
                    continue
            if source is None:
                continue
            if (str(source), out) in seen:
                self.add(path, f"the same masquerade is already given by {seen[str(source), out]}")
                continue
            seen[str(source), out] = path
            masquerades.append(MasqueradeSpec(str(source), out))
        return masquerades


def _mtu(value: object, field: str) -> int:
    return validate.positive_int(value, field, minimum=68, maximum=65535)


def _dest(value: object, field: str) -> str:
    if value == "default":
        return "default"
    return str(validate.network(value, field))
