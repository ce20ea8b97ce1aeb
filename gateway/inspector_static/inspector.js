// The raydo inspector: plain DOM over the JSON routes under /_raydo/inspector/api.
// Text from the app (names, keys, rows) only ever becomes textContent, never markup.
"use strict";

const API = "/_raydo/inspector/api";
const PAGE = 50;
const POLL_MS = 2000;
const POINTS = 60;
const COLORS = ["#2f5bd3", "#d3452f", "#2f9e5b", "#a34fd3", "#d39a2f", "#2fa3b8", "#6b7385"];

// ---- small helpers --------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key === "className") {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(path, params, body) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const url = API + path + (query.toString() ? "?" + query : "");
  const options = body === undefined
    ? { credentials: "same-origin" }
    : {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      };
  const reply = await fetch(url, options);
  let data = null;
  try {
    data = await reply.json();
  } catch (e) {
    data = { message: reply.statusText };
  }
  if (!reply.ok) throw new Error((data && data.message) || "HTTP " + reply.status);
  return data;
}

function shown(value) {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function grid(columns, rows, onPick) {
  if (!rows.length) return el("p", { className: "empty" }, "(none)");
  const head = el("tr", {}, ...columns.map((c) => el("th", {}, c)));
  const body = rows.map((row, i) => {
    const tr = el("tr", {}, ...row.map((v) => el("td", {}, shown(v))));
    if (onPick) {
      tr.className = "pick";
      tr.addEventListener("click", () => onPick(i));
    }
    return tr;
  });
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function view(...children) {
  const section = document.getElementById("view");
  section.replaceChildren(...children);
  return section;
}

function failed(error) {
  return el("p", { className: "error" }, error.message || String(error));
}

function pager(label, hasMore, onMore) {
  if (!hasMore) return null;
  return el("button", { className: "plain", on: { click: onMore } }, label);
}

// ---- the bindings ---------------------------------------------------------------------

let current = null;

function pick(button, open) {
  for (const b of document.querySelectorAll("nav button")) b.classList.remove("current");
  button.classList.add("current");
  stopCharts();
  open();
}

async function loadBindings() {
  const nav = document.getElementById("bindings");
  let data;
  try {
    data = await api("/bindings");
  } catch (error) {
    nav.replaceChildren(failed(error));
    return;
  }
  document.getElementById("app").textContent = data.app;
  const groups = [];
  const user = data.objects.filter((b) => !b.internal);
  const internal = data.objects.filter((b) => b.internal);
  const button = (label, dataset, open, className) => {
    const b = el("button", { dataset, className: className || "" }, label);
    b.addEventListener("click", () => pick(b, open));
    return b;
  };
  groups.push(el("h2", {}, "Durable Objects"));
  for (const b of user) {
    groups.push(button(b.name, { binding: b.name }, () => showObjects(b.name)));
  }
  if (internal.length) groups.push(el("h2", {}, "Internal objects"));
  for (const b of internal) {
    groups.push(button(b.name, { binding: b.name }, () => showObjects(b.name), "internal"));
  }
  if (data.queues.length) {
    groups.push(el("h2", {}, "Queues"));
    groups.push(button("All queues", { view: "queues" }, showQueues));
  }
  if (data.buckets.length) {
    groups.push(el("h2", {}, "Blob buckets"));
    for (const name of data.buckets) {
      groups.push(button(name, { bucket: name }, () => showBucket(name)));
    }
  }
  groups.push(el("h2", {}, "Hosts"));
  groups.push(button("Live charts", { view: "charts" }, showCharts));
  nav.replaceChildren(...groups);
}

// ---- objects of a binding -------------------------------------------------------------

function showObjects(binding) {
  current = { binding };
  const find = el("input", { type: "text", id: "find", placeholder: "an object's name or 64-hex id" });
  const list = el("div", { id: "objects" });
  const open = () => {
    const text = find.value.trim();
    if (!text) return;
    const target = /^[0-9a-f]{64}$/.test(text) ? { id: text } : { name: text };
    showObject(binding, target);
  };
  find.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  view(
    el("h2", {}, "Objects of ", binding),
    el("div", { className: "row" }, find,
      el("button", { className: "action", id: "find-open", on: { click: open } }, "Open")),
    list,
  );
  loadObjects(binding, list, null);
}

async function loadObjects(binding, list, after) {
  let data;
  try {
    data = await api("/objects", { binding, after, limit: PAGE });
  } catch (error) {
    list.replaceChildren(failed(error));
    return;
  }
  const rows = data.objects.map((o) => [o.name === null ? "-" : o.name, o.id, o.size_bytes,
    o.last_write, o.alarm === null ? "-" : o.alarm]);
  const table = grid(["name", "id", "bytes", "last write", "alarm"], rows,
    (i) => showObject(binding, { id: data.objects[i].id }));
  const more = pager("Next page", data.next !== null, () => loadObjects(binding, list, data.next));
  const back = after === null ? null
    : el("button", { className: "plain", on: { click: () => loadObjects(binding, list, null) } },
      "First page");
  list.replaceChildren(table, el("div", { className: "row" }, back, more));
}

// ---- one object -----------------------------------------------------------------------

async function showObject(binding, target) {
  let data;
  try {
    data = await api("/object", { binding, ...target });
  } catch (error) {
    view(el("h2", {}, "Object of ", binding), failed(error));
    return;
  }
  const key = { binding, id: data.id };
  const tables = el("div", { id: "tables" });
  const rows = el("div", { id: "table-rows" });
  for (const [name, count] of Object.entries(data.tables)) {
    tables.append(el("button", {
      className: "plain",
      dataset: { table: name },
      on: { click: () => loadRows(key, name, rows, 0) },
    }, `${name} (${count})`));
  }
  if (!Object.keys(data.tables).length) tables.append(el("span", { className: "empty" }, "(no tables)"));
  const sockets = grid(["socket", "tags", "held here"],
    data.sockets.map((s) => [s.sid, s.tags.join(", "), s.here ? "yes" : "no"]));
  const pairs = el("div", { id: "kv" });
  const query = el("textarea", { id: "sql", spellcheck: "false" });
  query.value = Object.keys(data.tables).length
    ? `SELECT * FROM "${Object.keys(data.tables)[0]}" LIMIT 20` : "SELECT * FROM _raydo_kv";
  const result = el("div", { id: "sql-result" });
  const error = el("div", { id: "sql-error", className: "error" });
  const run = async () => {
    result.replaceChildren();
    error.textContent = "";
    try {
      const answer = await api("/object/sql", null, { ...key, query: query.value });
      const note = answer.truncated ? ` (first ${answer.rows.length} rows)` : "";
      result.replaceChildren(grid(answer.columns, answer.rows),
        el("p", { className: "hint" }, `${answer.rows.length} row(s) in ${answer.seconds} s${note}`));
    } catch (e) {
      error.textContent = e.message;
    }
  };
  query.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
  });
  view(
    el("h2", { id: "object-name" }, binding, " / ", data.name === null ? data.id : data.name),
    el("dl", { className: "facts" },
      el("dt", {}, "id"), el("dd", {}, data.id),
      el("dt", {}, "name"), el("dd", {}, data.name === null ? "-" : data.name),
      el("dt", {}, "alarm"), el("dd", { id: "alarm" }, data.alarm === null ? "none" : data.alarm),
      el("dt", {}, "key-value pairs"), el("dd", {}, data.kv_pairs)),
    el("h3", {}, "Tables"), tables, rows,
    el("h3", {}, "Key-value pairs"), pairs,
    el("h3", {}, "Open WebSockets"), el("div", { id: "sockets" }, sockets),
    el("h3", {}, "SQL (read-only)"), query,
    el("div", { className: "row" },
      el("button", { className: "action", id: "sql-run", on: { click: run } }, "Run"),
      el("span", { className: "hint" }, "Ctrl+Enter")),
    error, result,
  );
  loadPairs(key, pairs, null);
}

