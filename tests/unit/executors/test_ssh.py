"""SSHExecutor without a network: its argv, its quoting, and how ssh's outcomes map.

The ``ssh`` process is replaced by a fake (pytest-mock patches ``subprocess`` in
``netns_kit.executors.ssh``) that plays OpenSSH's part: a master that goes to the background
once connected (it makes the control socket), ``-O check``/``-O exit``, and the
commands, whose answers each test scripts.  The quoting tests run the remote string
through a real ``/bin/sh -c``, which is what sshd does with it.
"""

from __future__ import annotations

import pickle
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_mock import MockerFixture

from netns_kit import (
    AlreadyExistsError,
    CommandTimeoutError,
    MachineUnreachableError,
    NetnsKitError,
    Runner,
    SSHExecutor,
    ToolMissingError,
    ValidationError,
)
from netns_kit.command import Command, ip
from netns_kit.executors.batch import Batch

#: Words a shell would act on.  Harmless even if run: should quoting ever break, the
#: test fails without doing anything worse than echo (and runs in a scratch directory).
HOSTILE = [
    "$(echo injected)",
    "`echo injected`",
    "a; echo injected",
    "it's",
    'say "hi"',
    "back\\slash",
    "new\nline",
    "*",
    "~root",
    "$HOME",
    "a b\tc",
    "",
    "-oProxyCommand=sh",
    "#comment",
    "|&><",
    "é ü 漢",
]


class FakeSsh:
    """Plays ``ssh``: every call is recorded; the master makes its control socket."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.master_up = True  # what ``-O check`` says once connected
        self.connect_fails: str | None = None
        self.answers: list[tuple[int, str, str]] = []
        self.raise_on_command: BaseException | None = None

    def commands(self) -> list[list[str]]:
        """The calls that ran a remote command (not the master, not -O)."""
        return [c["argv"] for c in self.calls if _kind(c["argv"]) == "command"]

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Like ``subprocess.run``: text or bytes, as the caller asked."""
        self.calls.append({"argv": list(argv), **kwargs})
        kind = _kind(argv)
        if kind == "master":
            control = Path(argv[argv.index("-S") + 1])
            if self.connect_fails is not None:
                kwargs["stderr"].write(self.connect_fails)
                return subprocess.CompletedProcess(argv, 255)
            control.touch()
            return subprocess.CompletedProcess(argv, 0)
        if kind == "check":
            return subprocess.CompletedProcess(argv, 0 if self.master_up else 255, b"", b"")
        if kind == "exit":
            return subprocess.CompletedProcess(argv, 0, b"", b"Exit request sent.\n")
        if self.raise_on_command is not None:
            raise self.raise_on_command
        code, out, err = self.answers.pop(0) if self.answers else (0, "", "")
        return subprocess.CompletedProcess(argv, code, out, err)


def _kind(argv: list[str]) -> str:
    if "-O" in argv:
        return argv[argv.index("-O") + 1]
    return "master" if "-N" in argv else "command"


@pytest.fixture
def fake(mocker: MockerFixture) -> FakeSsh:
    player = FakeSsh()
    mocker.patch("netns_kit.executors.ssh.subprocess.run", side_effect=player)
    return player


@pytest.fixture
def make() -> Any:
    made: list[SSHExecutor] = []

    def build(host: str = "10.0.0.2", **options: Any) -> SSHExecutor:
        ex = SSHExecutor(host, **options)
        made.append(ex)
        return ex

    yield build
    for ex in made:
        ex.close()


# -- argv (pure) ------------------------------------------------------------------------
def test_argv_runs_through_the_master_with_the_remote_line_last() -> None:
    ex = SSHExecutor("10.0.0.2")
    control = Path("/tmp/x/cm")
    assert ex.argv(ip("link", "show"), control) == (
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=3",
        "-p",
        "22",
        "-S",
        "/tmp/x/cm",
        "-o",
        "ControlMaster=no",
        "-T",
        "--",
        "10.0.0.2",
        "ip link show",
    )


