"""kibana/clogs.ndjson: importable-looking saved objects whose every field exists in the index mappings.

No services: the file is read as Kibana's saved-objects import would see it (one JSON object a
line), its references are resolved inside the file, and every field a data view, visualization,
saved search or dashboard names is looked up in the flattened mapping of the index it reads
(app/outputs/elastic.py MAPPING / INCIDENT_MAPPING, index names from app/settings.py).
"""
import copy
import json
import re
from pathlib import Path

import pytest

from app.outputs.mappings import INCIDENT_MAPPING, MAPPING
from app.settings import Settings, incidents_index

ROOT = Path(__file__).resolve().parent.parent
NDJSON = ROOT / "kibana" / "clogs.ndjson"

RECORDS = "___records___"  # Lens' pseudo-field for count()
NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
NUMERIC_OPS = {"average", "sum", "max", "min", "median", "percentile", "percentile_rank",
               "standard_deviation", "moving_average", "cumulative_sum", "counter_rate"}
NOT_AGGREGATABLE = {"text"}
FIELD_KEYS = {"sourceField", "sortField", "field", "fieldName", "timeField"}  # keys whose value is a field


def flatten(mapping, prefix=""):
    """{dotted field name: type} for a mapping's nested `properties` (object containers left out)."""
    out = {}
    for name, spec in mapping.get("properties", {}).items():
        path = prefix + name
        if "properties" in spec:
            out.update(flatten(spec, path + "."))
        elif spec.get("type", "object") != "object" and spec.get("enabled", True):
            out[path] = spec["type"]
    return out


SETTINGS = Settings.from_env({})
FIELDS_BY_INDEX = {SETTINGS.index: flatten(MAPPING), incidents_index(SETTINGS): flatten(INCIDENT_MAPPING)}


