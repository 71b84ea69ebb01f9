"""app/inputs/follow.py (tail -F with saved positions) and the Kafka-free parts of `clogs ingest -` / `--follow`.

No broker: the ingest tests replace the producer with a fake that acknowledges at once.
"""
import argparse
import asyncio
import io
import json
import os

import pytest

from app.inputs import ingest as ingest_module
from app.settings import Settings
from app.inputs.follow import Follower, load_state, save_state, source_of


def lines_of(polled):
    return [(ln.path.name, ln.line_no, ln.raw) for ln in polled]


def commit_all(follower, polled):
    for ln in polled:
        follower.commit(ln.position)


def write(path, text, mode="a"):
    with open(path, mode + "b") as handle:
        handle.write(text.encode())


@pytest.fixture
def logs(tmp_path):
    folder = tmp_path / "logs" / "log-web"
    folder.mkdir(parents=True)
    return folder


def test_lines_come_once_and_partial_lines_wait(logs):
    write(logs / "a.log", "one\ntwo\nthr")
    f = Follower(logs.parent, "log-*/*.log")
    assert lines_of(f.poll()) == [("a.log", 1, b"one\n"), ("a.log", 2, b"two\n")]
    assert f.poll() == []
    write(logs / "a.log", "ee\nfour")
    got = f.poll()
    assert lines_of(got) == [("a.log", 3, b"three\n")]
    assert got[0].source == "log-web" and got[0].position.offset == len(b"one\ntwo\nthree\n")
    write(logs / "a.log", "\n")
    assert lines_of(f.poll()) == [("a.log", 4, b"four\n")]
    f.close()


def test_new_files_are_picked_up(logs):
    write(logs / "a.log", "a1\n")
    f = Follower(logs.parent, "log-*/*.log")
    assert lines_of(f.poll()) == [("a.log", 1, b"a1\n")]
    other = logs.parent / "log-db"
    other.mkdir()
    write(other / "b.log", "b1\nb2\n")
    write(logs / "ignored.txt", "not matching\n")
    got = f.poll()
    assert [(ln.source, ln.raw) for ln in got] == [("log-db", b"b1\n"), ("log-db", b"b2\n")]
    f.close()


def test_rotation_finishes_the_old_file_then_reads_the_new_from_the_start(logs):
    path = logs / "app.log"
    write(path, "old1\nold2\n")
    f = Follower(logs.parent, "log-*/*.log", rotated_grace=0.0)
    assert len(f.poll()) == 2
    writer = open(path, "ab")            # the application keeps its handle across the rename
    writer.write(b"old3\n")
    writer.flush()
    os.rename(path, logs / "app.log.1")  # logrotate: rename, then create
    writer.write(b"old4\n")
    writer.flush()
    writer.close()
    write(path, "new1\nnew2\n", mode="w")
    got = f.poll()
    assert [ln.raw for ln in got] == [b"old3\n", b"old4\n", b"new1\n", b"new2\n"]
    assert [ln.line_no for ln in got] == [3, 4, 1, 2]
    assert len(f.files) == 1               # the old one, quiet past the grace period, is closed
    write(path, "new3\n")
    assert [ln.raw for ln in f.poll()] == [b"new3\n"]
    f.close()


def test_rotated_file_keeps_its_last_unterminated_line_and_waits_for_the_grace_period(logs):
    path = logs / "app.log"
    write(path, "a\n")
    f = Follower(logs.parent, "log-*/*.log", rotated_grace=3600)
    f.poll()
    write(path, "tail-without-newline")
    os.rename(path, logs / "app.old")
    assert f.poll() == []                   # still within the grace period: the writer may finish it
    write(logs / "app.old", " done\n")
    assert [ln.raw for ln in f.poll()] == [b"tail-without-newline done\n"]
    write(logs / "app.old", "last")
    f.rotated_grace = 0.0
    assert [ln.raw for ln in f.poll()] == [b"last"]   # closed: its last line goes as it is
    assert f.files == {}
    f.close()


def test_a_rotated_name_that_still_matches_is_read_on_without_duplicates(logs):
    path = logs / "app.log"
    write(path, "1\n2\n")
    f = Follower(logs.parent, "log-*/*.log*", rotated_grace=0.0)
    assert len(f.poll()) == 2
    os.rename(path, logs / "app.log.1")
    write(logs / "app.log.1", "3\n")
    write(path, "new\n", mode="w")
    got = f.poll()
    assert [(ln.path.name, ln.raw) for ln in got] == [("app.log", b"new\n"), ("app.log.1", b"3\n")]
    assert [ln.line_no for ln in got] == [1, 3]
    f.close()


