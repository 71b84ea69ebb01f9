"""A missing checkpoint or an unreachable broker stops a command at once, naming the fix."""
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
