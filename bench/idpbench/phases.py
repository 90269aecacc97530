"""Phases: each a kind of operation driven by several client processes, with the server's CPU read before and after."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idpbench.common import BenchError
from idpbench.deployment import Server, environment
from idpbench.measure import Meters, pg_delta


# ================================================================================================
# Orchestration
# ================================================================================================
@dataclass
class Phase:
    name: str
    ops: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    pg_cpu: float | None = None
    redis_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, other: Phase) -> None:
        self.ops += other.ops
        self.wall += other.wall
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        if other.pg_cpu is not None:
            self.pg_cpu = (self.pg_cpu or 0.0) + other.pg_cpu
        self.redis_cpu += other.redis_cpu
        self.latencies.extend(other.latencies)

    def per_op_ms(self, cpu: float | None) -> float | None:
        return None if cpu is None or not self.ops else 1000 * cpu / self.ops

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

        return {
            "ops": self.ops,
            "wall_s": self.wall,
            "ops_per_s_wall": self.ops / self.wall if self.wall else None,
            "server_cpu_s": self.server_cpu,
            "server_cpu_ms_per_op": self.per_op_ms(self.server_cpu),
            "ops_per_server_cpu_s": self.ops / self.server_cpu if self.server_cpu else None,
            "client_cpu_ms_per_op": self.per_op_ms(self.client_cpu),
            "pg_backend_cpu_ms_per_op": self.per_op_ms(self.pg_cpu),
            "redis_cpu_ms_per_op": self.per_op_ms(self.redis_cpu),
            "latency_ms_p50": pct(0.50),
            "latency_ms_p95": pct(0.95),
            "latency_ms_p99": pct(0.99),
        }


class Orchestra:
    def __init__(self, pipes: list[Any], meters: Meters) -> None:
        self.pipes = pipes
        self.meters = meters

    def broadcast(self, kind: str, counts: list[int]) -> list[dict[str, Any]]:
        for pipe, n in zip(self.pipes, counts, strict=True):
            pipe.send((kind, n))
        results = [pipe.recv() for pipe in self.pipes]
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise BenchError(f"phase {kind}: {len(errors)} client(s) failed; first: {errors[0]}")
        return results

    def measure(self, name: str, kind: str, counts: list[int]) -> Phase:
        before = self.meters.sample()
        results = self.broadcast(kind, counts)
        after = self.meters.sample()
        phase = Phase(
            name=name,
            ops=sum(r["done"] for r in results),
            wall=after["t"] - before["t"],
            server_cpu=after["server"] - before["server"],
            client_cpu=sum(r["cpu"] for r in results),
            pg_cpu=pg_delta(before["pg"], after["pg"]),
            redis_cpu=after["redis"] - before["redis"],
        )
        for r in results:
            phase.latencies.extend(r["latencies"])
        if phase.ops != sum(counts):
            raise BenchError(f"phase {name}: {phase.ops} of {sum(counts)} operations completed")
        return phase


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


ROUND = 200  # codes per client process per round: codes live 60 s, issue and exchange in rounds


def run_phases(
    args: argparse.Namespace,
    pipes: list[Any],
    signin_argon2: dict[str, int],
    profile_dir: Path | None,
    info: dict[str, Any],
) -> dict[str, Phase]:
    """Set everything up, warm up, measure every phase; raises BenchError on any failure."""
    phases: dict[str, Phase] = {}
    print(
        f"setting up: database, Redis prefix, keys, clients, {args.accounts} citizens "
        f"(argon2id m={signin_argon2['memory_kib']} KiB t={signin_argon2['time_cost']}) ...",
        flush=True,
    )
    with environment(args, signin_argon2) as s:
        server = Server(s, args, profile_dir)
        meters: Meters | None = None
        try:
            meters = Meters(server.proc.pid, args.pg_admin_url, s.db_name, args.redis_url)
            pinned = f"; idp pinned to CPU {args.server_cpu}" if args.pin else ""
            print(
                f"idp serve: master {server.proc.pid}, worker {meters.workers[0]}, "
                f"1 worker x {args.threads} threads, port {s.port}; "
                f"load: {args.clients} client processes{pinned}",
                flush=True,
            )
            for i, pipe in enumerate(pipes):
                pipe.send(
                    (
                        "configure",
                        {
                            "host": s.host,
                            "port": s.port,
                            "issuer": f"http://127.0.0.1:{s.port}",
                            "outbox": str(s.outbox),
                            "accounts": s.accounts[i :: args.clients],
                            "cooldown": 1.1,
                            "lean": args.signin_flow == "lean",
                        },
                    )
                )
                pipe.recv()
            orch = Orchestra(pipes, meters)
            n = args.clients

            def measured(name: str, kind: str, total: int, profile_name: str | None = None) -> Phase:
                orch.broadcast("reconnect", [0] * n)
                if profile_dir is not None:
                    server.control("action=reset")
                phase = orch.measure(name, kind, split(total, n))
                if profile_dir is not None:
                    server.control(f"action=dump&phase={profile_name or name}")
                return phase

            print("warming up ...", flush=True)
            orch.broadcast("health", [50] * n)
            orch.broadcast("signin", [3] * n)
            orch.broadcast("codes", [30] * n)
            orch.broadcast("exchange", [0] * n)
            orch.broadcast("setup_refresh", [5] * n)
            orch.broadcast("refresh_conf", [50] * n)
            orch.broadcast("refresh_pub", [50] * n)

            before = meters.server_cpu()
            time.sleep(2.0)
            idle = (meters.server_cpu() - before) / 2.0
            info["server_idle_cpu_ms_per_s"] = 1000 * idle
            print(f"idle idp: {1000 * idle:.1f} ms CPU per second with no requests", flush=True)
            print(f"phase: {args.health} GET /health (the floor of one request) ...", flush=True)
            phases["health"] = measured("health", "health", args.health)
            print(f"phase: {args.signins} complete sign-ins ...", flush=True)
            phases["signin"] = measured("signin", "signin", args.signins)
            print(
                f"phase: {args.exchanges} SSO authorizations and code exchanges, "
                f"in rounds of {ROUND * n} ...",
                flush=True,
            )
            authorize, exchange = Phase("authorize_sso"), Phase("exchange")
            remaining, rounds = args.exchanges, 0
            while remaining > 0:
                size = min(ROUND * n, remaining)
                authorize.add(measured("authorize_sso", "codes", size, f"authorize_sso-{rounds}"))
                exchange.add(measured("exchange", "exchange", size, f"exchange-{rounds}"))
                remaining -= size
                rounds += 1
            phases["authorize_sso"], phases["exchange"] = authorize, exchange
            print(f"phase: {args.refreshes} refresh grants, confidential client ...", flush=True)
            phases["refresh_conf"] = measured("refresh_conf", "refresh_conf", args.refreshes)
            print(
                f"phase: {args.refreshes} refresh grants, public client with rotation ...",
                flush=True,
            )
            phases["refresh_pub"] = measured("refresh_pub", "refresh_pub", args.refreshes)
            info["loadavg_end"] = os.getloadavg()
            log = server.tail(10**9).splitlines()
            bad = [line for line in log if "Traceback" in line or "[ERROR]" in line]
            if bad:
                raise BenchError("the server logged errors:\n" + "\n".join(bad[:10]))
        except BenchError as exc:
            raise BenchError(f"{exc}\n--- server log (tail) ---\n{server.tail()}") from None
        finally:
            if meters is not None:
                meters.close()
            server.stop()
    return phases