def parse(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def kql_fields(query):
    """Field names of a KQL/Lucene query string (`field : value`, `field:>3`, `a.b: "x:y"`)."""
    if not query:
        return []
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    return re.findall(r"(?<![\w.@*-])([@\w][\w.@*-]*)\s*:", unquoted)


def walk(node, found):
    """Every field a JSON tree names: FIELD_KEYS values, query strings, filter keys, column lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FIELD_KEYS and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, str):
                found.extend(kql_fields(value))
            elif key == "meta" and isinstance(value, dict) and isinstance(value.get("key"), str):
                found.append(value["key"])
            walk(value, found)
    elif isinstance(node, list):
        for item in node:
            walk(item, found)
    return found


def data_views(objects):
    """{data view id: flattened fields of the index it is titled after}."""
    views = {}
    for obj in objects:
        if obj["type"] == "index-pattern":
            views[obj["id"]] = FIELDS_BY_INDEX.get(obj["attributes"]["title"], {})
    return views


def check_fields(where, names, fields, problems):
    for name in names:
        if name != RECORDS and name not in fields:
            problems.append(f"{where}: field {name!r} is not in the mapping")


def lens_problems(obj, views):
    problems = []
    where = f"lens {obj['id']}"
    state = obj["attributes"]["state"]
    refs = {ref["name"]: ref["id"] for ref in obj["references"]}
    layers = state["datasourceStates"]["formBased"]["layers"]
    layer_fields = {}
    for layer_id, layer in layers.items():
        view = refs.get(f"indexpattern-datasource-layer-{layer_id}")
        if view not in views:
            problems.append(f"{where}: layer {layer_id} has no data view reference in the file")
            continue
        fields = layer_fields[layer_id] = views[view]
        columns = layer["columns"]
        check_fields(f"{where} layer {layer_id}", walk(layer, []), fields, problems)
        if sorted(layer["columnOrder"]) != sorted(columns):
            problems.append(f"{where}: columnOrder of {layer_id} does not list its columns")
        for col_id, col in columns.items():
            op, field = col["operationType"], col.get("sourceField")
            kind = fields.get(field)
            if op in NUMERIC_OPS and kind is not None and kind not in NUMERIC:
                problems.append(f"{where}: {op} of {field} ({kind}) needs a numeric field")
            if op == "date_histogram" and kind is not None and kind != "date":
                problems.append(f"{where}: date_histogram on {field} ({kind})")
            if kind in NOT_AGGREGATABLE:
                problems.append(f"{where}: {op} on {field} ({kind}) is not aggregatable")
            order = col.get("params", {}).get("orderBy", {})
            if order.get("type") == "column" and order.get("columnId") not in columns:
                problems.append(f"{where}: {col_id} is ordered by a missing column")
    # the state-wide query and filters apply to every layer
    for layer_id, fields in layer_fields.items():
        check_fields(f"{where} query", walk({"q": state["query"], "f": state["filters"]}, []), fields, problems)
    # the chart must draw columns that exist
    vis = state["visualization"]
    columns = {lid: set(layer["columns"]) for lid, layer in layers.items()}
    if obj["attributes"]["visualizationType"] == "lnsXY":
        for layer in vis["layers"]:
            used = [layer.get("xAccessor"), layer.get("splitAccessor"), *layer.get("accessors", [])]
            missing = [c for c in used if c and c not in columns.get(layer["layerId"], set())]
            if missing:
                problems.append(f"{where}: chart layer {layer['layerId']} draws missing columns {missing}")
    elif obj["attributes"]["visualizationType"] == "lnsDatatable":
        used = [c["columnId"] for c in vis["columns"]] + [vis.get("sorting", {}).get("columnId")]
        missing = [c for c in used if c and c not in columns.get(vis["layerId"], set())]
        if missing:
            problems.append(f"{where}: table shows missing columns {missing}")
    return problems


def search_problems(obj, views):
    where = f"search {obj['id']}"
    attrs = obj["attributes"]
    source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
    refs = {ref["name"]: ref["id"] for ref in obj["references"]}
    view = refs.get(source.get("indexRefName"))
    if view not in views:
        return [f"{where}: its data view is not in the file"]
    problems = []
    names = list(attrs.get("columns", [])) + [sort[0] for sort in attrs.get("sort", [])]
    check_fields(where, names + walk(source, []), views[view], problems)
    return problems


def dashboard_problems(obj, objects, views):
    where = f"dashboard {obj['id']}"
    attrs = obj["attributes"]
    refs = {ref["name"]: ref for ref in obj["references"]}
    problems = []
    used_views = set()
    by_id = {o["id"]: o for o in objects}
    for panel in json.loads(attrs["panelsJSON"]):
        name = f"{panel['panelIndex']}:{panel.get('panelRefName')}"
        if "panelRefName" not in panel or name not in refs:
            problems.append(f"{where}: panel {panel['panelIndex']} has no reference {name}")
            continue
        target = by_id.get(refs[name]["id"])
        if target is None or target["type"] != panel["type"]:
            problems.append(f"{where}: panel {panel['panelIndex']} points to nothing of type {panel['type']}")
            continue
        used_views.update(r["id"] for r in target["references"] if r["type"] == "index-pattern")
        check_fields(f"{where} panel {panel['panelIndex']}", walk(panel.get("embeddableConfig", {}), []),
                     set().union(*(views.get(v, {}) for v in used_views)), problems)
    source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
    for view in used_views:  # the dashboard's query and filters reach every panel
        check_fields(f"{where} query", walk(source, []), views.get(view, {}), problems)
    return problems


def field_problems(objects):
    """Every field named anywhere that is not in the mapping of the index it reads; [] if none."""
    views = data_views(objects)
    problems = []
    for obj in objects:
        if obj["type"] == "index-pattern":
            attrs = obj["attributes"]
            if attrs["title"] not in FIELDS_BY_INDEX:
                problems.append(f"data view {obj['id']}: {attrs['title']} is not an index of clogs")
                continue
            fields = FIELDS_BY_INDEX[attrs["title"]]
            if fields.get(attrs["timeFieldName"]) != "date":
                problems.append(f"data view {obj['id']}: time field {attrs['timeFieldName']} is not a date")
            named = list(json.loads(attrs.get("fieldFormatMap", "{}"))) + list(json.loads(attrs.get("fieldAttrs", "{}")))
            named += [f["value"] for f in json.loads(attrs.get("sourceFilters", "[]"))]
            check_fields(f"data view {obj['id']}", named, fields, problems)
        elif obj["type"] == "lens":
            problems += lens_problems(obj, views)
        elif obj["type"] == "search":
            problems += search_problems(obj, views)
        elif obj["type"] == "dashboard":
            problems += dashboard_problems(obj, objects, views)
        else:
            problems.append(f"{obj['type']} {obj['id']}: no field check for this type")
    return problems


@pytest.fixture(scope="module")
def text():
    return NDJSON.read_text()


@pytest.fixture(scope="module")
def objects(text):
    return parse(text)


def test_flatten_reads_nested_ecs_names():
    lines, incidents = flatten(MAPPING), flatten(INCIDENT_MAPPING)
    assert lines["host.name"] == "keyword" and lines["log.file.path"] == "keyword"
    assert lines["event.dataset"] == "keyword" and lines["@timestamp"] == "date"
    assert "host" not in lines and "log" not in lines
    assert "examples" not in incidents and incidents["log.level"] == "keyword"
    assert kql_fields('is_anomaly : true and host.name:"a:b" or log.level: ERROR') == [
        "is_anomaly", "host.name", "log.level"]


def test_every_line_is_a_saved_object_with_unique_ids(text, objects):
    lines = [line for line in text.splitlines() if line.strip()]
    assert text.endswith("\n") and len(lines) == len(objects)
    for obj in objects:
        assert {"type", "id", "attributes", "references"} <= set(obj), obj.get("id")
        assert obj["coreMigrationVersion"] == "8.8.0" and re.fullmatch(r"\d+\.\d+\.\d+", obj["typeMigrationVersion"])
        assert isinstance(obj["references"], list) and obj["attributes"].get("title")
    keys = [(obj["type"], obj["id"]) for obj in objects]
    assert len(set(obj["id"] for obj in objects)) == len(objects), keys
    types = {obj["id"]: obj["type"] for obj in objects}
    assert types["clogs-lines"] == types["clogs-incidents"] == "index-pattern"
    assert types["clogs-overview"] == "dashboard"
    assert sorted(types.values()).count("lens") >= 3 and "search" in types.values()


def test_every_reference_points_into_the_file(objects):
    present = {(obj["type"], obj["id"]) for obj in objects}
    for obj in objects:
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in present, f"{obj['id']} -> {ref}"


def test_data_views_are_the_two_indices(objects):
    views = {obj["id"]: obj["attributes"] for obj in objects if obj["type"] == "index-pattern"}
    assert views["clogs-lines"]["title"] == SETTINGS.index == "mozilla-clogs-index"
    assert views["clogs-incidents"]["title"] == incidents_index(SETTINGS) == "mozilla-clogs-index-incidents"
    assert flatten(MAPPING)[views["clogs-lines"]["timeFieldName"]] == "date"
    assert flatten(INCIDENT_MAPPING)[views["clogs-incidents"]["timeFieldName"]] == "date"


def test_the_dashboard_shows_every_visualization_and_the_search(objects):
    dashboard = next(obj for obj in objects if obj["id"] == "clogs-overview")
    shown = {ref["id"] for ref in dashboard["references"]}
    assert shown == {obj["id"] for obj in objects if obj["type"] in ("lens", "search")}
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    assert len({p["panelIndex"] for p in panels}) == len(panels) == len(shown)
    for panel in panels:
        assert panel["gridData"]["i"] == panel["panelIndex"]
        assert panel["gridData"]["x"] + panel["gridData"]["w"] <= 48


def test_the_visualizations_read_what_was_asked(objects):
    by_id = {obj["id"]: obj for obj in objects}
    found = {}
    for obj_id in ("clogs-anomaly-rate", "clogs-score-vs-threshold", "clogs-top-incidents"):
        state = by_id[obj_id]["attributes"]["state"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        found[obj_id] = {(c["operationType"], c.get("sourceField")) for layer in layers.values()
                         for c in layer["columns"].values()}
    assert {("date_histogram", "@timestamp"), ("terms", "source")} <= found["clogs-anomaly-rate"]
    assert "is_anomaly" in walk(by_id["clogs-anomaly-rate"]["attributes"]["state"], [])
    assert {("date_histogram", "@timestamp"), ("average", "anomaly_score"), ("max", "anomaly_score"),
            ("average", "threshold_used")} <= found["clogs-score-vs-threshold"]
    assert {("terms", "source"), ("terms", "kind"), ("terms", "status"), ("terms", "pattern"),
            ("max", "count"), ("last_value", "last_seen")} <= found["clogs-top-incidents"]
    assert by_id["clogs-top-incidents"]["references"][0]["id"] == "clogs-incidents"
    search = by_id["clogs-anomalous-lines"]["attributes"]
    assert search["columns"] == ["source", "message", "anomaly_score", "threshold_used", "incident_id"]
    assert "is_anomaly" in kql_fields(json.loads(search["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"])


def test_every_field_named_exists_in_the_mapping_of_its_data_view(objects):
    assert field_problems(objects) == []


def _rename(text, old, new):
    assert old in text, old
    return text.replace(old, new)


@pytest.mark.parametrize("break_it, expected", [
    (lambda t: _rename(t, '"sourceField":"threshold_used"', '"sourceField":"threshold_usd"'), "threshold_usd"),
    (lambda t: _rename(t, "is_anomaly : true", "is_anomalous : true"), "is_anomalous"),
    (lambda t: _rename(t, '"anomaly_score","threshold_used"', '"anomaly_score","treshold_used"'), "treshold_used"),
    (lambda t: _rename(t, '"sourceField":"pattern"', '"sourceField":"message"'), "message"),  # lines-only field
    (lambda t: _rename(t, '"sourceField":"pattern"', '"sourceField":"summary"'), "summary"),  # text: no terms
    (lambda t: _rename(t, '"sortField":"@timestamp"', '"sortField":"@timestmap"'), "@timestmap"),
    (lambda t: _rename(t, '"timeFieldName":"@timestamp"', '"timeFieldName":"timestamp"'), "timestamp"),
])
def test_a_broken_copy_fails_the_field_check(text, break_it, expected):
    problems = field_problems(parse(break_it(text)))
    assert problems and any(expected in p for p in problems), problems


def test_a_broken_layer_reference_fails_the_field_check(objects):
    broken = copy.deepcopy(objects)
    lens = next(obj for obj in broken if obj["id"] == "clogs-score-vs-threshold")
    lens["references"][0]["id"] = "clogs-incidents"  # anomaly_score is not an incident field
    assert any("anomaly_score" in p for p in field_problems(broken))


def test_compose_imports_the_file_once_kibana_is_healthy():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    setup = compose["services"]["kibana-setup"]
    assert setup["depends_on"]["kibana"]["condition"] == "service_healthy"
    assert setup["restart"] == "no"
    image, _, tag = setup["image"].rpartition(":")
    assert image == "curlimages/curl" and tag and tag != "latest"
    mounts = [v.split(":") for v in setup["volumes"]]
    assert ["./kibana", "/kibana", "ro"] in mounts
    command = " ".join(setup["command"]) if isinstance(setup["command"], list) else setup["command"]
    assert "http://kibana:5601/api/saved_objects/_import?overwrite=true" in command
    assert "kbn-xsrf: true" in command and "file=@/kibana/clogs.ndjson" in command
    assert (ROOT / "kibana" / NDJSON.name).is_file()
