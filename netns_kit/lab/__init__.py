"""The :class:`~netns_kit.Lab`: its life cycle (core), builders, views, placement on
machines, what it holds (holdings), readiness waits, measurements, and labs kept up by
``netns-kit up`` (kept)."""