def test_argv_with_every_option_user_options_first() -> None:
    ex = SSHExecutor(
        "lab-b.example.org",
        user="root",
        port=2222,
        identity_file="/keys/lab key",
        sudo=True,
        ssh_options=("-o", "ConnectTimeout=3"),
        local_namespace="mgmt",
    )
    argv = ex.argv(ip("netns", "add", "red"), Path("/d/cm"))
    assert argv[:5] == ("nsenter", "--net=/run/netns/mgmt", "--", "ssh", "-o")
    assert argv[5] == "ConnectTimeout=3"  # ssh keeps the first value given: the user's wins
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-l") + 1] == "root"
    assert argv[argv.index("-i") + 1] == "/keys/lab key"  # one argv element, spaces and all
    assert "IdentitiesOnly=yes" in argv
    assert argv[-3:] == ("--", "lab-b.example.org", "sudo -n ip netns add red")


def test_percent_in_paths_is_doubled_for_ssh_tokens() -> None:
    ex = SSHExecutor("h", identity_file="/keys/100%d")
    argv = ex.argv(ip("link"), Path("/tmp/a%b/cm"))
    assert argv[argv.index("-i") + 1] == "/keys/100%%d"
    assert argv[argv.index("-S") + 1] == "/tmp/a%%b/cm"


def test_relative_identity_file_becomes_absolute(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    ex = SSHExecutor("h", identity_file="~key")  # ssh would expand a leading ~
    assert ex.identity_file == str(tmp_path / "~key")


def test_a_home_relative_identity_file_is_expanded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    ex = SSHExecutor("h", identity_file="~/.ssh/lab")
    assert ex.identity_file == str(tmp_path / ".ssh" / "lab")


def test_master_argv_backgrounds_with_an_idle_limit() -> None:
    argv = SSHExecutor("h").master_argv(Path("/d/cm"))
    assert argv[-9:] == (
        "-S",
        "/d/cm",
        "-o",
        "ControlMaster=yes",
        "-o",
        f"ControlPersist={SSHExecutor.IDLE}",
        "-N",
        "--",
        "h",
    )


def test_control_argv_is_local() -> None:
    assert SSHExecutor("h").control_argv("exit", Path("/d/cm")) == (
        "ssh",
        "-S",
        "/d/cm",
        "-O",
        "exit",
        "--",
        "h",
    )


# -- quoting ----------------------------------------------------------------------------
def _through_sh(line: str) -> list[str]:
    """What a POSIX shell (sshd hands it the line) passes to the program.  It runs in
    a scratch directory: were the quoting broken, a stray ``>name`` lands there."""
    with tempfile.TemporaryDirectory(prefix="mh-quoting-") as scratch:
        done = subprocess.run(
            ["sh", "-c", line], capture_output=True, timeout=10, check=True, cwd=scratch
        )
    return done.stdout.decode().split("\0")[:-1]


@pytest.mark.parametrize("word", HOSTILE)
def test_every_hostile_word_reaches_the_program_unchanged(word: str, tmp_path: Path) -> None:
    ex = SSHExecutor("h")
    line = ex.remote_line(Command(("printf", "%s\\0", word, "after")))
    assert shlex.split(line) == ["printf", "%s\\0", word, "after"]
    assert _through_sh(line) == [word, "after"]


def test_hostile_words_under_sudo_stay_words() -> None:
    line = SSHExecutor("h", sudo=True).remote_line(Command(("printf", "%s\\0", *HOSTILE)))
    assert shlex.split(line) == ["sudo", "-n", "printf", "%s\\0", *HOSTILE]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12),
        min_size=1,
        max_size=4,
    )
)
def test_any_argv_survives_the_remote_shell(words: list[str]) -> None:
    line = SSHExecutor("h").remote_line(Command(("printf", "%s\\0", *words)))
    assert _through_sh(line) == words


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("host", {"host": "-oProxyCommand=touch /tmp/x"}),
        ("host", {"host": "a b"}),
        ("host", {"host": "h;id"}),
        ("host", {"host": "$(id)"}),
        ("host", {"host": "root@h"}),
        ("host", {"host": ""}),
        ("host", {"host": "h\n"}),
        ("user", {"user": "-oProxyCommand=x"}),
        ("user", {"user": "a b"}),
        ("user", {"user": "r$oot"}),
        ("port", {"port": 0}),
        ("port", {"port": 70000}),
        ("port", {"port": "22"}),
        ("ssh_options", {"ssh_options": "-o BatchMode=no"}),
        ("ssh_options", {"ssh_options": ("-o", 3)}),
        ("identity_file", {"identity_file": ""}),
        ("namespace", {"local_namespace": "-x"}),
        ("parallel", {"parallel": 0}),
    ],
)
def test_hostile_settings_are_refused(field: str, kwargs: dict[str, Any]) -> None:
    arguments = {"host": "h", **kwargs}
    host = arguments.pop("host")
    with pytest.raises(ValidationError) as caught:
        SSHExecutor(host, **arguments)
    assert caught.value.field == field