def test_truncation_restarts_from_zero(logs):
    path = logs / "app.log"
    write(path, "aaaa\nbbbb\ncccc\n")
    f = Follower(logs.parent, "log-*/*.log")
    assert len(f.poll()) == 3
    with open(path, "r+b") as handle:      # copytruncate
        handle.truncate(0)
    write(path, "x\n")
    got = f.poll()
    assert lines_of(got) == [("app.log", 1, b"x\n")]
    f.close()


def test_truncated_and_rewritten_past_the_offset_is_seen_by_its_first_bytes(logs):
    path = logs / "app.log"
    write(path, "first\n")
    f = Follower(logs.parent, "log-*/*.log")
    assert len(f.poll()) == 1
    write(path, "other content, longer than before\n", mode="w")   # same inode, new bytes
    assert lines_of(f.poll()) == [("app.log", 1, b"other content, longer than before\n")]
    f.close()


def test_a_new_follower_resumes_from_the_saved_state_without_duplicates_or_gaps(logs, tmp_path):
    state_file = tmp_path / "state" / "ingest-state.json"
    write(logs / "a.log", "".join(f"line {i}\n" for i in range(1, 11)))
    f = Follower(logs.parent, "log-*/*.log")
    got = f.poll()
    commit_all(f, got[:6])                  # only six were acknowledged before the stop
    f.save(state_file)
    f.close()
    assert not [p for p in state_file.parent.iterdir() if p.name != state_file.name]   # no temporary left
    state = load_state(state_file)
    assert state["files"][0]["line_no"] == 6 and state["files"][0]["offset"] == sum(
        len(f"line {i}\n") for i in range(1, 7))

    write(logs / "a.log", "line 11\n")
    g = Follower(logs.parent, "log-*/*.log", load_state(state_file))
    got = g.poll()
    assert [(ln.line_no, ln.raw) for ln in got] == [(i, f"line {i}\n".encode()) for i in range(7, 12)]
    commit_all(g, got)
    g.save(state_file)
    g.close()

    h = Follower(logs.parent, "log-*/*.log", load_state(state_file))
    assert h.poll() == []
    write(logs / "a.log", "line 12\n")
    assert [(ln.line_no, ln.raw) for ln in h.poll()] == [(12, b"line 12\n")]
    h.close()


def test_state_of_a_file_rotated_while_stopped_under_a_matching_name(logs, tmp_path):
    state_file = tmp_path / "state.json"
    write(logs / "app.log", "1\n2\n")
    f = Follower(logs.parent, "log-*/*.log*")
    commit_all(f, f.poll())
    f.save(state_file)
    f.close()
    write(logs / "app.log", "3\n")           # written while nothing followed
    os.rename(logs / "app.log", logs / "app.log.1")
    write(logs / "app.log", "new\n", mode="w")
    g = Follower(logs.parent, "log-*/*.log*", load_state(state_file))
    assert sorted((ln.path.name, ln.line_no, ln.raw) for ln in g.poll()) == [
        ("app.log", 1, b"new\n"), ("app.log.1", 3, b"3\n")]
    g.close()


def test_inode_reuse_fails_the_fingerprint_and_reads_from_the_start(logs, tmp_path):
    state_file = tmp_path / "state.json"
    write(logs / "a.log", "hello\nworld\n")
    f = Follower(logs.parent, "log-*/*.log")
    commit_all(f, f.poll())
    state = f.state()
    f.close()
    # Another file under the same device and inode (as after delete + create): same identity,
    # other first bytes.
    write(logs / "a.log", "HELLO\nWORLD\nagain\n", mode="w")
    save_state(state_file, state)
    g = Follower(logs.parent, "log-*/*.log", load_state(state_file))
    assert [ln.raw for ln in g.poll()] == [b"HELLO\n", b"WORLD\n", b"again\n"]
    g.close()


def test_shrunk_while_stopped_reads_from_the_start(logs, tmp_path):
    write(logs / "a.log", "aaaaaaaa\nbbbbbbbb\n")
    f = Follower(logs.parent, "log-*/*.log")
    commit_all(f, f.poll())
    state = f.state()
    f.close()
    with open(logs / "a.log", "r+b") as handle:
        handle.truncate(0)
    write(logs / "a.log", "c\n")
    g = Follower(logs.parent, "log-*/*.log", state)
    assert [ln.raw for ln in g.poll()] == [b"c\n"]
    g.close()


