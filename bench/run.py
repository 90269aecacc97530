"""idp benchmark: server CPU per sign-in, refresh grants and code exchanges per core (DESIGN §9).

One command, on PostgreSQL and Redis (see BENCHMARKS.md):

    .venv/bin/python bench/run.py            # the run for the record (a few minutes)
    .venv/bin/python bench/run.py --quick    # a quarter of the counts, for development
    .venv/bin/python bench/run.py --profile  # cProfile (CPU clock) per phase; figures inflated

What it does:

1. measures argon2id verification in this process (thread CPU time) at the production
   parameters (m=19 MiB, t=2, p=1) and at the parameters the sign-in phase uses;
2. creates a throw-away PostgreSQL database, a Redis key prefix, keys, a clients.yaml (a
   confidential portal, a public mobile app) and test citizens with distinct phones;
3. starts ``idp serve --workers 1`` and reads the CPU time (utime+stime in /proc/<pid>/stat) of the
   gunicorn master and its worker before and after every phase, so server CPU per operation is
   that process tree's CPU divided by the operations the phase completed;
4. drives the load from separate client processes (plain http.client with keep-alive, a cookie
   jar per browser) and reports their CPU too, so one can see the generator is not the limit;
5. phases (after a warm-up of every kind): GET /health (the floor); complete sign-ins
   (authorize, chooser, citizen page, password, OTP page, OTP read from the SMS outbox, resume,
   token exchange, userinfo); authorization with an SSO session (code issue); code exchanges
   (confidential client, PKCE); refresh grants for the confidential client (no rotation) and
   for the public client (rotation).

Any answer other than the one expected (200 or 302 as the step requires) fails the run loudly,
exit status 1. The database, the Redis keys and the temporary folder are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path

from idpbench.common import MINIMAL_ARGON2, PRODUCTION_ARGON2, RESULTS, BenchError
from idpbench.deployment import _create_accounts
from idpbench.load import client_main
from idpbench.measure import machine, measure_argon2, service_versions
from idpbench.phases import ROUND, run_phases
from idpbench.profile import profile_report
from idpbench.report import print_header, report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--signins", type=int, default=400, help="complete sign-ins measured (default 400)")
    add("--exchanges", type=int, default=3000, help="code exchanges measured (default 3000)")
    add("--refreshes", type=int, default=4000, help="refresh grants per client kind (default 4000)")
    add("--health", type=int, default=2000, help="GET /health requests, the floor (default 2000)")
    add("--quick", action="store_true", help="a quarter of every count (development)")
    add("--clients", type=int, default=4, help="load-generating processes (default 4)")
    add("--threads", type=int, default=4, help="threads of the one gunicorn worker (default 4)")
    add(
        "--signin-hash",
        choices=("minimal", "production"),
        default="minimal",
        help="argon2id cost of the citizens' stored hashes in the sign-in phase: minimal (m=8 KiB, "
        "t=1; default) or production (m=19 MiB, t=2); the verification cost measured "
        "in-process at the same parameters is subtracted either way",
    )
    add(
        "--signin-flow",
        choices=("browser", "lean"),
        default="browser",
        help="browser (default): 9 requests as a browser makes them; lean: 7, without loading "
        "the chooser and the OTP page",
    )
    add("--argon2-seconds", type=float, default=2.0, help="time measuring argon2id (default 2 s)")
    add("--pin", action="store_true", help="pin idp to --server-cpu, the load to the other CPUs")
    add("--server-cpu", type=int, default=0)
    add(
        "--profile",
        action="store_true",
        help="run idp under cProfile (CPU clock) and print where time goes per phase; the CPU "
        "figures of such a run are inflated and not for the record",
    )
    add("--top", type=int, default=20, help="functions listed per profile (default 20)")
    add("--json", type=Path, default=None, help="write the results as JSON here")
    add("--keep", action="store_true", help="keep the temporary folder (server log, outbox)")
    add(
        "--pg-admin-url",
        default=os.environ.get("IDP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL database to connect to for CREATE/DROP DATABASE",
    )
    add("--redis-url", default=os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    add("--_create-accounts", dest="create_accounts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.signins = max(20, args.signins // 4)
        args.exchanges = max(100, args.exchanges // 4)
        args.refreshes = max(100, args.refreshes // 4)
        args.health = max(100, args.health // 4)
    # Enough citizens that none is reused within the 1 s OTP cooldown at any plausible rate.
    args.accounts = max(50, 100 * args.clients)
    return args


def main() -> int:
    args = parse_args()
    if args.create_accounts:
        _create_accounts(args.create_accounts)
        return 0
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    profile_dir = RESULTS / f"profile-{stamp}" if args.profile else None
    info = machine()
    info.update(service_versions(args))
    print_header(stamp, info)

    print("measuring argon2id verification in-process ...", flush=True)
    argon_prod = measure_argon2(**PRODUCTION_ARGON2, seconds=args.argon2_seconds)
    if args.signin_hash == "production":
        signin_argon2, argon_signin = PRODUCTION_ARGON2, argon_prod
    else:
        signin_argon2 = MINIMAL_ARGON2
        argon_signin = measure_argon2(**MINIMAL_ARGON2, seconds=min(1.0, args.argon2_seconds))

    # The load generator first: fork before this process holds any connection.
    ctx = mp.get_context("fork")
    cpus = sorted(os.sched_getaffinity(0))
    client_cpus = {c for c in cpus if c != args.server_cpu} if args.pin and len(cpus) > 1 else None
    pipes, procs = [], []
    for _ in range(args.clients):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_main, args=(child, client_cpus), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    failure = None
    try:
        phases = run_phases(args, pipes, signin_argon2, profile_dir, info)
    except BenchError as exc:
        failure = str(exc)
    except KeyboardInterrupt:
        failure = "interrupted"
    finally:
        for pipe in pipes:
            with contextlib.suppress(Exception):
                pipe.send(("stop",))
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    if failure:
        print("\n" + "!" * 78, file=sys.stderr)
        print("BENCHMARK FAILED: " + failure, file=sys.stderr)
        print("!" * 78, file=sys.stderr)
        return 1

    headline = report(args, phases, argon_prod, argon_signin, signin_argon2, info)
    results = {
        "stamp": stamp,
        "machine": info,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "argon2_production": argon_prod,
        "argon2_signin": argon_signin,
        "phases": {k: v.summary() for k, v in phases.items()},
        "headline": headline,
        "profiled": args.profile,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.json or RESULTS / f"run-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"results written to {out}")

    if profile_dir is not None:
        round_ops = min(ROUND * args.clients, args.exchanges)
        for name, ops in (
            ("signin", phases["signin"].ops),
            ("refresh_conf", phases["refresh_conf"].ops),
            ("refresh_pub", phases["refresh_pub"].ops),
            ("exchange-0", round_ops),
            ("authorize_sso-0", round_ops),
            ("health", phases["health"].ops),
        ):
            path = profile_dir / f"{name}.pstats"
            if path.exists():
                print("\n" + profile_report(path, ops, args.top))
        print(f"\nprofiles (pstats) in {profile_dir}, e.g.")
        print(f"  python -m pstats {profile_dir}/refresh_conf.pstats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