# -- running ----------------------------------------------------------------------------
def test_first_command_opens_one_master_then_reuses_it(fake: FakeSsh, make: Any) -> None:
    ex = make()
    ex.execute(ip("link", "show"))
    ex.execute(ip("addr", "show"))
    kinds = [_kind(c["argv"]) for c in fake.calls]
    assert kinds == ["master", "command", "command"]
    master = fake.calls[0]
    assert master["stdin"] is subprocess.DEVNULL
    assert "pass_fds" not in master  # the long-lived master takes no lab lock
    assert master["process_group"] == 0
    control = ex.control_path
    assert control is not None and control.parent.stat().st_mode & 0o777 == 0o700
    assert [c[-1] for c in fake.commands()] == ["ip link show", "ip addr show"]


def test_a_batch_is_one_round_trip_with_its_lines_on_stdin(fake: FakeSsh, make: Any) -> None:
    ex = make()
    commands = tuple(ip("link", "add", "name", f"d{i}", "type", "dummy") for i in range(500))
    ex.execute_batch(Batch("ip", "red", commands))
    (call,) = [c for c in fake.calls if _kind(c["argv"]) == "command"]
    assert call["argv"][-1] == "ip -n red -batch -"
    assert call["input"].splitlines()[0] == "link add name d0 type dummy"
    assert len(call["input"].splitlines()) == 500


def test_runner_batches_reach_the_host_as_one_ssh(fake: FakeSsh, make: Any) -> None:
    ex = make()
    Runner(ex).run_all([ip("link", "set", "dev", f"v{i}", "up", namespace="red") for i in range(3)])
    assert [c[-1] for c in fake.commands()] == ["ip -n red -batch -"]


def test_remote_file_exists_is_already_exists_naming_the_host(fake: FakeSsh, make: Any) -> None:
    ex = make("lab-b")
    fake.answers.append((2, "", "RTNETLINK answers: File exists\n"))
    with pytest.raises(AlreadyExistsError) as caught:
        Runner(ex).run(ip("link", "add", "name", "v0", "type", "dummy"))
    assert caught.value.machine == "lab-b"
    assert "failed on machine 'lab-b' with exit code 2" in str(caught.value)
    assert caught.value.argv == ("ip", "link", "add", "name", "v0", "type", "dummy")


def test_batch_failure_names_the_line_and_the_host(fake: FakeSsh, make: Any) -> None:
    ex = make("lab-b")
    fake.answers.append((1, "", "RTNETLINK answers: File exists\nCommand failed -:2\n"))
    report = Runner(ex).run_all([ip("netns", "add", "a"), ip("netns", "add", "b")])
    assert isinstance(report.error, AlreadyExistsError)
    assert report.error.argv == ("ip", "netns", "add", "b")
    assert report.error.machine == "lab-b"


