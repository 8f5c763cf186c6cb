"""The functional core: what to do next, as a pure function of (spec, status, observation)."""
