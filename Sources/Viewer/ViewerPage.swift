/// The built-in page (`GET /`): plain HTML and JavaScript, no libraries. It speaks the Foxglove
/// protocol to the same port, decodes the few protobuf messages it shows with a small reader, and
/// subscribes to a camera only while its thumbnail is on screen, so 64 envs stay usable.
enum ViewerPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>RoboSim viewer</title>
<style>
  body { font: 13px system-ui, sans-serif; margin: 0; background: #15181c; color: #dde; }
  header { display: flex; gap: 12px; align-items: center; padding: 8px 12px; background: #20252b; position: sticky; top: 0; z-index: 1; }
  header h1 { font-size: 15px; margin: 0; }
  button { background: #2f3a46; color: #dde; border: 1px solid #46525f; border-radius: 4px; padding: 3px 10px; cursor: pointer; }
  button:hover { background: #3b4958; }
  #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 8px; padding: 12px; }
  .env { background: #20252b; border-radius: 6px; padding: 6px; }
  .env canvas { width: 100%; image-rendering: pixelated; background: #000; display: block; border-radius: 3px; }
  .env .row { display: flex; justify-content: space-between; align-items: center; margin-top: 4px; }
  .env .pose, .env .outcome { font-family: ui-monospace, monospace; font-size: 11px; color: #aab; min-height: 14px; }
  .ok { color: #7d7 !important; } .bad { color: #e88 !important; }
  details { padding: 0 12px 12px; } table { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 11px; }
  td { padding: 1px 8px; border-bottom: 1px solid #2a3038; }
  #status { color: #9ab; }
</style>
</head>
<body>
<header>
  <h1 id="title">RoboSim</h1>
  <button id="pause">Pause</button><button id="resume">Resume</button>
  <span id="status">connecting...</span>
</header>
<div id="grid"></div>
<details><summary>Topics and rates</summary><table id="rates"></table></details>
<script>
"use strict";
// --- a small protobuf reader: varints, 64-bit (doubles) and length-delimited fields -------------
function fields(bytes) {
  const out = {}; let i = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  function varint() { let v = 0, m = 1, b; do { b = bytes[i++]; v += (b & 0x7f) * m; m *= 128; } while (b & 0x80 && i < bytes.length); return v; }
  while (i < bytes.length) {
    const key = varint(), n = Math.floor(key / 8), t = key & 7; let v;
    if (t === 0) v = varint();
    else if (t === 1) { v = view.getFloat64(i, true); i += 8; }
    else if (t === 2) { const len = varint(); v = bytes.subarray(i, i + len); i += len; }
    else if (t === 5) { v = view.getFloat32(i, true); i += 4; }
    else break;
    (out[n] = out[n] || []).push(v);
  }
  return out;
}
const one = (f, n, d) => (f[n] ? f[n][0] : d);
const text = (b) => (b ? new TextDecoder().decode(b) : "");
function decodeImage(b) { const f = fields(b); return { height: one(f, 2, 0), width: one(f, 3, 0), encoding: text(one(f, 4)), step: one(f, 6, 0), data: one(f, 7, new Uint8Array()) }; }
function decodePose(b) { const pose = fields(one(fields(b), 2, new Uint8Array())); const p = fields(one(pose, 1, new Uint8Array())); return [one(p, 1, 0), one(p, 2, 0), one(p, 3, 0)]; }
function decodeEpisode(b) { const f = fields(b); return { kind: one(f, 2, 0), env: one(f, 3, 0), index: one(f, 4, 0), success: !!one(f, 6, 0), ret: one(f, 7, 0), reason: text(one(f, 8)), steps: one(f, 9, 0) }; }

// --- state ---------------------------------------------------------------------------------------
const channels = new Map();      // topic -> channel id
const subscriptions = new Map(); // subscription id -> {topic, handler}
const byTopic = new Map();       // topic -> subscription id
let nextSub = 1, ws = null, received = 0, envCount = 0, camera = null;
const cards = [];
const visible = new Set();
window.robosimViewer = { frames: 0, episodes: [], subscribed: () => [...byTopic.keys()] };

// The viewer refuses POSTs without this header (pages from elsewhere cannot send it).
function post(path) { return fetch(path, { method: "POST", headers: { "X-RoboSim-Viewer": "1" } }); }
function send(obj) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj)); }
function subscribe(topic, handler) {
  if (byTopic.has(topic) || !channels.has(topic)) return;
  const id = nextSub++;
  subscriptions.set(id, { topic, handler }); byTopic.set(topic, id);
  send({ op: "subscribe", subscriptions: [{ id, channelId: channels.get(topic) }] });
}
function unsubscribe(topic) {
  const id = byTopic.get(topic); if (id === undefined) return;
  byTopic.delete(topic); subscriptions.delete(id);
  send({ op: "unsubscribe", subscriptionIds: [id] });
}

function draw(card, b) {
  const im = decodeImage(b);
  if (im.encoding !== "rgb8" || !im.width) return;
  const c = card.canvas;
  if (c.width !== im.width || c.height !== im.height) { c.width = im.width; c.height = im.height; }
  const ctx = c.getContext("2d"), out = ctx.createImageData(im.width, im.height);
  for (let y = 0; y < im.height; y++) for (let x = 0; x < im.width; x++) {
    const s = y * im.step + x * 3, d = (y * im.width + x) * 4;
    out.data[d] = im.data[s]; out.data[d + 1] = im.data[s + 1]; out.data[d + 2] = im.data[s + 2]; out.data[d + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  window.robosimViewer.frames++;
}

// Subscribes what is on screen: a card's camera and pose while visible; every env's episodes.
function refreshSubscriptions() {
  for (const card of cards) {
    const k = card.env, on = visible.has(k);
    const cam = camera ? `/env_${k}/camera/${camera}/image_raw` : null;
    const pose = `/env_${k}/robot/pose`;
    if (on) { if (cam) subscribe(cam, (b) => draw(card, b)); subscribe(pose, (b) => { const p = decodePose(b); card.pose.textContent = `x ${p[0].toFixed(3)} y ${p[1].toFixed(3)} z ${p[2].toFixed(3)}`; }); }
    else { if (cam) unsubscribe(cam); unsubscribe(pose); }
    subscribe(`/env_${k}/episode`, (b) => {
      const e = decodeEpisode(b);
      const seen = window.robosimViewer.episodes;
      seen.push(e); if (seen.length > 1000) seen.splice(0, seen.length - 1000);
      if (e.kind === 2) { card.outcome.textContent = `#${e.index} ${e.success ? "success" : e.reason} R=${e.ret.toFixed(1)}`; card.outcome.className = "outcome " + (e.success ? "ok" : "bad"); }
      else if (e.kind === 1) { card.outcome.textContent = `#${e.index} running`; card.outcome.className = "outcome"; }
    });
  }
}

function buildGrid() {
  const grid = document.getElementById("grid");
  const observer = new IntersectionObserver((entries) => {
    for (const en of entries) { const k = +en.target.dataset.env; if (en.isIntersecting) visible.add(k); else visible.delete(k); }
    refreshSubscriptions();
  });
  for (let k = 0; k < envCount; k++) {
    const div = document.createElement("div"); div.className = "env"; div.dataset.env = k; div.id = `env-${k}`;
    div.innerHTML = `<div class="row"><b>env ${k}</b><button id="reset-${k}">Reset</button></div><canvas width="64" height="48"></canvas><div class="pose"></div><div class="outcome"></div>`;
    grid.appendChild(div);
    const card = { env: k, canvas: div.querySelector("canvas"), pose: div.querySelector(".pose"), outcome: div.querySelector(".outcome") };
    cards.push(card);
    div.querySelector("button").onclick = () => post(`/api/reset?env=${k}`);
    observer.observe(div);
  }
}

function connect() {
  ws = new WebSocket(`ws://${location.host}/`, ["foxglove.websocket.v1"]);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      const m = JSON.parse(ev.data);
      if (m.op === "advertise") { for (const c of m.channels) channels.set(c.topic, c.id); refreshSubscriptions(); }
      else if (m.op === "unadvertise") { for (const [t, id] of channels) if (m.channelIds.includes(id)) { channels.delete(t); byTopic.delete(t); } }
      else if (m.op === "status" && m.level >= 2) console.warn("viewer:", m.message);
      return;
    }
    const b = new Uint8Array(ev.data);
    if (b[0] !== 1) return;
    const view = new DataView(ev.data), id = view.getUint32(1, true), s = subscriptions.get(id);
    received++;
    if (s) s.handler(b.subarray(13));
  };
  ws.onclose = () => { document.getElementById("status").textContent = "disconnected; retrying"; channels.clear(); byTopic.clear(); subscriptions.clear(); setTimeout(connect, 1000); };
}

async function rates() {
  try {
    const g = await (await fetch("/api/graph")).json();
    const table = document.getElementById("rates");
    table.replaceChildren(...(g.topics || []).filter((t) => !/\/env_([1-9]\d*)\//.test(t.name)).map((t) => {
      const tr = document.createElement("tr");
      for (const v of [t.name, `${(t.rateHz || 0).toFixed(1)} Hz`, t.type]) { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); }
      return tr;
    }));
  } catch (e) {}
}

async function main() {
  const d = await (await fetch("/api/describe")).json();
  envCount = d.envCount || 0;
  const cam = (d.cameras || []).find((c) => c.rgb);
  camera = cam ? cam.name : null;
  document.getElementById("title").textContent = `RoboSim: ${d.scene} (${envCount} envs, ${d.mode})`;
  document.getElementById("pause").onclick = () => post("/api/pause");
  document.getElementById("resume").onclick = () => post("/api/resume");
  buildGrid();
  connect();
  let last = 0;
  setInterval(() => { document.getElementById("status").textContent = `${channels.size} topics, ${byTopic.size} subscribed, ${received - last} msg/s`; last = received; }, 1000);
  rates(); setInterval(rates, 2000);
}
main();
</script>
</body>
</html>
"""#
}
