"""For testing code with netns_kit: the pytest plugin (fixtures, markers) and machines
simulated on this one for tests of labs across machines."""
