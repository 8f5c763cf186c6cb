"""Tools for developing Warden, beside the operator and never in its image: the local launcher (``localenv``:
control plane, Postgres, paper exchange and controller on 127.0.0.1) and the chaos suite (``chaos``)."""
