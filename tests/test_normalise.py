"""Normaliser: real Loghub lines and their expected masked form."""
import json

import pytest

from model.normalise import Normaliser

CASES = [
    # BGL (label stripped)
    ("1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO "
     "instruction cache parity error corrected",
     "<EPOCH> <DATE> R<N>-M<N>-N<N>-C:J<N>-U<N> <TS> R<N>-M<N>-N<N>-C:J<N>-U<N> RAS KERNEL INFO "
     "instruction cache parity error corrected"),
    # HDFS
    ("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
     "<TS> <NUM> INFO dfs.DataNode$PacketResponder: PacketResponder <NUM> for block <BLK> terminating"),
    ("081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_-6952295868487656571 terminating",
     "<TS> <NUM> INFO dfs.DataNode$PacketResponder: PacketResponder <NUM> for block <BLK> terminating"),
    # OpenSSH: syslog timestamp, PID, IPv4
    ("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
     "<TS> LabSZ sshd[<PID>]: Invalid user webmaster from <IP>"),
    # Thunderbird: syslog timestamp with a single-digit day, PID
    ("1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root",
     "<EPOCH> <DATE> dn<N> <TS> dn<N>/dn<N> crond(pam_unix)[<NUM>]: session closed for user root"),
    # Zookeeper: ISO 8601 with comma millis, IPv4 with port
    ("2015-07-29 19:04:12,394 - INFO  [/10.10.34.11:3888:QuorumCnxManager$Listener@493] - Received connection "
     "request /10.10.34.11:45307",
     "<TS> - INFO [/<IP>:QuorumCnxManager$Listener@<NUM>] - Received connection request /<IP>"),
    # OpenStack: UUID, hex ids
    ("nova-compute.log 2017-05-16 00:00:04.500 2931 INFO nova.compute.manager [req-3ea4052c-895d-4b64-9e2d-04d64c4d94ab "
     "- - - - -] [instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] VM Started",
     "nova-compute.log <TS> <NUM> INFO nova.compute.manager [req-<UUID> - - - - -] [instance: <UUID>] VM Started"),
    # Apache: weekday timestamp, path
    ("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
     "[<TS>] [notice] workerEnv.init() ok <PATH>"),
    # hex and IPv6
    ("flags=0x1 addr fe80::1ff:fe23:4567:890a peer 2001:db8:85a3:0:0:8a2e:370:7334",
     "flags=<HEX> addr <IP> peer <IP>"),
]


@pytest.mark.parametrize("line,expected", CASES)
def test_masks_real_lines(line, expected):
    assert " ".join(Normaliser().tokenize(line)) == expected


def test_whitespace_tokenisation_and_empty_lines():
    n = Normaliser()
    assert n.tokenize("") == []
    assert n.tokenize("   \t ") == []
    assert n.tokenize("a  b\tc") == ["a", "b", "c"]


def test_rules_file_adds_and_overrides(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([
        {"name": "ticket", "pattern": r"\bJIRA-\d+\b", "token": "<TICKET>"},
        {"name": "ipv4", "pattern": r"(?:\d{1,3}\.){3}\d{1,3}", "token": "<ADDR>"},
    ]))
    n = Normaliser.from_file(rules)
    assert n.tokenize("fixed JIRA-1234 from 10.0.0.1 in 3 s") == ["fixed", "<TICKET>", "from", "<ADDR>", "in", "<NUM>", "s"]
    names = [r[0] for r in n.rules]
    assert names.index("ticket") < names.index("number")


def test_rules_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        Normaliser.from_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "x", "pattern": "(", "token": "<X>"}]))
    with pytest.raises(ValueError, match="bad.json"):
        Normaliser.from_file(bad)


def test_prefilters_never_change_the_result():
    """The cheap pre-checks only skip rules that could not match: same tokens on every Loghub line."""
    from pathlib import Path

    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "loghub"
    folder = shared if shared.is_dir() else Path(__file__).resolve().parent.parent / "data" / "loghub"
    fast, slow = Normaliser(), Normaliser(prefilters=False)
    lines = [line for path in sorted(folder.glob("*.log")) for line in path.read_text(errors="replace").splitlines()]
    lines += ["fe80::1 and 2001:db8:85a3:0:0:8a2e:370:7334", "Mon Dec 04 04:47:44 2005", "blk_-12 /a/b [77]",
              # stamps glued to a word or a digit, two in a line, a piece without its stamp (model/normalise.py PIECES)
              "x2005-06-03-15.42.50.675872 12005-06-03-15.42.50.1 2005-06-03-15.42.50.2 and 2006-01-01-01.01.01.3",
              "-06-03-15.42.50. then 2005-06-03-15.42.50.675872", "a2016-09-28 04:30:30 2016-09-28T04:30:30.5Z",
              "id=3f2504e0-4f89-11d3-9a0c-0305e82c3301,3f2504e0-4f89-11d3-9a0c-0305e82c3301 g3f2504e0-4f89-11d3-9a0c-0305e82c3301"]
    assert len(lines) > 10_000
    expected = [slow.mask(line).split() for line in lines]   # every rule, the whole line at a time
    assert [fast.tokenize(line) for line in lines] == expected
    assert [slow.tokenize(line) for line in lines] == expected
    assert [fast.tokenize(line) for line in lines] == expected   # again, from the token memo


def test_tokens_alone_give_the_same_tokens_as_the_whole_line():
    """The rules applied token by token (model/normalise.py TOKEN_LOCAL) agree with the whole-line
    path on random text made of the characters the rules care about, odd whitespace included."""
    import random

    rng = random.Random(7)
    pieces = list("0123456789abcdefxXAF.:-/[]<>_ ,T+Z") + [" ", "\t", "\xa0", "\u2028", "\x1c", "blk_", "Dec 10 ",
                                                          "Mon Dec 04 ", "2005-06-03", "12:01:01", "0x", "::", "fe80::1",
                                                          "2005-06-03-15.42.50.675872", "2005-06-03T15:42:50",
                                                          "2016-09-28 04:30:30,123", "-15.42.50.", "-06-03-",
                                                          "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "-4f89-11d3-",
                                                          "1117838570"]
    n, reference = Normaliser(), Normaliser(prefilters=False)
    assert len(n._token_rules) == 12 and len(n._line_rules) == 6
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        assert n.tokenize(text) == reference.mask(text).split(), repr(text)
        assert n.tokenize(text, limit=3) == reference.mask(text).split()[:3]


def test_user_rules_keep_their_place():
    """A rule of the user's placed before the generic ones leaves only those to the token path."""
    n = Normaliser(rules=[r for r in Normaliser().rules if r[0] != "hex"] + [("ticket", r"JIRA-\d+ x", "<T>")])
    assert n._token_rules == []   # the last rule is not one of TOKEN_LOCAL: all at line level
    assert n.tokenize("see JIRA-12 x now 0x1f") == n.mask("see JIRA-12 x now 0x1f").split() == \
        ["see", "JIRA-<NUM>", "x", "now", "<N>x<N>f"]
    first = Normaliser(rules=[("ticket", r"JIRA-\d+ x", "<T>")] + Normaliser().rules)
    assert len(first._token_rules) == 12 and first.tokenize("see JIRA-12 x now") == ["see", "<T>", "now"]
