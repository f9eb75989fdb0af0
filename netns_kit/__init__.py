"""netns_kit: fast, safe Linux network-namespace labs over iproute2."""

from .command import Command
from .errors import (
    AlreadyExistsError,
    CommandError,
    CommandTimeoutError,
    HostUnreachableError,
    KernelFeatureMissingError,
    LabBusyError,
    NetnsKitError,
    NotFoundError,
    PermissionDeniedError,
    RootlessUnavailableError,
    SandboxGoneError,
    TeardownError,
    ToolMissingError,
    ValidationError,
)
from .executor import (
    Executor,
    Process,
    RecordingExecutor,
    ScriptExecutor,
    ShellExecutor,
    default_executor,
    use_executor,
)
from .fakehosts import FakeHost, FakeHosts
from .hosts import HostsFiles
from .kept import KeptLab, kept_labs
from .lab import Lab
from .link import Bridge, Interface, VethPair
from .measure import Throughput
from .namespace import Namespace, list_namespaces
from .nat import Masquerade, PortForward, Sysctl
from .ping import PingResult
from .reachability import Failure, Reachability, Target
from .registry import recover, stale_labs
from .result import Result
from .route import Route
from .routing import RoutingExecutor
from .runner import Runner, RunReport
from .sandbox import Sandbox, SandboxExecutor
from .shaping import QdiscInfo, Shape
from .ssh import SSHExecutor
from .step import Entry, Phase, Step
from .vxlan import Vxlan, VxlanPair

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
    "FakeHost",
    "FakeHosts",
    "HostUnreachableError",
    "HostsFiles",
    "Interface",
    "KeptLab",
    "KernelFeatureMissingError",
    "Lab",
    "LabBusyError",
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
