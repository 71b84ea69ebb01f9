"""Following log files as ``tail -F`` does, for ``clogs ingest --follow``: new lines, rotation,
truncation and new files, each file's position kept in a state file so that a restart resumes
where the last run stopped.  docs/streaming.md says how rotation and truncation are told apart.
"""
import hashlib
import json
import os
import stat
import time
from collections import namedtuple
from pathlib import Path

FINGERPRINT_BYTES = 256
READ_BYTES = 1 << 20          # per file and poll, so that one busy file does not starve the others

Line = namedtuple("Line", "source path line_no raw position")
Position = namedtuple("Position", "dev ino offset line_no")


def source_of(base, path):
    """A file's source: the ``log-*`` folder that holds it, else its first folder under ``base``,
    else the name of ``base`` (the rule of ``clogs ingest``)."""
    parts = Path(path).relative_to(base).parts
    return next((p for p in parts[:-1] if p.startswith("log-")), parts[0] if len(parts) > 1 else Path(base).name)


LOG_SUFFIXES = ("txt", "log", "json", "jsonl", "ndjson")


def default_pattern(base):
    """The files ``clogs ingest`` reads when no --pattern is given: log files (``*.txt``, ``*.log``,
    ``*.json``, ``*.jsonl``, ``*.ndjson``) in the ``log-*`` folders of ``base`` when it has such
    folders (the seed's layout: one folder per source), else anywhere under it."""
    folders = "log-*/**/" if any(p.is_dir() for p in Path(base).glob("log-*")) else "**/"
    return ",".join(f"{folders}*.{suffix}" for suffix in LOG_SUFFIXES)


def matching_files(base, pattern):
    """(path, stat) of the regular files matching ``pattern`` (globs, ","-separated) under ``base``,
    sorted by path; ``pattern`` None: ``default_pattern``."""
    out = []
    pattern = pattern or default_pattern(base)
    paths = {path for glob in pattern.split(",") if glob.strip() for path in Path(base).glob(glob.strip())}
    for path in sorted(paths):
        try:
            st = os.stat(path)
        except OSError:
            continue   # gone between the glob and the stat
        if stat.S_ISREG(st.st_mode):
            out.append((path, st))
    return out


class _File:
    def __init__(self, path, source, fd, st, offset=0, line_no=0):
        self.path, self.source, self.fd = path, source, fd
        self.dev, self.ino = st.st_dev, st.st_ino
        self.offset, self.line_no = offset, line_no
        self.head = os.pread(fd, min(FINGERPRINT_BYTES, offset), 0) if offset else b""
        self.skipping = False       # inside an overlong line, until its newline
        self.rotated_at = None      # when it stopped matching the pattern (monotonic)
        self.last_growth = time.monotonic()

    @property
    def identity(self):
        return (self.dev, self.ino)


def fingerprint(data):
    return hashlib.sha256(data).hexdigest()


