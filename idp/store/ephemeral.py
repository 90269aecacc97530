"""Short-lived data with TTLs and atomic single use: Redis in production, an embedded store otherwise.

Login transactions, authorization codes, access tokens, SSO sessions, OTP challenges and rate
counters live here. Both implementations offer the same small vocabulary; every value is text
(JSON, usually) and every key gets the deployment's prefix. A store that cannot be reached raises
:class:`StoreUnavailable`, which the web tier turns into a 503 page or an OAuth error.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

log = logging.getLogger("idp.store")


class StoreUnavailable(RuntimeError):
    """The short-lived store (Redis) cannot be reached."""


class EphemeralStore(Protocol):
    shared: bool

    def get(self, key: str) -> str | None: ...
    def get_many(self, keys: Sequence[str]) -> list[str | None]: ...
    def set(self, key: str, value: str, ttl: int, *, only_if_absent: bool = False) -> bool: ...
    def set_many(self, items: Iterable[tuple[str, str, int]]) -> None: ...
    def delete(self, *keys: str) -> int: ...
    def take(self, key: str) -> str | None: ...
    def consume(self, key: str, marker_ttl: int) -> tuple[str | None, int]: ...
    def unconsume(self, key: str) -> bool: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def take_quota(self, counters: Sequence[tuple[str, int, int]]) -> tuple[int, int]: ...
    def take_attempt(
        self, subjects: Sequence[tuple[str, str, str, int]], busy_ttl: int
    ) -> tuple[int, bool, int]: ...
    def give_back(self, keys: Sequence[str]) -> None: ...
    def ttl(self, key: str) -> int: ...
    def ttl_many(self, keys: Sequence[str]) -> list[int]: ...
    def sadd(self, key: str, member: str, ttl: int) -> None: ...
    def srem(self, key: str, member: str) -> None: ...
    def smembers(self, key: str) -> builtins.set[str]: ...
    def ping(self) -> None: ...
    def settle(self) -> int | None: ...


# GET the value and count this use in a sibling key, in one step: the first caller sees 1.
_CONSUME = """
local v = redis.call('GET', KEYS[1])
if not v then return {0, false} end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {n, v}
"""

# INCR and set the expiry on the first increment only (a fixed window).
_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# Quotas (key, limit, ttl): refuse when any counter is at its limit, else count one on each, in
# one step. Returns {0, 0} when counted, or {i, seconds left} of the first full counter (1-based).
_TAKE_QUOTA = """
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[2 * i - 1]) then return {i, redis.call('TTL', key)} end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[2 * i]) end
end
return {0, 0}
"""

# Attempts (idp.sessions.throttle): KEYS are (lock, failures, under way) per subject, ARGV the TTL of
# the under-way counter then each subject's limit. Refused while a lock exists ({i, 1, seconds
# left}) or while failures plus attempts under way reach the limit ({i, 0, 0}); else one more
# attempt is under way on every subject ({0, 0, 0}). In one step.
_TAKE_ATTEMPT = """
local n = #KEYS / 3
for i = 0, n - 1 do
  local left = redis.call('TTL', KEYS[3 * i + 1])
  if left > 0 or left == -1 then return {i + 1, 1, left} end
end
for i = 0, n - 1 do
  local used = tonumber(redis.call('GET', KEYS[3 * i + 2]) or '0') + tonumber(redis.call('GET', KEYS[3 * i + 3]) or '0')
  if used >= tonumber(ARGV[i + 2]) then return {i + 1, 0, 0} end
end
for i = 0, n - 1 do
  redis.call('INCR', KEYS[3 * i + 3])
  redis.call('EXPIRE', KEYS[3 * i + 3], ARGV[1])