def test_from_end_skips_what_is_there_but_reads_later_files_whole(logs):
    write(logs / "a.log", "history\n")
    f = Follower(logs.parent, "log-*/*.log", from_end=True)
    assert f.poll() == []
    write(logs / "a.log", "fresh\n")
    write(logs / "b.log", "b1\n")
    assert sorted(ln.raw for ln in f.poll()) == [b"b1\n", b"fresh\n"]
    f.close()


def test_an_overlong_line_is_cut_and_its_rest_skipped(logs):
    write(logs / "a.log", "short\n" + "x" * 50)
    f = Follower(logs.parent, "log-*/*.log", max_line=20)
    got = f.poll()
    assert [ln.raw for ln in got] == [b"short\n", b"x" * 21]
    write(logs / "a.log", "y" * 30 + "\nnext\n")
    assert [(ln.line_no, ln.raw) for ln in f.poll()] == [(3, b"next\n")]
    f.close()


def test_source_of_matches_clogs_ingest(tmp_path):
    assert source_of(tmp_path, tmp_path / "log-a" / "x" / "f.txt") == "log-a"
    assert source_of(tmp_path, tmp_path / "sub" / "f.txt") == "sub"
    assert source_of(tmp_path, tmp_path / "f.txt") == tmp_path.name


# --- ingest without a broker ----------------------------------------------------------------
class FakeProducer:
    def __init__(self):
        self.sent = []

    async def send(self, topic, value, key=None):
        self.sent.append((topic, key, json.loads(value)))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def flush(self):
        pass

    async def stop(self):
        pass


T_SETTINGS = Settings.from_env({}, topic="t")


@pytest.fixture
def producer(monkeypatch):
    fake = FakeProducer()

    async def start(settings):
        return fake

    monkeypatch.setattr(ingest_module, "start_producer", start)
    return fake


def test_stdin_lines_share_the_record_building_and_dead_letters(producer):
    stream = io.BytesIO(b"first line\n\nsecond line\r\nlast without newline")
    summary = asyncio.run(ingest_module.ingest_stream(T_SETTINGS, stream, source="app"))
    logs = [v for topic, _, v in producer.sent if topic == "t"]
    dead = [v for topic, _, v in producer.sent if topic == "t-deadletter"]
    assert [(v["source"], v["line_no"], v["line"], v["file"]) for v in logs] == [
        ("app", 1, "first line", "-"), ("app", 3, "second line", "-"), ("app", 4, "last without newline", "-")]
    assert [(d["reason"], d["line_no"]) for d in dead] == [("empty_line", 2)]
    assert all(key == b"app" for _, key, _ in producer.sent)
    assert summary["lines"] == 3 and summary["dead_lettered"] == {"empty_line": 1}


def test_follow_sends_new_lines_and_resumes_from_its_state(producer, logs, tmp_path):
    state_file = tmp_path / "ingest-state.json"
    write(logs / "a.log", "one\ntwo\npartial")

    async def first_run():
        stop = asyncio.Event()
        task = asyncio.create_task(ingest_module.ingest_follow(
            T_SETTINGS, logs.parent, "log-*/*.log", state_file, stop=stop, interval=0.01))
        await asyncio.sleep(0.2)
        write(logs / "a.log", " line\nthree\n")
        await asyncio.sleep(0.2)
        stop.set()                       # what SIGINT/SIGTERM do
        return await task

    summary = asyncio.run(first_run())
    assert [v["line"] for _, _, v in producer.sent] == ["one", "two", "partial line", "three"]
    assert [v["file"] for _, _, v in producer.sent] == ["log-web/a.log"] * 4
    assert summary["lines"] == 4 and summary["state_file"] == state_file
    assert load_state(state_file)["files"][0]["line_no"] == 4

    producer.sent.clear()
    write(logs / "a.log", "four\n")
    summary = asyncio.run(ingest_module.ingest_follow(T_SETTINGS, logs.parent, "log-*/*.log", state_file,
                                                      follow_for=0.2, interval=0.01))
    assert [(v["line_no"], v["line"]) for _, _, v in producer.sent] == [(5, "four")]


def test_cli_accepts_stdin_and_follow_flags():
    from app.streaming_cli import add_streaming_commands

    parser = argparse.ArgumentParser()
    add_streaming_commands(parser.add_subparsers(), Settings.from_env({}))
    args = parser.parse_args(["ingest", "-", "--source", "app"])
    assert args.input == "-" and args.source == "app" and not args.follow
    args = parser.parse_args(["ingest", "--follow-for", "3", "--state-file", "s.json", "--base-dir", "x"])
    assert args.input is None and args.follow_for == 3.0 and args.state_file == "s.json"
    args = parser.parse_args(["ingest"])
    assert (args.base_dir, args.delay, args.batch, args.input) == ("data/kafka", 0.0, 1000, None)
