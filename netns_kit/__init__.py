"""netns_kit: fast, safe Linux network-namespace labs over iproute2."""

from .command import Command
from .errors import (
    AlreadyExistsError,
    CommandError,
    CommandTimeoutError,
    LabBusyError,
    NetnsKitError,
    NotFoundError,
    PermissionDeniedError,
    ToolMissingError,
    ValidationError,
)
from .executor import (
    Executor,
    RecordingExecutor,
    Result,
    ScriptExecutor,
    ShellExecutor,
    default_executor,
    use_executor,
)
from .lab import Lab, TeardownError
from .link import Bridge, Interface, VethPair
from .namespace import Namespace, list_namespaces
from .nat import Masquerade, Sysctl
from .ping import PingResult
from .registry import recover, stale_labs
from .route import Route

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "Bridge",
    "Command",
    "CommandError",
    "CommandTimeoutError",
    "Executor",
    "Interface",
    "Lab",
    "LabBusyError",
    "Masquerade",
    "Namespace",
    "NetnsKitError",
    "NotFoundError",
    "PermissionDeniedError",
    "PingResult",
    "RecordingExecutor",
    "Result",
    "Route",
    "ScriptExecutor",
    "ShellExecutor",
    "Sysctl",
    "TeardownError",
    "ToolMissingError",
    "ValidationError",
    "VethPair",
    "default_executor",
    "list_namespaces",
    "recover",
    "stale_labs",
    "use_executor",
]
