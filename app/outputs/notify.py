"""Delivering notifications over HTTP: a generic JSON webhook (signed with HMAC-SHA256 when a secret is
set), Slack incoming webhooks and Prometheus Alertmanager.  Connection errors, timeouts, 429 and 5xx
are tried again with back-off; any other 4xx is not -- it is logged loudly and counted, since a
retry would fail the same way.  Each notification carries its own key (incident, state, version) and
each message one of its group (``X-Clogs-Idempotency-Key``).
"""
import asyncio
import hashlib
import hmac
import logging
from datetime import datetime, timezone

import aiohttp

from app.settings import dashboard_url
from model.notifications import alertmanager_alerts, encode, group_key, slack_body, webhook_body

log = logging.getLogger(__name__)


class Delivery:
    """The notifier's HTTP side: one session, the retry policy, the counters."""

    def __init__(self, settings, metrics=None, timeout=10.0):
        self.settings, self.metrics = settings, metrics
        self.retries, self.timeout = settings.notify_retries, timeout
        self.dashboard = dashboard_url(settings)
        self.session = None

    def body(self, route, source, notes, incidents):
        if route.target == "slack":
            return slack_body(source, notes, incidents, self.dashboard)
        if route.target == "alertmanager":
            return alertmanager_alerts(notes, incidents, datetime.now(timezone.utc),
                                       self.settings.alertmanager_hold_seconds, self.dashboard)
        return webhook_body(source, notes, incidents)

    def request(self, route, body, key):
        """(url, data, headers) of the POST."""
        data = encode(body)
        headers = {"Content-Type": "application/json", "X-Clogs-Idempotency-Key": key, "User-Agent": "clogs"}
        if route.secret:
            headers["X-Clogs-Signature"] = "sha256=" + hmac.new(route.secret.encode(), data, hashlib.sha256).hexdigest()
        url = route.url.rstrip("/") + "/api/v2/alerts" if route.target == "alertmanager" else route.url
        return url, data, headers

    async def send(self, route, source, notes, incidents):
        """POST one message; True once the receiver accepted it, False when it refused for good or
        the tries ran out (both logged and counted)."""
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        key = group_key(notes)
        url, data, headers = self.request(route, self.body(route, source, notes, incidents), key)
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                async with self.session.post(url, data=data, headers=headers) as response:
                    status, text = response.status, (await response.text())[:300]
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                status, text = None, f"{type(exc).__name__}: {exc}"
            if status is not None and status < 300:
                self._count("sent", route)
                return True
            if status is not None and 400 <= status < 500 and status != 429:
                log.error("NOTIFICATION REFUSED by the %s at %s: %s %s -- not tried again; check the route's url "
                          "and credentials (message %s)", route.target, url, status, text, key)
                self._count("refused", route)
                return False
            if attempt < self.retries:
                log.warning("notification to the %s at %s failed (%s); trying again in %.1f s", route.target, url,
                            status or text, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.error("NOTIFICATION NOT DELIVERED to the %s at %s after %d tries (%s), message %s", route.target, url,
                  self.retries + 1, status or text, key)
        self._count("failed", route)
        return False

    def _count(self, outcome, route):
        if self.metrics is not None:
            self.metrics.notifications.labels(target=route.target, outcome=outcome).inc()

    async def close(self):
        if self.session is not None:
            await self.session.close()
