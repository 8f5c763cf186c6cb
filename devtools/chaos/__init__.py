"""Chaos suite: seeded fault schedules on the real local environment, and the invariant checker."""
