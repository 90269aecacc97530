"""Redis persistence (issue 8, item 17): with no persistence a Redis restart ends every SSO session,
code and access token, so `idp serve` says so when it starts; with AOF it says nothing. And what
survives a restart with AOF (everysec), the production setting the README documents."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.support.html_signin import query_of
from tests.support.live import authorization_url, exchange, idp_logs, own_deployment  # noqa: F401 - a fixture
from tests.support.people import AN
from tests.support.private_services import PrivateRedis

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("idp_logs")]
WARNING = "keeps nothing on disk"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_serve_warns_when_redis_keeps_nothing_and_not_with_aof(
    tmp_path: Path, keys_dir: Path, clients_file: Path, private_redis: PrivateRedis
) -> None:
    with own_deployment(
        tmp_path, keys_dir=keys_dir, clients_file=clients_file, redis_url=private_redis.url
    ) as deployment:
        idp = deployment.serve("idp-no-persistence", workers=1)
        log = idp.logs()
        assert WARNING in log, log[-2000:]
        assert "appendonly yes" in log and "appendfsync everysec" in log
        idp.stop()
        client = redis.Redis(host="127.0.0.1", port=private_redis.port)
        client.config_set("appendonly", "yes")
        client.config_set("appendfsync", "everysec")
        client.close()
        quiet = deployment.serve("idp-aof", workers=1, own_port=True)
        assert WARNING not in quiet.logs(), quiet.logs()[-2000:]


def test_with_aof_a_redis_restart_keeps_sessions_and_tokens(
    tmp_path: Path, keys_dir: Path, clients_file: Path, private_redis: PrivateRedis
) -> None:
    client = redis.Redis(host="127.0.0.1", port=private_redis.port)
    client.config_set("appendonly", "yes")
    client.config_set("appendfsync", "everysec")
    client.close()
    with own_deployment(
        tmp_path, keys_dir=keys_dir, clients_file=clients_file, redis_url=private_redis.url
    ) as deployment:
        idp = deployment.serve("idp-aof-restart", workers=1)
        browser = deployment.browser(idp)
        url, _, verifier = authorization_url(idp)
        callback = browser.sign_in(url, AN)
        tokens = exchange(idp, query_of(callback)["code"], verifier).json()
        time.sleep(1.5)  # appendfsync everysec: at most a second of writes is at risk
        private_redis.stop()
        private_redis.start(aof=True)
        deadline = time.monotonic() + 10
        while requests.get(idp.url("/health/ready"), timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        info = requests.get(
            idp.url("/userinfo"), headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=10
        )
        assert info.status_code == 200, info.text
        # The SSO session survived too: the next authorization needs no sign-in.
        url, _, _ = authorization_url(idp)
        assert "code" in query_of(browser.sign_in(url, AN))
