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

    const tb = $("load").tBodies[0];
    tb.replaceChildren();
    for (const l of s.load || []) {
      const tr = el("tr");
      const bar = el("span", "bar"), fill = el("i");
      fill.style.width = Math.min(100, (100 * l.active) / Math.max(1, l.budget)) + "%";
      bar.append(fill);
      const c = el("td");
      c.append(bar, document.createTextNode(l.active + " / " + l.budget));
      tr.append(el("td", "", l.server), c, el("td", "", l.connections_budget ? String(l.connections_budget) : "–"));
      tb.append(tr);
    }

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

  function drawChart(samples) {
    const c = $("chart"), dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 640, h = c.clientHeight || 200;
    c.width = w * dpr; c.height = h * dpr;
    const g = c.getContext("2d");
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const L = 56, R = 10, T = 10, B = 28;
    // Rates between samples: items per second.
    const pts = [];
    for (let i = 1; i < samples.length; i++) {
      const dt = samples[i].t - samples[i - 1].t;
      if (dt <= 0) continue;
      pts.push({ t: samples[i].t, r: (samples[i].items - samples[i - 1].items) / dt, b: (samples[i].bytes - samples[i - 1].bytes) / dt });
    }
    g.strokeStyle = "#ccd"; g.fillStyle = "#556"; g.font = "11px system-ui, sans-serif";
    g.beginPath(); g.moveTo(L, T); g.lineTo(L, h - B); g.lineTo(w - R, h - B); g.stroke();
    if (!pts.length) {
      g.fillText("no throughput yet", L + 10, T + 20);
      $("chart-legend").textContent = "items per second over the run";
      return;
    }
    const tmax = Math.max(...pts.map((p) => p.t), 1), rmax = Math.max(...pts.map((p) => p.r), 1);
    for (let k = 0; k <= 4; k++) {
      const y = h - B - ((h - B - T) * k) / 4;
      g.fillText(Math.round((rmax * k) / 4).toLocaleString("en-US"), 4, y + 4);
      g.fillText(dur((tmax * k) / 4), L + ((w - L - R) * k) / 4 - 10, h - 8);
    }
    g.strokeStyle = "#2463eb"; g.lineWidth = 2; g.beginPath();
    pts.forEach((p, i) => {
      const x = L + ((w - L - R) * p.t) / tmax, y = h - B - ((h - B - T) * p.r) / rmax;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
    const last = pts[pts.length - 1];
    $("chart-legend").textContent = "items per second (y) over elapsed time (x); last: " +
      Math.round(last.r).toLocaleString("en-US") + " items/s, " + bytes(last.b) + "/s";
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
