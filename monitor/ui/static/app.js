/* Driftwatch dashboard: reads the monitor's JSON API and polls it.
 *
 * Routes (in the URL hash): "#/" lists the watched models, "#/models/<name>"
 * shows one; the model picker in the header switches between them (each
 * model's reads live under its `api_base`, "/models/<name>", or "" for the
 * monitor's default model). Every read goes to this origin; the API answers with ETags, so an
 * unchanged answer costs a bodiless 304. Charts are uPlot (vendored, see
 * scripts/vendor-uplot.sh); the heat map and confusion matrix are tables.
 */
(() => {
  "use strict";

  const POLL_MS = 5000;
  const HEAT_WINDOWS = 20;
  const TIMELINE_WINDOWS = 40;
  const KEY_STORE = "driftwatch.apiKey";
  const C = { blue: "#0072b2", orange: "#e69f00", sky: "#56b4e9", green: "#009e73",
    vermillion: "#d55e00", purple: "#cc79a7", grey: "#8b949e", ink: "#1d232b" };
  // Viridis, 9 stops: perceptually uniform and readable with colour-vision deficiencies.
  const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"];
  const STATUS_TEXT = { drift: "▲ drift", ok: "✓ no drift", insufficient_data: "◌ insufficient data",
    no_windows: "◌ no windows yet", error: "✕ error" };

  const $ = (id) => document.getElementById(id);
  const state = {
    overview: null, model: null, timeline: null, heatSignature: "", selected: null, sort: "effect",
    paused: false, timer: null, charts: {}, refreshes: 0, failures: 0, busy: false,
  };
  // For tests and the screenshot script: how many refreshes completed.
  window.driftwatch = state;

  class HttpError extends Error {
    constructor(status, detail) {
      super(typeof detail === "string" ? detail : `HTTP ${status}`);
      this.status = status;
    }
  }

  async function api(path) {
    const headers = {};
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers["X-API-Key"] = key;
    const response = await fetch(path, { headers });
    if (response.status === 401 || response.status === 403) {
      showKeyForm(response.status);
      throw new HttpError(response.status, response.status === 401 ? "API key needed" : "API key refused");
    }
    if (!response.ok) {
      let detail = null;
      try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
      throw new HttpError(response.status, detail);
    }
    return response.json();
  }

  // ---------- small helpers ----------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);
  const num = (v, digits = 3) => (v === null || v === undefined ? "–" : Number(v).toPrecision(digits));
  const pval = (v) => (v === null || v === undefined ? "–" : v < 1e-4 ? v.toExponential(2) : v.toFixed(4));
  const tick = (v) => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3))));
  const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "–");
  const progress = (m) => (m.window_size === null ? `${m.window_filled} so far` : `${m.window_filled} / ${m.window_size}`);
  const badge = (status) => el("span", { class: `badge s-${status}`, text: STATUS_TEXT[status] || status });
  /** A window's estimated accuracy in words: its value and method, or, where it has none, why
   * (the performance report's ``estimate_unavailable``, a server string: only ever set as text). */
  const estimateText = (w, unavailable) => (w.estimated_accuracy === null && unavailable
    ? `no estimated accuracy (${unavailable})`
    : `estimated ${pct(w.estimated_accuracy)}${w.estimate_method ? ` by ${w.estimate_method}` : ""}`);

  function viridis(t) {
    const x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const f = x - i;
    const a = VIRIDIS[i], b = VIRIDIS[i + 1];
    const ch = (s, o) => parseInt(s.slice(o, o + 2), 16);
    const mix = (o) => Math.round(ch(a, o) + (ch(b, o) - ch(a, o)) * f);
    return `rgb(${mix(1)}, ${mix(3)}, ${mix(5)})`;
  }

  function setBanner(text) {
    const banner = $("banner");
    banner.hidden = !text;
    banner.textContent = text || "";
  }

  function showKeyForm(status) {
    const form = $("key-form");
    form.hidden = false;
    form.querySelector("label").textContent = status === 403
      ? "The API key was refused. API key:" : "This monitor protects its reads. API key:";
  }

  // ---------- routing ----------
  function route() {
    const match = location.hash.match(/^#\/models\/([^/]+)/);
    return match ? { view: "model", name: decodeURIComponent(match[1]) } : { view: "overview" };
  }

  function showView() {
    const r = route();
    $("overview-view").hidden = r.view !== "overview";
    $("model-view").hidden = r.view !== "model";
    const crumbs = $("crumbs");
    crumbs.replaceChildren();
    if (r.view === "model") {
      crumbs.append(el("a", { href: "#/", text: "All models" }), " / ", el("span", { text: r.name }));
      document.title = `${r.name} · Driftwatch`;
    } else {
      document.title = "Driftwatch";
    }
    if (!state.model || state.model !== r.name) {
      state.timeline = null; state.heatSignature = ""; state.selected = null; state.model = r.name || null;
      $("dist-stats").hidden = true;
      $("dist-hint").hidden = false;
      destroyChart("dist");
    }
  }

  // ---------- model picker ----------
  function renderPicker(overview) {
    const picker = $("model-picker");
    const names = overview.models.map((m) => m.name);
    const current = route().name || "";
    if (picker.dataset.names !== names.join("\n")) {
      picker.dataset.names = names.join("\n");
      picker.replaceChildren(el("option", { value: "", text: "All models" }),
        ...names.map((name) => el("option", { value: name, text: name })));
    }
    if (current && !names.includes(current)) picker.append(el("option", { value: current, text: current }));
    picker.value = current;
  }

  function onPick(event) {
    const name = event.target.value;
    location.hash = name ? `#/models/${encodeURIComponent(name)}` : "#/";
  }

  // ---------- overview ----------
  /** The overview's estimated-accuracy cell: the estimate, or, where there is none and the server
   * says why (``estimate_unavailable``), "–" with the reason under it and as the cell's tooltip
   * (a server string: only ever set as text). */
  function estimateCell(m) {
    const reason = m.estimated_accuracy === null ? m.estimate_unavailable : null;
    return el("td", { class: "num", title: reason ? `No estimated accuracy: ${reason}` : null }, pct(m.estimated_accuracy),
      reason ? el("div", { class: "muted small estimate-reason", text: reason }) : null);
  }

  function renderOverview(overview) {
    const body = $("overview").querySelector("tbody");
    body.replaceChildren();
    $("overview-empty").hidden = overview.models.length > 0;
    $("overview-empty").textContent = "No model is watched yet: register one (driftwatch register, or PUT "
      + "/models/{name}/versions/{version}); it shows here within seconds.";
    for (const m of overview.models) {
      const last = m.last_window === null ? "–" : `#${m.last_window}, ended ${when(m.last_window_end)}`;
      body.append(el("tr", {},
        el("th", { scope: "row" }, el("a", { href: `#/models/${encodeURIComponent(m.name)}`, text: m.name }),
          m.model_version ? el("span", { class: "muted", text: ` v${m.model_version}` }) : null),
        el("td", {}, badge(m.status), m.error ? el("div", { class: "muted small", text: m.error }) : null),
        el("td", { text: last }),
        el("td", { class: "num", text: m.last_window === null ? "–" : String(m.drifted_features.length) }),
        el("td", { class: "num", text: String(m.alerts_firing) }),
        el("td", { class: "num", text: pct(m.accuracy) }),
        estimateCell(m),
        el("td", { class: "num", text: m.lag === null ? "–" : String(m.lag) }),
        el("td", { class: "num", text: progress(m) })));
    }
  }

  // ---------- model page ----------
  function modelSummary(name) {
    return state.overview && state.overview.models.find((m) => m.name === name);
  }

  function renderModelHeader(summary, name) {
    $("model-name").textContent = name;
    const status = $("model-status");
    status.replaceChildren();
    const meta = $("model-meta");
    if (!summary) {
      status.append(badge("error"));
      meta.textContent = "this monitor does not watch a model of that name";
      return;
    }
    status.append(badge(summary.status));
    meta.textContent = [
      summary.model_version ? `version ${summary.model_version}` : null,
      summary.last_window === null ? null : `last window #${summary.last_window}`,
      `next window ${progress(summary)}`,
      summary.lag === null ? null : `lag ${summary.lag}`,
      `${summary.alerts_firing} alert(s) firing`,
    ].filter(Boolean).join(" · ");
  }

  function destroyChart(name) {
    if (state.charts[name]) { state.charts[name].destroy(); delete state.charts[name]; }
  }

  function chartWidth(container) {
    return Math.max(280, container.clientWidth || container.parentNode.clientWidth - 28);
  }

  function renderTimeline(timeline, history, unavailable) {
    const container = $("timeline");
    const ws = timeline.windows;
    const x = ws.map((w) => w.window);
    const data = [x, ws.map((w) => w.drifted_share), ws.map((w) => w.accuracy),
      ws.map((w) => w.estimated_accuracy), ws.map((w) => w.label_coverage)];
    // Window numbers are per version: another version's transitions (the model retrained, the old
    // version still registered) would be drawn at this version's windows of the same number.
    const transitions = history.filter((t) => t.window !== null && t.window !== undefined
      && (!t.labels.model_version || t.labels.model_version === timeline.model_version));
    state.timelineMarks = { ws, transitions };
    if (!state.charts.timeline) {
      const opts = {
        width: chartWidth(container), height: 220,
        scales: { x: { time: false }, y: { range: [0, 1.08] } },
        axes: [{ label: "window", values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? `#${v}` : "")) },
          { values: (u, vals) => vals.map((v) => `${Math.round(v * 100)}%`), size: 52 }],
        series: [{ label: "window", value: (u, v) => (v === null ? "–" : `#${v}`) },
          { label: "drifted share", stroke: C.vermillion, width: 2, value: (u, v) => pct(v), points: { show: true } },
          { label: "accuracy", stroke: C.blue, width: 2, value: (u, v) => pct(v), points: { show: true } },
          { label: "estimated accuracy", stroke: C.sky, width: 2, dash: [6, 4], value: (u, v) => pct(v) },
          { label: "label coverage", stroke: C.green, width: 1.5, dash: [2, 3], value: (u, v) => pct(v) }],
        hooks: { draw: [drawTimelineMarks] },
      };
      state.charts.timeline = new uPlot(opts, data, container);
    } else {
      state.charts.timeline.setData(data);
    }
    const groups = alertGroups(transitions);
    $("timeline-alerts").replaceChildren(...(groups.length
      ? groups.map(([window, group]) => el("li", {}, el("strong", { text: `#${window}` }), ` ${group.labels.join(", ")}`))
      : [el("li", { class: "muted", text: "No alert transitions in these windows." })]));
    // Where the estimate line has gaps, the reason stands under the chart (the line cannot say it).
    const missing = ws.filter((w) => w.estimated_accuracy === null).length;
    const note = $("timeline-estimate");
    note.hidden = !(missing && unavailable);
    note.textContent = note.hidden ? ""
      : `No estimated accuracy for ${missing} of these ${ws.length} windows: ${unavailable}.`;
    const text = $("timeline-text");
    text.replaceChildren(...ws.slice(-10).map((w) => el("li", {
      text: `Window ${w.window}: ${w.status}, ${pct(w.drifted_share)} of features drifted`
        + `${w.multivariate_drift ? ", joint (multivariate) drift" : ""}, accuracy ${pct(w.accuracy)}, `
        + `${estimateText(w, unavailable)}, label coverage ${pct(w.label_coverage)}`,
    })));
  }

  function drawTimelineMarks(u) {
    const marks = state.timelineMarks;
    if (!marks) return;
    const ctx = u.ctx;
    const top = u.bbox.top + 8 * devicePixelRatio;
    const size = 5 * devicePixelRatio;
    ctx.save();
    for (const w of marks.ws) {
      const px = u.valToPos(w.window, "x", true);
      if (w.dataset_drift) {
        ctx.fillStyle = C.vermillion;
        ctx.beginPath();
        ctx.moveTo(px, top - size); ctx.lineTo(px + size, top + size); ctx.lineTo(px - size, top + size);
        ctx.fill();
      }
      if (w.multivariate_drift) {
        const y = top + 6 * size;
        ctx.fillStyle = C.blue;
        ctx.fillRect(px - size * 0.8, y - size * 0.8, size * 1.6, size * 1.6);
      }
      if (w.prediction_drift) {
        const y = top + 3 * size;
        ctx.fillStyle = C.purple;
        ctx.beginPath();
        ctx.moveTo(px, y - size); ctx.lineTo(px + size, y); ctx.lineTo(px, y + size); ctx.lineTo(px - size, y);
        ctx.fill();
      }
    }
    // One dashed line per window with alert transitions, coloured by the most severe state
    // reached there; what changed is listed under the chart (#timeline-alerts).
    const severity = { firing: 3, pending: 2, resolved: 1, inactive: 0 };
    const colours = [C.grey, C.grey, C.orange, C.purple];
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    for (const [window, group] of alertGroups(marks.transitions)) {
      const px = u.valToPos(window, "x", true);
      if (px < u.bbox.left || px > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = colours[Math.max(...group.states.map((s) => severity[s] || 0))];
      ctx.beginPath();
      ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }

  /** Transitions grouped by window: [window, {labels: ["FeatureDrift → pending ×12"], states}], oldest first. */
  function alertGroups(transitions) {
    const byWindow = new Map();
    for (const t of transitions) {
      const group = byWindow.get(t.window) || { counts: new Map(), states: [] };
      const label = `${t.alertname} → ${t.to_state}`;
      group.counts.set(label, (group.counts.get(label) || 0) + 1);
      group.states.push(t.to_state);
      byWindow.set(t.window, group);
    }
    for (const group of byWindow.values()) {
      group.labels = [...group.counts.entries()].map(([label, n]) => (n > 1 ? `${label} ×${n}` : label));
    }
    return [...byWindow.entries()].sort((a, b) => a[0] - b[0]);
  }

  // ---------- heat map ----------
  function sortedFeatures(timeline, windows) {
    const order = timeline.features.map((name, i) => i);
    const newest = windows[windows.length - 1];
    const effect = (w, i) => (w.effect_size[i] === null ? -1 : w.effect_size[i]);
    if (state.sort === "effect") order.sort((a, b) => effect(newest, b) - effect(newest, a) || a - b);
    if (state.sort === "max") {
      const max = (i) => Math.max(...windows.map((w) => effect(w, i)));
      order.sort((a, b) => max(b) - max(a) || a - b);
    }
    return order;
  }

  function renderHeatmap(timeline) {
    const windows = timeline.windows.slice(-HEAT_WINDOWS);
    const signature = `${state.sort}|${windows.map((w) => w.window).join(",")}|${state.selected ? state.selected.key : ""}`;
    if (signature === state.heatSignature) return;
    state.heatSignature = signature;
    const table = $("heatmap");
    const focused = document.activeElement && table.contains(document.activeElement)
      ? document.activeElement.dataset.key : null;
    const effects = windows.flatMap((w) => w.effect_size.filter((e) => e !== null));
    const scaleMax = Math.max(0.1, ...effects);
    const kinds = [...new Set(timeline.effect_size_kinds)];
    $("effect-kind").textContent = kinds.join(", ").replaceAll("_", " ");
    renderLegend(scaleMax);

    const head = el("tr", {}, el("th", { scope: "col", text: "feature" }),
      ...windows.map((w) => el("th", { scope: "col", title: `window ${w.window}, ended ${when(w.window_end)}`,
        text: `#${w.window}` })));
    const rows = sortedFeatures(timeline, windows).map((f) => {
      const name = timeline.features[f];
      return el("tr", {}, el("th", { scope: "row", text: name }), ...windows.map((w) => {
        const e = w.effect_size[f];
        const drifted = w.drifted.includes(f);
        const key = `${name}@${w.window}`;
        const t = e === null ? 0 : e / scaleMax;
        const button = el("button", {
          type: "button", tabindex: "-1",
          class: [drifted ? "drifted" : "", t > 0.7 ? "light" : "", state.selected && state.selected.key === key ? "selected" : ""].join(" ").trim() || null,
          "data-key": key, "data-feature": name, "data-window": String(w.window), "data-drifted": drifted ? "true" : "false",
          "aria-label": `${name}, window ${w.window}: effect size ${num(e)}${drifted ? ", drifted" : ""}`,
          title: `${name}, window #${w.window}: effect ${num(e)}${drifted ? " (drifted)" : ""}`,
          text: drifted ? "✱" : "",
          onclick: () => selectCell(name, w.window),
        });
        button.style.background = e === null ? "#e6e8eb" : viridis(t);
        return el("td", { role: "gridcell" }, button);
      }));
    });
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    const target = (focused && table.querySelector(`button[data-key="${CSS.escape(focused)}"]`))
      || table.querySelector("button.selected") || table.querySelector("tbody button");
    if (target) {
      target.tabIndex = 0;
      if (focused) target.focus();
    }
  }

  function renderLegend(scaleMax) {
    const legend = $("legend");
    const canvas = el("canvas", { class: "bar", width: "160", height: "10" });
    const ctx = canvas.getContext("2d");
    for (let i = 0; i < 160; i++) { ctx.fillStyle = viridis(i / 159); ctx.fillRect(i, 0, 1, 10); }
    legend.replaceChildren(el("span", { text: "0" }), canvas, el("span", { text: num(scaleMax, 2) }));
  }

  function onHeatKey(event) {
    const cell = event.target.closest("button");
    if (!cell) return;
    const td = cell.parentNode, tr = td.parentNode;
    const col = Array.prototype.indexOf.call(tr.children, td);
    let next = null;
    if (event.key === "ArrowRight") next = td.nextElementSibling;
    else if (event.key === "ArrowLeft") next = td.previousElementSibling && td.previousElementSibling.tagName === "TD" ? td.previousElementSibling : null;
    else if (event.key === "ArrowDown") next = tr.nextElementSibling && tr.nextElementSibling.children[col];
    else if (event.key === "ArrowUp") next = tr.previousElementSibling && tr.previousElementSibling.children[col];
    else if (event.key === "Home") next = tr.children[1];
    else if (event.key === "End") next = tr.lastElementChild;
    else return;
    event.preventDefault();
    const button = next && next.querySelector("button");
    if (button) {
      cell.tabIndex = -1;
      button.tabIndex = 0;
      button.focus();
    }
  }

  // ---------- distribution ----------
  async function selectCell(feature, window) {
    const summary = modelSummary(state.model);
    // A model not in the overview (yet) is read under its own prefix: "" is the default model's, if any.
    const base = summary ? summary.api_base : `/models/${encodeURIComponent(state.model)}`;
    state.selected = { key: `${feature}@${window}`, feature, window };
    state.heatSignature = "";
    if (state.timeline) renderHeatmap(state.timeline);
    const query = new URLSearchParams({ feature });
    try {
      const data = await api(`${base}/drift/histograms/${window}?${query}`);
      renderDistribution(data.features[0], window);
    } catch (error) {
      $("dist-hint").hidden = false;
      $("dist-hint").textContent = `Could not read the distributions of ${feature} in window ${window}: ${error.message}`;
    }
  }

  function histogramSeries(h) {
    const share = (counts) => { const n = counts.reduce((a, b) => a + b, 0) || 1; return counts.map((c) => c / n); };
    const ref = share(h.reference), win = share(h.window);
    if (h.kind === "categorical") {
      const labels = [...h.categories, "other"];
      return { x: labels.map((_, i) => i), ref, win, label: (v) => labels[v] ?? "" };
    }
    const e = h.edges, width = e.length > 1 ? e[1] - e[0] : 1;
    const centres = [e[0] - width / 2, ...e.slice(0, -1).map((lo, i) => (lo + e[i + 1]) / 2), e[e.length - 1] + width / 2];
    // Keep the below/above-range bins only when something fell there.
    const keep = centres.map((_, i) => (i > 0 && i < centres.length - 1) || ref[i] > 0 || win[i] > 0);
    const pick = (a) => a.filter((_, i) => keep[i]);
    return { x: pick(centres), ref: pick(ref), win: pick(win), label: tick };
  }

  function renderDistribution(h, window) {
    $("dist-hint").hidden = true;
    const series = histogramSeries(h);
    destroyChart("dist");
    const container = $("dist-chart");
    container.setAttribute("aria-label", `Distribution of ${h.name}: reference against window ${window}`);
    const bars = uPlot.paths.bars;
    state.charts.dist = new uPlot({
      title: `${h.name}: reference vs window #${window}`,
      width: chartWidth(container), height: 240,
      scales: { x: { time: false, range: (u, min, max) => [min - 0.6 * step(series.x), max + 0.6 * step(series.x)] },
        y: { range: (u, min, max) => [0, Math.max(0.05, max * 1.1)] } },
      axes: [{ values: (u, vals) => vals.map(series.label), label: h.kind === "categorical" ? "category" : "value" },
        { values: (u, vals) => vals.map((v) => `${Math.round(v * 100)}%`), size: 52, label: "share of rows" }],
      series: [{ label: h.kind === "categorical" ? "category" : "bin centre", value: (u, v) => (v === null ? "–" : series.label(v)) },
        { label: "reference", stroke: C.blue, fill: "rgba(0, 114, 178, 0.35)", width: 1, paths: bars({ size: [0.92] }), points: { show: false }, value: (u, v) => pct(v) },
        { label: `window #${window}`, stroke: C.orange, fill: "rgba(230, 159, 0, 0.75)", width: 1, paths: bars({ size: [0.5] }), points: { show: false }, value: (u, v) => pct(v) }],
    }, [series.x, series.ref, series.win], container);
    container.dataset.feature = h.name;
    renderStats(h);
  }

  function step(xs) { return xs.length > 1 ? xs[1] - xs[0] : 1; }

  function renderStats(h) {
    const table = $("dist-stats");
    const t = h.test;
    const body = table.querySelector("tbody");
    const row = (label, value) => el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: value }));
    body.replaceChildren();
    if (!t) {
      body.append(row("test", "no report for this window"));
    } else {
      body.append(
        row("test", t.test === "ks" ? "two-sample Kolmogorov–Smirnov" : "chi-squared"),
        row(t.test === "ks" ? "KS statistic D" : "χ² statistic", num(t.statistic, 4)),
        row("p-value", pval(t.p_value) + (t.p_value_method ? ` (${t.p_value_method})` : "")),
        row("adjusted p-value", pval(t.p_value_adjusted)),
        row(`effect size (${t.effect_size_kind.replaceAll("_", " ")})`, num(t.effect_size, 3)),
        row("verdict", t.drifted ? "✱ drifted" : t.significant ? "significant, below the minimum effect" : "no drift"));
    }
    table.hidden = false;
  }

  // ---------- confusion matrix ----------
  function renderConfusion(performance) {
    const box = $("confusion");
    box.replaceChildren();
    const w = performance.windows[0];
    if (!w) { box.append(el("p", { class: "muted", text: "No window yet." })); return; }
    const interval = w.estimated_accuracy_interval
      ? ` (95% interval ${pct(w.estimated_accuracy_interval[0])}–${pct(w.estimated_accuracy_interval[1])})` : "";
    const caption = `Window #${w.window}: ${w.labelled} of ${w.predictions} predictions labelled (${pct(w.label_coverage)}), accuracy ${pct(w.accuracy)}, ${estimateText(w, performance.estimate_unavailable)}${interval}.`;
    box.append(el("p", { class: "small", text: caption }));
    if (!w.labelled) { box.append(el("p", { class: "muted", text: "No labels for this window yet: the matrix fills as feedback arrives." })); return; }
    const names = w.classes.map((c) => c.class_name);
    const head = el("tr", {}, el("th", { class: "axis", text: "true ↓ / predicted →" }), ...names.map((n) => el("th", { scope: "col", text: n })));
    const rows = w.confusion_matrix.map((r, i) => {
      const total = r.reduce((a, b) => a + b, 0) || 1;
      return el("tr", {}, el("th", { scope: "row", text: names[i] }), ...r.map((count, j) => {
        const share = count / total;
        const cell = el("td", { class: i === j ? "diag" : null, title: `true ${names[i]}, predicted ${names[j]}: ${count}`, text: String(count) });
        cell.style.background = `rgba(0, 114, 178, ${(0.08 + 0.85 * share).toFixed(2)})`;
        if (share > 0.5) cell.style.color = "#fff";
        return cell;
      }));
    });
    box.append(el("table", { class: "confusion" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  // ---------- alerts ----------
  function renderAlerts(rules, alerts, history, version) {
    const byRule = {};
    for (const a of alerts.alerts) (byRule[a.rule] ||= []).push(a);
    const body = $("rules").querySelector("tbody");
    body.replaceChildren(...rules.map((r) => {
      const instances = byRule[r.name] || [];
      const firing = instances.filter((a) => a.state === "firing").length;
      const pending = instances.filter((a) => a.state === "pending").length;
      const stateCell = el("td", {}, firing ? el("span", { class: "badge s-firing", text: `● firing ×${firing}` }) : null,
        pending ? el("span", { class: "badge s-pending", text: `◐ pending ×${pending}` }) : null,
        !firing && !pending ? el("span", { class: "badge s-inactive", text: "○ inactive" }) : null);
      const duration = r.for && (r.for.windows ? `${r.for.windows} window(s)` : `${r.for.seconds} s`);
      const condition = `${r.metric}${r.feature ? `[${r.feature}]` : ""} ${r.op} ${r.value}${duration ? ` for ${duration}` : ""}`;
      return el("tr", {}, el("th", { scope: "row", text: r.name }), el("td", { text: condition }), stateCell);
    }));
    if (!rules.length) body.append(el("tr", {}, el("td", { colspan: "3", class: "muted", text: "No alert rules." })));
    const hist = $("alert-history").querySelector("tbody");
    hist.replaceChildren(...history.slice(0, 10).map((t) => el("tr", {},
      el("td", { text: new Date(t.at * 1000).toLocaleTimeString() }),
      el("td", { text: t.alertname + (t.labels.feature ? ` (${t.labels.feature})` : "") }),
      el("td", {}, el("span", { class: `badge s-${t.to_state}`, text: `${t.from_state} → ${t.to_state}` })),
      el("td", { text: (t.window === null ? "–" : `#${t.window}`)
        + (t.labels.model_version && t.labels.model_version !== version ? ` (v${t.labels.model_version})` : "") }))));
    if (!history.length) hist.append(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No transitions yet." })));
  }

  // ---------- refresh ----------
  async function refreshModel(name) {
    const summary = modelSummary(name);
    renderModelHeader(summary, name);
    if (!summary) { $("model-body").hidden = true; return; }
    const base = summary.api_base;
    const [timeline, performance, alerts, history, rules] = await Promise.allSettled([
      api(`${base}/drift/timeline?limit=${TIMELINE_WINDOWS}`), api(`${base}/performance?windows=1`),
      api(`${base}/alerts`), api(`${base}/alerts/history?limit=20`), api(`${base}/alerts/thresholds`)]);
    const empty = $("model-empty");
    if (timeline.status === "fulfilled" && timeline.value.windows.length === 0) {
      empty.hidden = false;
      empty.textContent = `No window has been reported yet for ${name}: ${progress(summary)} `
        + "predictions in the current window. The page fills in as soon as one is.";
      $("model-body").hidden = true;
      return;
    }
    if (timeline.status === "rejected") {
      empty.hidden = false;
      empty.textContent = `Could not read the drift timeline: ${timeline.reason.message}`;
      $("model-body").hidden = true;
      return;
    }
    empty.hidden = true;
    $("model-body").hidden = false;
    state.timeline = timeline.value;
    const transitions = history.status === "fulfilled" ? history.value.transitions : [];
    const unavailable = performance.status === "fulfilled" ? performance.value.estimate_unavailable : null;
    renderTimeline(timeline.value, transitions, unavailable);
    renderHeatmap(timeline.value);
    if (performance.status === "fulfilled") renderConfusion(performance.value);
    else $("confusion").replaceChildren(el("p", { class: "muted", text: `No performance figures: ${performance.reason.message}` }));
    if (alerts.status === "fulfilled" && rules.status === "fulfilled") renderAlerts(rules.value, alerts.value, transitions, timeline.value.model_version);
  }

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    const r = route();
    try {
      state.overview = await api("/overview");
      $("key-form").hidden = true;
      renderPicker(state.overview);
      const down = state.overview.models.find((m) => m.status === "error" && (m.error || "").startsWith("Redis"));
      setBanner(down ? "The monitor cannot reach Redis: the figures shown are the last ones read; the page recovers by itself when Redis is back." : "");
      if (r.view === "overview") renderOverview(state.overview);
      else if (!down) await refreshModel(r.name);
      else renderModelHeader(modelSummary(r.name), r.name);
      state.failures = 0;
      $("live").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      state.failures += 1;
      if (!(error instanceof HttpError && (error.status === 401 || error.status === 403))) {
        setBanner(error instanceof HttpError
          ? `The monitor answered ${error.status}: ${error.message}. Retrying every ${POLL_MS / 1000} s.`
          : `The monitor does not answer (${error.message}). Retrying every ${POLL_MS / 1000} s.`);
      }
      $("live").textContent = "not updated";
    } finally {
      state.busy = false;
      state.refreshes += 1;
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    if (state.paused || document.hidden) return;
    state.timer = setTimeout(async () => { await refresh(); schedule(); }, POLL_MS);
  }

  function init() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORE, $("api-key").value);
      $("api-key").value = "";
      refresh().then(schedule);
    });
    $("pause").addEventListener("click", () => {
      state.paused = !state.paused;
      $("pause").setAttribute("aria-pressed", String(state.paused));
      $("pause").textContent = state.paused ? "Resume updates" : "Pause updates";
      $("live").textContent = state.paused ? "paused" : $("live").textContent;
      if (!state.paused) refresh().then(schedule); else clearTimeout(state.timer);
    });
    $("sort").addEventListener("change", (event) => {
      state.sort = event.target.value;
      state.heatSignature = "";
      if (state.timeline) renderHeatmap(state.timeline);
    });
    $("heatmap").addEventListener("keydown", onHeatKey);
    $("model-picker").addEventListener("change", onPick);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh().then(schedule); });
    window.addEventListener("hashchange", () => { showView(); $("main").focus(); refresh().then(schedule); });
    window.addEventListener("resize", () => {
      for (const [name, chart] of Object.entries(state.charts)) {
        const box = $(name === "dist" ? "dist-chart" : "timeline");
        chart.setSize({ width: chartWidth(box), height: chart.height });
      }
    });
    showView();
    refresh().then(schedule);
  }

  init();
})();