class Follower:
    def __init__(self, base_dir, pattern, state=None, from_end=False, rotated_grace=5.0, max_line=None,
                 source=None):
        """``state``: what ``state()`` returned (or ``load_state(path)``); ``source``: a callable
        path -> source name (default: ``source_of(base_dir, path)``)."""
        self.base = Path(base_dir)
        if not self.base.is_dir():
            raise FileNotFoundError(f"--base-dir {self.base} is not a folder")
        self.pattern = pattern
        self.from_end = from_end
        self.rotated_grace = rotated_grace
        self.max_line = max_line
        self.source = source or (lambda path: source_of(self.base, path))
        self.saved = {(e["dev"], e["ino"]): e for e in (state or {}).get("files", [])}
        self.files = {}             # identity -> _File, in discovery order
        self.committed = {}         # identity -> Position
        self.first_poll = True

    # --- reading -----------------------------------------------------------------------
    def poll(self):
        """Every complete line available now, old (rotated) files first; returns a list of Line."""
        found = {(st.st_dev, st.st_ino): (path, st) for path, st in matching_files(self.base, self.pattern)}
        now = time.monotonic()
        for identity, f in self.files.items():
            if identity in found:
                f.path, f.rotated_at = found[identity][0], None
            elif f.rotated_at is None:
                f.rotated_at = now
        for identity, (path, st) in found.items():
            if identity not in self.files:
                self._open(path, st)
        self.first_poll = False
        out = []
        for f in sorted(self.files.values(), key=lambda f: (f.rotated_at is None, str(f.path))):
            out.extend(self._read(f))
        for f in [f for f in self.files.values() if f.rotated_at is not None]:
            quiet = time.monotonic() - max(f.last_growth, f.rotated_at)
            if quiet >= self.rotated_grace:
                out.extend(self._read(f, final=True))
                self._close(f)
        return out

    def _open(self, path, st):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in self.files:   # the name changed between the glob and the open
            os.close(fd)
            return
        offset = line_no = 0
        saved = self.saved.pop((st.st_dev, st.st_ino), None)
        if saved is not None and saved["offset"] <= st.st_size:
            length = saved.get("fingerprint_bytes", 0)
            if fingerprint(os.pread(fd, length, 0)) == saved.get("fingerprint"):
                offset, line_no = saved["offset"], saved.get("line_no", 0)
        elif saved is None and self.from_end and self.first_poll:
            offset = st.st_size
        f = _File(path, self.source(path), fd, st, offset, line_no)
        self.files[f.identity] = f
        if saved is not None or offset:
            self.committed[f.identity] = Position(f.dev, f.ino, offset, line_no)

    def _close(self, f):
        os.close(f.fd)
        del self.files[f.identity]
        self.committed.pop(f.identity, None)

    def close(self):
        for f in list(self.files.values()):
            os.close(f.fd)
        self.files.clear()

    def _truncated(self, f, size):
        if size < f.offset:
            return True
        return bool(f.head) and os.pread(f.fd, len(f.head), 0) != f.head

    def _read(self, f, final=False):
        size = os.fstat(f.fd).st_size
        if self._truncated(f, size):
            f.offset = f.line_no = 0
            f.head, f.skipping = b"", False
        if size <= f.offset:
            return []
        f.last_growth = time.monotonic()
        limit = self.max_line or READ_BYTES - 2
        data = os.pread(f.fd, min(max(READ_BYTES, limit + 2), size - f.offset), f.offset)
        out, start, base = [], 0, f.offset
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._emit(f, out, data[start:end + 1], base + end + 1)
            start = end + 1
        rest = data[start:]
        if len(rest) > limit:
            self._emit(f, out, rest, base + len(data), overlong=True)
        elif rest and final and base + len(data) >= size:
            self._emit(f, out, rest, base + len(data))
        return out

    def _emit(self, f, out, raw, end, overlong=False):
        """One line (or the first part of an overlong one) ending at file offset ``end``."""
        if len(f.head) < FINGERPRINT_BYTES and f.offset < FINGERPRINT_BYTES:
            f.head = os.pread(f.fd, min(FINGERPRINT_BYTES, end), 0)
        was_skipping = f.skipping
        f.offset = end
        f.skipping = overlong
        if was_skipping:           # the tail of an overlong line already sent
            return
        limit = self.max_line or READ_BYTES - 2
        if len(raw) > limit + 1:
            raw = raw[:limit + 1]
        f.line_no += 1
        out.append(Line(f.source, f.path, f.line_no, raw, Position(f.dev, f.ino, end, f.line_no)))

    # --- positions ------------------------------------------------------------------------
    def commit(self, position):
        """Everything up to ``position`` is delivered."""
        identity = (position.dev, position.ino)
        if identity in self.files:      # a rotated file already closed has nothing left to resume
            self.committed[identity] = position

    def state(self):
        """The committed positions, as saved by ``save()``."""
        files = []
        for identity, pos in self.committed.items():
            f = self.files.get(identity)
            if f is None:
                continue
            head = os.pread(f.fd, min(FINGERPRINT_BYTES, pos.offset), 0)
            files.append({"path": str(f.path), "source": f.source, "dev": pos.dev, "ino": pos.ino,
                          "offset": pos.offset, "line_no": pos.line_no, "fingerprint": fingerprint(head),
                          "fingerprint_bytes": len(head)})
        if self.first_poll:    # nothing looked at yet: keep what was saved
            files = list(self.saved.values())
        return {"version": 1, "base_dir": str(self.base), "pattern": self.pattern, "files": files}

    def save(self, path):
        save_state(path, self.state())


def load_state(path):
    """The saved state, or None when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def save_state(path, state):
    """Atomically: a reader (or a crash) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
