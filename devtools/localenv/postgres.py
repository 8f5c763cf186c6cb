"""A throwaway Postgres cluster: initdb into a directory, a random loopback port, trust auth."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devtools.localenv.processes import Service, free_port, wait_until

DATABASE = "warden"


def postgres_bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise FileNotFoundError("Postgres server binaries not found; run scripts/setup.sh")
    return Path(initdb).resolve().parent


@dataclass
class Postgres:
    workdir: Path
    detach: bool = False
    port: int = 0
    services: list[Service] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _user(self) -> str | None:
        # initdb and postgres refuse to run as root; Debian's package creates a `postgres` user.
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        return "postgres"

    def _reachable(self) -> None:
        """The server user must reach its data directory through every parent (pytest re-tightens its
        temporary root at every session start, so this is redone before each pg_ctl call)."""
        for directory in (self.workdir, *self.workdir.parents):
            if directory.stat().st_uid == os.geteuid():
                directory.chmod(directory.stat().st_mode | 0o011)

    def _run(self, argv: list[str], user: str | None) -> None:
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[-len(argv)]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self, timeout: float = 60.0) -> None:
        bin_dir = postgres_bin_dir()
        user = self._user()
        data = self.workdir / "pgdata"
        sockets = self.workdir / "pgsock"
        for directory in (self.workdir, data, sockets):
            directory.mkdir(parents=True, exist_ok=True)
        if user is not None:
            for directory in (data, sockets):
                shutil.chown(directory, user)
            self._reachable()
        if not (data / "PG_VERSION").exists():
            self._run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"], user)
        self.port = self.port or free_port()  # a restart keeps the address clients know
        server = Service(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={sockets}",
                "-c",
                "fsync=off",
            ],
            self.workdir / "logs" / "postgres.log",
            detach=self.detach,
            user=user,
        )
        if user is not None:
            (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        server.start()
        self.services.append(server)
        psql = shutil.which("psql") or str(bin_dir / "psql")

        def query(sql: str) -> subprocess.CompletedProcess[str]:
            argv = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-Atc", sql, "postgres"]
            return subprocess.run(argv, capture_output=True, text=True)

        wait_until("postgres", lambda: query("select 1").returncode == 0, timeout, server)
        if query(f"select 1 from pg_database where datname = '{DATABASE}'").stdout.strip() != "1":
            created = query(f"create database {DATABASE}")
            if created.returncode != 0:
                raise RuntimeError(f"could not create database {DATABASE}: {created.stderr.strip()}")

    def stop(self) -> None:
        """A fast shutdown: clients are disconnected rather than waited for (a smart shutdown never ends
        while Warden holds pooled connections)."""
        data = self.workdir / "pgdata"
        if self.services and (data / "postmaster.pid").exists():
            pg_ctl = [str(postgres_bin_dir() / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"]
            user = self._user()
            if user is not None:
                self._reachable()
            self._run(pg_ctl, user)
        for service in self.services:
            service.stop()
        self.services.clear()
