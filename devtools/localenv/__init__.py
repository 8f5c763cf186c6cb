"""A local Warden environment from real parts: kube-apiserver + etcd, Postgres, the paper exchange, the controller.

Used by ``make up/run/down`` and by the test suite. Everything binds to 127.0.0.1.
"""
