// brokenvideos annotate-ui: the page. Plain JS, no build step; it only talks to the JSON API
// (same-origin, the token travels in the HttpOnly cookie the server set when the page opened).
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  videos: [], video: null, sid: null, frame: 0, frames: {},   // frames[t][objectId] = Uint8Array mask (H*W)
  objects: [], active: null, pending: new Map(),             // pending: objects made on the page, not yet prompted
  actions: [], taxonomy: [], images: {}, busy: false, propagating: false,
  dragStart: null, dragNow: null, lastClickMs: null, lastServerMs: null, lastPromptServerMs: null, lastPredictorMs: null,
};

// --- API ---------------------------------------------------------------------------------------

async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: body === undefined ? {} : {"Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin",
  });
  const text = await res.text();
  const timing = /app;dur=([0-9.]+)/.exec(res.headers.get("Server-Timing") || "");
  S.lastServerMs = timing ? Number(timing[1]) : null;
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = {detail: text}; }
  if (!res.ok) throw new Error((doc && doc.detail) || `${res.status} ${res.statusText}`);
  return doc;
}

// The click channel: one WebSocket per session (a click costs one message, not a request), with
// replies matched by id. While it is not open, clicks go through POST .../prompts instead.
const clicks = {ws: null, next: 1, sent: 0, waiting: new Map()};

