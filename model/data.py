"""Reading log lines for training and evaluation: files or folders, optional Loghub labels.

Lines are read as bytes and decoded as UTF-8 with replacement, so no input can crash a
reader.  With ``labels="loghub"`` the first field of every line is its label (``-`` is
normal) and is stripped before anything else sees the line.
"""
from pathlib import Path


def expand_inputs(paths):
    """Files as given, folders recursively (sorted); a missing path is an error naming it."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input not found: {path}")
    return files


def split_label(line):
    """Loghub line -> (label, content); label '-' means normal."""
    label, _, content = line.partition(" ")
    return label, content


def read_lines(path, labels="none"):
    """Yield (line_no, content, label-or-None) for every line of a file (1-based)."""
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if labels == "loghub":
                label, line = split_label(line)
                yield line_no, line, label
            else:
                yield line_no, line, None


def load_lines(paths, labels="none", normal_only=False):
    """All lines of all inputs as a list of (content, label); normal_only keeps label '-'."""
    out = []
    for path in expand_inputs(paths):
        for _, line, label in read_lines(path, labels):
            if normal_only and labels == "loghub" and label != "-":
                continue
            out.append((line, label))
    return out
