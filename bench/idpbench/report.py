"""The report: the phase table, the header, and the figures written to bench/results."""

from __future__ import annotations

import argparse
from typing import Any

from idpbench.common import TARGET_PASSWORD_LOGINS_PER_CORE, TARGET_REFRESH_PER_CORE, TARGET_SIGNIN_MS
from idpbench.phases import Phase


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_phase_table(phases: list[Phase]) -> None:
    head = (
        f"{'phase':<24}{'ops':>7}{'wall s':>8}{'ops/s':>9}{'srv ms/op':>11}{'ops/core-s':>12}"
        f"{'cli ms/op':>11}{'pg ms/op':>10}{'redis ms/op':>12}{'p50 ms':>8}{'p95 ms':>8}"
    )
    print(head)
    print("-" * len(head))
    columns = (
        ("ops_per_s_wall", 9, ".0f"),
        ("server_cpu_ms_per_op", 11, ".3f"),
        ("ops_per_server_cpu_s", 12, ".0f"),
        ("client_cpu_ms_per_op", 11, ".3f"),
        ("pg_backend_cpu_ms_per_op", 10, ".3f"),
        ("redis_cpu_ms_per_op", 12, ".3f"),
        ("latency_ms_p50", 8, ".1f"),
        ("latency_ms_p95", 8, ".1f"),
    )
    for p in phases:
        s = p.summary()
        row = f"{p.name:<24}{s['ops']:>7}{s['wall_s']:>8.2f}"
        row += "".join(f"{fmt(s[key], spec):>{width}}" for key, width, spec in columns)
        print(row)


def print_header(stamp: str, info: dict[str, Any]) -> None:
    load = info["loadavg_start"]
    print("idp benchmark", stamp)
    print(
        f"machine: {info['cpu_model']}, {info['cores_online']} cores online "
        f"({info['cores_usable']} usable), {info['memory']}, Linux {info['kernel']}"
    )
    print(f"software: Python {info['python']}, PostgreSQL {info['postgresql']}, Redis {info['redis']}")
    print(
        f"python speed: {info['python_speed_ms']:.1f} ms CPU for bench/run.py's fixed workload "
        "(lower is faster; compares machines)"
    )
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    busy = "   << the machine is busy: figures indicative only" if load[0] > 0.5 else ""
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load)}{busy}\n")


def report(
    args: argparse.Namespace,
    phases: dict[str, Phase],
    argon_prod: dict[str, float],
    argon_signin: dict[str, float],
    signin_argon2: dict[str, int],
    info: dict[str, Any],
) -> dict[str, Any]:
    print()
    if args.profile:
        print("NOTE: --profile run: idp ran under cProfile; every CPU figure below is inflated.\n")
    print_phase_table(list(phases.values()))
    print("  srv = idp (gunicorn master + its one worker), /proc/<pid>/stat; ops/core-s = operations")
    print("  per second of idp CPU; cli = load generator; pg = PostgreSQL backends of the bench")
    print("  database; redis = the whole Redis server (shared with anyone else using it);")
    print("  p50/p95 = latency of one operation (a sign-in: all its requests and the OTP read).")
    signin = phases["signin"].summary()
    raw_ms = signin["server_cpu_ms_per_op"]
    excluded_ms = raw_ms - argon_signin["cpu_ms"]
    conf, pub = phases["refresh_conf"].summary(), phases["refresh_pub"].summary()
    exch = phases["exchange"].summary()
    worst_refresh = min(conf["ops_per_server_cpu_s"], pub["ops_per_server_cpu_s"])
    logins_per_core = 1000 / (excluded_ms + argon_prod["cpu_ms"])

    def verdict(ok: bool) -> str:
        return "meets the goal" if ok else "MISSES the goal"

    m, t = signin_argon2["memory_kib"], signin_argon2["time_cost"]
    print("\nHEADLINE FIGURES (goals: DESIGN §9)")
    steps = (
        "authorize, chooser, citizen page, password, OTP page, OTP, resume, token, userinfo"
        if args.signin_flow == "browser"
        else "lean: authorize, citizen page, password, OTP, resume, token, userinfo"
    )
    print(f"(1) server CPU per complete code+PKCE sign-in ({steps};")
    print(f"    stored hashes m={m} KiB t={t}):")
    print(
        f"      raw {raw_ms:.3f} ms - argon2id verify at m={m} KiB t={t} "
        f"{argon_signin['cpu_ms']:.3f} ms (in-process)"
    )
    print(
        f"      = {excluded_ms:.3f} ms with the password hash excluded   "
        f"goal <= {TARGET_SIGNIN_MS} ms: {verdict(excluded_ms <= TARGET_SIGNIN_MS)}"
    )
    print(
        f"(2) refresh grants per core: confidential {conf['ops_per_server_cpu_s']:.0f}/s "
        f"({conf['server_cpu_ms_per_op']:.3f} ms each),"
    )
    print(
        f"    public with rotation {pub['ops_per_server_cpu_s']:.0f}/s "
        f"({pub['server_cpu_ms_per_op']:.3f} ms each)   goal >= {TARGET_REFRESH_PER_CORE}: "
        f"{verdict(worst_refresh >= TARGET_REFRESH_PER_CORE)}"
    )
    print(
        f"    wall-clock, one worker: confidential {conf['ops_per_s_wall']:.0f}/s, "
        f"public {pub['ops_per_s_wall']:.0f}/s"
    )
    print(
        f"(3) code exchanges per core: {exch['ops_per_server_cpu_s']:.0f}/s "
        f"({exch['server_cpu_ms_per_op']:.3f} ms each); wall-clock {exch['ops_per_s_wall']:.0f}/s"
    )
    print(
        f"(4) argon2id verifications per core at m=19 MiB t=2 p=1: "
        f"{argon_prod['per_core']:.1f}/s ({argon_prod['cpu_ms']:.2f} ms CPU each)"
    )
    print(
        f"    => password sign-ins per core (1) + one verify: {logins_per_core:.1f}/s   "
        f"goal >= {TARGET_PASSWORD_LOGINS_PER_CORE}: "
        f"{verdict(logins_per_core >= TARGET_PASSWORD_LOGINS_PER_CORE)}"
    )
    floor = phases["health"].summary()["server_cpu_ms_per_op"]
    print(f"floor: GET /health costs {floor:.3f} ms of idp CPU (gunicorn + Flask, no storage)")
    loads = info.get("loadavg_end", info["loadavg_start"])
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in loads)}")
    return {
        "signin_server_cpu_ms_raw": raw_ms,
        "signin_server_cpu_ms_hash_excluded": excluded_ms,
        "refresh_confidential_per_core": conf["ops_per_server_cpu_s"],
        "refresh_public_per_core": pub["ops_per_server_cpu_s"],
        "code_exchanges_per_core": exch["ops_per_server_cpu_s"],
        "argon2_verifies_per_core": argon_prod["per_core"],
        "password_signins_per_core": logins_per_core,
        "health_server_cpu_ms": floor,
    }
