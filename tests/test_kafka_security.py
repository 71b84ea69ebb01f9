"""Secured Kafka for real: a private Kafka with a SASL_SSL listener (a throw-away CA and broker
certificate made here with openssl, SCRAM users made by Kafka's own storage tool), and the whole
pipeline -- clogs topic, the worker, clogs ingest, clogs feedback's producer -- through it; a wrong
password or an untrusted certificate: one line naming the setting to fix, a non-zero exit, nothing
consumed or lost."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

from app.inputs.traffic import service_lines
from tests.streaming_helpers import ROOT, Worker, es_count, free_port, wait_for, write_logs

pytestmark = [pytest.mark.services, pytest.mark.slow]
USER, PASSWORD = "clogs", "s3cret-scram"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder):
    """A CA, a broker certificate it signed for localhost/127.0.0.1 (PKCS12 for Kafka), and a second,
    unrelated CA."""
    folder.mkdir()
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                "-days", "2", "-subj", f"/CN=clogs test {ca}", cwd=folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj",
            "/CN=localhost", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "broker.pem", "-days", "2", "-extfile", "san.ext", cwd=folder)
    openssl("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem", "-out",
            "broker.p12", "-passout", "pass:changeit", cwd=folder)
    return folder


@pytest.fixture(scope="module")
def secured_kafka(services, tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test certificates")
    tmp = tmp_path_factory.mktemp("secured")
    certs = make_certificates(tmp / "certs")
    home = tmp / "svc"
    home.mkdir()
    (home / "lib").symlink_to(ROOT / ".services" / "lib")
    port, controller, secured = free_port(), free_port(), free_port()
    props = tmp / "sasl.properties"
    props.write_text(f"""\
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},SASL_SSL://127.0.0.1:{secured}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secured}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location={certs / 'broker.p12'}
ssl.keystore.password=changeit
ssl.key.password=changeit
""")
    env = {**os.environ, "CLOGS_SERVICES_DIR": str(home), "CLOGS_KAFKA_HEAP": "256m", "CLOGS_KAFKA_PORT": str(port),
           "CLOGS_KAFKA_CONTROLLER_PORT": str(controller), "CLOGS_KAFKA_PROPERTIES": str(props),
           "CLOGS_KAFKA_SCRAM": f"SCRAM-SHA-256=[name={USER},password={PASSWORD}];"
                                f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"}
    services_cmd = [sys.executable, str(ROOT / "scripts" / "services")]
    up = subprocess.run(services_cmd + ["up", "--only", "kafka"], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stdout + up.stderr
    client = {"CLOGS_BROKER": f"kafka://127.0.0.1:{secured}", "CLOGS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
              "CLOGS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "CLOGS_KAFKA_USERNAME": USER,
              "CLOGS_KAFKA_PASSWORD": PASSWORD, "CLOGS_KAFKA_CA_FILE": str(certs / "ca.pem")}
    try:
        yield client, certs, f"127.0.0.1:{secured}"
    finally:
        subprocess.run(services_cmd + ["down", "--purge"], env=env, capture_output=True, text=True)


def clogs(*args, env):
    return subprocess.run([sys.executable, str(ROOT / "streaming_process.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env={**os.environ, **env})


def test_the_pipeline_runs_over_sasl_ssl_with_scram(secured_kafka, names, tmp_path):
    client, certs, _ = secured_kafka
    out = clogs("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "4", env=client)
    assert out.returncode == 0, out.stdout + out.stderr
    worker = Worker(names, tmp_path / "state", env=client).start()
    try:
        total = write_logs(tmp_path / "logs", {"payments": service_lines("payments", 300, seed=4)})
        out = clogs("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"],
                    env={**client, "CLOGS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"})
        assert out.returncode == 0 and f"ingested {total} lines" in out.stdout, out.stdout + out.stderr
        wait_for(lambda: es_count(names["index"]) >= total, timeout=120, what="every line indexed through SASL_SSL")
        assert worker.stats()["log-payments"]["count"] == total
    finally:
        worker.stop(signal.SIGKILL)


@pytest.mark.parametrize("change, setting", [
    ({"CLOGS_KAFKA_PASSWORD": "wrong"}, "CLOGS_KAFKA_PASSWORD"),
    ({"CLOGS_KAFKA_CA_FILE": "other-ca.pem"}, "CLOGS_KAFKA_CA_FILE"),
])
def test_a_wrong_password_or_an_untrusted_certificate_fails_fast_naming_the_setting(secured_kafka, names, tmp_path,
                                                                                   change, setting):
    client, certs, _ = secured_kafka
    bad = {**client, **{k: str(certs / v) if v.endswith(".pem") else v for k, v in change.items()}}
    total = write_logs(tmp_path / "logs", {"payments": service_lines("payments", 20, seed=5)})
    for args in (("topic", "--topic", names["topic"], "--app-id", names["app_id"]),
                 ("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"]),
                 ("consume", "--topic", names["topic"], "--app-id", names["app_id"], "--web-port", str(free_port()))):
        out = clogs(*args, env=bad)
        assert out.returncode != 0, (args, out.stdout)
        error = out.stderr.strip().splitlines()[-1]
        assert setting in error and error.startswith(f"clogs {args[0]}:"), out.stderr
        assert "Traceback" not in out.stderr
    # nothing was consumed or lost: the same lines go through with the right settings
    out = clogs("topic", "--topic", names["topic"], "--app-id", names["app_id"], env=client)
    assert out.returncode == 0
    out = clogs("ingest", "--base-dir", str(tmp_path / "logs"), "--topic", names["topic"], env=client)
    assert f"ingested {total} lines" in out.stdout, out.stdout + out.stderr
