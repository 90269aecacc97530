"""The short-lived store (idp.store.ephemeral): the same behaviour from RedisStore and MemoryStore —
single use that a race cannot break, counters with a fixed window, set-if-absent, atomic take."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from idp.store.ephemeral import (
    EphemeralStore,
    MemoryStore,
    RedisStore,
    StoreUnavailable,
    create_store,
)
from tests.support import services

THREADS = 8


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[EphemeralStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix") + f"store-{secrets.token_hex(4)}:"
    yield RedisStore(redis_url, prefix)
    services.clear_prefix(services.redis_client(), prefix)


def race(fn: Callable[[], Any], n: int = THREADS) -> list[Any]:
    """Run `fn` in `n` threads released at the same moment; return what each returned."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        value = fn()
        with lock:
            results.append(value)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- consume ---------------------------------------------------------------------------------------
def test_consume_counts_uses(store: EphemeralStore) -> None:
    store.set("code:a", "record", 60)
    assert store.consume("code:a", 600) == ("record", 1)
    assert store.consume("code:a", 600) == ("record", 2)
    assert store.consume("code:a", 600) == ("record", 3)


def test_consume_of_a_missing_key(store: EphemeralStore) -> None:
    assert store.consume("code:nothing", 600) == (None, 0)


def test_concurrent_consume_has_exactly_one_first_use(store: EphemeralStore) -> None:
    store.set("code:race", "record", 60)
    results = race(lambda: store.consume("code:race", 600))
    uses = sorted(n for _, n in results)
    assert uses == list(range(1, THREADS + 1))
    assert all(value == "record" for value, _ in results)


def test_consume_is_per_key(store: EphemeralStore) -> None:
    store.set("code:x", "1", 60)
    store.set("code:y", "2", 60)
    assert store.consume("code:x", 600) == ("1", 1)
    assert store.consume("code:y", 600) == ("2", 1)


# -- incr ------------------------------------------------------------------------------------------
def test_incr_counts_and_sets_the_ttl_once(store: EphemeralStore) -> None:
    assert store.incr("count", 100) == 1
    assert 98 <= store.ttl("count") <= 100
    assert store.incr("count", 5000) == 2  # a later increment does not stretch the window
    assert store.ttl("count") <= 100
    assert store.incr("count", 100) == 3


def test_concurrent_incr_loses_no_increment(store: EphemeralStore) -> None:
    results = race(lambda: store.incr("hits", 60))
    assert sorted(results) == list(range(1, THREADS + 1))


def test_incr_window_ends(store: EphemeralStore) -> None:
    assert store.incr("short", 1) == 1
    assert store.incr("short", 1) == 2
    time.sleep(1.1)
    assert store.incr("short", 1) == 1


# -- set / get / delete ----------------------------------------------------------------------------
def test_take_quota_counts_on_every_counter_or_on_none(store: EphemeralStore) -> None:
    assert store.take_quota([("q:a", 2, 60), ("q:b", 5, 60)]) == (-1, 0)
    assert store.take_quota([("q:a", 2, 60), ("q:b", 5, 60)]) == (-1, 0)
    index, left = store.take_quota([("q:a", 2, 60), ("q:b", 5, 60)])
    assert index == 0 and 0 < left <= 60  # q:a is full; q:b was not counted a third time
    assert store.get("q:b") == "2"


def test_take_attempt_refuses_while_locked_or_while_failures_and_attempts_reach_the_limit(
    store: EphemeralStore,
) -> None:
    subjects = [("a:lock", "a:fail", "a:busy", 3), ("b:lock", "b:fail", "b:busy", 12)]
    store.incr("a:fail", 60)
    assert store.take_attempt(subjects, 60) == (-1, False, 0)
    assert store.take_attempt(subjects, 60) == (-1, False, 0)  # 1 failure + 2 under way = 3
    assert store.take_attempt(subjects, 60) == (0, False, 0)
    assert (store.get("a:busy"), store.get("b:busy")) == ("2", "2")  # the refusal counted nothing
    store.give_back(["a:busy", "b:busy"])
    assert store.take_attempt(subjects, 60) == (-1, False, 0)
    store.set("b:lock", "1", 30)
    index, locked, left = store.take_attempt(subjects, 60)
    assert (index, locked) == (1, True) and 0 < left <= 30


