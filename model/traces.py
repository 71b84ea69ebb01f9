"""Stack traces in an event: what failed, and where.

``read_trace(lines)`` recognises a Java (and Kotlin/Scala), Python, Go, .NET or Node.js trace in
an event's lines and returns its exception types (outermost first, causes after), its message, its
frames (most recent call first) and the trace's text -- the ECS ``error.type``, ``error.message``
and ``error.stack_trace`` of the event's document.  ``Trace.key`` is the event's pattern key: the
exception types and the application's top frames (runtime and library frames skipped), never the
varying text of the message, so fifty NullPointerExceptions thrown at one call site share a key
and one thrown elsewhere gets a new one.
"""
import hashlib
import re
from dataclasses import dataclass, field

TOP_FRAMES = 1          # application frames in a trace's key: the call site

JAVA_FRAME = re.compile(r"^\s+at ([\w$.<>/@-]+)\(([^)]*)\)(?: ~?\[[^\]]*\])?\s*$")   # log4j2 adds " ~[app.jar:1.0]"
DOTNET_FRAME = re.compile(r"^\s+at ([\w$.<>`,\[\]+]+)\((.*?)\)(?: in (.+?):line (\d+))?\s*$")
NODE_FRAME = re.compile(r"^\s+at (?:(?:async )?([^()]+?) \()?((?:node:|file://|/|\.|[A-Za-z]:\\|internal/|<anonymous>)"
                        r"[^():]*(?::[^():]+)*?)(?::(\d+):(\d+))?\)?$")
PY_FRAME = re.compile(r'^\s+File "([^"]+)", line (\d+), in (.+?)\s*$')
GO_FUNC = re.compile(r"^(?:panic\()?([\w./*()\[\]{}-]+?)\(.*\)$")
GO_FILE = re.compile(r"^\s+(\S+\.go):(\d+)")
EXCEPTION = re.compile(r"^(?:Exception in thread \"[^\"]*\" |Caused by: |Suppressed: |Unhandled [Ee]xception[.:] ?"
                       r"|\s*---> |\s*\| )?((?:[A-Za-z_$][\w$]*\.)*[\w$]*(?:Exception|Error|Throwable|Fault|Exit"
                       r"|Interrupt|Warning|Iteration|Violation|Detected|Timeout)|(?:[a-z_][\w$]*\.)+[A-Z][\w$]*)"
                       r"(?: \[\w+\])?(?::\s*(.*))?$")
PY_TRACEBACK = "Traceback (most recent call last):"
PY_FINAL = re.compile(r"^([A-Za-z_][\w.]*)(?::\s*(.*))?$")   # a traceback's last line: Type: message
GO_PANIC = re.compile(r"^(panic|fatal error): (.*?)(?: \[recovered\])?$")
LIBRARY = re.compile(
    r"^(?:java\.|javax\.|jdk\.|sun\.|com\.sun\.|kotlin\.|kotlinx\.|scala\.|org\.junit\.|org\.springframework\."
    r"|org\.apache\.(?:catalina|tomcat|coyote)\.|io\.netty\.|reactor\.|org\.eclipse\.jetty\.|java\.base/"
    r"|System\.|Microsoft\.|runtime\.|runtime/|internal/|node:|testing\.|net/http\.|reflect\.|syscall\.)")
PY_LIBRARY = re.compile(r"(?:/lib/python\d[\d.]*/|site-packages/|dist-packages/|<frozen |^<)")


@dataclass
class Trace:
    language: str
    types: list                      # exception types, the first thrown/outermost first
    message: str
    frames: list = field(default_factory=list)   # (function, location), most recent call first
    text: str = ""                   # the trace, from its first line

    @property
    def type(self):
        return self.types[0] if self.types else self.language

    def app_frames(self, n=TOP_FRAMES):
        """The top ``n`` frames of the application (library and runtime frames skipped; all
        frames when none is the application's)."""
        own = [f for f in self.frames if not library_frame(self.language, f)]
        return (own or self.frames)[:n]

    @property
    def key(self):
        """The pattern key: exception types and the application's top frames (12 hex digits)."""
        site = ";".join(f"{func}@{where}" for func, where in self.app_frames())
        return hashlib.blake2b(f"trace|{'>'.join(self.types)}|{site}".encode("utf-8", "replace"),
                               digest_size=6).hexdigest()

    def where(self):
        """The call site people read: ``function (location)`` of the top application frame."""
        frames = self.app_frames(1)
        return f"{frames[0][0]} ({frames[0][1]})" if frames else ""


