// nkcodec viewer: plain JavaScript, talking to the server of nkcodec/view.py.
"use strict";

const $ = (id) => document.getElementById(id);
let upload = null;      // the current image file's bytes (Blob)
let result = null;      // the last /api/encode answer
let seq = 0;            // a request that is superseded is aborted and its answer ignored
let controller = null;
let zoom = 1, panX = 0, panY = 0;

function setStatus(text, busy) {
  $("status").textContent = text;
  $("status").classList.toggle("busy", !!busy);
  document.body.dataset.busy = busy ? "1" : "0";
}

function showError(message) {
  $("error").textContent = message || "";
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
    const r = await fetch(path, {method: "POST", body, signal: controller.signal});
    const data = await r.json();
    if (mine !== seq) return null;   // superseded: a newer request owns the page
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
  render();
  fillTable(data);
  drawRD(data.rd);
  const blob = new Blob([Uint8Array.from(atob(data.nkc), (c) => c.charCodeAt(0))], {type: "image/x-nkc"});
  $("dl-nkc").href = URL.createObjectURL(blob);
  $("dl-png").href = data.decoded;
}

async function openNkc(file) {
  const data = await post("/api/open", file);
  if (!data) return;
  result = {original: data.decoded, decoded: data.decoded, error_map: data.decoded, peers: {}};
  document.body.dataset.state = "opened";
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
    rows.push([`${name} q${p.quality}`, p.bytes, fmt(p.bpp, 4), "", fmt(p.psnr, 2), "", "", "", ""]);
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

function render() {
  if (!result) return;
  const peer = $("peer").value;
  const left = peer === "original" || !result.peers[peer] ? result.original : result.peers[peer].image;
  $("left").src = left;
  $("label-left").textContent = peer === "original" || !result.peers[peer] ? "original" : `${peer} q${result.peers[peer].quality}`;
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
}

function drawRD(rd) {
  const svg = $("rd");
  svg.innerHTML = "";
  if (!rd) return;
  const all = Object.values(rd).flat();
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]).filter(isFinite);
  const [x0, x1, y0, y1] = [0, Math.max(...xs) * 1.05, Math.min(...ys) - 1, Math.max(...ys) + 1];
  const W = 360, H = 220, m = 30;
  const sx = (x) => m + (W - 2 * m) * (x - x0) / (x1 - x0), sy = (y) => H - m - (H - 2 * m) * (y - y0) / (y1 - y0);
  const colors = {nkcodec: "#c22", jpeg: "#26c", webp: "#2a2"};
  let html = `<text x="${W / 2}" y="${H - 5}" font-size="11" text-anchor="middle">bpp</text><text x="5" y="15" font-size="11">PSNR dB</text>`;
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
  if (head[0] === 0x4e && head[1] === 0x4b && head[2] === 0x43 && head[3] === 1) {  // "NKC", version 1
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
for (const id of ["preset", "max-error", "effort"]) $(id).addEventListener("change", encode);
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
$("viewport").addEventListener("mousedown", (e) => {
  if (e.button !== 0) return;
  e.preventDefault();
  dragging = [e.clientX - panX, e.clientY - panY];
});
$("viewport").addEventListener("dragstart", (e) => e.preventDefault());
window.addEventListener("mouseup", () => { dragging = null; });
window.addEventListener("mousemove", (e) => {
  if (!dragging) return;
  if ((e.buttons & 1) === 0) { dragging = null; return; }
  panX = e.clientX - dragging[0]; panY = e.clientY - dragging[1]; layout();
});
$("viewport").addEventListener("wheel", (e) => {
  e.preventDefault();
  zoom = Math.min(8, Math.max(1, zoom * (e.deltaY < 0 ? 2 : 0.5)));
  $("zoom").value = zoom; $("zoom-out").textContent = zoom + "x"; layout();
}, {passive: false});

loadSamples();
