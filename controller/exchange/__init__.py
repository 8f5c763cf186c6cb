"""Exchange access through real ccxt: client construction, error classification, order operations."""
