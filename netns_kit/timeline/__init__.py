"""Labs over time: continuous probes, events on a timeline, measured outages.

* :mod:`~netns_kit.timeline.outages` turns probe series into outages (pure);
* :mod:`~netns_kit.timeline.watch` probes pairs continuously (``lab.watch``),
  through the executor: raw ICMP sockets where it can, ``fping -l`` where not;
* :mod:`~netns_kit.timeline.events` is the timeline (``lab.timeline()``) and
  :mod:`~netns_kit.timeline.actions` its named actions;
* :mod:`~netns_kit.timeline.run` is what a run gives back;
* :mod:`~netns_kit.timeline.files` reads ``[[events]]``, ``[watch]`` and the
  run bounds of ``[expect]`` from topology files; :mod:`~netns_kit.timeline.cli`
  is ``netns-kit run``.
"""

from __future__ import annotations

from netns_kit.timeline.outages import Outage, Probe, Series, outages

__all__ = ["Outage", "Probe", "Series", "outages"]
