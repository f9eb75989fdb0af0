"""scripts/notebook.ipynb, executed top to bottom in a real kernel: a failing cell fails.

The notebook takes its name suffix from ``NETNS_KIT_NOTEBOOK_SUFFIX``, so this test
knows every name it makes and can check that none is left, whatever happened.  The
kernel talks to this process over loopback (Jupyter's own transport); the lab's
traffic stays inside the lab's namespaces.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import netns_kit

from .conftest import Kernel

nbformat = pytest.importorskip(
    "nbformat", reason="the notebook test needs the notebook extra: pip install -e '.[notebook]'"
)
nbclient = pytest.importorskip(
    "nbclient", reason="the notebook test needs the notebook extra: pip install -e '.[notebook]'"
)
pytest.importorskip(
    "ipykernel", reason="the notebook test needs a python3 kernel: pip install -e '.[notebook]'"
)

NOTEBOOK = Path(__file__).resolve().parents[2] / "scripts" / "notebook.ipynb"
CELL_TIMEOUT = 120  # seconds a cell may take before the run counts as failed


def text_of(cell: Any) -> str:
    """Everything a code cell printed or showed, as one string."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        for data in output.get("data", {}).values():
            parts.append(data if isinstance(data, str) else json.dumps(data))
    return "\n".join(parts)


def leftovers(kernel: Kernel, prefix: str) -> list[str]:
    return [name for name in kernel.namespaces() if name.startswith(prefix)]


def test_notebook_is_stored_clean() -> None:
    """No outputs, no execution counts: the repository holds the notebook, not a run."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.timeout(900)  # CELL_TIMEOUT bounds each cell; the whole run takes longer
def test_notebook_runs(kernel: Kernel, uid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    suffix = uid
    prefix = f"nb-{suffix}"
    monkeypatch.setenv("NETNS_KIT_NOTEBOOK_SUFFIX", suffix)  # the kernel inherits it
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    try:
        client.execute()  # raises CellExecutionError, with the cell's traceback
    finally:
        left = leftovers(kernel, prefix)
        if left:  # clean up what the notebook made (the names are ours), then fail
            netns_kit.recover(prefix)
            for name in leftovers(kernel, prefix):
                subprocess.run(["ip", "netns", "delete", name], check=False)
    assert not left, f"the notebook left namespaces behind: {left}"

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    shown = [text_of(cell) for cell in code]
    assert shown[0].strip() == f"suffix: {suffix}"
    everything = "\n".join(shown)
    assert "3/3 replies, 0.0% loss" in everything
    assert "received=0, loss=100.0" in everything  # the ping nobody answers
    assert "hello from blue" in everything
    lab_view = next(text for cell, text in zip(code, shown, strict=True) if cell.source == "lab")
    assert "<svg" in lab_view and "<table" in lab_view and f"{prefix}-red" in lab_view
    assert "2/2 pairs answered" in everything  # red to blue and back
    heat = next(
        text for cell, text in zip(code, shown, strict=True) if cell.source.endswith("check")
    )
    assert "netns-kit-reachability" in heat and "<table" in heat
    assert "server still running? False" in everything
    assert "namespaces left: []" in everything
    # the shaping section: three rates measured, then the plot of measured/configured
    for mbit in (5, 10, 20):
        assert f"{mbit} mbit: " in everything and "Mbit/s over" in everything
    plot = next(cell for cell in code if "plt.show()" in cell.source)
    assert any("image/png" in output.get("data", {}) for output in plot.outputs)
    # the timeline section (issue 21): the outage table, then the strip plot
    assert f"{prefix}-red -> {prefix}-blue" in everything and "outages:" in everything
    strip = next(cell for cell in code if cell.source.startswith("run.plot()"))
    assert any("image/png" in output.get("data", {}) for output in strip.outputs)
    # what crosses a link: the capture's summary and table, the sampled flow's plot
    assert "ICMP: 6 packets" in everything and "echo request" in everything
    flow = next(cell for cell in code if "flow.plot()" in cell.source)
    assert "samples" in text_of(flow)
    assert any("image/png" in output.get("data", {}) for output in flow.outputs)
