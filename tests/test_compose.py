"""docker-compose.yml: valid against the Compose specification, and in step with app/settings.py."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose():
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_specification(compose):
    if not SCHEMA.exists():
        pytest.skip(f"{SCHEMA} is not here (it ships in the project's shared/ folder)")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_services_ports_and_settings_match_the_app(compose):
    from app.settings import Settings, env_names

    settings = Settings.from_env({})

    services = compose["services"]
    assert set(services) == {"kafka", "elasticsearch", "kibana", "worker", "ingest", "kibana-setup"}
    assert "9092:9092" in services["kafka"]["ports"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "9200:9200" in services["elasticsearch"]["ports"]
    assert services["elasticsearch"]["environment"]["discovery.type"] == "single-node"
    assert services["elasticsearch"]["image"].endswith(":8.11.4")  # the version scripts/pom.xml runs locally
    assert "5601:5601" in services["kibana"]["ports"]
    worker = services["worker"]["environment"]
    assert worker["CLOGS_INDEX"] == settings.index == "mozilla-clogs-index"
    assert worker["CLOGS_APP_ID"] == settings.app_id and worker["CLOGS_TOPIC"] == settings.topic
    assert float(worker["CLOGS_FACTOR"]) == settings.factor
    assert worker["CLOGS_BROKER"] == "kafka://kafka:29092" and worker["CLOGS_ES_URL"] == "http://elasticsearch:9200"
    assert f"{settings.web_port}:{settings.web_port}" in services["worker"]["ports"]
    assert services["ingest"]["environment"]["CLOGS_TOPIC"] == settings.topic
    for name in list(worker) + list(services["ingest"]["environment"]):
        assert name in env_names(), f"{name} is not a setting of app/settings.py"
    for name, service in services.items():
        if name not in ("ingest", "kibana-setup"):  # one-shot jobs
            assert "healthcheck" in service, name
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["ingest"]["depends_on"]["worker"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) == {"kafka-data", "es-data", "worker-state"}
    pom = (ROOT / "scripts" / "pom.xml").read_text()
    assert "<kafka.version>4.1.1</kafka.version>" in pom and services["kafka"]["image"] == "apache/kafka:4.1.1"


def test_kafka_serves_the_containers_and_the_host_and_the_worker_needs_a_token(compose):
    """Kafka advertises kafka:29092 inside the compose network and localhost:9092 on the host (the
    published port), so `clogs ingest --broker kafka://localhost:9092` reaches it from the host; the
    worker, bound to 0.0.0.0, refuses to start without CLOGS_WEB_TOKEN and its health check sends it."""
    services = compose["services"]
    kafka = services["kafka"]["environment"]

    def listeners(value):
        return dict(item.split("://") for item in value.split(","))

    bound, advertised = listeners(kafka["KAFKA_LISTENERS"]), listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert advertised == {"INTERNAL": "kafka:29092", "HOST": "localhost:9092"}
    assert set(advertised) <= set(bound) and set(bound) <= set(protocols)
    assert bound["HOST"].endswith(":9092") and "9092:9092" in services["kafka"]["ports"]
    assert kafka["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
    for name in ("worker", "ingest"):
        assert services[name]["environment"]["CLOGS_BROKER"] == "kafka://kafka:29092"
    worker = services["worker"]["environment"]
    assert worker["CLOGS_WEB_HOST"] == "0.0.0.0" and worker["CLOGS_WEB_TOKEN"].startswith("${CLOGS_WEB_TOKEN:?")
    assert "CLOGS_WEB_TOKEN" in " ".join(services["worker"]["healthcheck"]["test"])
