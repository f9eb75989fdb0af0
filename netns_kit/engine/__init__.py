"""From steps to processes: the typed :class:`~netns_kit.engine.step.Step`, the planner
that orders steps once (phases, lanes per namespace, waves), and the runner that runs a
plan through an executor and returns a report of what ran."""