def library_frame(language, frame):
    func, where = frame
    if language == "python":
        return bool(PY_LIBRARY.search(where))
    if language == "node":
        return where.startswith(("node:", "internal/")) or "node_modules" in where
    return bool(LIBRARY.match(func))


MAX_FRAME_CHARS = 2000   # a longer line is no frame (and is not run through the frame patterns)


def read_trace(lines):
    """The Trace in an event's lines, or None when there is none (fewer than one frame or header)."""
    if len(lines) < 2:
        return None
    lines = [line if len(line) <= MAX_FRAME_CHARS else line[:MAX_FRAME_CHARS] for line in lines]
    for reader in (_python, _go, _java_like):
        trace = reader(lines)
        if trace is not None:
            return trace
    return None


def _python(lines):
    start = next((i for i, line in enumerate(lines) if line.startswith(PY_TRACEBACK)), None)
    if start is None:
        return None
    frames, types, message = [], [], ""
    previous_indented = False
    for line in lines[start:]:
        frame = PY_FRAME.match(line)
        if frame:
            frames.append((frame.group(3), f"{frame.group(1)}:{frame.group(2)}"))
        indented = line[:1] in (" ", "\t")
        final = PY_FINAL.match(line) if previous_indented and not indented else None
        if final:
            types.append(final.group(1))
            message = final.group(2) or ""
        previous_indented = indented
    if not frames:
        return None
    # Python prints the most recent call last; the exception raised last is the one that escaped.
    return Trace("python", types[::-1] or ["Traceback"], message, frames[::-1], "\n".join(lines[start:]))


def _go(lines):
    start = next((i for i, line in enumerate(lines) if GO_PANIC.match(line)), None)
    if start is None:
        return None
    panic = GO_PANIC.match(lines[start])
    frames = []
    body = lines[start + 1:]
    for line, following in zip(body, body[1:] + [""]):
        func = GO_FUNC.match(line)
        place = GO_FILE.match(following)
        if func and place:
            frames.append((func.group(1), f"{place.group(1)}:{place.group(2)}"))
    if not frames:
        return None
    return Trace("go", [panic.group(1)], panic.group(2), frames, "\n".join(lines[start:]))


def _java_like(lines):
    frames, types, message, start, language = [], [], None, None, None
    for i, line in enumerate(lines):
        java, dotnet, node = JAVA_FRAME.match(line), DOTNET_FRAME.match(line), NODE_FRAME.match(line)
        if java and (":" in java.group(2) or java.group(2) in ("Native Method", "Unknown Source")) \
                and not java.group(2).startswith(("/", "node:", "file:")):
            frames.append((java.group(1), java.group(2)))
            language = language or "java"
        elif dotnet:
            frames.append((dotnet.group(1), f"{dotnet.group(3)}:{dotnet.group(4)}" if dotnet.group(3) else ""))
            language = language or "dotnet"
        elif node:
            frames.append((node.group(1) or "<anonymous>", f"{node.group(2)}:{node.group(3) or ''}"))
            language = language or "node"
        else:
            header = EXCEPTION.match(line.strip()) if not line.startswith("\t") else None
            if header and not frames or header and line.lstrip().startswith(("Caused by:", "--->")):
                if start is None:
                    start = i
                if header.group(1) not in types:
                    types.append(header.group(1))
                if message is None:
                    message = header.group(2) or ""
    if not frames or start is None:
        return None
    return Trace(language, types, message or "", frames, "\n".join(lines[start:]))
