"""A real shipper: rsyslog (Debian's rsyslogd with imfile and rsyslog-kafka's omkafka) follows the log
file a real JVM wrote and puts one record per line on the log topic; the worker assembles them into
events (one document per exception, its frames included) and indexes them.  The configuration is the
one docs/shippers.md shows."""
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.streaming_helpers import ROOT, Worker, es_count, es_docs, run_cli, stop_process, wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]

TRACES = ROOT / "tests" / "data" / "traces"
JUL_FORMAT = "%1$tFT%1$tT.%1$tL %4$s %3$s - %5$s%6$s%n"
OMKAFKA = Path("/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so")

RSYSLOG_CONF = """
global(workDirectory="{work}"
       parser.escapeControlCharactersOnReceive="off")   # keep the tab of "\\tat ..." frames
module(load="imfile")
module(load="omkafka")
template(name="clogs" type="list" option.jsonf="on") {{
  property(outname="line" name="msg" format="jsonf")
  property(outname="file" name="$!metadata!filename" format="jsonf")
  property(outname="@timestamp" name="timegenerated" dateFormat="rfc3339" format="jsonf")
  constant(outname="source" value="{source}" format="jsonf")
}}
input(type="imfile" file="{log}" tag="shop" addMetadata="on" ruleset="to_kafka")
ruleset(name="to_kafka") {{
  action(type="omkafka" broker=["{broker}"] topic="{topic}" key="{source}" template="clogs"
         confParam=["queue.buffering.max.ms=50"])
}}
"""


def test_rsyslog_with_its_kafka_output_ships_a_java_service_s_log_and_clogs_assembles_its_events(
        services, names, tmp_path):
    rsyslogd, java = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd", shutil.which("java")
    if not Path(rsyslogd).exists() or not OMKAFKA.exists() or java is None:
        pytest.skip("needs rsyslog, rsyslog-kafka and java (scripts/ensure_test_tools installs them)")
    result = subprocess.run([java, f"-Djava.util.logging.SimpleFormatter.format={JUL_FORMAT}", "Shop.java", "10"],
                            cwd=TRACES, capture_output=True, text=True, timeout=300)
    lines = (result.stdout + result.stderr).splitlines()
    log = tmp_path / "shop.log"
    log.write_text("\n".join(lines) + "\n")
    (tmp_path / "work").mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=tmp_path / "work", log=log, broker="127.0.0.1:9092",
                                        topic=names["topic"], source="rsyslog-shop"))
    check = subprocess.run([rsyslogd, "-N1", "-f", conf], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    run_cli("topic", "--topic", names["topic"], "--app-id", names["app_id"], "--partitions", "2")
    worker = Worker(names, tmp_path / "state", partitions=2).start()
    shipper = subprocess.Popen([rsyslogd, "-n", "-f", conf, "-i", tmp_path / "rsyslogd.pid"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: es_count(names["index"]) >= 25, timeout=120, what="rsyslog's records indexed")
        time.sleep(3)
        docs = sorted(es_docs(names["index"]).values(), key=lambda d: d["kafka_offset"])
    finally:
        stop_process(shipper)
        worker.stop()
    # 10 received, 8 priced, 2 NullPointerExceptions, a wrapped exception, another NPE, 1 line, an
    # uncaught exception, 1 line: 25 events from 74 lines
    assert len(docs) == 25 and {d["source"] for d in docs} == {"rsyslog-shop"}
    assert sum(d.get("log", {}).get("multiline", {}).get("lines", 1) for d in docs) == \
        len([line for line in lines if line.strip()])
    npes = [d for d in docs if d.get("call_site") == "Shop.priceOf (Shop.java:17)"]
    assert len(npes) == 2 and npes[0]["error"]["type"] == "java.lang.NullPointerException"
    assert "\n\tat Shop.priceOf(Shop.java:17)\n" in npes[0]["message"] and npes[0]["log"]["file"]["path"] == str(log)
