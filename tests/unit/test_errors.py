"""The error tree: the kernel's words land in the subclass that says what to do."""

from __future__ import annotations

import pickle

import pytest

from netns_kit import (
    AlreadyExistsError,
    Bridge,
    CommandError,
    Masquerade,
    Namespace,
    NetnsKitError,
    NotFoundError,
    PermissionDeniedError,
    RecordingExecutor,
    Sysctl,
    ToolMissingError,
    ValidationError,
    VethPair,
)
from netns_kit.errors import REPR_LIMIT, bounded_repr, command_error

from .conftest import BAD_RULE

NOT_ROOT = "iptables v1.8.9 (nf_tables): Permission denied (you must be root)\n"


@pytest.mark.parametrize(
    ("argv", "returncode", "stderr", "expected"),
    [
        (
            ("ip", "link", "add", "name", "br0", "type", "bridge", "mcast_snooping", "0"),
            2,
            "RTNETLINK answers: File exists\n",
            AlreadyExistsError,
        ),
        (
            ("ip", "netns", "add", "red"),
            1,
            'Cannot create namespace file "/run/netns/red": File exists\n',
            AlreadyExistsError,
        ),
        (("ip", "link", "set", "dev", "v0", "up"), 1, 'Cannot find device "v0"\n', NotFoundError),
        (
            ("ip", "-n", "red", "link"),
            1,
            'Cannot open network namespace "red": No such file or directory\n',
            NotFoundError,
        ),
        (
            ("ip", "netns", "delete", "red"),
            1,
            'Cannot remove namespace file "/run/netns/red": No such file or directory\n',
            NotFoundError,
        ),
        (
            ("ip", "route", "del", "10.1.0.0/24"),
            2,
            "RTNETLINK answers: No such process\n",
            NotFoundError,
        ),
        (("iptables", "-w", "-t", "nat", "-D", "POSTROUTING"), 1, BAD_RULE, NotFoundError),
        (
            ("ip", "link", "add", "name", "br0", "type", "bridge", "mcast_snooping", "0"),
            2,
            "RTNETLINK answers: Operation not permitted\n",
            PermissionDeniedError,
        ),
        (
            ("ip", "netns", "add", "red"),
            1,
            "mkdir /run/netns failed: Permission denied\n",
            PermissionDeniedError,
        ),
        (("iptables", "-w", "-t", "nat", "-A", "POSTROUTING"), 4, NOT_ROOT, PermissionDeniedError),
        (
            ("ip", "link", "add", "name", "x", "type", "bogus"),
            2,
            "Error: Unknown device type.\n",
            CommandError,
        ),
    ],
)
def test_kernel_words_map_to_a_subclass(
    argv: tuple[str, ...], returncode: int, stderr: str, expected: type[CommandError]
) -> None:
    error = command_error(argv, returncode, "", stderr)
    assert type(error) is expected
    assert isinstance(error, CommandError)
    assert error.argv == argv
    assert error.returncode == returncode
    assert error.stderr == stderr


@pytest.mark.parametrize(
    ("tool", "package"),
    [("sysctl", "procps"), ("iptables", "iptables"), ("ip", "iproute2"), ("ping", "iputils-ping")],
)
def test_exec_failure_in_a_namespace_is_a_missing_tool(tool: str, package: str) -> None:
    error = command_error(
        ("ip", "netns", "exec", "red", tool, "-x"),
        255,
        "",
        f'exec of "{tool}" failed: No such file or directory\n',
    )
    assert isinstance(error, ToolMissingError)
    assert error.tool == tool
    assert repr(package) in str(error)


def test_missing_tool_without_a_known_package() -> None:
    error = ToolMissingError("frobnicate")
    assert str(error) == "'frobnicate' is not installed"


def test_command_error_message_shows_the_command_line_and_the_kernel_words() -> None:
    error = command_error(
        ("ip", "link", "set", "dev", "my link", "up"), 1, "", 'Cannot find device "my link"\n'
    )
    text = str(error)
    assert "`ip link set dev 'my link' up`" in text
    assert "exit code 1" in text
    assert 'Cannot find device "my link"' in text
    assert "hint:" in text


def test_command_error_falls_back_to_stdout_then_to_a_placeholder() -> None:
    assert "said this on stdout" in str(CommandError(("x",), 1, "said this on stdout\n", ""))
    assert "(no output)" in str(CommandError(("x",), 1))
    assert "hint" not in str(CommandError(("x",), 1))


@pytest.mark.parametrize("stderr", ["RTNETLINK answers: Operation not permitted", NOT_ROOT])
def test_permission_message_says_what_to_do(stderr: str) -> None:
    text = str(command_error(("ip", "netns", "add", "red"), 4, "", stderr))
    assert "root" in text
    assert "CAP_NET_ADMIN" in text
    assert "CAP_SYS_ADMIN" in text
    assert "sudo=True" in text


def test_iptables_bad_rule_keeps_its_return_code() -> None:
    error = command_error(("iptables", "-D", "POSTROUTING"), 1, "", BAD_RULE)
    assert isinstance(error, NotFoundError)
    assert error.returncode == 1
    assert "Bad rule (does a matching rule exist in that chain?)" in str(error)


