"""FakeMachines before they start: the layout they promise, and their checks (no root)."""

from __future__ import annotations

import pytest

from netns_kit import FakeMachines, NetnsKitError, ValidationError


def test_layout_machines_first_addresses_clients_last() -> None:
    machines = FakeMachines(3, name="mh-x", subnet="10.77.0.0/24")
    assert [h.address for h in machines] == ["10.77.0.1", "10.77.0.2", "10.77.0.3"]
    assert [h.namespace for h in machines] == ["mh-x-h0", "mh-x-h1", "mh-x-h2"]
    assert {h.underlay for h in machines} == {"eth0"}
    assert machines.client_address == "10.77.0.254"
    assert machines.client_namespace == "mh-x-host"
    assert len(machines) == 3 and machines[1].name == "h1"


def test_keys_exist_only_once_started() -> None:
    machines = FakeMachines(1, name="mh-x")
    with pytest.raises(NetnsKitError, match="not started"):
        machines[0].ssh_options  # noqa: B018


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("count", {"count": 0}),
        ("subnet", {"subnet": "fd00::/64"}),
        ("subnet", {"subnet": "10.0.0.0/30"}),
        ("subnet", {"subnet": "10.0.0.1/24"}),
        ("name", {"name": "-x"}),
    ],
)
def test_bad_settings_are_refused(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        FakeMachines(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
