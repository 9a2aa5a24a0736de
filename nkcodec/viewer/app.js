// nkcodec viewer: plain JavaScript, talking to the server of nkcodec/view.py.
"use strict";

const $ = (id) => document.getElementById(id);
let upload = null;      // the current image file's bytes (Blob)
let result = null;      // the last /api/encode answer
let seq = 0;            // a request that is superseded is aborted and its answer ignored
let controller = null;
let zoom = 1, panX = 0, panY = 0;
const page = Math.random().toString(36).slice(2);  // this page's id: the server drops its superseded requests
const LADDER = new Set(["default", "context", "scalar", "paper", "cluster", "scalar-rle"]);
const EFFORTS = {default: ["1"], context: ["1"], "near-lossless": ["1", "2"]};  // the efforts above 0 each preset takes

function setStatus(text, busy) {
  $("status").textContent = text;
  $("status").classList.toggle("busy", !!busy);
  document.body.dataset.busy = busy ? "1" : "0";
}

function showError(message) {
  // over the image, where the eye is; the old image and figures go, so nothing stale looks valid
  $("error").textContent = message || "";
  $("error").hidden = !message;
  if (message) {
    result = null;
    for (const id of ["left", "right"]) $(id).removeAttribute("src");
    for (const id of ["label-left", "label-right"]) $(id).textContent = "";
    $("split-line").hidden = true;
    $("table").querySelector("tbody").innerHTML = "";
    drawRD(null);
  }
}

function applicable() {
  // controls that do not apply to the preset (or to an opened stream) are disabled
  const preset = $("preset").value, opened = document.body.dataset.state === "opened";
  $("quality").disabled = opened || !LADDER.has(preset);
  $("max-error").disabled = opened || preset !== "near-lossless";
  // effort: the learned presets refine their latent (1); near-lossless tries more per tile (1, 2)
  $("effort").disabled = opened || !(preset in EFFORTS);
  for (const o of $("effort").options) o.disabled = o.value !== "0" && !(EFFORTS[preset] || []).includes(o.value);
  if ($("effort").selectedOptions[0].disabled) $("effort").value = "0";
  $("preset").disabled = opened && !upload;
  $("errmap").disabled = opened;
  $("peer").disabled = opened;
}

function settings() {
  const q = new URLSearchParams({preset: $("preset").value, quality: $("quality").value});
  if ($("preset").value === "near-lossless") q.set("max_error", $("max-error").value);
  if ($("effort").value !== "0") q.set("effort", $("effort").value);
  return q;
}

async function post(path, body) {
  if (controller) controller.abort();
  controller = new AbortController();
  const mine = ++seq;
  setStatus("working...", true);
  showError("");
  try {
    const url = path + (path.includes("?") ? "&" : "?") + new URLSearchParams({page, seq: mine});
    const r = await fetch(url, {method: "POST", body, signal: controller.signal});
    const data = await r.json();
    if (mine !== seq || r.status === 409) return null;   // superseded: a newer request owns the page
    if (!r.ok) {
      setStatus(`error ${r.status}`, false);
      showError(data.error || `HTTP ${r.status}`);
      document.body.dataset.state = "error";
      return null;
    }
    setStatus("done", false);
    return data;
  } catch (e) {
    if (e.name === "AbortError") return null;
    if (mine === seq) { setStatus("error", false); showError(String(e)); }
    return null;
  }
}

async function encode() {
  if (!upload) return;
  const asked = settings();
  const data = await post("/api/encode?" + asked, upload);
  if (!data) return;
  result = data;
  document.body.dataset.state = "encoded";
  document.body.dataset.quality = asked.get("quality");  // what this answer was computed for
  $("info").textContent = "";
  fillPeers(data.peers);
  render();
  fillTable(data);
  drawRD(data.rd, data.rd_note);
  applicable();
  const blob = new Blob([Uint8Array.from(atob(data.nkc), (c) => c.charCodeAt(0))], {type: "image/x-nkc"});
  $("dl-nkc").href = URL.createObjectURL(blob);
  $("dl-png").href = data.decoded;
}

async function openNkc(file) {
  const data = await post("/api/open", file);
  if (!data) return;
  result = {original: null, decoded: data.decoded, error_map: null, peers: {}, opened: true};
  document.body.dataset.state = "opened";
  applicable();
  drawRD(null, "an opened .nkc stream: no original to measure against");
  $("info").textContent = JSON.stringify(data.info, null, 1);
  $("table").querySelector("tbody").innerHTML = "";
  render();
  $("dl-png").href = data.decoded;
}

