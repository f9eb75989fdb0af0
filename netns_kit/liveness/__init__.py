"""Whether the process a lab record names still runs (see :mod:`netns_kit.liveness.owner`)."""
