"""Shared fixtures: small trained models, and the real Kafka and Elasticsearch.

The services fixture reuses services that already answer (``make test`` starts them) or
starts them with ``scripts/services up`` and stops them at the end of the session.
Each test gets its own topic, app id and index names, so tests never see each other's data.
"""
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOGHUB = ROOT / "data" / "loghub"
sys.path.insert(0, str(ROOT))

from model.data import split_label  # noqa: E402


def _services_module():
    path = str(ROOT / "scripts" / "services")
    loader = importlib.machinery.SourceFileLoader("clogs_services", path)
    spec = importlib.util.spec_from_loader("clogs_services", loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bgl_lines():
    """(content, is_anomaly) for the 2,000 BGL lines, label stripped."""
    out = []
    for raw in (LOGHUB / "BGL_2k.log").read_text(errors="replace").splitlines():
        label, content = split_label(raw)
        out.append((content, label != "-"))
    return out


@pytest.fixture(scope="session")
def bgl():
    return bgl_lines()


@pytest.fixture(scope="session")
def small_scorer(bgl):
    """A model trained for a few epochs on BGL's normal lines (odd line numbers)."""
    from model.train import train

    lines = [line for i, (line, bad) in enumerate(bgl) if i % 2 and not bad]
    return train(lines, epochs=6, seed=3, progress=False)


@pytest.fixture(scope="session")
def default_scorer():
    from model import Scorer

    return Scorer.from_checkpoint(ROOT / "checkpoints")


@pytest.fixture(scope="session")
def services():
    """Kafka and Elasticsearch on 127.0.0.1, as configured in app/settings.py."""
    svc = _services_module()
    started = False
    if not (svc.healthy("kafka") and svc.healthy("elasticsearch")):
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "services"), "up"], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"could not start the local services:\n{result.stdout}\n{result.stderr}")
        started = True
    yield svc.settings
    if started and not os.environ.get("CLOGS_KEEP_SERVICES"):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "services"), "down"], check=False)


@pytest.fixture
def names():
    """Unique topic / app id / index names for one test; its topics and indices are deleted after it.

    (Left behind, they piled up across runs of the suite on one broker: after 17 runs in a row
    Kafka held 12,000 partitions and ran out of its 512 MB heap while starting -- issue 9.)"""
    tag = uuid.uuid4().hex[:10]
    names = {"topic": f"test-logs-{tag}", "app_id": f"test-clogs-{tag}", "index": f"test-clogs-{tag}", "tag": tag}
    yield names
    remove_leftovers(names)


def remove_leftovers(names):
    """Delete a test's Kafka topics (log topic and derived ones, the app's internal topics) and its
    Elasticsearch indices on the configured services; best effort, quiet when they are gone."""
    import asyncio

    async def delete_topics():
        from app.kafka.admin import admin_client
        from app.settings import Settings

        admin = await admin_client(Settings.from_env(), timeout=5.0)
        try:
            doomed = [t for t in await admin.list_topics() if t.startswith((names["topic"], names["app_id"] + "-"))]
            if doomed:
                await admin.delete_topics(doomed)
        finally:
            await admin.close()

    try:
        asyncio.run(asyncio.wait_for(delete_topics(), 20))
    except Exception:   # noqa: BLE001 -- services down (or private ones, already stopped): nothing to clean
        pass
    try:
        from app.outputs.elastic import sync_client
        from app.settings import Settings

        es = sync_client(Settings.from_env()).options(request_timeout=10)
        found = list(es.indices.get(index=f"{names['index']}*", allow_no_indices=True, ignore_unavailable=True))
        if found:   # by name: Elasticsearch 8 refuses to delete by wildcard (action.destructive_requires_name)
            es.indices.delete(index=",".join(found))
    except Exception:   # noqa: BLE001
        pass
