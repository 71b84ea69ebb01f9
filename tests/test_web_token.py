"""The web server's optional token (app/webauth.py) on a real worker: every page needs it, a
browser keeps it in a cookie, workers send it to each other."""
import http.cookiejar
import signal
import urllib.error
import urllib.request

import pytest

from tests.streaming_helpers import Worker, run_cli

pytestmark = [pytest.mark.services, pytest.mark.slow]
TOKEN = "s3cret-token-for-tests"


def status_of(url, headers=None, opener=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_every_page_needs_the_token_when_one_is_set(services, names, tmp_path):
    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4")
    worker = Worker(names, tmp_path / "state", env={"CLOGS_WEB_TOKEN": TOKEN}).start()   # healthy() sends it
    try:
        for path in ("/health", "/stats/", "/stats/local/", "/", "/static/dashboard.js", "/api/sources",
                     "/api/incidents", "/router/", "/table/source-stats/", "/deadletter/", "/metrics"):
            code, body = status_of(worker.url + path)
            assert code == 401, (path, code)
            assert b"CLOGS_WEB_TOKEN" in body
            assert status_of(worker.url + path, {"Authorization": "Bearer wrong"})[0] == 401
        assert status_of(worker.url + "/health", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert status_of(worker.url + "/stats/", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        code, page = status_of(worker.url + f"/?token={TOKEN}", opener=browser)   # redirected, cookie kept
        assert code == 200 and b"<html" in page.lower()
        assert status_of(worker.url + "/api/sources", opener=browser)[0] == 200
    finally:
        worker.stop(signal.SIGKILL)
