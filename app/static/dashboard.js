/* clogs live dashboard: polls the worker's JSON API and draws small canvas charts.
 *
 * Query parameters: ?refresh=N (seconds between polls, default 5), ?minutes=M and
 * ?buckets=B (the window of the per-source charts, default 30 and 60), ?status=open|all.
 *
 * Every string from the API reaches the DOM through textContent or setAttribute,
 * never through innerHTML: log lines contain <, > and &.
 * For tests: each canvas gets data-drawn="N" (points drawn) after drawing, and
 * document.body.dataset.loaded = "1" after the first complete refresh.
 */
(function () {
  "use strict";

  const params = new URLSearchParams(location.search);
  const REFRESH_S = positive(params.get("refresh"), 5);
  const MINUTES = positive(params.get("minutes"), 30);
  const BUCKETS = Math.round(positive(params.get("buckets"), 60));
  const QUICK_POLL_MS = 1000;          // after a feedback click: re-poll every second ...
  const QUICK_POLL_FOR_MS = 10000;     // ... for at most ten seconds
  const PIN_MS = 5 * 60 * 1000;        // a changed incident stays visible this long, whatever the filter
  const ACTIONS = [
    {action: "normal", label: "Normal", status: "normal"},
    {action: "suppress", label: "Suppress 2h", status: "suppressed", extra: {for: "2h"}},
    {action: "ack", label: "Acknowledge", status: "acknowledged"},
    {action: "reopen", label: "Reopen", status: "open"},
  ];
  const COLORS = {score: "#d9480f", threshold: "#1c7ed6", lines: "#91a7c4", anomaly: "#e03131",
                  grid: "#edf0f3", axis: "#adb5bd", text: "#5c6670"};
  const PAD = {left: 44, right: 10, top: 8, bottom: 18};

  const state = {
    filter: params.get("status") === "all" ? "all" : "open",
    source: params.get("source") || "",
    minSeverity: Math.max(0, Math.min(100, parseInt(params.get("min_severity") || "0", 10) || 0)),
    cards: new Map(),        // source -> card elements
    incidents: new Map(),    // incident_id -> latest incident seen
    pinned: new Map(),       // incident_id -> time until which it stays listed
    notes: new Map(),        // incident_id -> feedback note shown in its row
    expanded: new Set(),     // incident ids whose examples are open
    refreshing: null,
    timer: null,
  };

  const $ = (selector) => document.querySelector(selector);

  function positive(value, fallback) {
    const n = Number(value);
    return value !== null && Number.isFinite(n) && n > 0 ? n : fallback;
  }

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /* Build an element; children that are strings become text nodes (never parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
    return node;
  }

  function fmtNum(v) {
    if (!isNum(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1000) return Math.round(v).toLocaleString();
    if (a >= 100) return String(Math.round(v));
    if (a >= 10) return String(parseFloat(v.toFixed(1)));
    return String(parseFloat(v.toFixed(a >= 1 ? 2 : 3)));     // 0.600 -> "0.6", 60.0 -> "60"
  }
  const fmtCount = (v) => (isNum(v) ? Math.round(v).toLocaleString() : "–");

  function parseTime(iso) {
    const d = iso ? new Date(iso) : null;
    return d && !isNaN(d.getTime()) ? d : null;
  }
  function fmtClock(iso, seconds) {
    const d = parseTime(iso);
    if (!d) return iso ? String(iso) : "–";
    return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined, hour12: false});
  }
  function fmtDateTime(iso) {
    const d = parseTime(iso);
    if (!d) return iso ? String(iso) : "–";
    const sameDay = d.toDateString() === new Date().toDateString();
    return (sameDay ? "" : d.toLocaleDateString([], {month: "short", day: "numeric"}) + " ") + fmtClock(iso, true);
  }

  /* ---------------------------------------------------------------- API */

  async function getJSON(url) {
    const resp = await fetch(url, {cache: "no-store"});
    const body = await resp.json().catch(() => null);
    if (!resp.ok) throw new Error(`${url}: ${(body && body.error) || resp.status + " " + resp.statusText}`);
    if (body === null) throw new Error(`${url}: not JSON`);
    return body;
  }

  async function postJSON(url, payload) {
    const resp = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload)});
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok || body.error) throw new Error(body.error || `${resp.status} ${resp.statusText}`);
    return body;
  }

  /* ---------------------------------------------------------------- refresh */

  function refresh() {
    if (state.refreshing) return state.refreshing;
    state.refreshing = (async () => {
      const errors = [];
      const fail = (e) => { errors.push(e.message || String(e)); return null; };
      const [health, sources] = await Promise.all([
        getJSON("/health").catch(fail),
        getJSON("/api/sources").catch(fail),
        refreshIncidents().catch(fail),
      ]);
      renderHealth(health);
      if (sources) await renderSources(sources.sources || {}, fail);
      showErrors(errors);
      $("#refreshed").textContent = new Date().toLocaleTimeString([], {hour12: false});
      document.body.dataset.loaded = "1";
    })().finally(() => { state.refreshing = null; });
    return state.refreshing;
  }

  async function loop() {
    clearTimeout(state.timer);
    try { await refresh(); } finally { state.timer = setTimeout(loop, REFRESH_S * 1000); }
  }

  function showErrors(errors) {
    const box = $("#errors");
    box.hidden = errors.length === 0;
    box.replaceChildren(...errors.map((e) => el("div", {}, e)));
    document.body.dataset.errors = String(errors.length);
  }

  function renderHealth(health) {
    const pill = $("#health-status");
    pill.textContent = health ? String(health.status) : "unreachable";
    pill.dataset.status = health ? String(health.status) : "error";
    $("#model-version").textContent = health && health.model_version ? String(health.model_version) : "–";
    $("#learning").textContent = health ? (health.learning ? "on" : "off") : "–";
    $("#app-id").textContent = health && health.app_id ? String(health.app_id) : "–";
  }

  /* ---------------------------------------------------------------- sources */

  function updateSourceFilter(names) {
    const select = $("#source-filter");
    const wanted = ["", ...new Set([...names, state.source].filter(Boolean))].sort();
    const have = [...select.options].map((o) => o.value);
    if (wanted.join("\n") === have.join("\n")) return;
    select.replaceChildren(...wanted.map((name) => el("option", {value: name}, name || "all sources")));
    select.value = state.source;
  }

  async function renderSources(sources, fail) {
    const names = Object.keys(sources).sort();
    const box = $("#sources");
    for (const [name, card] of state.cards) if (!(name in sources)) { card.root.remove(); state.cards.delete(name); }
    box.querySelectorAll(".empty").forEach((n) => n.remove());
    if (!names.length) box.append(el("p", {class: "empty"}, "No sources yet."));
    names.forEach((name) => box.append(cardFor(name).root));   // append moves: keeps cards sorted by name
    updateSourceFilter(names);
    await Promise.all(names.map(async (name) => {
      const card = cardFor(name), s = sources[name] || {};
      card.count.textContent = fmtCount(s.count);
      card.anomalies.textContent = fmtCount(s.anomalies);
      card.threshold.textContent = fmtNum(s.threshold);
      card.patterns.textContent = fmtCount(s.patterns);
      card.mode.textContent = s.mode ? String(s.mode) : "–";
      const url = `/api/series?source=${encodeURIComponent(name)}&minutes=${MINUTES}&buckets=${BUCKETS}`;
      const series = await getJSON(url).catch(fail);
      const points = series && Array.isArray(series.points) ? series.points : [];
      card.interval.textContent = series && isNum(series.interval_seconds) ? `${fmtNum(series.interval_seconds)} s buckets` : "";
      drawLineChart(card.score, points);
      drawBarChart(card.rate, points);
    }));
  }

  function cardFor(name) {
    let card = state.cards.get(name);
    if (card) return card;
    const stat = (label, cls) => el("div", {}, el("dt", {}, label), el("dd", {class: cls}, "–"));
    const root = el("article", {class: "card", "data-source": name},
      el("header", {}, el("h3", {title: name}, name), el("span", {class: "mode", title: "threshold mode"}, "–")),
      el("dl", {class: "stats"}, stat("lines", "count"), stat("anomalies", "anomalies"), stat("threshold", "threshold"), stat("patterns", "patterns")),
      el("div", {class: "chart-title"}, "Score",
        el("span", {class: "legend"}, el("i", {class: "key score"}), "max score ", el("i", {class: "key threshold"}), "threshold")),
      el("canvas", {class: "chart line", "data-chart": "score"}),
      el("div", {class: "chart-title"}, "Lines per bucket",
        el("span", {class: "legend"}, el("i", {class: "key lines"}), "lines ", el("i", {class: "key anomaly"}), "with anomalies ",
          el("span", {class: "interval"}))),
      el("canvas", {class: "chart bars", "data-chart": "rate"}),
      el("div", {class: "readout"}, "\u00a0"));
    card = {root, mode: root.querySelector(".mode"), count: root.querySelector(".count"), anomalies: root.querySelector(".anomalies"),
            threshold: root.querySelector(".threshold"), patterns: root.querySelector(".patterns"),
            interval: root.querySelector(".interval"), readout: root.querySelector(".readout"),
            score: root.querySelector("canvas.line"), rate: root.querySelector("canvas.bars")};
    for (const canvas of [card.score, card.rate]) {
      canvas.addEventListener("mousemove", (ev) => showReadout(card, canvas, ev));
      canvas.addEventListener("mouseleave", () => { card.readout.textContent = "\u00a0"; });
    }
    state.cards.set(name, card);
    return card;
  }

  function showReadout(card, canvas, ev) {
    const points = canvas._points || [];
    if (!points.length) return;
    const plotW = canvas.clientWidth - PAD.left - PAD.right;
    const x = ev.offsetX - PAD.left;
    const i = Math.max(0, Math.min(points.length - 1, Math.floor(x / (plotW / points.length))));
    const p = points[i];
    card.readout.textContent = `${fmtClock(p.t, true)} · ${fmtCount(p.lines)} lines · ${fmtCount(p.anomalies)} anomalies · ` +
      `max score ${fmtNum(p.max_score)} · avg ${fmtNum(p.avg_score)} · threshold ${fmtNum(p.threshold)}`;
  }

  /* ---------------------------------------------------------------- charts */

  function setupCanvas(canvas, points, draw) {
    canvas._points = points;
    canvas._draw = draw;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 300, h = canvas.clientHeight || 120;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
    return {ctx, w, h, plotW: w - PAD.left - PAD.right, plotH: h - PAD.top - PAD.bottom};
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /* Grid, y labels at 0, half and top, and time labels under the first, middle and last slot. */
  function drawFrame(g, points, yMin, yMax, slotX) {
    const {ctx, w, plotW, plotH} = g;
    const y = (v) => PAD.top + plotH - ((v - yMin) / (yMax - yMin)) * plotH;
    ctx.lineWidth = 1;
    ctx.fillStyle = COLORS.text;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of [yMin, (yMin + yMax) / 2, yMax]) {
      ctx.strokeStyle = v === yMin ? COLORS.axis : COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(PAD.left, Math.round(y(v)) + 0.5);
      ctx.lineTo(w - PAD.right, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(fmtNum(v), PAD.left - 5, y(v));
    }
    ctx.textBaseline = "top";
    const n = points.length;
    const labels = n > 2 ? [0, Math.floor((n - 1) / 2), n - 1] : [...Array(n).keys()];
    labels.forEach((i, k) => {
      ctx.textAlign = k === 0 ? "left" : k === labels.length - 1 ? "right" : "center";
      const x = k === 0 ? PAD.left : k === labels.length - 1 ? PAD.left + plotW : slotX(i);
      ctx.fillText(fmtClock(points[i].t), x, PAD.top + plotH + 4);
    });
    return y;
  }

  function drawEmpty(canvas, g, text) {
    g.ctx.fillStyle = COLORS.text;
    g.ctx.textAlign = "center";
    g.ctx.textBaseline = "middle";
    g.ctx.fillText(text, g.w / 2, g.h / 2);
    canvas.dataset.drawn = "0";
  }

  /* Two series over time: max anomaly score per bucket (solid) and average threshold used (dashed). */
  function drawLineChart(canvas, points) {
    const g = setupCanvas(canvas, points, drawLineChart);
    const values = points.flatMap((p) => [p.max_score, p.threshold]).filter(isNum);
    if (!values.length) return drawEmpty(canvas, g, "no scores in this window");
    const lo = Math.min(0, ...values), hi = niceMax(Math.max(...values) * 1.05);
    const step = g.plotW / Math.max(1, points.length - 1);
    const slotX = (i) => PAD.left + (points.length > 1 ? i * step : g.plotW / 2);
    const y = drawFrame(g, points, lo, hi > lo ? hi : lo + 1, slotX);
    const {ctx} = g;
    let drawn = 0;
    for (const [key, color, dash] of [["threshold", COLORS.threshold, [5, 3]], ["max_score", COLORS.score, []]]) {
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = 1.8;
      ctx.setLineDash(dash);
      ctx.beginPath();
      let open = false;
      points.forEach((p, i) => {
        const v = p[key];
        if (!isNum(v)) { open = false; return; }
        drawn += 1;
        if (open) ctx.lineTo(slotX(i), y(v)); else ctx.moveTo(slotX(i), y(v));
        const lonely = !open && !isNum((points[i + 1] || {})[key]);
        if (lonely) ctx.fillRect(slotX(i) - 1.5, y(v) - 1.5, 3, 3);   // a point with no neighbour: draw a dot
        open = true;
      });
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.fillStyle = COLORS.anomaly;                                  // buckets with anomalies: red dots on the score line
    points.forEach((p, i) => {
      if (p.anomalies > 0 && isNum(p.max_score)) {
        ctx.beginPath();
        ctx.arc(slotX(i), y(p.max_score), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    });
    canvas.dataset.drawn = String(drawn);
  }

  /* Lines per bucket; buckets with anomalies in red. */
  function drawBarChart(canvas, points) {
    const g = setupCanvas(canvas, points, drawBarChart);
    if (!points.length) return drawEmpty(canvas, g, "no data in this window");
    const hi = niceMax(Math.max(1, ...points.map((p) => (isNum(p.lines) ? p.lines : 0))));
    const slot = g.plotW / points.length;
    const slotX = (i) => PAD.left + (i + 0.5) * slot;
    const y = drawFrame(g, points, 0, hi, slotX);
    const {ctx} = g;
    const barW = Math.max(1, slot * 0.8);
    points.forEach((p, i) => {
      const v = isNum(p.lines) ? p.lines : 0;
      if (v <= 0) return;
      ctx.fillStyle = p.anomalies > 0 ? COLORS.anomaly : COLORS.lines;
      const top = Math.min(y(v), y(0) - 1);
      ctx.fillRect(slotX(i) - barW / 2, top, barW, y(0) - top);
    });
    canvas.dataset.drawn = String(points.length);
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      document.querySelectorAll("canvas.chart").forEach((c) => c._draw && c._draw(c, c._points || []));
    }, 100);
  });

  /* ---------------------------------------------------------------- incidents */

  async function refreshIncidents() {
    const query = new URLSearchParams({status: state.filter, size: "200", min_severity: String(state.minSeverity)});
    if (state.source) query.set("source", state.source);
    const body = await getJSON(`/api/incidents?${query}`);
    const list = Array.isArray(body.incidents) ? body.incidents : [];
    const now = Date.now();
    for (const [id, until] of state.pinned) if (until < now) state.pinned.delete(id);
    const missing = [...state.pinned.keys()].filter((id) => !list.some((inc) => inc.incident_id === id));
    if (missing.length) {     // incidents changed from this page that the filter now hides: keep showing them
      const all = await getJSON("/api/incidents?status=all&size=500");
      for (const inc of all.incidents || []) if (missing.includes(inc.incident_id)) list.push(Object.assign({}, inc, {_pinned: true}));
    }
    list.sort((a, b) => severityOf(b) - severityOf(a) ||      // the most severe first, then the newest
                        String(b.last_seen || "").localeCompare(String(a.last_seen || "")) ||
                        String(b.first_seen || "").localeCompare(String(a.first_seen || "")));
    state.incidents = new Map(list.map((inc) => [inc.incident_id, inc]));
    renderIncidents(list);
    return list;
  }

  function renderIncidents(list) {
    const open = list.filter((inc) => inc.status === "open").length;
    $("#incident-count").textContent = state.filter === "open" ? `${open} open` : `${list.length} shown, ${open} open`;
    $("#no-incidents").hidden = list.length > 0;
    $("#incidents tbody").replaceChildren(...list.map(incidentRow));
  }

  function severityOf(inc) {
    const value = inc.event && inc.event.severity;
    return isNum(value) ? value : -1;
  }

  function incidentRow(inc) {
    const id = String(inc.incident_id);
    const examples = Array.isArray(inc.examples) ? inc.examples : [];
    const details = el("details", {open: state.expanded.has(id)},
      el("summary", {}, `${examples.length} example${examples.length === 1 ? "" : "s"}`),
      el("ul", {class: "examples"}, ...examples.map((ex) => el("li", {},
        el("code", {}, String(ex.message)),
        el("span", {class: "meta"}, `score ${fmtNum(ex.anomaly_score)} · ${fmtDateTime(ex.at)} · ${ex.doc_id}`)))));
    details.addEventListener("toggle", () => (details.open ? state.expanded.add(id) : state.expanded.delete(id)));
    const note = state.notes.get(id) || (inc.status === "suppressed" && inc.suppressed_until ? `until ${fmtDateTime(inc.suppressed_until)}` : "");
    const severity = severityOf(inc), band = String(inc.severity_band || "");
    const row = el("tr", {"data-incident-id": id, "data-status": inc.status, class: inc._pinned ? "pinned" : null},
      el("td", {class: "num severity", "data-band": band, title: band},
        severity >= 0 ? el("span", {class: "badge"}, String(severity)) : "–",
        band ? el("div", {class: "band"}, band) : null),
      el("td", {class: "source"}, String(inc.source)),
      el("td", {class: "kind"}, String(inc.kind)),
      el("td", {class: "status", "data-status": inc.status}, String(inc.status)),
      el("td", {class: "summary"}, el("div", {}, String(inc.summary || "")),
        inc.pattern ? el("code", {class: "pattern", title: "pattern"}, String(inc.pattern)) : null),
      el("td", {class: "num"}, fmtCount(inc.count)),
      el("td", {class: "seen"}, el("div", {}, fmtDateTime(inc.first_seen)), el("div", {}, fmtDateTime(inc.last_seen))),
      el("td", {class: "num"}, fmtNum(inc.max_score)),
      el("td", {class: "tokens"}, ...(inc.top_tokens || []).map((t) => el("span", {class: "token"}, String(t)))),
      el("td", {class: "examples-cell"}, examples.length ? details : "–"),
      el("td", {class: "actions"},
        el("div", {class: "buttons"}, ...ACTIONS.map((spec) => el("button", {
          type: "button", "data-action": spec.action, disabled: inc.status === spec.status,
          onclick: () => sendFeedback(inc, spec)}, spec.label))),
        el("div", {class: "note"}, note)));
    return row;
  }

  async function sendFeedback(inc, spec) {
    const id = String(inc.incident_id);
    const row = document.querySelector(`tr[data-incident-id="${CSS.escape(id)}"]`);
    if (row) row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    const setNote = (text) => {
      state.notes.set(id, text);
      const current = document.querySelector(`tr[data-incident-id="${CSS.escape(id)}"] .note`);
      if (current) current.textContent = text;
    };
    setNote(`sending ${spec.label}…`);
    try {
      await postJSON("/api/feedback", Object.assign({incident_id: id, action: spec.action}, spec.extra || {}));
    } catch (e) {
      setNote(`failed: ${e.message}`);
      await refreshIncidents().catch(() => null);
      return;
    }
    state.pinned.set(id, Date.now() + PIN_MS);
    setNote(`sent, waiting for ${spec.status}…`);
    const deadline = Date.now() + QUICK_POLL_FOR_MS;
    while (Date.now() < deadline) {           // the change travels through Kafka: poll quickly for a while
      await sleep(QUICK_POLL_MS);
      await refreshIncidents().catch(() => null);
      const now = state.incidents.get(id);
      if (now && now.status !== inc.status) {
        state.notes.delete(id);
        setNote(`${spec.label}: now ${now.status}`);
        setTimeout(() => { state.notes.delete(id); }, 30000);
        return;
      }
    }
    setNote("sent; no change yet, it will show on a later refresh");
    setTimeout(() => { state.notes.delete(id); }, 30000);
  }

  /* ---------------------------------------------------------------- start */

  function start() {
    $("#interval").textContent = `every ${fmtNum(REFRESH_S)} s`;
    $("#window").textContent = `last ${fmtNum(MINUTES)} min, ${BUCKETS} buckets`;
    const filter = $("#status-filter");
    filter.value = state.filter;
    filter.addEventListener("change", () => {
      state.filter = filter.value === "all" ? "all" : "open";
      state.pinned.clear();
      refreshIncidents().catch((e) => showErrors([e.message]));
    });
    const severity = $("#severity-filter");
    severity.value = String(state.minSeverity);
    severity.addEventListener("change", () => {
      state.minSeverity = parseInt(severity.value, 10) || 0;
      state.pinned.clear();
      refreshIncidents().catch((e) => showErrors([e.message]));
    });
    const source = $("#source-filter");
    source.addEventListener("change", () => {
      state.source = source.value;
      state.pinned.clear();
      refreshIncidents().catch((e) => showErrors([e.message]));
    });
    $("#refresh-now").addEventListener("click", () => loop());
    loop();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
