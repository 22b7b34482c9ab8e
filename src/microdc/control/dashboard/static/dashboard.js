/* microdc operator dashboard. Plain browser JavaScript, no build step, no external assets.
 *
 * Every page boots from the JSON the server embedded (#boot), then applies live updates from the
 * server-sent event stream /dashboard/events (a browser that reconnects sends Last-Event-ID and gets
 * exactly what it missed). State-changing calls send the session's CSRF token (X-CSRF-Token).
 * Text from the server is only ever inserted with textContent (never innerHTML).
 */
"use strict";

(() => {
  const BOOT = JSON.parse(document.getElementById("boot").textContent || "{}");
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const PAGE = document.body.dataset.page;
  const ROLE_RANK = { viewer: 1, operator: 2, admin: 3 };
  const can = (role) => (ROLE_RANK[BOOT.role] || 0) >= ROLE_RANK[role];
  const STATE_LABEL = { up: "up", suspect: "suspect", link_down: "link down", down: "down", untrusted: "untrusted", unknown: "unknown" };
  const STATE_ORDER = { down: 0, untrusted: 1, suspect: 2, link_down: 3, unknown: 4, up: 5 };
  window.MDC = { boot: BOOT, updates: 0, lastUpdate: null, ready: false };

  // --- small helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);
  const num = (x, d = 1) => (x === null || x === undefined || !isFinite(x) ? "–" :
    Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)} %`);
  const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, "") : "–");
  function ago(iso) {
    if (!iso) return "never";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 90) return `${s.toFixed(0)} s ago`;
    if (s < 5400) return `${(s / 60).toFixed(0)} min ago`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h ago`;
    return `${(s / 86400).toFixed(0)} d ago`;
  }
  // resolves after the browser produced the next frame
  const nextFrame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  function flash(els) {
    for (const e of els) e.classList.add("flash");
    setTimeout(() => { for (const e of els) e.classList.remove("flash"); }, 1300);
  }
  const stateBadge = (state) => el("span", { class: `state ${state}`, text: STATE_LABEL[state] || state });
  const siteLink = (id) => el("a", { href: `/dashboard/sites/${encodeURIComponent(id)}`, text: id });

  let toastTimer = null;
  function toast(msg, isError) {
    const t = $("#toast");
    if (!t) return;
    t.textContent = msg;
    t.className = isError ? "toast error" : "toast";
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 8000 : 3500);
  }

  async function api(path, opts) {
    const o = Object.assign({ method: "GET", credentials: "same-origin", headers: {} }, opts || {});
    o.headers = Object.assign({ Accept: "application/json" }, o.headers);
    if (o.method !== "GET") {
      o.headers["X-CSRF-Token"] = CSRF;
      if (o.body !== undefined && typeof o.body !== "string") {
        o.headers["Content-Type"] = "application/json";
        o.body = JSON.stringify(o.body);
      }
    }
    const r = await fetch(path, o);
    if (r.status === 401) { location.href = `/dashboard/login?next=${encodeURIComponent(location.pathname + location.search)}`; throw new Error("session expired"); }
    const ct = r.headers.get("content-type") || "";
    const data = ct.includes("json") ? await r.json() : await r.text();
    if (!r.ok) throw new Error((data && data.detail) || `${r.status} ${r.statusText}`);
    return data;
  }

  function throttle(fn, ms) {
    let timer = null, pending = false, last = 0;
    return function run() {
      const wait = last + ms - Date.now();
      if (wait <= 0 && !timer) { last = Date.now(); fn(); return; }
      pending = true;
      if (!timer) timer = setTimeout(() => { timer = null; if (pending) { pending = false; last = Date.now(); fn(); } }, Math.max(wait, 0));
    };
  }

  // --- plotly (4.6 MB, loaded after the page is up so that tables paint first) ------------------
  let plotlyPromise = null;
  function plotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyPromise) {
      // after the first frame: parsing plotly.js takes the main thread for a while, so the tables paint first
      plotlyPromise = nextFrame().then(() => new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = document.body.dataset.plotly;
        s.addEventListener("load", () => resolve(window.Plotly));
        s.addEventListener("error", () => reject(new Error("could not load plotly.js")));
        document.head.append(s);
      }));
    }
    return plotlyPromise;
  }
  const PLOT_CONFIG = BOOT.plotly_config || { displaylogo: false, responsive: true };
  async function draw(div, fig) {
    const P = await plotly();
    await P.react(div, fig.data, fig.layout, PLOT_CONFIG);
    div.dataset.drawn = "1";
    return div;
  }

  // --- header: open-alarm badge and the live indicator ------------------------------------------
  function setSummary(summary) {
    if (!summary) return;
    BOOT.summary = summary;
    const b = $("#alarm-badge");
    if (b) {
      const n = summary.alarms.critical + summary.alarms.warning;
      b.textContent = String(n);
      b.hidden = n === 0;
      b.title = `${summary.alarms.critical} critical, ${summary.alarms.warning} warning, ${summary.alarms.unacked} not acknowledged`;
    }
    if (page.onSummary) page.onSummary(summary);
  }

  function live(onUpdate) {
    const dot = $("#live");
    const url = `/dashboard/events?cursor=${encodeURIComponent(BOOT.cursor || "")}`;
    const es = new EventSource(url);
    const mark = (cls, title) => { if (dot) { dot.className = `live ${cls}`; dot.title = title; } };
    es.addEventListener("open", () => mark("on", "live updates: connected"));
    es.addEventListener("hello", () => mark("on", "live updates: connected"));
    es.addEventListener("update", (ev) => {
      const u = JSON.parse(ev.data);
      window.MDC.updates += 1;
      window.MDC.lastUpdate = { at: Date.now(), cursor: u.cursor };
      if (u.resync) { location.reload(); return; }
      if (u.summary) setSummary(u.summary);
      try { onUpdate(u); } catch (e) { console.warn("update failed", e); }
    });
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED) {
        mark("off", "live updates: disconnected");
        // probably the session ended: api() sends us to the login page on 401
        api("/dashboard/api/session").then(() => setTimeout(() => live(onUpdate), 2000)).catch(() => {});
      } else {
        mark("", "live updates: reconnecting");
      }
    });
    window.MDC.events = es;
    return es;
  }

  // --- sortable table helper ---------------------------------------------------------------------
  function sortable(table, getRows, render, initial) {
    let key = initial ? initial[0] : null;
    let dir = initial ? initial[1] : 1;
    const heads = table.querySelectorAll("th[data-sort]");
    const mark = () => heads.forEach((h) => {
      h.classList.toggle("asc", h.dataset.sort === key && dir === 1);
      h.classList.toggle("desc", h.dataset.sort === key && dir === -1);
    });
    heads.forEach((h) => h.addEventListener("click", () => {
      if (key === h.dataset.sort) dir = -dir; else { key = h.dataset.sort; dir = 1; }
      mark();
      render();
    }));
    mark();
    return {
      sort(rows) {
        if (!key) return rows;
        // "attention" (the fleet's default): open critical alarms first, then warnings, then by state
        const v = (r) => (key === "state" ? STATE_ORDER[r.state]
          : key === "attention" ? -(1e6 * (r.alarms_critical || 0) + 1e3 * (r.alarms_warning || 0)) + STATE_ORDER[r.state]
          : r[key]);
        return rows.slice().sort((a, b) => {
          const x = v(a), y = v(b);
          if (x === y) return String(a.id).localeCompare(String(b.id));
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * dir;
        });
      },
    };
  }

  // ===============================================================================================
  // Fleet: summary, map, sortable table; live rows.
  // ===============================================================================================
  const page = {};

  function fleetPage() {
    const rows = new Map(BOOT.rows.map((r) => [r.id, r]));
    const trs = new Map();
    const tbody = $("#fleet tbody");
    const filter = $("#filter");
    const stateFilter = $("#state-filter");
    const COLS = ["id", "jurisdiction", "state", "it_kw", "pue", "inlet_c", "util", "alarms_open", "last_reading"];
    // which row fields each cell shows: a cell is rebuilt only when one of them changed
    const DEPS = {
      id: ["name"], jurisdiction: ["jurisdiction", "tier"], state: ["state", "state_reason", "state_evidence"], it_kw: ["it_kw"], pue: ["pue"],
      inlet_c: ["inlet_c"], util: ["util", "util_src"], alarms_open: ["alarms_open", "alarms_critical", "alarms_warning", "alarms_unacked"],
      last_reading: ["last_reading"],
    };

    function fill(td, r, k) {
      td.className = "";
      td.removeAttribute("title");
      switch (k) {
        case "id": td.replaceChildren(siteLink(r.id), r.name && r.name !== r.id ? el("span", { class: "muted", text: ` ${r.name}` }) : ""); break;
        case "jurisdiction": td.textContent = `${r.jurisdiction} · tier ${r.tier}`; break;
        case "state":
          // why the site is in this state (and, on hover, the evidence weighed), unless it is simply up
          td.replaceChildren(stateBadge(r.state), r.state !== "up" && r.state_reason ? el("div", { class: "why muted", text: r.state_reason }) : "");
          if (r.state_evidence && r.state_evidence.length) td.title = r.state_evidence.join("\n");
          break;
        case "it_kw": td.className = "num"; td.textContent = num(r.it_kw, 2); break;
        case "pue": td.className = "num"; td.textContent = num(r.pue, 2); break;
        case "inlet_c": {
          td.className = "num";
          td.textContent = num(r.inlet_c, 1);
          const t = r.inlet_c;
          if (t !== null && (t < 15 || t > 32)) td.classList.add("bad");
          else if (t !== null && (t < 18 || t > 27)) td.classList.add("warn");
          break;
        }
        case "util": td.className = "num"; td.textContent = pct(r.util); td.title = r.util_src === "cpu" ? "CPU utilization reported by the site" : "cores allocated to running workloads / capacity"; break;
        case "alarms_open":
          td.className = "num";
          td.textContent = r.alarms_open ? String(r.alarms_open) : "0";
          if (r.alarms_critical) td.classList.add("bad"); else if (r.alarms_warning) td.classList.add("warn");
          td.title = `${r.alarms_critical} critical, ${r.alarms_warning} warning, ${r.alarms_unacked} not acknowledged`;
          break;
        case "last_reading": td.textContent = ago(r.last_reading); td.title = when(r.last_reading); break;
        default: td.textContent = r[k] === null ? "–" : String(r[k]);
      }
    }
    function rowEl(r) {
      const tr = el("tr", { dataset: { site: r.id, state: r.state } });
      for (const k of COLS) { const td = el("td", { dataset: { k } }); fill(td, r, k); tr.append(td); }
      return tr;
    }
    function visible(r) {
      const q = filter.value.trim().toLowerCase();
      const s = stateFilter.value;
      if (s && r.state !== s) return false;
      if (!q) return true;
      return (`${r.id} ${r.name} ${r.jurisdiction} ${STATE_LABEL[r.state]}`).toLowerCase().includes(q);
    }
    const filtering = () => Boolean(filter.value.trim() || stateFilter.value);
    function countShown() {
      const n = filtering() ? [...rows.values()].filter(visible).length : rows.size;
      $("#shown").textContent = `${n} of ${rows.size} sites`;
    }
    let sorter = null;
    function renderTable(first) {
      // `first` (initial render): the top rows now, so they paint at once, the rest a frame later
      const sorted = sorter.sort([...rows.values()]);
      const build = (list) => {
        const frag = document.createDocumentFragment();
        for (const r of list) {
          let tr = trs.get(r.id);
          if (!tr) { tr = rowEl(r); trs.set(r.id, tr); }
          tr.hidden = !visible(r);
          frag.append(tr);
        }
        return frag;
      };
      if (first !== true) { tbody.replaceChildren(build(sorted)); countShown(); return Promise.resolve(); }
      tbody.replaceChildren(build(sorted.slice(0, 60)));
      countShown();
      return nextFrame().then(() => { tbody.append(build(sorted.slice(60))); });
    }
    sorter = sortable($("#fleet"), () => rows, renderTable, ["attention", 1]);
    filter.addEventListener("input", renderTable);
    stateFilter.addEventListener("change", renderTable);

    function renderSummary() {
      const s = BOOT.summary;
      $("#sum-sites").textContent = String(rows.size);
      for (const k of ["up", "suspect", "link_down", "down", "untrusted"]) $(`#sum-${k}`).textContent = String(s.states[k] || 0);
      let it = 0;
      for (const r of rows.values()) it += r.it_kw || 0;
      $("#sum-it").textContent = `${num(it, 1)} kW`;
      const a = s.alarms;
      $("#sum-alarms").textContent = `${a.critical + a.warning}`;
      $("#sum-alarms").title = `${a.critical} critical, ${a.warning} warning, ${a.unacked} not acknowledged`;
    }
    page.onSummary = renderSummary;

    // the map: one trace per state, filled from the rows; redrawn only when a marker would change
    const mapDiv = $("#map");
    const mapFig = BOOT.map;
    function mapData() {
      return mapFig.data.map((t) => {
        if (!(t.meta in STATE_ORDER)) return t;  // the basemap and other fixed layers
        const pts = [...rows.values()].filter((r) => r.state === t.meta);
        return Object.assign({}, t, {
          x: pts.map((r) => r.lon),
          y: pts.map((r) => r.lat),
          customdata: pts.map((r) => r.id),
          text: pts.map((r) => `<b>${escapeHtml(r.id)}</b> ${escapeHtml(r.name || "")}<br>${STATE_LABEL[r.state]} · ${escapeHtml(r.jurisdiction)} tier ${r.tier}` +
            `<br>${r.alarms_open} open alarm(s)`),
          marker: Object.assign({}, t.marker, {
            line: { color: pts.map((r) => (r.alarms_critical ? "#c23b3b" : r.alarms_warning ? "#e6a100" : "#ffffff")),
                    width: pts.map((r) => (r.alarms_open ? 2.5 : 1)) },
          }),
        });
      });
    }
    let mapReady = false;
    async function drawMap() {
      mapDiv.replaceChildren();
      await draw(mapDiv, { data: mapData(), layout: mapFig.layout });
      mapReady = true;
      mapDiv.on("plotly_click", (ev) => {
        const id = ev.points && ev.points[0] && ev.points[0].customdata;
        if (id) location.href = `/dashboard/sites/${encodeURIComponent(id)}`;
      });
      performance.mark("mdc-map");
    }
    const redrawMap = throttle(() => { if (mapReady) window.Plotly.react(mapDiv, mapData(), mapFig.layout, PLOT_CONFIG); }, 2000);
    const MAP_KEYS = ["state", "alarms_open", "alarms_critical", "alarms_warning", "lat", "lon", "name"];

    renderSummary();
    renderTable(true).then(() => {
      performance.mark("mdc-table");
      window.MDC.ready = true;
      nextFrame().then(() => performance.mark("mdc-table-painted"));
      drawMap().catch((e) => { console.error(e); mapDiv.textContent = "the map could not be drawn"; });
    });
    performance.mark("mdc-table-first");
    // ages ("12 s ago") of rows that got no update
    setInterval(() => {
      for (const [id, tr] of trs) { const td = tr.lastChild; const r = rows.get(id); if (td && r) td.textContent = ago(r.last_reading); }
    }, 15000);

    // updates are applied once per animation frame, cell by cell
    let pending = [];
    function apply() {
      const batch = pending;
      pending = [];
      const flashed = [];
      let mapChanged = false, membership = false;
      for (const u of batch) {
        for (const r of u.sites || []) {
          const old = rows.get(r.id);
          rows.set(r.id, r);
          let tr = trs.get(r.id);
          if (!old || !tr) {
            tr = rowEl(r); trs.set(r.id, tr); tbody.append(tr); membership = true; mapChanged = true;
          } else {
            for (const k of COLS) {
              if (DEPS[k].some((f) => old[f] !== r[f])) fill(tr.querySelector(`td[data-k="${k}"]`), r, k);
            }
            if (MAP_KEYS.some((f) => old[f] !== r[f])) {
              mapChanged = true;
              tr.dataset.state = r.state;
              flashed.push(tr);
            }
          }
          tr.hidden = !visible(r);
        }
        for (const id of u.removed || []) {
          rows.delete(id);
          const tr = trs.get(id);
          if (tr) tr.remove();
          trs.delete(id);
          membership = true; mapChanged = true;
        }
      }
      renderSummary();
      if (membership || filtering()) countShown();
      if (mapChanged) redrawMap();
      // highlight rows whose state or alarms changed (not when half the fleet changes at once)
      if (flashed.length && flashed.length <= 100) flash(flashed);
    }
    // at most 5 table updates a second: each one costs a layout of the 1,000-row table
    let lastApply = 0, scheduled = false;
    function schedule() {
      if (scheduled) return;
      scheduled = true;
      setTimeout(() => requestAnimationFrame(() => {
        scheduled = false;
        lastApply = performance.now();
        apply();
      }), Math.max(0, lastApply + 200 - performance.now()));
    }
    live((u) => {
      if (!(u.sites && u.sites.length) && !(u.removed && u.removed.length)) return;
      pending.push(u);
      schedule();
    });
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  // ===============================================================================================
  // Alarm rows (alarms page and site page), with acknowledge / clear for operators.
  // ===============================================================================================
  function alarmRow(a, opts) {
    const showSite = opts && opts.showSite;
    const tr = el("tr", { class: `al-${a.state}`, dataset: { alarm: String(a.id), state: a.state } });
    tr.append(el("td", { class: "num", text: String(a.id) }));
    if (showSite) tr.append(el("td", {}, siteLink(a.site_id)));
    tr.append(
      el("td", { text: a.kind + (a.sensor_id ? ` · ${a.sensor_id}` : "") + (a.break_in ? " · BREAK-IN" : "") }),
      el("td", { class: `sev ${a.severity}`, text: a.severity }),
      el("td", { dataset: { k: "state" }, text: a.state }),
      el("td", { class: "wrap", text: a.message }),
    );
    if (showSite) tr.append(el("td", { class: "num", text: a.value === null ? "–" : num(a.value, 2) }));
    tr.append(
      el("td", { text: when(a.raised_at) }),
      el("td", { dataset: { k: "ack" }, text: a.acknowledged_at ? `${a.acknowledged_by} · ${when(a.acknowledged_at)}` : "–" }),
      el("td", { dataset: { k: "cleared" }, text: a.cleared_at ? `${a.cleared_by} · ${when(a.cleared_at)}` : "–" }),
    );
    const actions = el("td", {});
    if (can("operator") && a.state !== "cleared") {
      if (a.state === "raised") actions.append(el("button", { class: "act", type: "button", dataset: { action: "acknowledge" }, onclick: () => alarmAction(a, "acknowledge", opts) }, "Acknowledge"));
      actions.append(el("button", { class: "act", type: "button", dataset: { action: "clear" }, onclick: () => alarmAction(a, "clear", opts) }, "Clear"));
    }
    tr.append(actions);
    return tr;
  }

  async function alarmAction(a, action, opts) {
    const noteInput = $("#alarm-note");
    const note = noteInput ? noteInput.value.trim() : "";
    try {
      const updated = await api(`/dashboard/api/alarms/${a.id}/${action}`, { method: "POST", body: { note } });
      toast(`alarm ${a.id} ${updated.state} by ${action === "clear" ? updated.cleared_by : updated.acknowledged_by}`);
      if (opts && opts.onChange) opts.onChange(updated);
    } catch (e) {
      toast(`could not ${action} alarm ${a.id}: ${e.message}`, true);
    }
  }

  function alarmsPage() {
    const tbody = $("#alarms tbody");
    const form = $("#alarm-filters");
    const kinds = $("#f-kind");
    for (const k of BOOT.kinds || []) kinds.append(el("option", { value: k, text: k }));
    const params = new URLSearchParams(location.search);
    for (const [k, v] of params) { const f = form.elements.namedItem(k); if (f) f.value = v; }
    const byId = new Map();
    const filters = () => Object.fromEntries(new FormData(form).entries());
    function matches(a) {
      const f = filters();
      if (f.state === "open" && a.state === "cleared") return false;
      if (f.state && f.state !== "open" && a.state !== f.state) return false;
      if (f.severity && a.severity !== f.severity) return false;
      if (f.site && a.site_id !== f.site) return false;
      if (f.kind && a.kind !== f.kind) return false;
      if (f.q && !(`${a.message} ${a.site_id} ${a.kind} ${a.sensor_id || ""}`).toLowerCase().includes(f.q.toLowerCase())) return false;
      return true;
    }
    const opts = { showSite: true, onChange: upsert };
    function upsert(a) {
      const prev = byId.get(a.id);
      if (!matches(a)) { if (prev) { prev.remove(); byId.delete(a.id); } count(); return; }
      const tr = alarmRow(a, opts);
      if (prev) prev.replaceWith(tr); else tbody.prepend(tr);
      flash([tr]);
      byId.set(a.id, tr);
      count();
    }
    const count = () => { $("#alarm-count").textContent = `${byId.size} shown`; };
    async function load() {
      const f = filters();
      const qs = new URLSearchParams(Object.entries(f).filter(([, v]) => v !== ""));
      history.replaceState(null, "", `?${qs}`);
      const data = await api(`/dashboard/api/alarms?${qs}`);
      byId.clear();
      const frag = document.createDocumentFragment();
      for (const a of data.alarms) { const tr = alarmRow(a, opts); byId.set(a.id, tr); frag.append(tr); }
      tbody.replaceChildren(frag);
      count();
      window.MDC.ready = true;
    }
    form.addEventListener("submit", (e) => { e.preventDefault(); load().catch((err) => toast(err.message, true)); });
    form.addEventListener("change", () => load().catch((err) => toast(err.message, true)));
    load().catch((err) => toast(err.message, true));
    live((u) => { for (const a of u.alarms || []) upsert(a); });
  }

  // ===============================================================================================
  // Site: tiles, charts against the ASHRAE bands, alarms, workloads; live refresh.
  // ===============================================================================================
  function dl(pairs) {
    const d = el("dl", {});
    for (const [k, v, cls] of pairs) d.append(el("dt", { text: k }), el("dd", { class: cls || null }, v));
    return d;
  }

  function sitePage() {
    const id = BOOT.site_id;
    let detail = BOOT.detail;
    let charts = BOOT.charts;
    const hoursSel = $("#hours");
    hoursSel.value = String(charts.hours);

    function renderDetail() {
      const d = detail, r = d.row, s = d.site, b = d.bands;
      $("#site-name").textContent = s.name || s.id;
      const st = $("#site-state");
      st.replaceChildren(stateBadge(r.state));
      $("#site-meta").textContent = `${s.jurisdiction}${s.jurisdiction_ancestors.length ? " ⊂ " + s.jurisdiction_ancestors.join(" ⊂ ") : ""} · tier ${s.security_tier} · ${s.status} · ${num(s.lat, 4)}, ${num(s.lon, 4)} · grid ${num(s.grid_power_kw, 0)} kW · IT capacity ${num(s.max_it_kw, 1)} kW · ${num(s.capacity_cores, 0)} cores`;

      const power = d.sensors.power;
      $("#t-power .body").replaceChildren(dl([
        ["IT", `${num(r.it_kw, 2)} kW`],
        ["facility", `${num(r.facility_kw, 2)} kW`],
        ["PUE", num(r.pue, 2)],
        ["utilization", `${pct(r.util)} (${r.util_src === "cpu" ? "CPU" : "cores allocated"})`],
        ["power sensors", String(power.length)],
      ]));
      const env = [];
      for (const t of d.sensors.temperature) {
        const v = t.value;
        const cls = t.context !== "Intake" ? null : (v < b.inlet_allowable_c[0] || v > b.inlet_allowable_c[1]) ? "bad" : (v < b.inlet_recommended_c[0] || v > b.inlet_recommended_c[1]) ? "warn" : "good";
        env.push([`${t.sensor} (${t.context})`, `${num(v, 1)} °C`, cls]);
      }
      for (const h of d.sensors.humidity) {
        const v = h.value;
        const cls = (v < b.humidity_allowable_pct[0] || v > b.humidity_allowable_pct[1]) ? "bad" : v > b.humidity_recommended_pct[1] ? "warn" : "good";
        env.push([`${h.sensor} (${h.context})`, `${num(v, 0)} %RH`, cls]);
      }
      $("#t-env .body").replaceChildren(env.length ? dl(env) : el("p", { class: "muted", text: "no temperature or humidity sensors" }),
        el("p", { class: "muted", text: `ASHRAE inlet: recommended ${b.inlet_recommended_c.join("–")} °C, allowable ${b.inlet_allowable_c.join("–")} °C` }));
      const ups = [];
      for (const u of d.sensors.ups) ups.push([u.sensor, u.label, u.ok ? "good" : "bad"]);
      for (const u of d.sensors.runtime) ups.push([`${u.sensor} runtime`, `${num(u.value, 1)} min`, u.value < b.ups_runtime_critical_min ? "bad" : u.value < b.ups_runtime_warning_min ? "warn" : "good"]);
      $("#t-ups .body").replaceChildren(ups.length ? dl(ups) : el("p", { class: "muted", text: "no UPS sensors" }));
      const safety = d.sensors.safety.map((x) => [`${x.sensor} (${x.type.toLowerCase()})`, x.label, x.ok ? "good" : "bad"]);
      $("#t-safety .body").replaceChildren(safety.length ? dl(safety) : el("p", { class: "muted", text: "no door, smoke, leak or intrusion sensors" }));
      const up = d.uplink, ds = d.desired;
      const hbCls = up.heartbeat_age_s === null ? "warn" : up.heartbeat_age_s > up.heartbeat_timeout_s ? "bad" : "good";
      $("#t-uplink .body").replaceChildren(dl([
        ["uplink", stateBadge(up.state)],
        ["since", when(up.since)],
        ["why", up.reason || "–", up.liveness === "up" ? null : up.liveness === "down" ? "bad" : "warn"],
        ...(up.evidence || []).map((line, i) => [i ? "" : "evidence", line]),
        ["last heartbeat", ago(up.last_heartbeat), hbCls],
        ["newest reading", ago(up.newest_reading)],
        ["last batch", up.last_batch_received ? `${ago(up.last_batch_received)} (seq ${up.last_batch_seq})` : "none"],
        ["backlog uploads (10 min)", up.late_batches_10min ? `${up.late_batches_10min} late batch(es), oldest reading ${when(up.oldest_late_reading)}` : "none", up.late_batches_10min ? "warn" : null],
        ["desired state", `v${ds.version}, agent has ${ds.acked_version === null ? "none" : "v" + ds.acked_version}${ds.status ? " (" + ds.status + ")" : ""}`, ds.backlog ? "warn" : "good"],
        ["agent", up.agent_version || "–"],
        ["trusted", up.trusted ? "yes" : `no — ${up.trust_reason || ""}`, up.trusted ? null : "bad"],
      ]));
      // what the agent reports really runs, not what was assigned
      const placed = d.workloads.filter((w) => w.state === "assigned" || w.state === "held");
      const byRun = {};
      for (const w of placed) {
        const k = !w.run ? "not reported" : w.run.state === "refused" && w.run.message.startsWith("no run spec") ? "planning only" : w.run.state;
        byRun[k] = (byRun[k] || 0) + 1;
      }
      const healthyRun = (byRun.running || 0) + (byRun["planning only"] || 0);
      const runText = placed.length ? Object.entries(byRun).map(([k, n]) => `${n} ${k}`).join(", ") : "none placed";
      $("#t-work .body").replaceChildren(dl([
        ["at the site", runText, placed.length && healthyRun < placed.length ? "warn" : placed.length ? "good" : null],
        ["cores", `${num(r.cores_used, 0)} of ${num(r.cores_cap, 0)} allocated`],
        ["data classes", el("span", {}, d.data_classes.length ? d.data_classes.map((c) => el("span", { class: "chip", text: c })) : "none")],
      ]));

      const at = $("#site-alarms tbody");
      at.replaceChildren(...d.alarms.map((a) => alarmRow(a, { onChange: () => refresh() })));
      const wt = $("#site-workloads tbody");
      wt.replaceChildren(...d.workloads.map((w) => el("tr", { dataset: { workload: w.id } },
        el("td", { text: w.id }), el("td", { text: w.data_class }), el("td", { class: "num", text: num(w.cores, 1) }),
        el("td", { text: w.state }), runCell(w.run),
        el("td", { class: "num", text: w.run ? String(w.run.restarts) : "–" }),
        el("td", { class: "wrap", text: w.run && w.run.message ? `${w.run.message} (agent)` : w.reason }))));
      $("#site-events").replaceChildren(...(d.events.length ? d.events.map((e) => el("li", { title: (e.evidence || []).join("\n") }, `${when(e.at)}: `, stateBadge(e.from), " → ", stateBadge(e.to), ` ${e.reason}`, (e.evidence || []).length ? el("div", { class: "why muted", text: e.evidence.join(" · ") }) : "")) : [el("li", { class: "muted", text: "no transitions yet" })]));
      $("#site-maintenance").replaceChildren(...(d.maintenance.length ? d.maintenance.map((m) => el("li", { text: `${when(m.starts_at)} – ${when(m.ends_at)} ${m.reason} (${m.by})` })) : [el("li", { class: "muted", text: "none planned" })]));
      const tb = $("#trust-button");
      if (tb) tb.textContent = up.trusted ? "Mark untrusted" : "Mark trusted";
    }

    function runCell(run) {
      if (!run) return el("td", { class: "muted", text: "not reported" });
      if (run.state === "refused" && run.message.startsWith("no run spec")) return el("td", { class: "muted", text: "planning only (no run spec)" });
      const bad = ["failed", "unhealthy", "refused", "backoff"].includes(run.state);
      const label = run.state + (run.healthy === true ? " · healthy" : run.healthy === false ? " · unhealthy" : "")
        + (run.exit_code !== null && run.exit_code !== undefined ? ` · exit ${run.exit_code}` : "")
        + (run.current_spec ? "" : " · old spec");
      return el("td", { class: bad ? "bad" : run.state === "running" ? "good" : "warn", title: `since ${run.since}, reported ${run.reported_at}`, text: label });
    }

    async function renderCharts() {
      $("#resolution").textContent = `${charts.resolution} data, ${charts.bucket_s} s buckets`;
      const jobs = Object.entries(charts.figures).map(([name, fig]) => draw($(`#c-${name}`), fig));
      await Promise.all(jobs);
      performance.mark("mdc-charts");
    }
    async function refresh() {
      detail = await api(`/dashboard/api/sites/${encodeURIComponent(id)}`);
      renderDetail();
    }
    const refreshCharts = throttle(async () => {
      charts = await api(`/dashboard/api/sites/${encodeURIComponent(id)}/charts?hours=${hoursSel.value}`);
      await renderCharts();
    }, 5000);
    hoursSel.addEventListener("change", async () => {
      charts = await api(`/dashboard/api/sites/${encodeURIComponent(id)}/charts?hours=${hoursSel.value}`);
      history.replaceState(null, "", `?hours=${hoursSel.value}`);
      renderCharts();
    });
    const tf = $("#trust-form");
    if (tf) tf.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api(`/dashboard/api/sites/${encodeURIComponent(id)}/trust`, { method: "POST", body: { trusted: !detail.uplink.trusted, reason: $("#trust-reason").value } });
        toast("trust changed");
        refresh();
      } catch (err) { toast(err.message, true); }
    });

    renderDetail();
    window.MDC.ready = true;
    renderCharts().catch((e) => console.error(e));
    const refreshDetail = throttle(() => refresh().catch((e) => toast(e.message, true)), 1000);
    live((u) => {
      const mine = (u.sites || []).some((r) => r.id === id) || (u.alarms || []).some((a) => a.site_id === id);
      if (u.removed && u.removed.includes(id)) { toast("this site was deleted", true); return; }
      if (mine || u.placement) { refreshDetail(); refreshCharts(); }
    });
  }

  // ===============================================================================================
  // Placement: what runs where, why (filters, ranking), and the history of changes.
  // ===============================================================================================
  function placementPage() {
    let data = BOOT.placement;
    const tbody = $("#workloads tbody");
    const filter = $("#wl-filter");
    let selected = null;
    let sorter = null;
    function counts() {
      const c = data.counts;
      const order = ["assigned", "held", "degraded", "pending"];
      $("#placement-counts").replaceChildren(
        el("div", { class: "card stat" }, el("div", { class: "k", text: "workloads" }), el("div", { class: "v", text: String(data.workloads.length) })),
        ...order.filter((k) => c[k] !== undefined || k !== "pending").map((k) =>
          el("div", { class: `card stat ${k === "degraded" && c[k] ? "s-down" : ""}` }, el("div", { class: "k", text: k }), el("div", { class: "v", dataset: { count: k }, text: String(c[k] || 0) }))));
    }
    function render() {
      const q = filter.value.trim().toLowerCase();
      const frag = document.createDocumentFragment();
      for (const w of sorter.sort(data.workloads)) {
        if (q && !(`${w.id} ${w.name} ${w.site_id || ""} ${w.data_class} ${w.state}`).toLowerCase().includes(q)) continue;
        const tr = el("tr", { class: w.id === selected ? "selected" : null, dataset: { workload: w.id }, onclick: () => explain(w.id) },
          el("td", {}, el("a", { href: "#", text: w.id, onclick: (e) => { e.preventDefault(); } })),
          el("td", { text: w.data_class }),
          el("td", { class: "num", text: num(w.cores, 1) }),
          el("td", {}, w.site_id ? siteLink(w.site_id) : el("span", { class: "muted", text: "none" }), w.site_state ? " " : "", w.site_state ? stateBadge(w.site_state) : ""),
          el("td", {}, el("span", { class: `tag ${w.state === "assigned" ? "placed" : w.state}`, text: w.state })),
          el("td", { class: "wrap", text: w.reason }),
          el("td", { text: when(w.placed_at) }));
        frag.append(tr);
      }
      tbody.replaceChildren(frag);
    }
    function historyView() {
      const h = $("#history");
      if (!data.history.length) { h.replaceChildren(el("p", { class: "muted", text: "no placement changes recorded yet" })); return; }
      h.replaceChildren(...data.history.map((run) => el("div", { class: "run" },
        el("div", { class: "head", text: `${when(run.ts)} · triggered by ${run.trigger} · ${run.total} change(s)` }),
        el("ul", { class: "events" }, run.changes.map((c) => el("li", {},
          el("span", { class: `tag ${c.kind}`, text: c.kind }), " ", el("b", { text: c.workload_id }), ": ",
          c.from_site ? siteLink(c.from_site) : el("span", { class: "muted", text: "none" }), " → ",
          c.to_site ? siteLink(c.to_site) : el("span", { class: "muted", text: "unassigned" }),
          el("span", { class: "muted", text: ` — ${c.reason}` })))))));
    }
    async function explain(wid) {
      selected = wid;
      render();
      const box = $("#explain");
      try {
        const x = await api(`/dashboard/api/placement/${encodeURIComponent(wid)}`);
        const w = x.workload;
        box.replaceChildren(
          el("h2", { text: `Why ${w.id} is ${w.site_id ? "at " + w.site_id : "unassigned"}` }),
          dl([
            ["state", w.state], ["reason", w.reason], ["data class", w.data_class],
            ["allowed jurisdictions", w.allowed.join(", ")], ["minimum tier", String(w.min_tier)], ["cores", num(w.cores, 1)],
            ["placer", x.placer],
          ]),
          el("h3", { text: `Filters (${x.sites} sites; the first filter that rejects a site names it)` }),
          el("table", { class: "grid explain", id: "explain-filters" },
            el("thead", {}, el("tr", {}, el("th", { text: "filter" }), el("th", { class: "num", text: "sites excluded" }), el("th", { text: "for example" }))),
            el("tbody", {}, x.filters.map((f) => el("tr", { dataset: { filter: f.name } },
              el("td", { text: f.name }), el("td", { class: "num", text: String(f.excluded) }),
              el("td", { class: "wrap" }, f.examples.slice(0, 6).map((e) => el("div", {}, siteLink(e.site), ` ${e.reason}`))))))),
          el("h3", { text: `Feasible sites: ${x.feasible_total} — ranked ${x.ranking}` }),
          el("table", { class: "grid explain", id: "explain-feasible" },
            el("thead", {}, el("tr", {}, ["rank", "site", "jurisdiction", "origin", "free cores", "free after", "score"].map((h) => el("th", { text: h })))),
            el("tbody", {}, x.feasible.map((c) => el("tr", { class: c.site === w.site_id ? "selected" : null },
              el("td", { class: "num", text: String(c.rank) }), el("td", {}, siteLink(c.site)), el("td", { text: c.jurisdiction }),
              el("td", { text: c.origin_match ? "yes" : "no" }), el("td", { class: "num", text: num(c.free_cores, 1) }),
              el("td", { class: "num", text: num(c.free_after, 1) }), el("td", { class: "num", text: pct(c.score) }))))),
        );
      } catch (e) { toast(e.message, true); }
    }
    sorter = sortable($("#workloads"), () => data.workloads, render, ["id", 1]);
    filter.addEventListener("input", render);
    counts(); render(); historyView();
    window.MDC.ready = true;
    const reload = throttle(async () => {
      data = await api("/dashboard/api/placement");
      counts(); render(); historyView();
      if (selected) explain(selected);
    }, 2000);
    live((u) => { if (u.placement || (u.sites && u.sites.length)) reload(); });
  }

  // ===============================================================================================
  // Audit (admin): search, verification status.
  // ===============================================================================================
  function auditPage() {
    const tbody = $("#audit tbody");
    const form = $("#audit-search");
    const sel = $("#a-action");
    for (const a of BOOT.actions || []) sel.append(el("option", { value: a, text: a }));
    let oldest = null;
    function showVerify(v) {
      const s = $("#verify-status");
      if (!v) { s.textContent = "verifying…"; s.className = "verify"; return; }
      s.className = `verify ${v.ok ? "ok" : "broken"}`;
      s.textContent = v.ok ? `intact: ${v.checked.toLocaleString()} entries verified (${when(v.verified_at)}, ${v.duration_s} s)`
        : `BROKEN at entry ${v.first_bad_seq}: ${v.reason} (checked ${v.checked.toLocaleString()}, ${when(v.verified_at)})`;
    }
    function row(e) {
      return el("tr", { dataset: { seq: String(e.seq) } },
        el("td", { class: "num", text: String(e.seq) }), el("td", { text: when(e.ts) }), el("td", { text: e.actor }),
        el("td", { text: e.action }), el("td", { text: e.target }), el("td", { class: e.outcome === "success" ? null : "warn", text: e.outcome }),
        el("td", { text: e.client_ip }), el("td", {}, el("pre", { class: "details", text: e.details })));
    }
    function query(before) {
      const f = Object.fromEntries(new FormData(form).entries());
      const qs = new URLSearchParams(Object.entries(f).filter(([, v]) => v !== ""));
      if (before) qs.set("before_seq", String(before));
      qs.set("limit", "200");
      return qs;
    }
    async function load(more) {
      const data = await api(`/dashboard/api/audit?${query(more ? oldest : null)}`);
      const rows = data.entries.map(row);
      if (more) tbody.append(...rows); else tbody.replaceChildren(...rows);
      if (data.entries.length) oldest = data.entries[data.entries.length - 1].seq;
      $("#audit-more").hidden = data.entries.length < 200;
      $("#audit-new").textContent = "";
      window.MDC.ready = true;
    }
    form.addEventListener("submit", (e) => { e.preventDefault(); load(false).catch((err) => toast(err.message, true)); });
    $("#audit-more").addEventListener("click", () => load(true).catch((err) => toast(err.message, true)));
    $("#verify-now").addEventListener("click", async () => {
      showVerify(null);
      try { showVerify(await api("/dashboard/api/audit/verify?fresh=true")); } catch (e) { toast(e.message, true); }
    });
    showVerify(BOOT.verify);
    if (!BOOT.verify) api("/dashboard/api/audit/verify").then(showVerify).catch((e) => toast(e.message, true));
    load(false).catch((err) => toast(err.message, true));
    const reload = throttle(() => load(false).catch(() => {}), 2000);
    live((u) => {
      if (!u.audit_seq) return;
      const f = Object.fromEntries(new FormData(form).entries());
      if (!f.q && !f.action && !f.actor) reload();
      else $("#audit-new").textContent = `new entries up to seq ${u.audit_seq} — search again to see them`;
    });
  }

  // --- boot ----------------------------------------------------------------------------------------
  function start() {
    if (BOOT.summary) setSummary(BOOT.summary);
    const pages = { fleet: fleetPage, site: sitePage, alarms: alarmsPage, placement: placementPage, audit: auditPage };
    if (pages[PAGE]) pages[PAGE]();
    else window.MDC.ready = true;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
