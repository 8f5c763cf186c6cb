"""The append-only audit history in Postgres."""