function fmt(v, d) { return v === null || v === undefined ? "lossless" : Number(v).toFixed(d); }

function fillTable(data) {
  const f = data.figures;
  const rows = [["nkcodec", f.bytes, fmt(f.bpp, 4), fmt(f.cr, 3), fmt(f.psnr, 2), fmt(f.mse, 3), f.max_error, fmt(f.encode_ms, 1), fmt(f.decode_ms, 1)]];
  for (const [name, p] of Object.entries(data.peers || {})) {
    rows.push([`${name} ${p.setting}`, p.bytes, fmt(p.bpp, 4), "", fmt(p.psnr, 2), "", "", "", ""]);
  }
  const body = $("table").querySelector("tbody");
  body.innerHTML = "";
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.dataset.codec = row[0].split(" ")[0];
    row.forEach((v, i) => {
      const td = document.createElement(i ? "td" : "th");
      td.textContent = v;
      if (i) td.dataset.col = ["", "bytes", "bpp", "cr", "psnr", "mse", "max_error", "encode_ms", "decode_ms"][i];
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
}

function fillPeers(peers) {
  // the peers the server chose for this preset: JPEG and WebP at the same size, or lossless ones
  const sel = $("peer"), was = sel.value;
  sel.innerHTML = "";
  for (const [value, label] of [["original", "original"], ...Object.entries(peers || {}).map(([k, p]) => [k, p.label])]) {
    const o = document.createElement("option");
    o.value = value; o.textContent = label;
    sel.appendChild(o);
  }
  sel.value = [...sel.options].some((o) => o.value === was) ? was : "original";
}

function render() {
  if (!result) return;
  $("split-line").hidden = false;
  if (result.opened) {  // a stream has no original: it is shown alone, as what it decodes to
    $("left").src = result.decoded;
    $("right").src = result.decoded;
    $("label-left").textContent = "decoded .nkc (no original)";
    $("label-right").textContent = "decoded .nkc";
    layout();
    return;
  }
  const peer = $("peer").value;
  const left = peer === "original" || !result.peers[peer] ? result.original : result.peers[peer].image;
  $("left").src = left;
  $("label-left").textContent = peer === "original" || !result.peers[peer] ? "original" : `${peer} ${result.peers[peer].setting}`;
  $("right").src = $("errmap").checked ? result.error_map : result.decoded;
  $("label-right").textContent = $("errmap").checked ? "|error| x 8" : "nkcodec";
  layout();
}

function layout() {
  const img = $("left");
  const w = img.naturalWidth || 0;
  const split = $("split").value / 100;
  $("stage").style.transform = `translate(${panX}px, ${panY}px) scale(${zoom})`;
  $("stage").style.width = w + "px";
  $("clip").style.width = (w * (1 - split)) + "px";
  $("split-line").style.left = (w * split) + "px";
  // the split slider spans the image as shown, not the viewport
  const vp = $("viewport").getBoundingClientRect();
  const left = Math.max(0, panX), right = Math.min(vp.width, panX + w * zoom);
  $("split").style.marginLeft = left + "px";
  $("split").style.width = Math.max(40, right - left) + "px";
}

function niceTicks(lo, hi, n) {
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toFixed(6)));
  return out;
}

function drawRD(rd, note) {
  const svg = $("rd");
  svg.innerHTML = "";
  if (!rd) {
    if (note) svg.innerHTML = `<text x="180" y="110" font-size="12" text-anchor="middle">${note.replace(/[<>&]/g, "")}</text>`;
    return;
  }
  const all = Object.values(rd).flat();
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]).filter(isFinite);
  const [x0, x1, y0, y1] = [0, Math.max(...xs) * 1.05, Math.min(...ys) - 1, Math.max(...ys) + 1];
  const W = 360, H = 220, m = 30;
  const sx = (x) => m + (W - 2 * m) * (x - x0) / (x1 - x0), sy = (y) => H - m - (H - 2 * m) * (y - y0) / (y1 - y0);
  const colors = {nkcodec: "#c22", jpeg: "#26c", webp: "#2a2"};
  let html = `<text x="${W / 2}" y="${H - 2}" font-size="11" text-anchor="middle">bpp</text><text x="5" y="12" font-size="11">PSNR dB</text>`;
  html += `<path d="M${m},${m / 2}V${H - m}H${W - m / 2}" fill="none" stroke="#888"/>`;
  for (const x of niceTicks(x0, x1, 5)) html += `<g class="tick"><path d="M${sx(x)},${H - m}v4" stroke="#888"/><text x="${sx(x)}" y="${H - m + 14}" font-size="9" text-anchor="middle">${x}</text></g>`;
  for (const y of niceTicks(y0, y1, 5)) html += `<g class="tick"><path d="M${m},${sy(y)}h-4" stroke="#888"/><text x="${m - 6}" y="${sy(y) + 3}" font-size="9" text-anchor="end">${y}</text></g>`;
  for (const [name, pts] of Object.entries(rd)) {
    const path = pts.filter((p) => isFinite(p[1])).map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    html += `<path d="${path}" fill="none" stroke="${colors[name]}" stroke-width="2"/>`;
    html += `<text x="${W - m}" y="${20 + 14 * Object.keys(colors).indexOf(name)}" fill="${colors[name]}" font-size="11" text-anchor="end">${name}</text>`;
  }
  svg.innerHTML = html;
}