def test_errors_survive_pickling() -> None:
    error = command_error(("ip", "link"), 2, "o", "RTNETLINK answers: File exists")
    assert isinstance(error, AlreadyExistsError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AlreadyExistsError
    assert (copy.argv, copy.returncode, copy.stdout, copy.stderr) == (
        error.argv,
        error.returncode,
        error.stdout,
        error.stderr,
    )


def test_every_error_is_a_netns_kit_error() -> None:
    for cls in (
        CommandError,
        AlreadyExistsError,
        NotFoundError,
        PermissionDeniedError,
        ToolMissingError,
        ValidationError,
    ):
        assert issubclass(cls, NetnsKitError)
    assert issubclass(ValidationError, ValueError)


def test_validation_error_names_field_and_value() -> None:
    error = ValidationError("name", "a b", "holds a space")
    assert (error.field, error.value, error.reason) == ("name", "a b", "holds a space")
    assert str(error) == "name: 'a b' holds a space"


# -- through the objects: canned stderr reaches the caller as the right subclass --------
def test_object_action_raises_already_exists() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip", "link", "add"), stderr="RTNETLINK answers: File exists", returncode=2)
    with pytest.raises(AlreadyExistsError) as caught:
        Bridge("br0", executor=ex).create()
    assert caught.value.argv == (
        "ip",
        "link",
        "add",
        "name",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    )


def test_object_action_raises_not_found() -> None:
    ex = RecordingExecutor()
    ex.answer(
        ("ip", "netns", "delete"),
        stderr='Cannot remove namespace file "/run/netns/red": No such file or directory',
        returncode=1,
    )
    with pytest.raises(NotFoundError):
        Namespace("red", executor=ex).delete()


def test_object_action_raises_permission_denied() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip",), stderr="RTNETLINK answers: Operation not permitted", returncode=2)
    with pytest.raises(PermissionDeniedError, match="sudo=True"):
        VethPair("a", "b", executor=ex).create()


def test_masquerade_disable_of_a_missing_rule_is_not_found() -> None:
    ex = RecordingExecutor()
    ex.answer(("iptables", "-w", "-t", "nat", "-D"), stderr=BAD_RULE, returncode=1)
    with pytest.raises(NotFoundError):
        Masquerade("10.0.0.0/24", executor=ex).disable()


def test_masquerade_as_non_root_is_permission_denied() -> None:
    ex = RecordingExecutor()
    ex.answer(("sysctl",), stdout="1\n")
    ex.answer(("iptables",), stderr=NOT_ROOT, returncode=4)
    with pytest.raises(PermissionDeniedError) as caught:
        Masquerade("10.0.0.0/24", executor=ex).enable()
    assert caught.value.returncode == 4


def test_sysctl_missing_in_a_namespace_names_procps() -> None:
    ex = RecordingExecutor()
    ex.answer(
        ("ip", "netns", "exec", "red", "sysctl"),
        stderr='exec of "sysctl" failed: No such file or directory\n',
        returncode=255,
    )
    with pytest.raises(ToolMissingError, match="procps"):
        Sysctl("net.ipv4.ip_forward", 1, namespace="red", executor=ex).apply()


# -- values in messages: bounded, whatever the value -------------------------------------


class _ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def _nested(depth: int) -> list[object]:
    top: list[object] = []
    inner = top
    for _ in range(depth):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    return top


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a b", "'a b'"),
        (None, "None"),
        (1.5, "1.5"),
        ({"a": [1, (2,)]}, "{'a': [1, (2,)]}"),
        (frozenset({1}), "frozenset({1})"),
        (set(), "set()"),
        (10**5000, "an integer of 5,001 digits"),
        (-(10**4999), "an integer of 5,000 digits"),
        ("x" * 1000, "'" + "x" * 77 + "…'"),
        (list(range(100)), "[0, 1, 2, 3, 4, 5, 6, 7, …]"),
        (_nested(1000), "[[[[…]]]]"),
        ([10**5000], "[an integer of 5,001 digits]"),
        (_ReprRaises(), "_ReprRaises"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_bounded_repr(value: object, expected: str) -> None:
    assert bounded_repr(value) == expected


def test_bounded_repr_of_a_self_containing_list() -> None:
    loop: list[object] = []
    loop.append(loop)
    assert bounded_repr(loop) == "[[[[…]]]]"


@pytest.mark.parametrize(
    "value",
    [10**5000, "y" * 10**6, _nested(1000), {"k": "z" * 10**5}, _ReprRaises(), b"\0" * 10**5],
    ids=["int", "str", "nested", "dict", "repr-raises", "bytes"],
)
def test_validation_error_message_is_bounded(value: object) -> None:
    error = ValidationError("name", value, "is not a name (expected a string)")
    assert error.value is value
    assert len(str(error)) <= len("name: ") + REPR_LIMIT + len(" is not a name (expected a string)")
    assert str(error).startswith("name: ")
    assert str(error).endswith(" is not a name (expected a string)")