async function loadRows(key, table, holder, offset) {
  let data;
  try {
    data = await api("/object/table", { ...key, table, offset, limit: PAGE });
  } catch (error) {
    holder.replaceChildren(failed(error));
    return;
  }
  const end = offset + data.rows.length;
  const prev = offset > 0
    ? el("button", { className: "plain", on: { click: () => loadRows(key, table, holder, Math.max(0, offset - PAGE)) } }, "Previous")
    : null;
  const next = pager("Next", end < data.total, () => loadRows(key, table, holder, end));
  holder.replaceChildren(
    el("h3", {}, table, ` rows ${data.rows.length ? offset + 1 : 0}-${end} of ${data.total}`),
    grid(data.columns, data.rows),
    el("div", { className: "row" }, prev, next),
  );
}

async function loadPairs(key, holder, after) {
  let data;
  try {
    data = await api("/object/kv", { ...key, after, limit: PAGE });
  } catch (error) {
    holder.replaceChildren(failed(error));
    return;
  }
  holder.replaceChildren(
    grid(["key", "value"], data.pairs.map((p) => [p.key, p.value])),
    el("div", { className: "row" }, pager("Next", data.next !== null, () => loadPairs(key, holder, data.next))),
  );
}

// ---- queues ---------------------------------------------------------------------------

