"""A missing checkpoint or an unreachable broker stops a command at once, naming the fix."""
import os
import subprocess
import sys

from tests.streaming_helpers import ROOT, free_port


def clogs(*args):
    return subprocess.run([sys.executable, str(ROOT / "streaming_process.py"), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_missing_checkpoint_names_the_file_and_the_fix(tmp_path):
    result = clogs("consume", "--checkpoint-dir", str(tmp_path / "nothing"))
    assert result.returncode != 0
    assert str(tmp_path / "nothing" / "model.pth") in result.stderr and "clogs train" in result.stderr


def test_unreachable_broker_names_the_fix(tmp_path):
    dead = f"kafka://127.0.0.1:{free_port()}"
    (tmp_path / "log-a").mkdir()
    (tmp_path / "log-a" / "a.txt").write_text("one line\n")
    for args in (("topic", "--broker", dead), ("ingest", "--broker", dead, "--base-dir", str(tmp_path)),
                 ("consume", "--broker", dead)):
        result = clogs(*args)
        assert result.returncode != 0, args
        assert "cannot reach Kafka" in result.stderr and "scripts/services up" in result.stderr, (args, result.stderr)


def test_every_command_has_help():
    for command in ("train", "evaluate", "score", "topic", "ingest", "consume", "stream", "report"):
        result = clogs(command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout, command


def test_a_bad_multiline_rules_file_stops_consume_and_score_naming_the_rule(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('{"multiline": [{"source": "billing*", "pattern": "^\\\\d{4}-", "match": "sideways"}]}')
    for command in ("consume", "score"):
        result = subprocess.run([sys.executable, str(ROOT / "streaming_process.py"), command], capture_output=True,
                                text=True, timeout=60, cwd=ROOT, input="a line\n",
                                env={**os.environ, "CLOGS_MULTILINE_RULES": str(rules)})
        assert result.returncode != 0, command
        assert "multiline rule" in result.stderr and "sideways" in result.stderr, (command, result.stderr)


def test_ingest_reads_a_folder_of_log_and_json_files_without_a_pattern(tmp_path):
    from app.inputs.follow import default_pattern, matching_files

    (tmp_path / "api.log").write_text("one\n")
    (tmp_path / "worker" / "events.json").parent.mkdir()
    (tmp_path / "worker" / "events.json").write_text("{}\n")
    (tmp_path / "notes.md").write_text("not a log\n")
    assert [p.name for p, _ in matching_files(tmp_path, None)] == ["api.log", "events.json"]
    (tmp_path / "log-web").mkdir()   # the seed's layout: only the log-* folders
    (tmp_path / "log-web" / "web.txt").write_text("one\n")
    assert [p.name for p, _ in matching_files(tmp_path, None)] == ["web.txt"]
    assert default_pattern(tmp_path).startswith("log-*/**/*.txt")
