"""Redaction (app/outputs/redaction.py): planted secrets go, look-alikes and Loghub lines stay.

tests/data/secrets.txt holds realistic log lines with planted secrets; ``PLANTED`` below lists,
line by line, the exact substrings planted (secrets, then personal data) and words around
them that must survive -- written out by hand, not derived from the rules under test.
Run with ``-s`` to see the time per line on the Loghub sample and the Loghub lines changed.
"""
import glob
import json
import time
from pathlib import Path

import pytest

from app.outputs.redaction import DEFAULT_RULES, REDACTED, Redactor, luhn_ok, redact_document

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "data" / "secrets.txt"
LOGHUB = sorted(glob.glob(str(ROOT.parent / "shared" / "datasets" / "loghub" / "*.log")))

# One entry per line of tests/data/secrets.txt: (secrets, personal data, text that must remain)
PLANTED = [
    (["8f2c1a9e7b6d4c3a2f1e0d9c8b7a6f5e"], [], ["Authorization: Bearer ", "GET /api/v1/orders", '" 200 512'],),
    (["YWRtaW46c3VwZXJzZWNyZXQ="], [], ["Authorization: Basic ", '"GET /admin HTTP/1.1" 401']),
    (["dXNlcjpwYXNzd29yZA=="], [], ["Proxy-Authorization: Basic ", " to backend"]),
    (["7f3e9a1b2c4d5e6f7a8b9c0d1e2f3a4b"], [], ['"Bearer ', "python-requests/2.31.0"]),
    (["abc123XYZ987tokenvalue"], [], ["'Authorization: Bearer ", "https://api.example.com/v1/items"]),
    (["Tr0ub4dor&3"], [], ["user=alice password=", " from 10.1.2.3"]),
    (["s3cr3t-P@ss!"], [], ['"password":"', '"role":"admin"', '"user":"bob"']),
    (["hunter2hunter2"], [], ['"db_password": "', '"host": "db01"']),
    (["sk_live_4eC39HqLyjWDarjtT1zdp7dc"], [], ["{'api_key': '", "'timeout': 30}"]),
    (["9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"], [], ["X-Api-Key: ", " after 503"]),
    (["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"], [],
     ["aws_access_key_id=", "aws_secret_access_key=", "region=us-east-1"]),
    (["je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"], [], ['export AWS_SECRET_ACCESS_KEY="']),
    (["ASIAY34FZKBOKMUTVV7A"], [], ["temporary credentials ", " expire at 2024-03-12T11:30:00Z"]),
    (["ghs_16C7e42F292c6912E7710c838347Ae178B4a"], [], ["https://x-access-token:", "@github.com/acme/app.git"]),
    (["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"], [], ["using token ", " for api.github.com"]),
    (["github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345"], [],
     ["GH_PAT ", " loaded from vault"]),
    (["xoxb-2657849201-4420738541239-Jk3kqPz8bXyQvW9rT7uLmN2a"], [], ["invalid_auth for "]),
    (["xoxp-1111111111-2222222222-3333333333-abcdef0123456789abcdef0123456789"], [], ["SLACK_USER_TOKEN="]),
    (["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
      ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"], [],
     ["/ws/connect?access_token=", "&client=web HTTP/1.1\" 101 0"]),
    (["eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhY21lIiwiZXhwIjoxNzEwMjM0NTY3fQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"], [],
     ["rejected ", " (signature mismatch)"]),
    (["MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi+abcdEFGH1234ijklMNOP"], [],
     ["loaded key -----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY----- for server.example.org"]),
    (["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"], [],
     ['"value":"-----BEGIN PRIVATE KEY-----', '"path":"/var/run/secrets/tls"']),
    (["MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oFdsXy9Fq0Y5oAoGCCqGSM49"], [],
     ["bad key material -----BEGIN EC PRIVATE KEY-----", "-----END EC PRIVATE KEY----- rejected"]),
    (["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB"], [],  # a block cut short: redacted to the end
     ["sshd-keygen: -----BEGIN OPENSSH PRIVATE KEY-----"]),
    (["Sup3rS3cret!"], [], ["postgres://app_user:", "@db.internal:5432/orders"]),
    (["m0ng0Pa55"], [], ["mongodb+srv://admin:", "@cluster0.ab12c.mongodb.net/test?retryWrites=true"]),
    (["r3d1sP4ss"], [], ["broker redis://:", "@cache-01:6379/0 unreachable"]),
    (["gu3st-Pw"], [], ["amqp://guest:", "@rabbit.internal:5672//"]),
    (["p@ss w0rd"], [], ["user=report password='", "' dbname=metrics"]),
    (["letmein123"], [], ["user=deploy pwd=", " result=ok"]),
    (["Qwerty!2024"], [], ["svc-backup passwd: ", " (temporary)"]),
    (["9f86d081884c7d659a2feaa0c55ad015"], [], ["client_id=dashboard&client_secret=", " HTTP/1.1\" 200 410"]),
    (["1//0gL3xYq-abcdEFGHijklMNOP"], [], ["refresh_token=", " token_type=Bearer expires_in=3599"]),
    (["django-insecure-7x!k2$9qz@m#4v&b1p"], [], ["env SECRET_KEY: ", " printed in pod log"]),
    (["CorrectHorse42"], [], ["User{id=42, name=carol, userPassword=", ", active=true}"]),
    (["f0e1d2c3b4a5968778695a4b3c2d1e0f"], [], ['[app] secret_key = "']),
    (["blue-elephant-staple-battery"], [], ["unlocking keyring with passphrase="]),
    (["Zm9vYmFyYmF6cXV4"], [], ["https://hooks.example.com/in?auth=", "&ref=42 status=204"]),
    (["a1b2c3d4e5f6a7b8c9d0"], [], ['"token": "', '"ttl": 3600']),
    (["Dkr!9pass"], [], ["docker login -u ci --password '", "' registry.example.com"]),
    ([], ["jane.doe@example.com"], ["mailer: password reset link sent to "]),
    ([], ["john.smith+alerts@mail.acme-corp.co.uk"], ['From: "John Smith" <', "> queued as 4B1C2D3E"]),
    ([], ["4111 1111 1111 1111"], ["authorised card=", " amount=19.99 EUR"]),
    ([], ["5555-5555-5555-4444"], ["charge failed for card ", " (insufficient funds)"]),
    ([], ["378282246310005"], ['"pan":"', '"exp":"12/26"']),
    ([], ["4012888888881881", "5105105105105100"], ["batch: Visa ", " and MC ", " settled"]),
    ([], ["3782 822463 10005"], ["payments: Amex ", " declined by issuer"]),
    ([], ["6011111111111117", "3530111333300000", "30569309025904", "2223003122003222"],
     ["Discover ", " JCB ", " Diners ", " MC2 "]),
    (["P4ssw0rd!"], ["mallory@evil.example"], ["signup: user=", " password=", " ip=203.0.113.7"]),
]

# Lines that look a little like secrets or card numbers but are not: no mode may change them.
LOOKALIKES = [
    "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO "
    "instruction cache parity error corrected",
    "081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_-6952295868487656571 terminating",
    "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 "
    "is added to blk_7128370237687728475 size 67108864",
    "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/part-00000. "
    "blk_4111111111111111",
    "event epoch=1710238511 epoch_ms=1710238511123 epoch_us=1710238511123456 seq 17102385111234567",
    "request 550e8400-e29b-41d4-a716-446655440000 finished in 12 ms",
    "commit 4f2a9c8e7b6d5c4b3a29180716f5e4d3c2b1a090 pushed to main",
    "pulled image sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "password reset requested for user id 42",
    "token expired",
    "WARN auth token expired for session 7781, please log in again",
    "order 4111111111111112 shipped",            # Visa-shaped, fails the Luhn check
    "txn 5555 5555 5555 4445 failed",             # Mastercard-shaped, fails the Luhn check
    "ref 4000-1234-5678-9011 archived",           # fails the Luhn check
    "Bearer authentication is required for /api",
    "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
    "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= "
    "rhost=218.188.2.4",
    "2015-10-18 18:02:02,104 INFO [Socket Reader #1 for port 62270] SecurityLogger.org.apache.hadoop.ipc.Server: "
    "Auth successful for job_1445144423722_0020 (auth:SIMPLE)",
    "2015-10-18 18:01:48,963 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Kind: YARN_AM_RM_TOKEN, "
    "Service: , Ident: (appAttemptId { application_id { id: 20 cluster_timestamp: 1445144423722 } attemptId: 1 } keyId: -127633188)",
    "Priority: 20, Token: Token { kind: ContainerToken, service: 172.22.149.145:28345 }, ]",
    "03-17 16:13:38.839  1702  2113 V WindowManager: Skipping AppWindowToken{df0798e token=Token{78af589 ActivityRecord"
    "{3b04890 u0 com.tencent.qt.qtl/com.tencent.video.player.activity.PlayerActivity t761}}} -- going to hide",
    "oauth response token_type=Bearer expires_in=3599 scope=read",
    "proxy http://proxy.example.com:8080/path?x=1 ok",
    "2016-09-28 04:30:31, Info CSI 00000001@2016/9/27:20:30:31.455 WcpInitialize (wcp.dll version 0.0.0.6) called",
    "PRIVATE KEY file /etc/ssl/private/server.key loaded",
    "ISBN 978-3-16-148410-0 and phone 4155552671 ext 12",
    "the secret to good logs is structure; keyboard: connected; monkey=banana",
    "api_key_id=42 session_token_ttl=3600 --token-ttl 5 --password-file /run/secrets/pw",
    "Authorization failed for user bob",
    "Linux version 2.6.5-1.358 (gcc version 3.3.3 20040412 (Red Hat Linux 3.3.3-7)) #1 Sat May 8 09:04:50 EDT 2004",
]


def corpus():
    return CORPUS.read_text().splitlines()


def test_corpus_and_planted_list_line_up():
    lines = corpus()
    assert len(lines) >= 40
    assert len(lines) == len(PLANTED)
    for line, (secrets, personal, kept) in zip(lines, PLANTED):
        for planted in secrets + personal + kept:
            assert planted in line, (planted, line)


@pytest.mark.parametrize("mode", ["secrets", "all"])
def test_planted_secrets_are_gone_and_the_rest_remains(mode):
    redactor = Redactor(mode=mode)
    for line, (secrets, personal, kept) in zip(corpus(), PLANTED):
        out, hits = redactor.redact(line)
        for secret in secrets:
            assert secret not in out, (secret, out)
        for text in kept:
            assert text in out, (text, out)
        for item in personal:
            if mode == "all":
                assert item not in out, (item, out)
            else:
                assert item in out, (item, out)
        expected = len(secrets) + (len(personal) if mode == "all" else 0)
        if expected:
            assert REDACTED in out and hits, out
        else:
            assert out == line and hits == {}


def test_all_is_the_default_and_secrets_keeps_personal_data():
    line = "signup user=mallory@evil.example card 4111111111111111 iban DE89 3704 0044 0532 0130 00 password=P4ssw0rd!"
    out, hits = Redactor().redact(line)
    assert out == f"signup user={REDACTED} card {REDACTED} iban {REDACTED} password={REDACTED}"
    assert hits == {"key_value_secret": 1, "email": 1, "card_number": 1, "iban": 1}
    out, hits = Redactor(mode="secrets").redact(line)   # CLOGS_REDACT=secrets: the opt-out
    assert out == line.replace("P4ssw0rd!", REDACTED) and hits == {"key_value_secret": 1}


@pytest.mark.parametrize("iban", [
    "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606",
    "NL91ABNA0417164300", "CH9300762011623852957", "IT60X0542811101000000123456", "BE68539007547034",
])
def test_ibans_with_valid_check_digits_are_masked(iban):
    out, hits = Redactor().redact(f"refund to {iban} queued")
    assert out == f"refund to {REDACTED} queued" and hits == {"iban": 1}


@pytest.mark.parametrize("line", [
    "refund to GB82WEST12345698765431 queued",       # check digits do not agree
    "refund to DE88370400440532013000 queued",
    "node R02M1N0C1234567890 ok", "trace AB12CDEFGHIJKLMNOPQRS", "US12 3456 7890 1234 5678 rejected",
])
def test_iban_lookalikes_are_kept(line):
    assert Redactor().redact(line) == (line, {})


def test_all_mode_counts_hits_per_rule():
    _, hits = Redactor(mode="all").redact(
        "Visa 4012888888881881 MC 5105105105105100 to a@b.example via postgres://u:pw1@db/x, "
        "AKIAIOSFODNN7EXAMPLE")
    assert hits == {"card_number": 2, "email": 1, "url_credentials": 1, "aws_access_key_id": 1}


def test_url_encoded_email_in_a_url():
    out, hits = Redactor(mode="all").redact("GET https://13957525385%40163.com@p28-contacts.icloud.com/874161398/")
    assert out == f"GET https://{REDACTED}@p28-contacts.icloud.com/874161398/" and hits == {"email": 1}


def test_off_changes_nothing():
    redactor = Redactor(mode="off")
    assert not redactor.enabled
    for line in corpus() + LOOKALIKES:
        assert redactor.redact(line) == (line, {})


@pytest.mark.parametrize("mode", ["secrets", "all"])
def test_lookalikes_are_unchanged(mode):
    redactor = Redactor(mode=mode)
    for line in LOOKALIKES:
        assert redactor.redact(line) == (line, {}), line


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112") and not luhn_ok("1234567812345678")


def test_redaction_is_idempotent():
    redactor = Redactor(mode="all")
    for line in corpus():
        once, _ = redactor.redact(line)
        assert redactor.redact(once) == (once, {}), once


def test_prechecks_change_no_result():
    texts = corpus() + LOOKALIKES
    for path in LOGHUB:
        texts += Path(path).read_text(errors="replace").splitlines()[:300]
    for mode in ("all", "secrets"):   # "secrets": every rule has a condition, so the one-scan gate decides first
        fast, slow = Redactor(mode=mode), Redactor(mode=mode, prechecks=False)
        assert fast._gated == (mode == "secrets") and not slow._gated
        for text in texts:
            assert fast.redact(text) == slow.redact(text), text


def test_unusual_input():
    redactor = Redactor()
    assert redactor.redact("") == ("", {})
    assert redactor.redact(None) == (None, {})
    with pytest.raises(ValueError):
        Redactor(mode="some")
    assert Redactor(mode="ALL").mode == "all" and Redactor(mode="0").mode == "off"


def test_rules_file_adds_replaces_and_removes(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([
        {"name": "acme_key", "pattern": r"\bACME-[0-9a-f]{32}\b"},
        {"name": "employee_id", "pattern": r"\bEMP-\d{6}\b", "replacement": "EMP-<id>", "category": "personal"},
        {"name": "email", "pattern": None},
    ]))
    line = "key ACME-0123456789abcdef0123456789abcdef used by EMP-004217 (jane@example.com)"
    out, hits = Redactor.from_file(path, "secrets").redact(line)
    assert out == f"key {REDACTED} used by EMP-004217 (jane@example.com)" and hits == {"acme_key": 1}
    out, hits = Redactor.from_file(path, "all").redact(line)
    assert out == f"key {REDACTED} used by EMP-<id> (jane@example.com)"
    assert hits == {"acme_key": 1, "employee_id": 1}
    # the defaults are still there
    assert Redactor.from_file(path).redact("password=x1")[0] == f"password={REDACTED}"
    names = [r[0] for r in Redactor.from_file(path).rules]
    assert names.index("acme_key") < names.index("card_number") and "email" not in names

    path.write_text(json.dumps({"replace_defaults": True,
                                "rules": [{"name": "ticket", "pattern": r"TICKET-\d+", "replacement": "TICKET-?"}]}))
    out, hits = Redactor.from_file(path).redact("TICKET-77 password=x1")
    assert out == "TICKET-? password=x1" and hits == {"ticket": 1}

    path.write_text(json.dumps([{"name": "broken", "pattern": "("}]))
    with pytest.raises(ValueError, match="bad rule"):
        Redactor.from_file(path)
    path.write_text(json.dumps([{"name": "x", "pattern": "x", "category": "other"}]))
    with pytest.raises(ValueError, match="bad rule"):
        Redactor.from_file(path)
    with pytest.raises(FileNotFoundError):
        Redactor.from_file(tmp_path / "missing.json")


def test_from_settings(tmp_path):
    from app.settings import Settings

    assert Redactor.from_settings(Settings.from_env({"CLOGS_REDACT": "all"})).mode == "all"
    (tmp_path / "r.json").write_text('[{"name": "acme", "pattern": "ACME-\\\\d+"}]')
    settings = Settings.from_env({"CLOGS_REDACT_RULES": str(tmp_path / "r.json")})
    assert Redactor.from_settings(settings).redact("ACME-1") == (REDACTED, {"acme": 1})
    assert Redactor.from_settings(Settings.from_env({})).mode == "all"   # the default
    assert Redactor.from_settings(Settings.from_env({"CLOGS_REDACT": "0"})).mode == "off"   # an alias


def test_redact_document():
    redactor = Redactor(mode="all")
    line_doc = {"message": "login password=hunter22 for a@b.example", "source": "app", "line_no": 3}
    counts = {}
    assert redact_document(line_doc, redactor, counts) == 2
    assert line_doc == {"message": f"login password={REDACTED} for {REDACTED}", "source": "app", "line_no": 3}
    assert counts == {"key_value_secret": 1, "email": 1}

    raw_doc = {"line": "token=abc123def", "source": "app"}
    assert redact_document(raw_doc, redactor) == 1 and raw_doc["line"] == f"token={REDACTED}"

    incident = {"id": "i1", "examples": [{"doc_id": "d1", "message": "Bearer 0123456789abcdef"},
                                         {"doc_id": "d2", "message": "all fine"}]}
    assert redact_document(incident, redactor, counts) == 1
    assert incident["examples"] == [{"doc_id": "d1", "message": f"Bearer {REDACTED}"},
                                    {"doc_id": "d2", "message": "all fine"}]
    assert counts["bearer_token"] == 1

    dead = {"reason": "bad-json", "value_preview": '{"password": "pw", "x": 1', "preview_encoding": "utf-8"}
    assert redact_document(dead, redactor) == 1
    assert dead["value_preview"] == '{"password": "' + REDACTED + '", "x": 1'

    assert redact_document({"message": "nothing here"}, redactor) == 0
    off = {"message": "password=x1"}
    assert redact_document(off, Redactor(mode="off")) == 0 and off["message"] == "password=x1"


# Loghub lines that the default ("secrets") mode changes, with the reason: keep this short.
LOGHUB_EXPECTED_CHANGES = {
    # Android: "token: <value>" is the key: value shape; the value is a binder object id, not a
    # secret, but a redactor cannot tell and it loses nothing that matters.
    "Bad activity token: android.os.BinderProxy@2bd79ce",
}


@pytest.mark.skipif(not LOGHUB, reason="../shared/datasets/loghub is missing")
def test_loghub_lines_are_unchanged_and_fast():
    lines = []
    for path in LOGHUB:
        lines += Path(path).read_text(errors="replace").splitlines()
    for mode in ("secrets", "all"):
        redactor = Redactor(mode=mode)
        redactor.redact(lines[0])
        start = time.perf_counter()
        for line in lines:
            redactor.redact(line)
        per_line = (time.perf_counter() - start) / len(lines) * 1e6
        print(f"\nredaction, mode {mode}: {per_line:.2f} µs/line over {len(lines)} Loghub lines")
        changed = [(line, redactor.redact(line)) for line in lines if redactor.redact(line)[1]]
        for line, (out, hits) in changed:
            print(f"  changed {hits}:\n    {line[:300]}\n    {out[:300]}")
        if mode == "secrets":
            assert len(changed) <= 3, changed
            for line, _ in changed:
                assert any(expected in line for expected in LOGHUB_EXPECTED_CHANGES), line
            assert per_line < 50, per_line   # ~5 µs/line here; generous for a loaded machine
        else:
            assert len(changed) <= 10, changed


def test_default_rules_are_well_formed():
    names = [r[0] for r in DEFAULT_RULES]
    assert len(names) == len(set(names))
    assert {r[3] for r in DEFAULT_RULES} == {"secret", "personal"}
    assert {r[0] for r in DEFAULT_RULES if r[3] == "personal"} == {"email", "card_number", "iban"}
