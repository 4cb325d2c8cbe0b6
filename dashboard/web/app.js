// zxmigrate dashboard: polls /api/status every second and /api/accounts
// when its version changes; renders only the visible rows of the accounts
// table so that 50,000 accounts stay smooth. Every server-provided string is
// set with textContent, never parsed as HTML.
"use strict";
(function () {
  const ROW_H = 26, OVERSCAN = 10;
  const COL = { account: 0, status: 1, phase: 2, size: 3, seconds: 4, items: 5, bytes: 6, problems: 7 };
  const STATES = ["pending", "running", "done", "partial", "failed", "not_run", "interrupted"];
  let rows = [], view = [], version = 0, lastRows = 0, sortKey = "size", sortDir = -1, lastStatus = null;
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function bytes(n) {
    if (!n) return "0 B";
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function dur(s) {
    if (s < 0 || s === undefined || s === null) return "–";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + r + "s";
    return r + "s";
  }
  const num = (n) => (n || 0).toLocaleString("en-US");

  async function get(path) {
    const r = await fetch(path, { cache: "no-store", credentials: "same-origin" });
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  function renderStatus(s) {
    lastStatus = s;
    $("plan").textContent = s.plan || "";
    const state = s.finished && s.finished !== "0001-01-01T00:00:00Z" ? (s.outcome || "finished") : (s.started ? "running" : "waiting");
    $("run").textContent = (s.run_id ? "run " + s.run_id + " · " : "") + state + (s.source === "store" ? " · from the state store" : "");
    $("total").textContent = num(s.total);
    $("counts-from").textContent = s.counts_from === "store" ? "counts from the state store" : "counts from this runner";
    $("items").textContent = num(s.items);
    $("bytes").textContent = bytes(s.bytes) + (s.size ? " of " + bytes(s.size) + " on the source" : "");
    const start = s.started ? Date.parse(s.started) : 0;
    const end = s.finished && !s.finished.startsWith("0001") ? Date.parse(s.finished) : Date.parse(s.now);
    $("elapsed").textContent = start ? dur((end - start) / 1000) : "–";
    $("eta").textContent = s.eta_seconds === 0 ? "finished" : s.eta_seconds > 0 ? dur(s.eta_seconds) : "unknown";
    $("problems-total").textContent = num(s.problems_total);

    const states = $("states");
    states.replaceChildren();
    for (const st of STATES) {
      const n = (s.accounts || {})[st] || 0;
      if (!n && (st === "not_run" || st === "interrupted")) continue;
      const d = el("div", "state s-" + st);
      d.id = "count-" + st;
      d.append(el("b", "", num(n)), el("span", "muted", st.replace("_", " ")));
      states.append(d);
    }

    const phases = $("phases");
    phases.replaceChildren();
    for (const p of s.phases || []) {
      const d = el("div", "phase");
      d.append(el("b", "", p.phase.replace("_", " ")));
      d.append(el("span", "muted", p.global ? (p.status || "pending") : (p.active || 0) + " at work · " + (p.done || 0) + " finished"));
      phases.append(d);
    }

    renderLoad(s.load || []);

    const pr = $("problems");
    pr.replaceChildren();
    const list = (s.problems || []).slice(0, 200);
    if (!list.length) pr.append(el("div", "muted", "none so far"));
    for (const p of list) {
      const d = el("div");
      d.append(el("span", p.skipped ? "k" : "f", p.skipped ? "skipped " : "failed "));
      d.append(document.createTextNode([p.account, p.phase, p.item].filter(Boolean).join(" · ") + ": " + p.reason));
      pr.append(d);
    }
    drawChart(s.throughput || []);
  }

  // renderLoad fills the servers table: per server, the accounts at work
  // against the budget of accounts at once, connections in use against the
  // connection budget, operations per second, retries, throttle answers
  // and latency.
  function renderLoad(load) {
    const tb = $("load").tBodies[0];
    tb.replaceChildren();
    if (!load.length) {
      const tr = el("tr"), td = el("td", "muted", "no servers yet");
      td.colSpan = 7;
      tr.append(td);
      tb.append(tr);
    }
    for (const l of load) {
      const tr = el("tr");
      tr.dataset.server = l.server;
      const name = el("td");
      const about = [l.side, l.kind].filter(Boolean);
      if (l.budget) about.push(l.active + " / " + l.budget + " accounts");
      name.append(el("b", "", l.server), el("div", "muted", about.join(" · ")));
      tr.append(name);
      const c = el("td", "num");
      if (l.connections_budget) {
        const bar = el("span", "bar"), fill = el("i");
        fill.style.width = Math.min(100, (100 * l.connections) / l.connections_budget) + "%";
        bar.append(fill);
        c.append(bar, document.createTextNode(l.connections + " / " + l.connections_budget));
      } else {
        c.textContent = String(l.connections || 0);
      }
      c.className = "num conns";
      tr.append(c);
      tr.append(el("td", "num", rate(l.rate) + (l.rate_limit ? " / " + rate(l.rate_limit) : "")));
      const ops = el("td", "num", num(l.ops));
      if (l.errors) ops.append(el("div", "muted", num(l.errors) + " failed"));
      tr.append(ops);
      tr.append(el("td", "num" + (l.retries ? " warn" : ""), num(l.retries)));
      const th = el("td", "num" + (l.throttled ? " warn" : ""), num(l.throttled));
      if (l.last_throttle) th.append(el("div", "muted", "last " + l.last_throttle));
      tr.append(th);
      tr.append(el("td", "num", l.ops ? ms(l.p50_seconds) + " / " + ms(l.p95_seconds) : "–"));
      tb.append(tr);
    }
  }
  function rate(r) { return (r || 0) < 10 ? (r || 0).toFixed(1) : Math.round(r).toLocaleString("en-US"); }
  function ms(s) { return s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(1) + " s"; }

  // niceStep rounds a raw tick step up to 1, 2, 2.5 or 5 times a power of 10.
  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }
  // TIME_STEPS are the time tick intervals, in seconds.
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  function clock(s) {
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => (n < 10 ? "0" : "") + n;
    return h ? h + ":" + two(m) + ":" + two(r) : m + ":" + two(r);
  }

  // drawChart plots items copied per second against the time elapsed
  // since the run started, with labelled axes, round ticks and a grid.
  function drawChart(samples) {
    const c = $("chart"), dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 640, h = c.clientHeight || 240;
    c.width = w * dpr; c.height = h * dpr;
    const g = c.getContext("2d");
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const L = 70, R = 16, T = 14, B = 44, pw = w - L - R, ph = h - T - B;
    // Rates averaged over a window of about a sixtieth of the run (5 s at
    // least): items per second.
    const span = samples.length ? samples[samples.length - 1].t : 0, win = Math.max(5, span / 60);
    const pts = [];
    for (let i = 1, j = 0; i < samples.length; i++) {
      while (j < i - 1 && samples[i].t - samples[j + 1].t >= win) j++;
      const dt = samples[i].t - samples[j].t;
      if (dt <= 0) continue;
      pts.push({ t: samples[i].t, r: (samples[i].items - samples[j].items) / dt, b: (samples[i].bytes - samples[j].bytes) / dt });
    }
    const tEnd = Math.max(samples.length ? samples[samples.length - 1].t : 0, 10);
    const rTop = Math.max(...pts.map((p) => p.r), 1);
    const yStep = niceStep(rTop / 4), yMax = Math.ceil(rTop / yStep) * yStep;
    let xStep = TIME_STEPS[TIME_STEPS.length - 1];
    for (const s of TIME_STEPS) if (tEnd / s <= Math.max(3, Math.floor(pw / 90))) { xStep = s; break; }
    const X = (t) => L + (pw * t) / tEnd, Y = (r) => T + ph - (ph * r) / yMax;

    g.font = "12px system-ui, sans-serif";
    g.lineWidth = 1;
    // Grid and y ticks.
    g.textAlign = "right"; g.textBaseline = "middle";
    for (let v = 0; v <= yMax + yStep / 2; v += yStep) {
      const y = Math.round(Y(v)) + 0.5;
      g.strokeStyle = v ? "#eceef2" : "#99a"; g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke();
      g.fillStyle = "#445"; g.fillText(v.toLocaleString("en-US"), L - 6, y);
    }
    // x ticks.
    g.textAlign = "center"; g.textBaseline = "top";
    for (let t = 0; t <= tEnd + 1e-9; t += xStep) {
      const x = Math.round(X(t)) + 0.5;
      g.strokeStyle = t ? "#eceef2" : "#99a"; g.beginPath(); g.moveTo(x, T); g.lineTo(x, T + ph + 4); g.stroke();
      g.fillStyle = "#445"; g.fillText(clock(t), x, T + ph + 6);
    }
    // Axis titles, with units.
    g.fillStyle = "#223"; g.font = "600 12px system-ui, sans-serif";
    g.fillText("time since the run started (m:ss, h:mm:ss)", L + pw / 2, h - 16);
    g.save(); g.translate(14, T + ph / 2); g.rotate(-Math.PI / 2); g.textBaseline = "middle";
    g.fillText("items copied per second", 0, 0); g.restore();

    if (!pts.length) {
      g.textAlign = "left"; g.fillStyle = "#667"; g.font = "12px system-ui, sans-serif";
      g.fillText("no throughput yet", L + 10, T + 16);
      $("chart-legend").textContent = "Items (messages, events, contacts) copied per second.";
      return;
    }
    g.strokeStyle = "#2463eb"; g.lineWidth = 2; g.lineJoin = "round"; g.beginPath();
    pts.forEach((p, i) => { i ? g.lineTo(X(p.t), Y(p.r)) : g.moveTo(X(p.t), Y(p.r)); });
    g.stroke();
    const last = pts[pts.length - 1];
    $("chart-legend").textContent = "Items (messages, events, contacts) copied per second, averaged over " +
      Math.round(win) + " s. Last: " + Math.round(last.r).toLocaleString("en-US") + " items/s, " + bytes(last.b) + "/s.";
  }

  function applyView() {
    const q = $("search").value.trim().toLowerCase(), st = $("state-filter").value;
    view = rows.filter((r) => (!st || r[1] === st) && (!q || r[0].toLowerCase().includes(q)));
    const c = COL[sortKey];
    view.sort((a, b) => {
      const x = a[c], y = b[c];
      const d = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return d * sortDir || a[0].localeCompare(b[0]);
    });
    $("shown").textContent = num(view.length);
    $("spacer").style.height = view.length * ROW_H + "px";
    for (const b of document.querySelectorAll(".thead button")) {
      b.classList.toggle("asc", b.dataset.sort === sortKey && sortDir > 0);
      b.classList.toggle("desc", b.dataset.sort === sortKey && sortDir < 0);
    }
    renderRows();
  }

  function renderRows() {
    const vp = $("viewport");
    const first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW_H) + OVERSCAN);
    const box = $("rows");
    box.style.top = first * ROW_H + "px";
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      const r = view[i], d = el("div", "row");
      d.dataset.status = r[1];
      d.dataset.size = r[3];
      d.append(el("span", "", r[0]), el("span", "st st-" + r[1], r[1].replace("_", " ")), el("span", "", r[2] || ""),
        el("span", "num", bytes(r[3])), el("span", "num", dur(r[4])), el("span", "num", num(r[5])),
        el("span", "num", bytes(r[6])), el("span", "num", num(r[7])));
      frag.append(d);
    }
    box.replaceChildren(frag);
  }

  async function pollStatus() {
    try {
      const s = await get("api/status");
      renderStatus(s);
      $("conn").textContent = "";
      // The table changes with every progress event; fetch it again at
      // most every 2 s (10 s for very large tables), and at once when the
      // run has finished.
      const every = rows.length > 10000 ? 10000 : 2000;
      const ended = s.finished && !s.finished.startsWith("0001");
      if (s.accounts_version !== version && (ended || Date.now() - lastRows >= every)) await pollAccounts();
    } catch (e) {
      $("conn").textContent = "not connected: " + e.message;
    }
  }
  async function pollAccounts() {
    lastRows = Date.now();
    const a = await get("api/accounts?v=" + version);
    if (a.rows) {
      rows = a.rows;
      version = a.version;
      applyView();
    }
  }

  let scheduled = false;
  document.addEventListener("DOMContentLoaded", () => {
    $("viewport").addEventListener("scroll", () => {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => { scheduled = false; renderRows(); });
    });
    let t = 0;
    $("search").addEventListener("input", () => { clearTimeout(t); t = setTimeout(applyView, 150); });
    $("state-filter").addEventListener("change", applyView);
    for (const b of document.querySelectorAll(".thead button")) {
      b.addEventListener("click", () => {
        const k = b.dataset.sort;
        if (sortKey === k) sortDir = -sortDir;
        else { sortKey = k; sortDir = k === "account" || k === "status" || k === "phase" ? 1 : -1; }
        applyView();
      });
    }
    window.addEventListener("resize", () => { if (lastStatus) drawChart(lastStatus.throughput || []); renderRows(); });
    pollStatus();
    setInterval(pollStatus, 1000);
  });
})();