end
return {0, 0, 0}
"""

# Give one counted use back to each counter that still holds one (its expiry unchanged).
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""

_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)
# Answers of a server that is up but cannot take the command now: out of memory with noeviction,
# a replica or a primary refusing writes, a transaction discarded because one of its writes was
# refused, a persistence failure that stops writes, a failover under way. Like a stopped server,
# they are an outage for the request (503), not a bug (500).
_REDIS_REFUSING = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ExecAbortError,
    redis.exceptions.ReadOnlyError,
)
_REFUSAL_PREFIXES = (
    "OOM",
    "MISCONF",
    "READONLY",
    "LOADING",
    "NOREPLICAS",
    "MASTERDOWN",
    "BUSY",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "EXECABORT",
    "UNBLOCKED",
)


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
UNREPLICATED_PAUSE = 5  # seconds settle() stops waiting after replicas failed to confirm


@dataclass(frozen=True)
class SentinelUrl:
    """``redis+sentinel://[user:password@]host:port[,host:port…]/service[/db][?sentinel_password=…]``:
    the Sentinel set that knows the current primary of ``service`` (rediss+sentinel: TLS to the
    primary). The credentials are the primary's; the Sentinels' go in the query."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        parts = urlsplit(url)
        if parts.scheme not in SENTINEL_SCHEMES:
            raise ValueError("must start with redis+sentinel:// or rediss+sentinel://")
        userinfo, _, hosts = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        nodes = []
        for node in hosts.split(","):
            match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", node.strip())
            if match is None:
                raise ValueError(f"cannot read the Sentinel address {node!r}")
            host = match.group(1) or match.group(3)
            port = int(match.group(2) or match.group(4) or 26379)
            nodes.append((host, port))
        segments = [s for s in parts.path.split("/") if s]
        if not segments or len(segments) > 2:
            raise ValueError("name the service after the Sentinel addresses: …/mymaster or …/mymaster/0")
        if len(segments) == 2 and not segments[1].isdigit():
            raise ValueError("the database after the service name must be a number")
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"sentinel_username", "sentinel_password"}
        if unknown:
            raise ValueError(f"unknown parameter {sorted(unknown)[0]}")
        return cls(
            sentinels=tuple(nodes),
            service=unquote(segments[0]),
            db=int(segments[1]) if len(segments) == 2 else 0,
            username=unquote(user) or None,
            password=unquote(password) or None,
            sentinel_username=query.get("sentinel_username"),
            sentinel_password=query.get("sentinel_password"),
            ssl=parts.scheme == "rediss+sentinel",
        )


def redis_client(url: str, **options: Any) -> redis.Redis:
    """A client of the Redis `url` names: one server, or the current primary of a Sentinel set
    (which follows a failover by itself: a connection to a demoted primary is dropped and the
    Sentinels asked again)."""
    if not url.startswith(SENTINEL_SCHEMES):
        return redis.Redis.from_url(url, **options)
    found = SentinelUrl.parse(url)
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if found.sentinel_password:
        sentinel_options.update(username=found.sentinel_username, password=found.sentinel_password)
    sentinel = Sentinel(list(found.sentinels), sentinel_kwargs=sentinel_options)
    return sentinel.master_for(
        found.service,
        db=found.db,
        username=found.username,
        password=found.password,
        ssl=found.ssl,
        **options,
    )