function openClickChannel(sid) {
  if (clicks.ws) clicks.ws.close();
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/sessions/${sid}/clicks`);
  ws.onmessage = (ev) => {
    const doc = JSON.parse(ev.data), waiter = clicks.waiting.get(doc.id);
    if (!waiter) return;
    clicks.waiting.delete(doc.id);
    if (doc.status) waiter.reject(new Error(doc.detail)); else waiter.resolve(doc);
  };
  ws.onclose = () => {
    if (clicks.ws === ws) clicks.ws = null;
    for (const w of clicks.waiting.values()) w.reject(new Error("the click channel closed; click again"));
    clicks.waiting.clear();
  };
  clicks.ws = ws;
}

function sendClick(body) {
  const id = clicks.next++;
  return new Promise((resolve, reject) => {
    clicks.waiting.set(id, {resolve, reject});
    clicks.ws.send(JSON.stringify({id, ...body}));
    clicks.sent++;
  });
}

function status(message, isError = false) {
  const el = $("status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

async function guarded(what, fn) {
  try { return await fn(); }
  catch (e) { status(`${what} failed: ${e.message}`, true); throw e; }
}

// --- COCO RLE (pycocotools' compressed string; column-major runs starting with zeros) -----------

function rleCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20; p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// A mask on the page is its foreground runs: [start, length, start, length, ...] in the RLE's
// column-major pixel order, or null if it has no pixels. Decoding and drawing then cost its area,
// not a pass over the frame per object (issue 14: the click round trip within 1.2x the SAM2 call).
function rleRuns(rle) {
  const counts = rleCounts(rle.counts), runs = [];
  let p = 0;
  for (let k = 0; k < counts.length; k++) {
    if (k & 1 && counts[k]) runs.push(p, counts[k]);
    p += counts[k];
  }
  return runs.length ? {h: rle.size[0], w: rle.size[1], runs: Int32Array.from(runs)} : null;
}

// Sets out[i] = value on a mask's pixels; out is H*W, row-major (an ImageData's pixel order).
function fillRuns(out, mask, value) {
  const {h, w, runs} = mask;
  for (let k = 0; k < runs.length; k += 2) {
    let r = runs[k] % h, c = (runs[k] - r) / h;
    for (let j = runs[k + 1]; j > 0; j--) {
      out[r * w + c] = value;
      if (++r === h) { r = 0; c++; }
    }
  }
}

// An H*W row-major 0/1 mask, or null if the RLE has no pixels (for scripts and tests).
function decodeRle(rle) {
  const mask = rleRuns(rle);
  if (!mask) return null;
  const out = new Uint8Array(mask.h * mask.w);
  fillRuns(out, mask, 1);
  return out;
}

// Every object's mask of frame t into out (H*W, row-major), each as valueOf(its id).
function paintFrame(out, t, valueOf) {
  for (const [obj, mask] of Object.entries(S.frames[t] || {})) fillRuns(out, mask, valueOf(Number(obj)));
}

// A frame's object ids as one H*W row-major array (0: no object), as the export writes them.
function idMap(t) {
  const out = new Uint8Array(S.video.height * S.video.width);
  paintFrame(out, t, (id) => id);
  return out;
}

function setFrameMasks(t, rles) {
  const masks = {};
  for (const [obj, rle] of Object.entries(rles)) { const m = rleRuns(rle); if (m) masks[obj] = m; }
  S.frames[t] = masks;
}

function setAllFrames(frames) {
  S.frames = {};
  for (const [t, rles] of Object.entries(frames)) setFrameMasks(Number(t), rles);
}

// --- drawing -----------------------------------------------------------------------------------
// Three stacked layers, so a click repaints only what it changed: the frame (an image, redrawn on
// a frame change), the masks (one pixel per video pixel, scaled up by CSS without smoothing; the
// opacity slider is the layer's CSS opacity), and the prompt marks on top (which takes the mouse).
// A click's reply repaints the mask layer and adds one mark (issue 14: the click round trip
// within 1.2x the bare SAM2 call).

const canvas = $("canvas"), ctx = canvas.getContext("2d");
const frameLayer = $("frame-layer"), fctx = frameLayer.getContext("2d");
const maskLayer = $("mask-layer"), mctx = maskLayer.getContext("2d");
let maskPixels = null, maskWords = null;  // the mask layer's ImageData and a 32-bit view of it

function hexRgb(hex) { return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)); }

function colourOf(objectId) {
  const o = S.objects.find((x) => x.object_id === objectId) || S.pending.get(objectId);
  return o ? o.colour : "#ffffff";
}

function rgbaWord(hex) {  // an opaque colour as one pixel of a Uint32Array over RGBA bytes
  const [r, g, b] = hexRgb(hex), bytes = new Uint8ClampedArray([r, g, b, 255]);
  return new Uint32Array(bytes.buffer)[0];
}

function sizeLayers() {
  const {width: w, height: h} = S.video, scale = Math.max(1, Math.floor(720 / w));
  for (const c of [canvas, frameLayer]) { c.width = w * scale; c.height = h * scale; }
  maskLayer.width = w; maskLayer.height = h;
  maskPixels = mctx.createImageData(w, h);
  maskWords = new Uint32Array(maskPixels.data.buffer);
}

function frameImage(t) {
  if (!S.images[t]) {
    const img = new Image();
    img.onload = () => { if (t === S.frame) drawFrame(); };
    img.src = `/api/videos/${encodeURIComponent(S.video.video_id)}/frames/${t}`;
    S.images[t] = img;
  }
  return S.images[t];
}

function drawFrame() {
  const img = frameImage(S.frame);
  fctx.imageSmoothingEnabled = false;
  fctx.clearRect(0, 0, frameLayer.width, frameLayer.height);
  if (img.complete && img.naturalWidth) fctx.drawImage(img, 0, 0, frameLayer.width, frameLayer.height);
}

function drawMasks() {
  maskWords.fill(0);
  paintFrame(maskWords, S.frame, (id) => rgbaWord(colourOf(id)));
  mctx.putImageData(maskPixels, 0, 0);
}

function drawMark(a) {
  const sx = canvas.width / S.video.width, sy = canvas.height / S.video.height;
  ctx.strokeStyle = colourOf(a.object_id); ctx.lineWidth = 2;
  if (a.box) ctx.strokeRect(a.box[0] * sx, a.box[1] * sy, (a.box[2] - a.box[0]) * sx, (a.box[3] - a.box[1]) * sy);
  (a.points || []).forEach(([x, y], k) => {
    ctx.beginPath(); ctx.arc(x * sx, y * sy, 6, 0, 2 * Math.PI);
    ctx.fillStyle = a.labels[k] ? "#16a34a" : "#dc2626"; ctx.fill();
    ctx.strokeStyle = "#fff"; ctx.stroke();
    ctx.fillStyle = "#fff"; ctx.font = "bold 11px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.fillText(a.labels[k] ? "+" : "−", x * sx, y * sy);
  });
}

function drawMarks() {  // this frame's prompts, and the box being dragged
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (const a of S.actions) if (a.op === "prompt" && a.frame === S.frame) drawMark(a);
  if (S.dragStart && S.dragNow) {
    const sx = canvas.width / S.video.width, sy = canvas.height / S.video.height;
    ctx.setLineDash([4, 3]); ctx.strokeStyle = colourOf(S.active); ctx.lineWidth = 2;
    ctx.strokeRect(S.dragStart[0] * sx, S.dragStart[1] * sy, (S.dragNow[0] - S.dragStart[0]) * sx, (S.dragNow[1] - S.dragStart[1]) * sy);
    ctx.setLineDash([]);
  }
}

function draw() {
  if (!S.video) return;
  drawFrame(); drawMasks(); drawMarks();
  $("frame-label").textContent = `frame ${S.frame} / ${S.video.num_frames - 1}`;
  $("scrubber").value = S.frame;
}

function goTo(t) {
  if (!S.video) return;
  S.frame = Math.max(0, Math.min(S.video.num_frames - 1, t));
  frameImage(Math.min(S.frame + 1, S.video.num_frames - 1));  // prefetch the next frame
  draw();
}

// --- videos and sessions -----------------------------------------------------------------------

async function loadVideos() {
  [S.videos, S.taxonomy] = await Promise.all([api("GET", "/api/videos"), api("GET", "/api/taxonomy")]);
  const ul = $("videos");
  ul.innerHTML = "";
  for (const v of S.videos) {
    const li = document.createElement("li"), b = document.createElement("button");
    b.dataset.videoId = v.video_id;
    b.innerHTML = `${v.video_id}<small>${v.num_frames} frames · ${v.width}×${v.height}</small>`;
    b.onclick = () => openVideo(v.video_id);
    li.appendChild(b); ul.appendChild(li);
  }
  status(`${S.videos.length} videos. Pick one.`);
}

function applyState(doc) {
  if (doc.frames) setAllFrames(doc.frames);
  if (doc.objects) S.objects = doc.objects;
  for (const o of S.objects) S.pending.delete(o.object_id);
  if (S.active === null && S.objects.length) S.active = S.objects[0].object_id;
  renderObjects(); draw();
}

async function openVideo(videoId) {
  await guarded("opening the video", async () => {
    status(`opening ${videoId} …`);
    const doc = await api("POST", "/api/sessions", {video_id: videoId});
    Object.assign(S, {sid: doc.session_id, video: doc.video, frame: 0, images: {}, actions: doc.actions,
                      objects: [], active: null, pending: new Map()});
    document.querySelectorAll("#videos button").forEach((b) => b.classList.toggle("active", b.dataset.videoId === videoId));
    sizeLayers();
    $("scrubber").max = doc.video.num_frames - 1;
    applyState(doc);
    openClickChannel(doc.session_id);
    if (!S.objects.length) newObject();
    status(doc.restored ? `${videoId}: restored ${doc.actions.length} saved actions` : `${videoId}: click on the artifact`);
    canvas.focus();
  });
}

async function refreshActions() {
  const doc = await api("GET", `/api/sessions/${S.sid}`);
  S.actions = doc.actions;
  S.objects = doc.objects;
  renderObjects();
}

// --- objects -----------------------------------------------------------------------------------

const PALETTE_HEX = ["#000000", "#800000", "#008000", "#808000", "#000080", "#800080", "#008080", "#808080",
  "#400000", "#c00000", "#408000", "#c08000", "#400080", "#c00080", "#408080", "#c08080"];

function nextObjectId() {
  const ids = [...S.objects.map((o) => o.object_id), ...S.pending.keys()];
  return ids.length ? Math.max(...ids) + 1 : 1;
}

function newObject() {
  const id = nextObjectId();
  if (id > 255) { status("at most 255 objects per video (DAVIS palette)", true); return; }
  S.pending.set(id, {object_id: id, subcategory: null, colour: PALETTE_HEX[id % 16] || "#ffffff", num_prompts: 0});
  S.active = id;
  renderObjects();
}

function renderObjects() {
  const ul = $("objects");
  ul.innerHTML = "";
  const all = [...S.objects, ...[...S.pending.values()].filter((p) => !S.objects.some((o) => o.object_id === p.object_id))];
  all.sort((a, b) => a.object_id - b.object_id);
  for (const o of all) {
    const li = document.createElement("li");
    li.dataset.objectId = o.object_id; li.dataset.testid = `object-${o.object_id}`;
    li.classList.toggle("active", o.object_id === S.active);
    const sw = document.createElement("span");
    sw.className = "swatch"; sw.style.background = o.colour; sw.textContent = o.object_id;
    sw.title = "make active"; sw.onclick = () => { S.active = o.object_id; renderObjects(); };
    const sel = document.createElement("select");
    sel.dataset.testid = `subcategory-${o.object_id}`;
    sel.innerHTML = `<option value="">— subcategory —</option>` +
      S.taxonomy.map((t) => `<option value="${t.subcategory}" title="${t.category}: ${t.description}">${t.subcategory}</option>`).join("");
    sel.value = o.subcategory || "";
    sel.onchange = () => label(o.object_id, sel.value);
    const del = document.createElement("button");
    del.textContent = "✕"; del.title = "delete object"; del.dataset.testid = `delete-${o.object_id}`;
    del.onclick = () => deleteObject(o.object_id);
    li.append(sw, sel, del);
    if (S.pending.has(o.object_id) && !S.objects.some((x) => x.object_id === o.object_id)) {
      const p = document.createElement("span"); p.className = "pending"; p.textContent = "no prompt yet"; li.append(p);
    }
    li.onclick = (e) => { if (e.target === li) { S.active = o.object_id; renderObjects(); } };
    ul.appendChild(li);
  }
}

async function label(objectId, subcategory) {
  if (!subcategory) return;
  const pending = S.pending.get(objectId);
  if (pending) pending.subcategory = subcategory;
  if (!S.objects.some((o) => o.object_id === objectId)) return;  // sent with its first prompt
  await guarded("labelling", async () => {
    await api("PUT", `/api/sessions/${S.sid}/objects/${objectId}`, {subcategory});
    S.objects.find((o) => o.object_id === objectId).subcategory = subcategory;
    status(`object ${objectId}: ${subcategory}`);
  });
}

async function deleteObject(objectId) {
  if (!S.objects.some((o) => o.object_id === objectId)) { S.pending.delete(objectId); renderObjects(); return; }
  await guarded("deleting", async () => {
    const doc = await api("DELETE", `/api/sessions/${S.sid}/objects/${objectId}`);
    if (S.active === objectId) S.active = null;
    applyState(doc); await refreshActions(); draw();
    status(`object ${objectId} deleted`);
  });
}

// --- prompts -----------------------------------------------------------------------------------

function videoXY(ev) {
  const r = canvas.getBoundingClientRect();
  const x = (ev.clientX - r.left) / r.width * S.video.width, y = (ev.clientY - r.top) / r.height * S.video.height;
  return [Math.max(0, Math.min(S.video.width, Math.round(x * 10) / 10)), Math.max(0, Math.min(S.video.height, Math.round(y * 10) / 10))];
}

function tool() { return document.querySelector("input[name=tool]:checked").value; }

// One prompt; resolves with the milliseconds from request to mask drawn (also kept for benchmarks).
async function prompt(body) {
  if (S.active === null) newObject();
  const t0 = performance.now();
  const objectId = S.active;
  const request = {frame: S.frame, object_id: objectId, ...body};
  let doc;
  if (clicks.ws && clicks.ws.readyState === WebSocket.OPEN) {
    doc = await sendClick(request);  // masks: only the objects this click changed
    S.lastPromptServerMs = doc.server_ms; S.lastPredictorMs = doc.predictor_ms;
    const shown = S.frames[doc.frame] || (S.frames[doc.frame] = {});
    for (const [obj, rle] of Object.entries(doc.masks)) {
      const mask = rleRuns(rle);
      if (mask) shown[obj] = mask; else delete shown[obj];
    }
  } else {
    doc = await api("POST", `/api/sessions/${S.sid}/prompts`, request);
    S.lastPromptServerMs = S.lastServerMs; S.lastPredictorMs = null;
    setFrameMasks(doc.frame, doc.masks);
  }
  const action = {op: "prompt", object_id: objectId, frame: doc.frame, ...body};
  S.actions.push(action);
  const pending = S.pending.get(objectId), isNew = !S.objects.some((o) => o.object_id === objectId);
  if (isNew) S.objects.push({...(pending || {object_id: objectId, colour: "#fff"}), num_prompts: 1});
  if (doc.frame === S.frame) { drawMasks(); drawMark(action); }  // what the click changed, no more
  S.lastClickMs = performance.now() - t0;
  if (isNew) {
    if (pending && pending.subcategory) {
      await api("PUT", `/api/sessions/${S.sid}/objects/${objectId}`, {subcategory: pending.subcategory});
    }
    S.pending.delete(objectId);
    renderObjects();
  }
  const area = (S.frames[doc.frame] || {})[String(objectId)] ? "mask" : "no mask";
  const sam = S.lastPredictorMs === null ? "" : ` of which SAM2 ${S.lastPredictorMs.toFixed(0)} ms`;
  const server = S.lastPromptServerMs === null ? "" : `, server ${S.lastPromptServerMs.toFixed(0)} ms${sam}`;
  status(`frame ${doc.frame}, object ${objectId}: ${area} (${S.lastClickMs.toFixed(0)} ms${server})`);
  return S.lastClickMs;
}

canvas.addEventListener("mousedown", (ev) => {
  if (!S.sid || S.propagating) return;
  if (tool() === "box") { S.dragStart = videoXY(ev); S.dragNow = S.dragStart; }
});
canvas.addEventListener("mousemove", (ev) => { if (S.dragStart) { S.dragNow = videoXY(ev); drawMarks(); } });
canvas.addEventListener("mouseup", async (ev) => {
  if (!S.sid || S.propagating) return;
  const kind = tool();
  if (kind === "box") {
    if (!S.dragStart) return;
    const [a, b] = [S.dragStart, videoXY(ev)];
    S.dragStart = S.dragNow = null;
    const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    if (box[2] - box[0] < 2 || box[3] - box[1] < 2) { drawMarks(); return; }
    await guarded("the box", () => prompt({box}));
  } else {
    const p = videoXY(ev);
    await guarded("the click", () => prompt({points: [p], labels: [kind === "positive" ? 1 : 0]}));
  }
});

// --- propagate, undo, export -------------------------------------------------------------------

function setBusy(on) {
  S.propagating = on;
  $("propagate").disabled = on; $("undo").disabled = on; $("export").disabled = on; $("cancel").disabled = !on;
}

async function propagate() {
  if (!S.sid) return;
  setBusy(true);
  const body = {direction: $("direction").value, stream: true};
  if ($("from-here").checked) body.start_frame = S.frame;
  status("propagating …");
  try {
    const res = await fetch(`/api/sessions/${S.sid}/propagate`, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    if (!res.ok) { const d = await res.json().catch(() => ({})); throw new Error(d.detail || res.statusText); }
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "", last = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const ev = JSON.parse(buf.slice(0, nl)); buf = buf.slice(nl + 1);
        last = ev;
        if (ev.type === "frame") {
          setFrameMasks(ev.frame, ev.masks);
          $("progress").max = ev.total; $("progress").value = ev.done;
          status(`propagating: ${ev.done} / ${ev.total} frames`);
          if (ev.frame === S.frame) drawMasks();
        } else if (ev.type === "error") {
          throw new Error(ev.detail);
        }
      }
    }
    if (!last || last.type !== "done") throw new Error("the server closed the stream early");
    status(last.cancelled ? `propagation cancelled after ${last.done} frames` : `propagated ${last.done} frames`);
    document.body.dataset.propagated = String(Number(document.body.dataset.propagated || 0) + 1);
  } catch (e) {
    status(`propagation failed: ${e.message}`, true);
  } finally {
    setBusy(false);
    await refreshActions().catch(() => {});
    draw();
  }
}

async function cancelPropagation() {
  if (S.sid) await api("POST", `/api/sessions/${S.sid}/propagate/cancel`).catch((e) => status(e.message, true));
}

async function undo() {
  if (!S.sid || S.propagating) return;
  await guarded("undo", async () => {
    const doc = await api("POST", `/api/sessions/${S.sid}/undo`);
    S.objects = doc.objects;
    applyState(doc); await refreshActions(); draw();
    status(`undid ${doc.undone.op}${doc.undone.op === "prompt" ? ` on frame ${doc.undone.frame}` : ""}`);
  });
}

async function exportSession() {
  if (!S.sid) return;
  setBusy(true);
  status("exporting (replaying the prompts the way the annotate step will) …");
  try {
    const doc = await api("POST", `/api/sessions/${S.sid}/export`);
    applyState(doc); await refreshActions(); draw();
    const changed = doc.frames_changed_by_replay;
    $("export-result").textContent = [doc.paths.prompts, doc.paths.instances, doc.paths.rle,
      `${doc.paths.masks.length} PNGs in ${doc.paths.masks[0].replace(/\/[^/]*$/, "/")}`].join("\n");
    status(changed.length ? `exported; the replay changed frames ${changed.join(", ")} (now shown)` : "exported");
    document.body.dataset.exported = "1";
  } catch (e) {
    status(`export failed: ${e.message}`, true);
  } finally {
    setBusy(false);
  }
}

$("propagate").onclick = propagate;
$("cancel").onclick = cancelPropagation;
$("undo").onclick = undo;
$("export").onclick = exportSession;
$("new-object").onclick = newObject;
$("opacity").oninput = () => { maskLayer.style.opacity = $("opacity").value; };
$("scrubber").oninput = (e) => goTo(Number(e.target.value));
$("prev").onclick = () => goTo(S.frame - 1);
$("next").onclick = () => goTo(S.frame + 1);
document.addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "SELECT" || ev.target.tagName === "INPUT" && ev.target.type !== "radio" && ev.target.type !== "range") return;
  if (ev.key === "ArrowRight") { goTo(S.frame + 1); ev.preventDefault(); }
  else if (ev.key === "ArrowLeft") { goTo(S.frame - 1); ev.preventDefault(); }
  else if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { undo(); ev.preventDefault(); }
  else if (["1", "2", "3"].includes(ev.key)) {
    document.querySelector(`input[name=tool][value=${["positive", "negative", "box"][Number(ev.key) - 1]}]`).checked = true;
  }
});

// For scripts and benchmarks driving the page (Playwright): the same calls the mouse makes.
clicks.send = sendClick;  // for scripts and the benchmark
window.bv = {state: S, clicks, prompt, goTo, openVideo, propagate, undo, exportSession, idMap};
loadVideos().catch((e) => status(`cannot list videos: ${e.message}`, true));
