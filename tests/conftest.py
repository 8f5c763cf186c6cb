"""Settings every test shares."""

from hypothesis import settings

# No per-example deadline: speed is measured by the benchmarks, never by a test, and `make test` runs a worker per
# core, so an example's wall time says more about its neighbours than about the code.
settings.register_profile("warden", deadline=None)
settings.load_profile("warden")
