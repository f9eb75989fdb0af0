"""netns_kit: fast, safe Linux network-namespace labs over iproute2."""

from netns_kit.check.result import Failure, Reachability, Target
from netns_kit.command import Command
from netns_kit.engine.runner import Runner, RunReport
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import (
    AlreadyExistsError,
    CommandError,
    CommandTimeoutError,
    KernelFeatureMissingError,
    LabBusyError,
    MachineUnreachableError,
    NetnsKitError,
    NotFoundError,
    PermissionDeniedError,
    RootlessUnavailableError,
    SandboxGoneError,
    TeardownError,
    ToolMissingError,
    ValidationError,
)
from netns_kit.executors import (
    Executor,
    Process,
    RecordingExecutor,
    ScriptExecutor,
    ShellExecutor,
    default_executor,
    use_executor,
)
from netns_kit.executors.dispatch import RoutingExecutor
from netns_kit.executors.sandbox import Sandbox, SandboxExecutor
from netns_kit.executors.ssh import SSHExecutor
from netns_kit.lab.kept import KeptLab, kept_labs
from netns_kit.lab.lab import Lab
from netns_kit.lab.measure import Throughput
from netns_kit.objects.hostsfiles import HostsFiles
from netns_kit.objects.link import Bridge, Interface, VethPair
from netns_kit.objects.namespace import Namespace, list_namespaces
from netns_kit.objects.nat import Masquerade, PortForward, Sysctl
from netns_kit.objects.ping import PingResult
from netns_kit.objects.route import Route
from netns_kit.objects.shaping import QdiscInfo, Shape
from netns_kit.objects.vxlan import Vxlan, VxlanPair
from netns_kit.record.registry import recover, stale_labs
from netns_kit.result import Result
from netns_kit.testing.fakemachines import FakeMachine, FakeMachines

__version__ = "0.2.0"

__all__ = [
    "AlreadyExistsError",
    "Bridge",
    "Command",
    "CommandError",
    "CommandTimeoutError",
    "Entry",
    "Executor",
    "Failure",
    "FakeMachine",
    "FakeMachines",
    "HostsFiles",
    "Interface",
    "KeptLab",
    "KernelFeatureMissingError",
    "Lab",
    "LabBusyError",
    "MachineUnreachableError",
    "Masquerade",
    "Namespace",
    "NetnsKitError",
    "NotFoundError",
    "PermissionDeniedError",
    "Phase",
    "PingResult",
    "PortForward",
    "Process",
    "QdiscInfo",
    "Reachability",
    "RecordingExecutor",
    "Result",
    "RootlessUnavailableError",
    "Route",
    "RoutingExecutor",
    "RunReport",
    "Runner",
    "SSHExecutor",
    "Sandbox",
    "SandboxExecutor",
    "SandboxGoneError",
    "ScriptExecutor",
    "Shape",
    "ShellExecutor",
    "Step",
    "Sysctl",
    "Target",
    "TeardownError",
    "Throughput",
    "ToolMissingError",
    "ValidationError",
    "VethPair",
    "Vxlan",
    "VxlanPair",
    "default_executor",
    "kept_labs",
    "list_namespaces",
    "recover",
    "stale_labs",
    "use_executor",
]
