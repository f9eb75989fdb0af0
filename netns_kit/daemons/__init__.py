"""Routing daemons as lab resources: FRR and BIRD in the lab's namespaces.

``model`` holds what a router is asked to run (pure values), ``frr`` and ``bird``
turn that into each suite's configuration and command lines, ``wiring`` derives it
from the lab's links, ``resources`` makes the directories and starts and stops the
daemons through the executor, ``converge`` waits until the kernels' tables are
complete, ``files`` reads and checks routing in topology files, ``cli`` is what the
command line adds for routers, and ``builders`` is the part mixed into
:class:`~netns_kit.lab.lab.Lab`.
"""

from netns_kit.daemons.converge import NotConvergedError
from netns_kit.daemons.model import Bgp, Interface, Neighbor, Ospf, RouterConfig

__all__ = ["Bgp", "Interface", "Neighbor", "NotConvergedError", "Ospf", "RouterConfig"]