def test_result_says_its_host(fake: FakeSsh, make: Any) -> None:
    fake.answers.append((0, "out\n", ""))
    result = make("h").execute(Command(("echo", "out")))
    assert (result.argv, result.stdout, result.machine) == (("echo", "out"), "out\n", "h")


def test_unreachable_host_at_connect(fake: FakeSsh, make: Any) -> None:
    fake.connect_fails = "ssh: connect to host 10.0.0.9 port 22: No route to host\n"
    ex = make("10.0.0.9")
    with pytest.raises(MachineUnreachableError) as caught:
        ex.execute(ip("netns", "add", "red"))
    assert caught.value.machine == "10.0.0.9"
    assert "No route to host" in str(caught.value)
    assert fake.commands() == []  # nothing ran
    assert isinstance(caught.value, NetnsKitError)


def test_connect_checks_a_host_before_anything_runs(fake: FakeSsh, make: Any) -> None:
    fake.connect_fails = "Permission denied (publickey).\n"
    with pytest.raises(MachineUnreachableError, match=r"Permission denied \(publickey\)"):
        make().connect()


def test_dead_connection_is_host_unreachable(fake: FakeSsh, make: Any) -> None:
    ex = make("h")
    ex.connect()
    fake.master_up = False
    fake.answers.append((255, "", "ssh: connect to host h port 22: Connection refused\n"))
    with pytest.raises(MachineUnreachableError, match="Connection refused"):
        ex.execute(ip("link"))
    control = ex.control_path
    assert control is not None and not control.exists()  # the next call connects anew
    fake.master_up = True
    ex.execute(ip("link"))
    assert [_kind(c["argv"]) for c in fake.calls].count("master") == 2


def test_a_remote_programs_own_255_is_a_result(fake: FakeSsh, make: Any) -> None:
    ex = make()
    fake.answers.append((255, "", "my own failure\n"))
    result = ex.execute(Command(("sh", "-c", "exit 255")))
    assert result.returncode == 255
    assert result.stderr == "my own failure\n"


def test_ssh_words_with_a_live_master_are_still_unreachable(fake: FakeSsh, make: Any) -> None:
    ex = make()
    fake.answers.append((255, "", "mux_client_request_session: session request failed\n"))
    with pytest.raises(MachineUnreachableError, match="session request failed"):
        ex.execute(ip("link"))


def test_timeout_is_a_timeout_error_naming_the_host(fake: FakeSsh, make: Any) -> None:
    ex = make("h")
    ex.connect()
    fake.raise_on_command = subprocess.TimeoutExpired(["ssh"], 2.0)
    with pytest.raises(CommandTimeoutError) as caught:
        ex.execute(Command(("sleep", "9")), timeout=2.0)
    assert caught.value.machine == "h"
    assert caught.value.argv == ("sleep", "9")


def test_missing_ssh_names_the_package(mocker: MockerFixture, make: Any) -> None:
    mocker.patch("netns_kit.executors.ssh.subprocess.run", side_effect=FileNotFoundError("ssh"))
    with pytest.raises(ToolMissingError, match="openssh-client"):
        make().execute(ip("link"))


def test_close_ends_the_master_and_removes_its_directory(fake: FakeSsh) -> None:
    ex = SSHExecutor("h")
    ex.execute(ip("link"))
    control = ex.control_path
    assert control is not None
    ex.close()
    assert [_kind(c["argv"]) for c in fake.calls][-1] == "exit"
    assert not control.parent.exists()
    assert ex.control_path is None
    ex.close()  # twice is fine
    assert [_kind(c["argv"]) for c in fake.calls].count("exit") == 1


def test_context_manager_connects_and_closes(fake: FakeSsh) -> None:
    with SSHExecutor("h") as ex:
        assert [_kind(c["argv"]) for c in fake.calls] == ["master"]
        assert ex.control_path is not None
    assert [_kind(c["argv"]) for c in fake.calls] == ["master", "exit"]


