// The ops page: one admin-only socket (/api/ops/ws) pushes a summary every second; this script
// only draws it. Everything comes from this server: no library, no font, no CDN.
"use strict";

const STALE_AFTER_MS = 5000; // no summary for this long: the page says it has lost the server
const RECONNECT_MS = 2000;
const CLOSE_LOGIN = 4401;
const CLOSE_FORBIDDEN = 4403;

let socket = null;
let lastSummaryAt = 0;
let reconnectTimer = null;

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// -- connection and login -----------------------------------------------------------------------

function connect() {
  clearTimeout(reconnectTimer);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/api/ops/ws`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "OPS_SUMMARY") {
      lastSummaryAt = Date.now();
      showBoard();
      render(message);
    }
  };
  socket.onclose = (event) => {
    socket = null;
    if (event.code === CLOSE_LOGIN) {
      showLogin("Log in with an admin account.");
    } else if (event.code === CLOSE_FORBIDDEN) {
      showLogin("This page is for admins: log in with an admin account.");
    } else {
      reconnectTimer = setTimeout(connect, RECONNECT_MS);
    }
    watchLink();
  };
}

function showLogin(why) {
  $("login-why").textContent = why;
  $("login").hidden = false;
  $("board").hidden = true;
  $("link").textContent = "not logged in";
}

function showBoard() {
  $("login").hidden = true;
  $("board").hidden = false;
}

async function logIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/api/auth/login", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    credentials: "same-origin",
    body: JSON.stringify({username: $("username").value, password: $("password").value}),
  });
  if (!response.ok) {
    $("login-error").textContent = await detailOf(response);
    return;
  }
  $("password").value = "";
  connect();
}

async function detailOf(response) {
  try {
    const body = await response.json();
    return body.detail || `error ${response.status}`;
  } catch (_) {
    return `error ${response.status}`;
  }
}

function watchLink() {
  const link = $("link");
  if (!$("login").hidden) return;
  if (!lastSummaryAt) {
    link.textContent = "connecting…";
    return;
  }
  const stale = Date.now() - lastSummaryAt > STALE_AFTER_MS;
  link.classList.toggle("lost", stale);
  link.textContent = stale ? "no contact with the server" : "live";
  if (stale && !$("board").hidden) {
    setVerdict("stale", "No contact with the server", ["The page keeps trying to reconnect."]);
  }
}

// -- drawing ------------------------------------------------------------------------------------

function render(summary) {
  if (summary.problems.length) {
    setVerdict("bad", summary.problems.length === 1 ? summary.problems[0] : `${summary.problems.length} problems`,
      summary.problems.length === 1 ? summary.warnings : summary.problems.concat(summary.warnings));
  } else if (summary.warnings.length) {
    setVerdict("warn", "Fine, with warnings", summary.warnings);
  } else {
    setVerdict("fine", "All fine", []);
  }
  renderBoxes(summary.boxes);
  renderServer(summary.server);
  renderBackups(summary.backups);
  const points = summary.history.points;
  drawChart($("chart-latency"), points, 1, summary.at, summary.history.windowS, "ms");
  drawChart($("chart-screens"), points, 2, summary.at, summary.history.windowS, "");
  renderAudit(summary.audit);
  watchLink();
}

function setVerdict(kind, title, lines) {
  const verdict = $("verdict");
  verdict.className = `verdict ${kind}`;
  $("verdict-title").textContent = title;
  $("verdict-list").replaceChildren(...lines.map((line) => el("li", null, line)));
}

function renderBoxes(boxes) {
  const cards = boxes.map((box) => {
    const card = el("article", `box ${box.online ? "online" : "offline"}`);
    card.dataset.boxId = box.boxId;
    const head = el("div", "box-head");
    head.append(el("span", "box-name", `Box ${box.boxId}`),
      el("span", "box-state", box.online ? "OK" : "OFFLINE"));
    card.append(head);
    if (box.unavailable) {
      card.append(el("div", "box-line", `Cannot be rebuilt: ${box.unavailable}`));
    } else {
      card.append(el("div", "box-line", `${box.category || "no category"} · route ${box.routeIndex}/${box.routesCount}`));
      card.append(el("div", "box-line", box.climber ? `Climbing: ${box.climber}` : "No climber"));
      card.append(el("div", "box-line box-clock", `${clock(box.remaining)} ${box.timerState} · v${box.version}`));
    }
    card.append(el("div", "box-line", tabletLine(box)));
    card.append(el("div", "box-line muted",
      `${plural(box.scoreboards, "scoreboard")} · ${plural(box.spectators, "spectator")}`));
    return card;
  });
  $("boxes").replaceChildren(...cards);
  if (!boxes.length) $("boxes").append(el("p", "muted", "No boxes yet."));
}

function tabletLine(box) {
  const heard = box.heardAgoS === null ? "never heard from" : `heard ${ago(box.heardAgoS)}`;
  if (!box.tablets) return `No judge tablet connected · ${heard}`;
  return `${box.tablets === 1 ? "Judge tablet" : `${box.tablets} judge tablets`} connected · ${heard}`;
}

function renderServer(server) {
  const disk = server.diskFreeBytes === null ? "unknown" : bytes(server.diskFreeBytes);
  facts($("server"), [
    ["Storage", `${server.storageMode}, ${server.degraded ? "DEGRADED" : "ok"}`, server.degraded ? "bad" : ""],
    ["Last error", server.lastError || "none", server.lastError ? "bad" : ""],
    ["Last durable write", server.lastDurableAgoS === null ? "none yet" : ago(server.lastDurableAgoS), ""],
    ["Free disk", server.diskLow ? `${disk} (low)` : disk, server.diskLow ? "warn" : ""],
    ["Screens connected", `${server.screens} (ranking pages ${server.rankingPages})`, ""],
    ["Up for", duration(server.uptimeS), ""],
  ]);
}

function renderBackups(backups) {
  const result = backups.lastResult === null ? "none this run" : backups.lastResult;
  facts($("backups"), [
    ["Newest", backups.newestFile === null ? "none" : ago(backups.newestAgoS), backups.late ? "warn" : "", "backup-age"],
    ["File", backups.newestFile === null ? "—" : `${backups.newestFile} (${bytes(backups.newestSize)})`, ""],
    ["Last result", backups.lastError ? `failed: ${backups.lastError}` : result, backups.lastError ? "bad" : ""],
    ["Automatic", backups.intervalMin > 0 ? `every ${backups.intervalMin} min` : "off", ""],
  ]);
  $("backup-download").hidden = backups.newestFile === null;
}

function facts(list, rows) {
  list.replaceChildren(...rows.flatMap(([name, value, kind, id]) => {
    const dd = el("dd", kind, value);
    if (id) dd.id = id;
    return [el("dt", null, name), dd];
  }));
}

function renderAudit(events) {
  const rows = events.map((event) => {
    const row = el("tr");
    const who = event.actorUsername ? `${event.actorUsername} (${event.actorRole || "?"})` : "—";
    for (const cell of [timeOf(event.createdAt), event.boxId ?? "—", event.action, event.boxVersion ?? "—", who]) {
      row.append(el("td", null, cell));
    }
    return row;
  });
  $("audit").tBodies[0].replaceChildren(...rows);
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// One line over the last window: x is time (right edge = now), y from 0 to the window's maximum.
// A stretch without a value (no command then) leaves a gap.
function drawChart(svg, points, index, now, windowS, unit) {
  const [left, right, top, bottom] = [50, 312, 10, 100];
  const values = points.map((p) => p[index]).filter((v) => v !== null);
  const parts = [svgEl("line", {class: "axis", x1: left, y1: bottom, x2: right, y2: bottom}),
    svgEl("line", {class: "axis", x1: left, y1: top, x2: left, y2: bottom}),
    svgEl("text", {class: "label", x: left, y: 114}, `−${Math.round(windowS / 60)} min`),
    svgEl("text", {class: "label", x: right, y: 114, "text-anchor": "end"}, "now")];
  if (!values.length) {
    parts.push(svgEl("text", {class: "empty", x: (left + right) / 2, y: 58, "text-anchor": "middle"}, "no data yet"));
    svg.replaceChildren(...parts);
    return;
  }
  const top_value = roundUp(Math.max(...values) * 1.1);
  const x = (at) => left + (right - left) * Math.max(0, 1 - (now - at) / windowS);
  const y = (value) => bottom - (bottom - top) * (value / top_value);
  let segment = [];
  const flush = () => {
    if (segment.length === 1) {
      const [cx, cy] = segment[0].split(",");
      parts.push(svgEl("circle", {class: "dot", cx, cy, r: 2.5}));
    } else if (segment.length) {
      parts.push(svgEl("polyline", {class: "line", points: segment.join(" ")}));
    }
    segment = [];
  };
  for (const point of points) {
    if (point[index] === null) flush();
    else segment.push(`${x(point[0]).toFixed(1)},${y(point[index]).toFixed(1)}`);
  }
  flush();
  const shown = (v) => `${v < 10 && unit ? v.toFixed(1) : Math.round(v)}${unit ? " " + unit : ""}`;
  parts.push(svgEl("text", {class: "label", x: left - 4, y: top + 4, "text-anchor": "end"}, shown(top_value)),
    svgEl("text", {class: "label", x: left - 4, y: bottom, "text-anchor": "end"}, "0"),
    svgEl("text", {class: "label", x: right, y: top + 4, "text-anchor": "end"},
      `latest ${shown(values[values.length - 1])}`));
  svg.replaceChildren(...parts);
}

// The axis's top: 1, 2 or 5 times a power of ten, so its label is exact.
function roundUp(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((top) => top >= value);
}

// -- words for numbers --------------------------------------------------------------------------

function ago(seconds) {
  return seconds < 60 ? `${Math.round(seconds)} s ago` : `${duration(seconds)} ago`;
}

function duration(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function clock(remaining) {
  if (remaining === null || remaining === undefined) return "–:––";
  const whole = Math.ceil(remaining);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function bytes(count) {
  if (count === null || count === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function timeOf(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? String(iso) : when.toLocaleTimeString();
}

// -- backup now ---------------------------------------------------------------------------------

async function backupNow() {
  const button = $("backup-now");
  button.disabled = true;
  $("backup-result").textContent = "Writing a backup…";
  try {
    const response = await fetch("/api/admin/ops/backup/now", {method: "POST", credentials: "same-origin"});
    if (response.ok) {
      const body = await response.json();
      $("backup-result").textContent = `Backup written: ${body.filename} (${bytes(body.size)})`;
    } else {
      $("backup-result").textContent = `Backup failed: ${await detailOf(response)}`;
    }
  } catch (error) {
    $("backup-result").textContent = `Backup failed: ${error}`;
  } finally {
    button.disabled = false;
  }
}

$("login-form").addEventListener("submit", logIn);
$("backup-now").addEventListener("click", backupNow);
setInterval(watchLink, 1000);
connect();