async function showQueues() {
  let data;
  try {
    data = await api("/queues");
  } catch (error) {
    view(el("h2", {}, "Queues"), failed(error));
    return;
  }
  const messages = el("div", { id: "queue-messages" });
  const rows = data.queues.map((q) => [q.queue, q.ready, q.delayed, q.in_flight, q.acked,
    q.retried, q.dead_lettered, q.dropped,
    q.dead_letter_queue || (q.dead_letters_of ? `(dead letters of ${q.dead_letters_of})` : "-")]);
  view(
    el("h2", {}, "Queues"),
    el("div", { id: "queues" }, grid(["queue", "ready", "delayed", "in flight", "acked", "retried",
      "dead-lettered", "dropped", "dead letters go to"], rows,
      (i) => loadMessages(data.queues[i].queue, messages))),
    messages,
  );
}

async function loadMessages(queue, holder) {
  try {
    const data = await api("/queue", { queue, limit: PAGE });
    holder.replaceChildren(el("h3", {}, "Next messages of ", queue),
      grid(["id", "state", "attempts", "sent", "visible", "bytes", "body"],
        data.messages.map((m) => [m.id, m.state, m.attempts, m.sent, m.visible, m.bytes, m.body])));
  } catch (error) {
    holder.replaceChildren(failed(error));
  }
}

// ---- blob buckets ---------------------------------------------------------------------

function showBucket(binding) {
  const prefix = el("input", { type: "text", id: "prefix", placeholder: "key prefix" });
  const keys = el("div", { id: "keys" });
  const go = () => loadKeys(binding, prefix.value, null, keys);
  prefix.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  view(el("h2", {}, "Keys of ", binding),
    el("div", { className: "row" }, prefix, el("button", { className: "action", on: { click: go } }, "List")),
    keys);
  go();
}

async function loadKeys(binding, prefix, cursor, holder) {
  let data;
  try {
    data = await api("/bucket", { binding, prefix, cursor, limit: PAGE });
  } catch (error) {
    holder.replaceChildren(failed(error));
    return;
  }
  holder.replaceChildren(
    grid(["key", "bytes", "uploaded"], data.keys.map((k) => [k.key, k.size, k.uploaded])),
    el("div", { className: "row" }, pager("Next page", data.next !== null, () => loadKeys(binding, prefix, data.next, holder))),
  );
}

// ---- live charts ----------------------------------------------------------------------

let chartTimer = null;

