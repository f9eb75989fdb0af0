"""netns_kit: fast, safe Linux network-namespace labs over iproute2."""

from .command import Command
from .errors import (
    AlreadyExistsError,
    CommandError,
    CommandTimeoutError,
    KernelFeatureMissingError,
    LabBusyError,
    NetnsKitError,
    NotFoundError,
    PermissionDeniedError,
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
from .lab import Lab
from .link import Bridge, Interface, VethPair
from .measure import Throughput
from .namespace import Namespace, list_namespaces
from .nat import Masquerade, Sysctl
from .ping import PingResult
from .registry import recover, stale_labs
from .result import Result
from .route import Route
from .runner import Runner, RunReport
from .shaping import QdiscInfo, Shape
from .step import Entry, Phase, Step

__version__ = "0.2.0"

__all__ = [
    "AlreadyExistsError",
    "Bridge",
    "Command",
    "CommandError",
    "CommandTimeoutError",
    "Entry",
    "Executor",
    "Interface",
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
    "Process",
    "QdiscInfo",
    "RecordingExecutor",
    "Result",
    "Route",
    "RunReport",
    "Runner",
    "ScriptExecutor",
    "Shape",
    "ShellExecutor",
    "Step",
    "Sysctl",
    "TeardownError",
    "Throughput",
    "ToolMissingError",
    "ValidationError",
    "VethPair",
    "default_executor",
    "list_namespaces",
    "recover",
    "stale_labs",
    "use_executor",
]