async function useFile(file) {
  if (!file) return;
  const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  if (head[0] === 0x4e && head[1] === 0x4b && head[2] === 0x43 && (head[3] === 1 || head[3] === 2)) {  // "NKC", container version 1 or 2
    upload = null;
    return openNkc(file);
  }
  upload = file;
  return encode();
}

async function loadSamples() {
  const r = await fetch("/api/samples");
  for (const name of await r.json()) {
    const o = document.createElement("option");
    o.value = o.textContent = name;
    $("sample").appendChild(o);
  }
}

$("file").addEventListener("change", (e) => useFile(e.target.files[0]));
$("sample").addEventListener("change", async (e) => {
  if (!e.target.value) return;
  const r = await fetch("/api/sample?name=" + encodeURIComponent(e.target.value));
  upload = await r.blob();
  encode();
});
for (const id of ["preset", "max-error", "effort"]) $(id).addEventListener("change", () => { applicable(); encode(); });
$("quality").addEventListener("input", () => { $("quality-out").textContent = $("quality").value; encode(); });
$("peer").addEventListener("change", render);
$("errmap").addEventListener("change", render);
$("split").addEventListener("input", layout);
$("zoom").addEventListener("input", () => { zoom = Number($("zoom").value); $("zoom-out").textContent = zoom + "x"; layout(); });
$("left").addEventListener("load", layout);

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); useFile(e.dataTransfer.files[0]); });

let dragging = null;
// Pan: the page's own drag.  preventDefault keeps the browser from starting its native image
// drag (after which no mouseup arrives), and a move with no button held ends a lost drag.
let splitting = false;  // dragging the split line moves it; anywhere else pans
$("viewport").addEventListener("mousedown", (e) => {
  if (e.button !== 0) return;
  e.preventDefault();
  const line = $("split-line").getBoundingClientRect();
  if (Math.abs(e.clientX - (line.left + line.width / 2)) <= 6) { splitting = true; return; }
  dragging = [e.clientX - panX, e.clientY - panY];
});
window.addEventListener("mousemove", (e) => {
  if (!splitting) return;
  if ((e.buttons & 1) === 0) { splitting = false; return; }
  const img = $("left").getBoundingClientRect();
  $("split").value = Math.round(100 * Math.min(1, Math.max(0, (e.clientX - img.left) / Math.max(1, img.width))));
  layout();
});
window.addEventListener("mouseup", () => { splitting = false; });
$("viewport").addEventListener("dragstart", (e) => e.preventDefault());
window.addEventListener("mouseup", () => { dragging = null; });
window.addEventListener("mousemove", (e) => {
  if (!dragging) return;
  if ((e.buttons & 1) === 0) { dragging = null; return; }
  panX = e.clientX - dragging[0]; panY = e.clientY - dragging[1]; layout();
});
$("viewport").addEventListener("wheel", (e) => {
  e.preventDefault();
  // zoom about the cursor: the image point under it stays under it
  const vp = $("viewport").getBoundingClientRect();
  const cx = e.clientX - vp.left, cy = e.clientY - vp.top;
  const ix = (cx - panX) / zoom, iy = (cy - panY) / zoom;
  zoom = Math.min(8, Math.max(1, zoom * (e.deltaY < 0 ? 2 : 0.5)));
  panX = cx - ix * zoom; panY = cy - iy * zoom;
  $("zoom").value = zoom; $("zoom-out").textContent = zoom + "x"; layout();
}, {passive: false});

applicable();
loadSamples();
