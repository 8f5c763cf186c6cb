"""The Warden API (group trading.warden.dev): pydantic types from which the CRDs are generated."""