function stopCharts() {
  if (chartTimer !== null) clearInterval(chartTimer);
  chartTimer = null;
}

// The bucket bound under which 99% of the events between two polls fell.
function p99(bounds, before, after) {
  const counts = after.map((c, i) => c - (before ? before[i] || 0 : 0));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return 0;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= 0.99 * total) return i < bounds.length ? bounds[i] * 1000 : bounds[bounds.length - 1] * 1000;
  }
  return 0;
}

function showCharts() {
  const series = { rate: new Map(), p99: new Map(), depth: new Map() };
  const charts = [
    ["rate", "Events per second"],
    ["p99", "p99 of an event's time (ms)"],
    ["depth", "Mailbox depth"],
  ].map(([key, title]) => {
    const canvas = el("canvas", { width: "420", height: "180", id: "chart-" + key, dataset: { points: "0" } });
    const legend = el("div", { className: "legend" });
    return { key, canvas, legend, box: el("div", { className: "chart" }, el("h3", {}, title), canvas, legend) };
  });
  const note = el("p", { className: "hint", id: "charts-note" }, "Polling every 2 s...");
  view(el("h2", {}, "Hosts"), el("div", { className: "charts", id: "charts" }, ...charts.map((c) => c.box)), note);
  let last = null;
  const poll = async () => {
    let data;
    try {
      data = await api("/metrics");
    } catch (error) {
      note.textContent = error.message;
      return;
    }
    const hosts = data.hosts.filter((h) => h.up);
    note.textContent = `${hosts.length} host(s) answering; ${new Date(data.time * 1000).toLocaleTimeString()}`;
    if (last !== null) {
      const seconds = Math.max(data.time - last.time, 0.001);
      for (const host of hosts) {
        const before = last.hosts.get(host.host);
        const label = host.host;
        push(series.rate, label, before ? Math.max(0, (host.events - before.events) / seconds) : 0);
        push(series.p99, label, p99(data.bounds, before && before.buckets, host.buckets));
        push(series.depth, label, host.mailbox_depth);
      }
      for (const chart of charts) draw(chart, series[chart.key]);
    }
    last = { time: data.time, hosts: new Map(hosts.map((h) => [h.host, h])) };
  };
  poll();
  chartTimer = setInterval(poll, POLL_MS);
}

function push(map, label, value) {
  const points = map.get(label) || [];
  points.push(value);
  if (points.length > POINTS) points.shift();
  map.set(label, points);
}

function draw(chart, map) {
  const canvas = chart.canvas;
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 44, bottom = 16;
  g.clearRect(0, 0, w, h);
  let top = 0;
  for (const points of map.values()) for (const v of points) top = Math.max(top, v);
  top = top > 0 ? top * 1.1 : 1;
  g.strokeStyle = "#dde1ea";
  g.fillStyle = "#6b7385";
  g.font = "11px sans-serif";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = (h - bottom) * (1 - i / 4) + 0.5;
    g.beginPath(); g.moveTo(left, y); g.lineTo(w, y); g.stroke();
    const value = top * i / 4;
    g.fillText(value >= 100 ? value.toFixed(0) : value.toFixed(value >= 10 ? 1 : 2), 2, Math.max(10, y - 2));
  }
  const legend = [];
  let drawn = 0;
  [...map.entries()].forEach(([label, points], i) => {
    const color = COLORS[i % COLORS.length];
    g.strokeStyle = color;
    g.lineWidth = 1.5;
    g.beginPath();
    points.forEach((v, j) => {
      const x = left + (w - left) * (j + POINTS - points.length) / (POINTS - 1);
      const y = (h - bottom) * (1 - v / top);
      if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    drawn = Math.max(drawn, points.length);
    const swatch = el("span", { className: "swatch" });
    swatch.style.background = color;
    legend.push(el("span", {}, swatch, label));
  });
  chart.legend.replaceChildren(...legend);
  canvas.dataset.points = String(drawn);
}

loadBindings();
