"""What one assembled log event (model/multiline.py) becomes before scoring: the text the model
scores, the message people read, the extra fields of its document and, for a stack trace, its
pattern key (model/traces.py).  The worker's scoring agent, ``clogs score`` and ``clogs evaluate``
all go through ``prepare_event``.

A one-line event is read as ``model.structured`` reads a line (JSON, logfmt, plain text); a stack
trace inside a structured line's error field is read as a trace.  For a trace the model scores the
line that announced it and the exception lines (``Type: message``, ``Caused by: ...``), not the
frames: frames are where, not what, and they count through the pattern key instead.  Any other
multi-line event is scored on its lines joined (the model reads its first ``max_len`` tokens).
"""
from .structured import describe, read_line
from .traces import read_trace

MAX_HEADERS = 3


def prepare_event(lines, original=None, stream=None):
    """(scored text, message, extras) of an event's lines (partial lines joined, wrappers removed);
    ``original``: the event as written, when a wrapper was removed.  ``extras`` may hold a
    ``pattern`` (a trace's key), ``error``, ``error_type``, ``stack_trace``, ``call_site`` and
    ``event_lines``.  A line that holds newlines (an event a shipper joined already) is its lines."""
    if any("\n" in line for line in lines):
        lines = [part for line in lines for part in line.split("\n") if part.strip()] or [""]
    if len(lines) == 1 or (lines[0].lstrip().startswith("{") and read_line("\n".join(lines)) is not None):
        text, message, extras = describe("\n".join(lines), original, stream)
        error = extras.get("error")
        trace = read_trace(str(error).splitlines()) if error and "\n" in str(error).strip() else None
        if trace is not None:   # the model reads the exception lines, not the frames
            extras.update(stack_trace=str(error), error=trace.message or trace.type)
            text = text.replace(str(error).splitlines()[0][:200], "").rstrip() + " " + trace_summary(trace)
    else:
        message = "\n".join(lines)
        extras = {}
        if original is not None and original != message:
            extras["original"] = original
        if stream:
            extras["fields"] = {"stream": stream}
        trace = read_trace(lines)
        if trace is None:
            text = " ".join(line.strip() for line in lines)
        else:
            own_line = trace.type in lines[0]   # the event starts with the exception's own line
            text = f"{lines[0]} {trace_summary(trace, skip_first=own_line)}".strip()
            extras["error"] = trace.message if trace.message else trace.type
    if len(lines) > 1:
        extras["event_lines"] = len(lines)
    if trace is not None:
        extras.setdefault("stack_trace", trace.text)
        extras.update(pattern=trace.key, error_type=trace.type, call_site=trace.where())
        extras.setdefault("error", trace.message or trace.type)
    return text, message, extras


def prepare_assembled(event, originals, stream=None):
    """``prepare_event`` of an assembled event (model/multiline.py ``Event``), with its document's
    ``truncated`` / ``continued`` marks; ``originals``: its physical lines as written, in order."""
    text, message, extras = prepare_event(event.lines, "\n".join(originals), stream)
    if event.truncated:
        extras["truncated"] = True
    if event.continued:
        extras["continued"] = True
    return text, message, extras


def trace_summary(trace, skip_first=False):
    """The exception lines of a trace as the model reads them: ``Type: message``, then the other
    types (causes), outermost first; ``skip_first``: the first is already in the text."""
    heads = ([] if skip_first else [trace.type + (f": {trace.message}" if trace.message else "")])
    return " ".join(heads + trace.types[1:MAX_HEADERS])


def read_events(items, assembler=None, source="-"):
    """The events of a file's or a stream's lines, as the worker assembles them: ``items`` are
    (line number, raw line, label or None); yields dicts with the event's first ``line_no``, its
    ``lines`` count, the ``line`` people read, the ``text`` the model scores, the document's
    ``extras`` and a ``label`` (the first that is not normal, "-", among its lines' labels)."""
    from .multiline import Assembler
    from .structured import unwrap

    def wrapped(lines):
        for line_no, raw, label in lines:
            inner, partial, stream = unwrap(raw)
            yield (line_no, raw, label, stream), inner, partial

    def finished(event):
        text, message, extras = prepare_assembled(event, [meta[1] for meta in event.metas], event.first[3])
        labels = [meta[2] for meta in event.metas]
        label = next((lab for lab in labels if lab not in (None, "-")), labels[0])
        return {"line_no": event.first[0], "lines": len(event.metas), "line": message, "text": text,
                "extras": extras, "label": label}

    assembler = assembler or Assembler()
    for meta, inner, partial in wrapped(items):
        if not inner.strip():
            continue
        for event in assembler.feed(source, inner, meta, partial=partial):
            yield finished(event)
    for event in assembler.flush():
        yield finished(event)
