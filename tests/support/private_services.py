"""A Redis server and a PostgreSQL cluster owned by one test, which it may stop and start for real.

The shared services on 6379 and 5432 serve other people and are never touched here: these run on
free ports with their files in a temporary folder, and are removed when the test ends. Under
CI=true a missing binary fails the test (tests.support.services.unavailable).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from tests.support import services
from tests.support.live import free_port, wait_for_port


class PrivateRedis:
    """redis-server on a free port, without persistence: a restart comes back empty (unless
    started with ``aof=True``, which keeps an append-only file in its folder and reads it back)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            services.unavailable("redis-server", FileNotFoundError("redis-server is not on PATH"))
        self.binary = str(binary)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="idp-redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, aof: bool = False) -> None:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes" if aof else "no",
                    "--appendfsync",
                    "everysec",
                    "--dir",
                    str(self.dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 10
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"private redis did not start:\n{self.log()}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        services.unavailable("PostgreSQL binaries", FileNotFoundError("no /usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb), run by the `postgres` system user.

    initdb and the server refuse to run as root, so every command goes through `runuser` when
    this process is root; the data folder belongs to that user.
    """

    user = "postgres"

    # Fast and unsafe for a single test cluster; a replication pair overrides these.
    durability = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def __init__(self, folder: Path | None = None) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = folder or Path(tempfile.mkdtemp(prefix="idp-pg-"))
        self.dir.mkdir(exist_ok=True)
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.extra_options = ""
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(self.user)
            except KeyError as exc:
                services.unavailable("PostgreSQL (no postgres system user)", exc)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", self.user, "--"]

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [*self._as_user, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        )

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.dir} "
            f"{self.durability} -c max_connections=50 {self.extra_options}"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )
        wait_for_port(self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode "immediate" is a crash (no checkpoint, connections cut)."""
        if (self.data / "postmaster.pid").exists():
            self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "-t",
                "30",
                "stop",
            )

    def promote(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "promote")

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class PrivateSentinelSet:
    """A Redis primary, one replica and three Sentinels (quorum 2), each a real process on a free
    port with its files in a temporary folder. ``crash_primary`` kills the primary as a machine
    failure would; the Sentinels then promote the replica."""

    service = "idp-primary"

    def __init__(self, *, down_after_ms: int = 1000) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            services.unavailable("redis-server", FileNotFoundError("redis-server is not on PATH"))
        self.binary = str(binary)
        self.dir = Path(tempfile.mkdtemp(prefix="idp-sentinel-"))
        self.down_after_ms = down_after_ms
        self.ports = {"primary": free_port(), "replica": free_port()}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{self.service}/0"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.processes[name] = subprocess.Popen(
                [self.binary, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()

    def _server_args(self, name: str) -> list[str]:
        folder = self.dir / name
        folder.mkdir(exist_ok=True)
        return [
            "--port", str(self.ports[name]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder),
        ]  # fmt: skip

    def start(self) -> None:
        self._spawn("primary", self._server_args("primary"))
        self._spawn(
            "replica", [*self._server_args("replica"), "--replicaof", "127.0.0.1", str(self.ports["primary"])]
        )
        for name in ("primary", "replica"):
            self._wait(self.ports[name])
        for i, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.ports['primary']} 2\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} 10000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            self._spawn(f"sentinel-{i}", [str(conf), "--sentinel"])
        for port in self.sentinel_ports:
            self._wait(port)
        deadline = time.monotonic() + 15
        while True:  # the replica in sync, and every Sentinel knowing the replica and the others
            replica = redis.Redis(host="127.0.0.1", port=self.ports["replica"])
            try:
                synced = replica.info("replication").get("master_link_status") == "up"
            finally:
                replica.close()
            known = all(self._sentinel_sees_everyone(p) for p in self.sentinel_ports)
            if synced and known:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Sentinel set did not settle:\n{self.logs()}")
            time.sleep(0.2)

    def _sentinel_sees_everyone(self, port: int) -> bool:
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        try:
            primary = client.sentinel_master(self.service)
            return int(primary.get("num-slaves", 0)) >= 1 and int(primary.get("num-other-sentinels", 0)) >= 2
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _wait(self, port: int) -> None:
        deadline = time.monotonic() + 10
        while True:
            client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis on {port} did not start:\n{self.logs()}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def primary_port(self) -> int:
        """The port the Sentinels name as the primary now."""
        client = redis.Redis(host="127.0.0.1", port=self.sentinel_ports[0], decode_responses=True)
        try:
            return int(client.sentinel_get_master_addr_by_name(self.service)[1])
        finally:
            client.close()

    def crash_primary(self) -> int:
        """SIGKILL the current primary; returns its port."""
        port = self.primary_port()
        name = next(n for n, p in self.ports.items() if p == port)
        self.processes[name].kill()
        self.processes[name].wait(timeout=10)
        return port

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.dir.glob("*.log"))
        )

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgresPair:
    """A PostgreSQL primary and a streaming standby of it (pg_basebackup -R), with synchronous
    replication: a commit is acknowledged only once the standby has it, so a crash of the primary
    followed by the standby's promotion loses nothing that idp was told is committed."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="idp-pg-pair-"))
        self.primary = PrivatePostgres(self.dir / "primary")
        self.standby = PrivatePostgres(self.dir / "standby")
        for server in (self.primary, self.standby):
            if os.geteuid() == 0:
                entry = pwd.getpwnam(server.user)
                os.chown(self.dir, entry.pw_uid, entry.pw_gid)
                os.chown(server.dir, entry.pw_uid, entry.pw_gid)
            server.durability = "-c fsync=on -c synchronous_commit=on"
            server.extra_options = (
                "-c wal_level=replica -c max_wal_senders=5 -c hot_standby=on "
                "-c wal_sender_timeout=5s -c wal_receiver_timeout=5s"
            )
        # Only the primary waits for a synchronous standby: once promoted, the standby has none (a
        # failover tool would configure the next one), and waiting for it would hang every commit.
        self.primary.extra_options += " -c synchronous_standby_names=standby"

    def start(self) -> None:
        self.primary.init()
        self.primary.start()
        self.standby._run(
            str(self.standby.bin / "pg_basebackup"),
            "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            "-D", str(self.standby.data), "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip
        with open(self.standby.data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"primary_conninfo = 'host=127.0.0.1 port={self.primary.port} user=postgres "
                "application_name=standby'\n"
            )
        self.standby.start()
        deadline = time.monotonic() + 20
        while True:
            with psycopg.connect(self.primary.url, autocommit=True, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'"
                ).fetchone()
            if row is not None and row[0] == "sync":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby did not become synchronous:\n{self.standby.log()}")
            time.sleep(0.2)

    def url(self, database: str) -> str:
        """A multi-host libpq URL: whichever of the two accepts writes."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def sqlalchemy_url(self, database: str) -> str:
        """The same for IDP_DATABASE_URL (SQLAlchemy takes the hosts as repeated host parameters)."""
        return (
            f"postgresql+psycopg://postgres@/{database}?host=127.0.0.1:{self.primary.port}"
            f"&host=127.0.0.1:{self.standby.port}&target_session_attrs=read-write&connect_timeout=2"
        )

    def close(self) -> None:
        for server in (self.primary, self.standby):
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