class RedisStore:
    """Redis, or the primary of a Sentinel set.

    With ``wait_replicas`` (by default 1 for a Sentinel set), ``settle`` waits, once per request
    that wrote, until that many replicas have its writes (Redis WAIT, at most ``wait_timeout``): a
    code, token or session idp has answered with is then on a replica, and survives the primary's
    crash and a failover. A replica that does not confirm in time is logged, and for the next
    UNREPLICATED_PAUSE seconds nothing is waited for (a primary without a replica must not make
    every answer wait the timeout).
    """

    shared = True

    def __init__(
        self, url: str, prefix: str, *, wait_replicas: int | None = None, wait_timeout: float = 0.2
    ) -> None:
        self.prefix = prefix
        sentinel = url.startswith(SENTINEL_SCHEMES)
        self.wait_replicas = (1 if sentinel else 0) if wait_replicas is None else wait_replicas
        self.wait_timeout_ms = max(1, int(wait_timeout * 1000))
        self._local = threading.local()
        self._unreplicated_until = 0.0
        self._shared = redis_client(
            url,
            decode_responses=True,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            health_check_interval=30,
        )
        self._consume = self._shared.register_script(_CONSUME)
        self._incr = self._shared.register_script(_INCR)
        self._take_quota = self._shared.register_script(_TAKE_QUOTA)
        self._give_back = self._shared.register_script(_GIVE_BACK)
        self._take_attempt = self._shared.register_script(_TAKE_ATTEMPT)

    @property
    def client(self) -> redis.Redis:
        """The client of this request. Waiting for replicas, a request holds one connection of
        the pool from its first command to ``settle``: WAIT counts only the writes made on the
        connection that sends it, and a request runs in one thread. Handed back at ``settle``,
        the pool drops it if its server is no longer the primary (a failover)."""
        if not self.wait_replicas:
            return self._shared
        client = getattr(self._local, "client", None)
        if client is None:
            pool = self._shared.connection_pool
            # Taking the connection may mean connecting (a primary that is gone: StoreUnavailable).
            client = self._call(redis.Redis, connection_pool=pool, single_connection_client=True)
            connection = client.connection
            primary = getattr(pool, "master_address", None)
            if (
                primary
                and connection is not None
                and connection.host
                and (connection.host, connection.port) != primary
            ):
                connection.disconnect()  # to the former primary: the first command reconnects
            self._local.client = client
        return client

    def _release(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            self._local.client = None
            with contextlib.suppress(redis.RedisError, OSError):
                client.close()

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _wrote(self) -> None:
        if self.wait_replicas:
            self._local.dirty = True

    def settle(self) -> int | None:
        """After a request that wrote: wait for the replicas to have its writes (see the class doc);
        the number that confirmed, or None when nothing needed waiting for."""
        try:
            if not self.wait_replicas or not getattr(self._local, "dirty", False):
                return None
            self._local.dirty = False
            if time.monotonic() < self._unreplicated_until:
                return None  # no replica confirmed lately: do not make every answer wait the timeout
            confirmed = int(self._call(self.client.wait, self.wait_replicas, self.wait_timeout_ms))
            if confirmed < self.wait_replicas:
                # A primary whose replica was promoted has none (a failover under way: ask the
                # Sentinels again, so that connections to it are dropped), or a new primary's
                # replica is still syncing.
                self._unreplicated_until = time.monotonic() + UNREPLICATED_PAUSE
                pool = self._shared.connection_pool
                if hasattr(pool, "get_master_address"):
                    with contextlib.suppress(redis.RedisError):
                        pool.get_master_address()
                log.warning(
                    "redis: %d of %d replicas confirmed the writes within %d ms; not waiting for %d s",
                    confirmed, self.wait_replicas, self.wait_timeout_ms, UNREPLICATED_PAUSE,
                )  # fmt: skip
            return confirmed
        finally:
            self._release()

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _REDIS_DOWN as exc:
            raise StoreUnavailable(f"redis: {exc.__class__.__name__}") from exc
        except _REDIS_REFUSING as exc:
            raise StoreUnavailable(f"redis: {exc.__class__.__name__}") from exc
        except redis.RedisError as exc:
            # A script's error carries the refusal inside its message ("... OOM command not allowed").
            text = str(exc)
            if text.startswith(_REFUSAL_PREFIXES) or any(f" {p} " in f" {text} " for p in _REFUSAL_PREFIXES):
                raise StoreUnavailable(f"redis: {text.split(' ', 1)[0]}") from exc
            raise

    def get(self, key: str) -> str | None:
        return self._call(self.client.get, self._k(key))

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return self._call(self.client.mget, [self._k(k) for k in keys])

    def set(self, key: str, value: str, ttl: int, *, only_if_absent: bool = False) -> bool:
        self._wrote()
        return bool(self._call(self.client.set, self._k(key), value, ex=max(1, int(ttl)), nx=only_if_absent))

    def set_many(self, items: Iterable[tuple[str, str, int]]) -> None:
        self._wrote()

        def run() -> None:
            pipe = self.client.pipeline(transaction=True)
            for key, value, ttl in items:
                pipe.set(self._k(key), value, ex=max(1, int(ttl)))
            pipe.execute()

        self._call(run)

    def delete(self, *keys: str) -> int:
        self._wrote()
        if not keys:
            return 0
        return int(self._call(self.client.delete, *[self._k(k) for k in keys]))

    def take(self, key: str) -> str | None:
        self._wrote()
        return self._call(self.client.getdel, self._k(key))

    def consume(self, key: str, marker_ttl: int) -> tuple[str | None, int]:
        self._wrote()
        n, value = self._call(
            self._consume, keys=[self._k(key), self._k(key + ":uses")], args=[marker_ttl], client=self.client
        )
        return (value or None), int(n)

    def unconsume(self, key: str) -> bool:
        """Undo the first consumption of `key` (a later one, a replay, stays counted). Plain GET
        and DEL, which a server out of memory still accepts (a script it would refuse)."""
        self._wrote()
        uses = self._k(key + ":uses")
        if self._call(self.client.get, uses) != "1":
            return False
        return bool(self._call(self.client.delete, uses))

    def incr(self, key: str, ttl: int) -> int:
        self._wrote()
        return int(self._call(self._incr, keys=[self._k(key)], args=[max(1, int(ttl))], client=self.client))

    def take_quota(self, counters: Sequence[tuple[str, int, int]]) -> tuple[int, int]:
        """Count one use on every (key, limit, ttl) counter unless one is full: then count nothing
        and return (its index, its seconds left); (-1, 0) when counted."""
        self._wrote()
        if not counters:
            return -1, 0
        args: list[int] = []
        for _, limit, ttl in counters:
            args += [int(limit), max(1, int(ttl))]
        index, left = self._call(
            self._take_quota, keys=[self._k(k) for k, _, _ in counters], args=args, client=self.client
        )
        return int(index) - 1, max(0, int(left))

    def take_attempt(
        self, subjects: Sequence[tuple[str, str, str, int]], busy_ttl: int
    ) -> tuple[int, bool, int]:
        """Start an attempt on every (lock, failures, under-way, limit) subject unless one is
        locked or full: (-1, False, 0) when started, else (its index, locked, seconds left)."""
        self._wrote()
        if not subjects:
            return -1, False, 0
        keys = [self._k(k) for lock, fail, busy, _ in subjects for k in (lock, fail, busy)]
        args = [max(1, int(busy_ttl))] + [int(limit) for *_, limit in subjects]
        index, locked, left = self._call(self._take_attempt, keys=keys, args=args, client=self.client)
        return int(index) - 1, bool(locked), max(0, int(left))

    def give_back(self, keys: Sequence[str]) -> None:
        self._wrote()
        if keys:
            self._call(self._give_back, keys=[self._k(k) for k in keys], client=self.client)

    def ttl(self, key: str) -> int:
        return int(self._call(self.client.ttl, self._k(key)))

    def ttl_many(self, keys: Sequence[str]) -> list[int]:
        """The TTLs of several keys in one round trip (-2 for a missing key, as TTL says)."""
        if len(keys) <= 1:
            return [self.ttl(k) for k in keys]

        def run() -> list[int]:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.ttl(self._k(key))
            return [int(left) for left in pipe.execute()]

        return self._call(run)

    def sadd(self, key: str, member: str, ttl: int) -> None:
        self._wrote()

        def run() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.sadd(self._k(key), member)
            pipe.expire(self._k(key), max(1, int(ttl)))
            pipe.execute()

        self._call(run)

    def srem(self, key: str, member: str) -> None:
        self._wrote()
        self._call(self.client.srem, self._k(key), member)

    def smembers(self, key: str) -> builtins.set[str]:
        return set(self._call(self.client.smembers, self._k(key)))

    def ping(self) -> None:
        self._call(self.client.ping)


class MemoryStore:
    """The embedded store for a single process (the SQLite demo, unit tests of the flows)."""

    shared = False

    def __init__(self) -> None:
        self._data: dict[str, tuple[object, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> object | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item[0]

    def _expiry(self, ttl: int) -> float:
        return time.monotonic() + max(1, int(ttl))

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key)
            if isinstance(value, int):
                return str(value)  # a counter reads as text, as in Redis
            return value if isinstance(value, str) else None

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [self.get(k) for k in keys]

    def set(self, key: str, value: str, ttl: int, *, only_if_absent: bool = False) -> bool:
        with self._lock:
            if only_if_absent and self._live(key) is not None:
                return False
            self._data[key] = (value, self._expiry(ttl))
            return True

    def set_many(self, items: Iterable[tuple[str, str, int]]) -> None:
        with self._lock:
            for key, value, ttl in items:
                self._data[key] = (value, self._expiry(ttl))

    def delete(self, *keys: str) -> int:
        with self._lock:
            return sum(1 for k in keys if self._data.pop(k, None) is not None)

    def take(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key)
            self._data.pop(key, None)
            return value if isinstance(value, str) else None

    def consume(self, key: str, marker_ttl: int) -> tuple[str | None, int]:
        with self._lock:
            value = self._live(key)
            if not isinstance(value, str):
                return None, 0
            uses_key = key + ":uses"
            uses = self._live(uses_key)
            n = (uses if isinstance(uses, int) else 0) + 1
            expiry = self._data[uses_key][1] if n > 1 else self._expiry(marker_ttl)
            self._data[uses_key] = (n, expiry)
            return value, n

    def unconsume(self, key: str) -> bool:
        with self._lock:
            if self._live(key + ":uses") != 1:
                return False
            del self._data[key + ":uses"]
            return True

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            current = self._live(key)
            if isinstance(current, int):
                self._data[key] = (current + 1, self._data[key][1])
                return current + 1
            self._data[key] = (1, self._expiry(ttl))
            return 1

    def take_attempt(
        self, subjects: Sequence[tuple[str, str, str, int]], busy_ttl: int
    ) -> tuple[int, bool, int]:
        with self._lock:
            for index, (lock, _, _, _) in enumerate(subjects):
                if self._live(lock) is not None:
                    return index, True, max(1, int(self._data[lock][1] - time.monotonic()))

            def count(key: str) -> int:
                value = self._live(key)
                return value if isinstance(value, int) else 0

            for index, (_, fail, busy, limit) in enumerate(subjects):
                if count(fail) + count(busy) >= limit:
                    return index, False, 0
            for _, _, busy, _ in subjects:
                self._data[busy] = (count(busy) + 1, self._expiry(busy_ttl))
            return -1, False, 0

    def take_quota(self, counters: Sequence[tuple[str, int, int]]) -> tuple[int, int]:
        with self._lock:
            for index, (key, limit, _) in enumerate(counters):
                current = self._live(key)
                if isinstance(current, int) and current >= limit:
                    return index, max(0, int(self._data[key][1] - time.monotonic()))
            for key, _, ttl in counters:
                current = self._live(key)
                if isinstance(current, int):
                    self._data[key] = (current + 1, self._data[key][1])
                else:
                    self._data[key] = (1, self._expiry(ttl))
            return -1, 0

    def give_back(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                current = self._live(key)
                if isinstance(current, int) and current > 0:
                    self._data[key] = (current - 1, self._data[key][1])

    def ttl(self, key: str) -> int:
        with self._lock:
            if self._live(key) is None:
                return -2
            return max(0, int(self._data[key][1] - time.monotonic()))

    def ttl_many(self, keys: Sequence[str]) -> list[int]:
        return [self.ttl(k) for k in keys]

    def sadd(self, key: str, member: str, ttl: int) -> None:
        with self._lock:
            current = self._live(key)
            members = set(current) if isinstance(current, set) else set()
            members.add(member)
            self._data[key] = (members, self._expiry(ttl))

    def srem(self, key: str, member: str) -> None:
        with self._lock:
            current = self._live(key)
            if isinstance(current, set):
                current.discard(member)

    def smembers(self, key: str) -> builtins.set[str]:
        with self._lock:
            current = self._live(key)
            return set(current) if isinstance(current, set) else set()

    def ping(self) -> None:
        return None

    def settle(self) -> int | None:
        return None


def persistence_warning(store: EphemeralStore) -> str | None:
    """What to tell the operator when the Redis behind `store` keeps nothing on disk: a restart
    would end every SSO session, code and access token (refresh tokens are in SQL). None when it
    persists, when it is not Redis, or when it does not say (CONFIG disabled on a managed server)."""
    if not isinstance(store, RedisStore):
        return None
    try:
        config = store.client.config_get("appendonly") | store.client.config_get("save")
        aof, snapshots = config.get("appendonly") == "yes", bool((config.get("save") or "").strip())
    except redis.RedisError:
        try:
            aof = bool(store.client.info("persistence").get("aof_enabled"))
            snapshots = True  # unknown: say nothing rather than something wrong
        except redis.RedisError:
            return None
    if aof or snapshots:
        return None
    return (
        "Redis keeps nothing on disk (appendonly no, no save points): a Redis restart ends every SSO "
        "session, authorization code and access token. In production set appendonly yes and "
        "appendfsync everysec (see README, Running in production)."
    )


def create_store(
    redis_url: str | None, prefix: str, *, wait_replicas: int | None = None, wait_timeout: float = 0.2
) -> EphemeralStore:
    if redis_url:
        return RedisStore(redis_url, prefix, wait_replicas=wait_replicas, wait_timeout=wait_timeout)
    return MemoryStore()