def test_concurrent_take_attempt_never_exceeds_the_limit(store: EphemeralStore) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(
            pool.map(lambda _: store.take_attempt([("c:lock", "c:fail", "c:busy", 5)], 60), range(40))
        )
    assert sum(1 for index, _, _ in answers if index < 0) == 5
    assert store.get("c:busy") == "5"


def test_concurrent_take_quota_never_exceeds_the_limit(store: EphemeralStore) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: store.take_quota([("q:d", 5, 60)]), range(40)))
    assert sum(1 for index, _ in answers if index < 0) == 5
    assert store.get("q:d") == "5"


def test_give_back_never_goes_below_zero(store: EphemeralStore) -> None:
    store.take_quota([("q:e", 5, 60)])
    store.give_back(["q:e", "q:missing"])
    store.give_back(["q:e"])
    assert store.get("q:e") == "0" and store.get("q:missing") is None


def test_set_only_if_absent(store: EphemeralStore) -> None:
    assert store.set("jti:one", "first", 60, only_if_absent=True) is True
    assert store.set("jti:one", "second", 60, only_if_absent=True) is False
    assert store.get("jti:one") == "first"
    assert store.set("jti:one", "third", 60) is True  # a plain set overwrites
    assert store.get("jti:one") == "third"
    store.delete("jti:one")
    assert store.set("jti:one", "again", 60, only_if_absent=True) is True


def test_concurrent_set_only_if_absent_has_one_winner(store: EphemeralStore) -> None:
    results = race(lambda: store.set("jti:race", secrets.token_hex(4), 60, only_if_absent=True))
    assert results.count(True) == 1


def test_values_expire(store: EphemeralStore) -> None:
    store.set("brief", "v", 1)
    assert store.get("brief") == "v"
    time.sleep(1.1)
    assert store.get("brief") is None
    assert store.ttl("brief") == -2
    assert store.set("brief", "w", 60, only_if_absent=True) is True


def test_ttl_many_reads_each_key_in_order(store: EphemeralStore) -> None:
    store.set("short", "x", 30)
    store.set("long", "y", 300)
    short, missing, long = store.ttl_many(["short", "missing", "long"])
    assert 28 <= short <= 30 and missing == -2 and 298 <= long <= 300
    assert store.ttl_many(["long"])[0] > 290 and store.ttl_many([]) == []


def test_get_many_set_many_delete(store: EphemeralStore) -> None:
    store.set_many([("a", "1", 60), ("b", "2", 60)])
    assert store.get_many(["a", "b", "c"]) == ["1", "2", None]
    assert store.get_many([]) == []
    assert store.delete("a", "c") == 1
    assert store.get("a") is None and store.get("b") == "2"
    assert store.delete() == 0


def test_text_round_trips_unchanged(store: EphemeralStore) -> None:
    value = '{"name": "Nguyễn Văn An", "quote": "\\""}'
    store.set("json", value, 60)
    assert store.get("json") == value


# -- take ------------------------------------------------------------------------------------------
def test_take_returns_once(store: EphemeralStore) -> None:
    store.set("otp:1", "challenge", 60)
    assert store.take("otp:1") == "challenge"
    assert store.take("otp:1") is None
    assert store.get("otp:1") is None


def test_concurrent_take_has_one_winner(store: EphemeralStore) -> None:
    store.set("otp:race", "challenge", 60)
    results = race(lambda: store.take("otp:race"))
    assert results.count("challenge") == 1
    assert results.count(None) == THREADS - 1


# -- sets ------------------------------------------------------------------------------------------
def test_set_members(store: EphemeralStore) -> None:
    store.sadd("sso:clients", "portal", 60)
    store.sadd("sso:clients", "mobile", 60)
    store.sadd("sso:clients", "portal", 60)
    assert store.smembers("sso:clients") == {"portal", "mobile"}
    store.srem("sso:clients", "portal")
    assert store.smembers("sso:clients") == {"mobile"}
    assert store.smembers("sso:none") == set()


# -- Redis specifics -------------------------------------------------------------------------------
def test_redis_keys_carry_the_prefix(redis_url: str, redis_prefix: str) -> None:
    prefix = redis_prefix + f"prefix-{secrets.token_hex(4)}:"
    store = RedisStore(redis_url, prefix)
    store.set("code:abc", "v", 60)
    store.consume("code:abc", 60)
    raw = services.redis_client()
    try:
        assert sorted(k.decode() for k in raw.scan_iter(match=prefix + "*")) == [
            prefix + "code:abc",
            prefix + "code:abc:uses",
        ]
        assert raw.get("code:abc") is None
    finally:
        services.clear_prefix(raw, prefix)


