"""The layout of docs/architecture.md, checked on the source: no import cycle between the project's
modules (imports inside functions included), a pure model/, each room importing only the rooms it
may, and settings read from the environment in one place."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "agents", "tables", "model")
STREAMING = ("faust", "mode", "aiokafka", "elasticsearch", "aiohttp")


def modules():
    """{module name: path} of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(found):
    """{module: (project modules it imports, top-level names of what else it imports)}, from every
    import statement in the module, those inside functions included."""
    graph = {}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        inner, outer = set(), set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in found else base for alias in node.names]
            for target in targets:
                parts = target.split(".")
                owner = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in found),
                             None)
                if owner and owner != name:
                    inner.add(owner)
                elif owner is None:
                    outer.add(parts[0])
        graph[name] = (inner, outer)
    return graph


GRAPH = imports(modules())


def test_no_module_imports_in_a_circle():
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(GRAPH[node][0]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(GRAPH):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_model_is_pure():
    for name, (inner, outer) in GRAPH.items():
        if name.split(".")[0] == "model":
            assert all(m.split(".")[0] == "model" for m in inner), (name, inner)
            assert not outer & set(STREAMING), (name, outer & set(STREAMING))


def test_rooms_import_only_what_docs_architecture_allows():
    allowed = {   # room -> the rooms it may import (docs/architecture.md)
        "model": {"model"},
        "app.settings": set(),
        "app.jsonio": set(),
        "app.inputs": {"app.inputs", "app.kafka", "app.outputs", "app.settings", "app.jsonio", "model"},
        "app.kafka": {"app.kafka", "app.settings"},
        "app.outputs": {"app.outputs", "app.kafka", "app.settings", "app.jsonio", "model"},
        "tables": {"tables", "app.faust_app", "app.jsonio", "model"},
        "agents": {"agents", "tables", "app.faust_app", "app.inputs", "app.outputs", "app.settings", "model"},
    }

    def room(module):
        return next((r for r in sorted(allowed, key=len, reverse=True) if module == r or module.startswith(r + ".")),
                    None)

    for name, (inner, _) in GRAPH.items():
        mine = room(name)
        if mine is None:
            continue
        wrong = {m for m in inner if room(m) not in allowed[mine] and m not in allowed[mine]}
        assert not wrong, f"{name} ({mine}) imports {sorted(wrong)}"


def test_only_the_settings_read_the_environment():
    readers = [name for name, path in modules().items()
               if "os.environ.get(" in path.read_text() or "getenv(" in path.read_text()]
    assert readers == [], readers
    importers = [name for name, (inner, _) in GRAPH.items() if "app.settings" in inner]
    assert len(importers) <= 12, importers


def test_the_cli_and_the_input_stage_start_without_torch_or_faust():
    """`clogs ingest`, `topic` and `--help` start in a fraction of a second: importing them loads
    neither torch nor Faust (the worker and the model commands import those when they run)."""
    code = ("import sys, app.cli, app.inputs.ingest, app.kafka.admin, app.outputs.queries, model.eventtime, "
            "model.state; print(sorted(m for m in ('torch', 'faust') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