def test_parallel_sessions_default_and_setting() -> None:
    assert SSHExecutor("h").parallel == SSHExecutor.OVERLAP
    assert SSHExecutor("h", parallel=8).parallel == 8


def test_repr_names_the_target() -> None:
    assert repr(SSHExecutor("h", user="lab", port=2200)) == "SSHExecutor(lab@h:2200, sudo=False)"


# -- errors -----------------------------------------------------------------------------
def test_host_unreachable_error_message_and_pickling() -> None:
    error = MachineUnreachableError("10.0.0.9", "ssh: connect to host: No route to host\n")
    assert "machine '10.0.0.9' is unreachable over ssh" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.machine, copy.said, str(copy)) == (error.machine, error.said, str(error))


def test_a_command_error_keeps_its_host_through_pickling() -> None:
    from netns_kit.errors import command_error

    error = command_error(("ip", "link"), 2, "", "RTNETLINK answers: File exists", machine="b")
    error.add_note("a note")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, AlreadyExistsError)
    assert copy.machine == "b"
    assert str(copy) == str(error)
    assert copy.__notes__ == ["a note"]


def test_a_vni_in_use_is_already_exists() -> None:
    from netns_kit.errors import command_error

    said = "Error: A VXLAN device with the specified VNI already exists.\n"
    assert isinstance(command_error(("ip", "link", "add"), 2, "", said), AlreadyExistsError)


# -- background programs ----------------------------------------------------------------
class FakePopen:
    """A local ssh client whose far side says its PID, prints, and ends when told."""

    instances: list[FakePopen] = []  # noqa: RUF012

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        import io

        self.argv = argv
        self.pid = 4242
        self.code: int | None = None
        self.stdin = None
        self.stdout = io.StringIO("served\n")
        self.stderr = io.StringIO("netns-kit-remote-pid 777\nwarming up\n")
        FakePopen.instances.append(self)

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        self.code = 143 if self.code is None else self.code
        return self.code

    def send_signal(self, signum: int) -> None:
        self.code = -signum


def test_start_wraps_the_argv_and_stops_the_remote_pid(
    fake: FakeSsh, mocker: MockerFixture, make: Any
) -> None:
    mocker.patch("netns_kit.executors.ssh.subprocess.Popen", side_effect=FakePopen)
    ex = make("h")
    process = ex.start(Command(("ip", "netns", "exec", "red", "nc", "-l", "$(id)")))
    popen = FakePopen.instances[-1]
    remote = shlex.split(popen.argv[-1])
    assert remote[:2] == ["sh", "-c"]
    assert remote[3:] == ["netns-kit", "ip", "netns", "exec", "red", "nc", "-l", "$(id)"]
    assert process.pid == 4242
    result = process.stop()
    assert [c[-1] for c in fake.commands()] == ["kill -15 777"]  # on the host, by its PID
    assert result.stdout == "served\n"
    assert result.stderr == "warming up\n"  # without the PID line
    assert result.machine == "h"


def test_every_call_hands_lab_locks_to_the_client(
    fake: FakeSsh, make: Any, mocker: MockerFixture
) -> None:
    mocker.patch("netns_kit.executors.ssh.inherited_fds", return_value=(7,))
    make().execute(ip("link"))
    (call,) = [c for c in fake.calls if _kind(c["argv"]) == "command"]
    assert call["pass_fds"] == (7,)


@pytest.mark.parametrize("name", ["red;reboot", "$(id)", "`id`", "a|b&c", "x>y", "*", "~r"])
def test_legal_but_hostile_names_stay_one_word_on_the_host(name: str) -> None:
    from netns_kit import Namespace, VethPair

    ex = SSHExecutor("h")
    commands = [
        *Namespace(name).create_commands(),
        *VethPair("v0", "v1", name, name).create_commands(),
    ]
    for command in commands:
        assert shlex.split(ex.remote_line(command)) == list(command.argv)
        assert _through_sh(ex.remote_line(Command(("printf", "%s\\0", *command.argv)))) == list(
            command.argv
        )