def test_unreachable_redis_raises_store_unavailable() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", "idptest:")
    with pytest.raises(StoreUnavailable):
        store.get("anything")
    with pytest.raises(StoreUnavailable):
        store.consume("anything", 60)


def test_create_store_chooses_by_url(redis_url: str) -> None:
    assert isinstance(create_store(None, "p:"), MemoryStore)
    assert create_store(None, "p:").shared is False
    redis_store = create_store(redis_url, "p:")
    assert isinstance(redis_store, RedisStore) and redis_store.shared is True


def test_connections_the_server_closed_are_replaced_without_an_error(
    browser: Any, client: Any, app: Any
) -> None:
    """The database closes idp's pooled connections between two requests (a restart, an
    administrator, a proxy): the next requests are served on fresh connections, not refused."""
    from sqlalchemy import create_engine, text

    from idp.store.models import db
    from tests.support.tokens import refresh, sign_in_and_exchange

    tokens, _ = sign_in_and_exchange(browser, scope="openid profile offline_access")
    # Several pooled connections, all idle in the pool now.
    for _ in range(3):
        assert refresh(client, tokens["refresh_token"]).status_code == 200
    with app.app_context():
        url = db.engine.url
        database = url.database
        pooled = db.engine.pool.checkedin()
    assert pooled >= 1
    admin = create_engine(url)
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar()
    admin.dispose()
    assert killed >= pooled
    time.sleep(0.2)  # the server's side closes
    for _ in range(3):
        answer = refresh(client, tokens["refresh_token"])
        assert answer.status_code == 200, answer.get_data(as_text=True)
    assert client.get("/health/ready").status_code == 200


# -- a Sentinel set in IDP_REDIS_URL -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "sentinels", "service", "db", "password", "ssl"),
    [
        (
            "redis+sentinel://h1:26379,h2:26380/mymaster/0",
            (("h1", 26379), ("h2", 26380)),
            "mymaster",
            0,
            None,
            False,
        ),
        ("redis+sentinel://h1/svc", (("h1", 26379),), "svc", 0, None, False),
        (
            "rediss+sentinel://:s3cret@[::1]:26379,10.0.0.2/idp/2",
            (("::1", 26379), ("10.0.0.2", 26379)),
            "idp",
            2,
            "s3cret",
            True,
        ),
    ],
)
def test_sentinel_urls_are_read(
    url: str, sentinels: tuple[tuple[str, int], ...], service: str, db: int, password: str | None, ssl: bool
) -> None:
    from idp.store.ephemeral import SentinelUrl

    found = SentinelUrl.parse(url)
    assert (found.sentinels, found.service, found.db, found.password, found.ssl) == (
        sentinels,
        service,
        db,
        password,
        ssl,
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h1:26379",  # no service
        "redis+sentinel://h1:26379/svc/zero",
        "redis+sentinel://h1:port/svc",
        "redis+sentinel://h1/svc/0/extra",
        "redis+sentinel://h1/svc?retries=3",
    ],
)
def test_a_bad_sentinel_url_is_refused_at_start_naming_the_setting(url: str) -> None:
    from idp.config import ConfigError, resolve

    with pytest.raises(ConfigError, match="IDP_REDIS_URL"):
        resolve({"IDP_REDIS_URL": url})


def test_waiting_for_replicas_each_thread_writes_and_waits_on_one_connection(
    redis_url: str, redis_prefix: str
) -> None:
    """Redis WAIT counts the writes of the connection it is sent on: with replicas to wait for,
    every thread keeps its own connection for its writes and its WAIT."""
    store = RedisStore(redis_url, redis_prefix + "wait:", wait_replicas=1, wait_timeout=0.05)
    ids = []
    for _ in range(3):
        store.set("k", "v", 10)
        ids.append(store.client.client_id())
    assert len(set(ids)) == 1
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(store.client.client_id()))
    thread.start()
    thread.join()
    assert other and other[0] != ids[0]
    assert store.settle() == 0  # no replica here: none confirmed (and it says so, once)
    shared = RedisStore(redis_url, redis_prefix + "nowait:")
    assert shared.client is shared.client and shared.settle() is None
