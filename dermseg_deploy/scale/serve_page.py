"""The page `dermseg-serve` shows at `/`: choose or drop an image, see its mask's outline over it, the lesion
fraction, the predicted Jaccard (and a warning where the mask should be checked), the time per stage and the model's
settings. Plain HTML and a small script; nothing is fetched but the
service's own `/healthz` and `/segment`.

The script posts the file's bytes to `/segment` (the API a program uses), draws the PNG mask it gets back into the
`#mask` canvas at the image's size, and outlines that mask in green over the image in `#overlay` (the colour of
`dermseg-run --overlay`). An error answer (400 for a file that is not an image, 413 for one over the pixel limit) is
shown with its status and text.
"""

from __future__ import annotations

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dermseg-serve</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 900px; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } .warning { color: #8a4b00; font-size: 0.9em; }
#drop { border: 2px dashed #99a; border-radius: 8px; padding: 1.5em; text-align: center; background: #f7f7fb; }
#drop.over { background: #e4e4f4; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.6em 0; }
th, td { padding: 0.2em 0.7em; text-align: left; } th { color: #555; font-weight: normal; }
#error { color: #b00; white-space: pre-wrap; } #overlay { max-width: 100%; border: 1px solid #ccc; }
</style>
</head>
<body>
<h1>dermseg: skin-lesion segmentation</h1>
<p class="warning">Research software. It is not a medical device and must not be used to diagnose anyone.</p>
<div id="drop">Drop an image here, or choose one: <input type="file" id="file" accept="image/*"></div>
<p id="status">Loading the model's settings ...</p>
<p id="error" hidden></p>
<p id="review" class="warning" hidden></p>
<div id="result" hidden>
  <canvas id="overlay"></canvas>
  <table id="numbers">
    <tr><th>image</th><td id="name"></td></tr>
    <tr><th>size (width x height)</th><td id="size"></td></tr>
    <tr><th>lesion fraction</th><td id="fraction"></td></tr>
    <tr><th>predicted Jaccard</th><td id="quality"></td></tr>
    <tr><th>time in the service</th><td id="seconds"></td></tr>
  </table>
  <table id="stages"><thead><tr><th>stage</th><th>ms</th></tr></thead><tbody></tbody></table>
</div>
<h2 style="font-size:1.1em">Model</h2>
<table id="settings"></table>
<canvas id="mask" hidden></canvas>
<script>
"use strict";
var STAGES = ["read", "decode", "preprocess", "inference", "postprocess", "write"];
var BASE = location.pathname.replace(/\/?$/, "/");  // the application's route, with or without its last slash

function show(id, text) { document.getElementById(id).textContent = text; }

function loadSettings() {
  return fetch(BASE + "healthz").then(function (response) { return response.json(); }).then(function (health) {
    var table = document.getElementById("settings");
    ["model", "backend", "precision", "device", "input_size_px", "threshold", "tta", "postprocess", "max_pixels",
     "predicted_jaccard", "review_below"]
      .forEach(function (key) {
        if (!(key in health)) { return; }
        var row = table.insertRow(), name = row.insertCell(), value = row.insertCell();
        name.textContent = key.replace(/_/g, " "); value.textContent = String(health[key]);
      });
    show("status", "Ready: choose or drop an image.");
    document.body.setAttribute("data-ready", "true");
  }).catch(function (error) { show("status", "Could not read the model's settings: " + error); });
}

function loadImage(blob) {
  return new Promise(function (resolve, reject) {
    var image = new Image();
    image.onload = function () { resolve(image); };
    image.onerror = function () { reject(new Error("the browser cannot show this image")); };
    image.src = URL.createObjectURL(blob);
  });
}

function drawMask(maskImage) {
  var canvas = document.getElementById("mask");
  canvas.width = maskImage.naturalWidth; canvas.height = maskImage.naturalHeight;
  var context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(maskImage, 0, 0);
  return canvas;
}

function drawOverlay(picture, maskCanvas) {
  var width = maskCanvas.width, height = maskCanvas.height, scale = Math.min(1, 800 / Math.max(width, height));
  var w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
  var canvas = document.getElementById("overlay");
  canvas.width = w; canvas.height = h;
  var context = canvas.getContext("2d");
  context.drawImage(picture, 0, 0, w, h);
  var small = document.createElement("canvas");
  small.width = w; small.height = h;
  var smallContext = small.getContext("2d", { willReadFrequently: true });
  smallContext.imageSmoothingEnabled = false;
  smallContext.drawImage(maskCanvas, 0, 0, w, h);
  var mask = smallContext.getImageData(0, 0, w, h).data, pixels = context.getImageData(0, 0, w, h);
  var inside = function (x, y) { return x < 0 || y < 0 || x >= w || y >= h || mask[4 * (y * w + x)] > 127; };
  var any = false;
  for (var y = 0; y < h; y++) {
    for (var x = 0; x < w; x++) {
      if (!inside(x, y)) { continue; }
      any = true;
      if (!inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1)) {
        var i = 4 * (y * w + x);
        pixels.data[i] = 0; pixels.data[i + 1] = 255; pixels.data[i + 2] = 0;
      }
    }
  }
  context.putImageData(pixels, 0, 0);
  if (!any) {
    context.fillStyle = "black"; context.fillRect(8, 8, 170, 30);
    context.fillStyle = "white"; context.font = "18px sans-serif"; context.fillText("no lesion found", 16, 30);
  }
}

function showError(text) {
  var error = document.getElementById("error");
  error.textContent = text; error.hidden = false;
  document.getElementById("review").hidden = true;
  document.getElementById("result").hidden = true;
  show("status", "");
  document.body.setAttribute("data-state", "error");
}

function segment(file) {
  document.body.setAttribute("data-state", "busy");
  document.getElementById("error").hidden = true;
  show("status", "Segmenting " + file.name + " ...");
  fetch(BASE + "segment?name=" + encodeURIComponent(file.name), { method: "POST", body: file }).then(function (response) {
    if (!response.ok) {
      return response.text().then(function (text) { showError("HTTP " + response.status + ": " + text.trim()); });
    }
    var fraction = response.headers.get("X-Lesion-Fraction"), seconds = response.headers.get("X-Seconds");
    var stages = JSON.parse(response.headers.get("X-Stage-Ms") || "{}");
    var predicted = response.headers.get("X-Predicted-Jaccard"), review = response.headers.get("X-Review") === "yes";
    var calibrated = response.headers.get("X-Predicted-Jaccard-Calibrated") === "yes";
    return response.blob().then(function (png) {
      return Promise.all([loadImage(png), loadImage(file)]);
    }).then(function (images) {
      var maskCanvas = drawMask(images[0]);
      show("name", file.name);
      show("size", maskCanvas.width + " x " + maskCanvas.height);
      show("fraction", (100 * parseFloat(fraction)).toFixed(2) + " %");
      show("seconds", (1000 * parseFloat(seconds)).toFixed(1) + " ms");
      show("quality", predicted === null ? "n/a" : parseFloat(predicted).toFixed(2) + (calibrated ? "" : " (uncalibrated)"));
      var note = document.getElementById("review");
      note.hidden = !review;
      note.textContent = review ? "Check this mask: its predicted Jaccard (" + parseFloat(predicted).toFixed(2)
        + ") is below the service's review threshold; masks like it are often wrong." : "";
      var body = document.querySelector("#stages tbody");
      body.textContent = "";
      STAGES.forEach(function (stage) {
        if (!(stage in stages)) { return; }
        var row = body.insertRow(); row.insertCell().textContent = stage;
        row.insertCell().textContent = stages[stage].toFixed(1);
      });
      document.getElementById("result").hidden = false;
      drawOverlay(images[1], maskCanvas);
      show("status", "Done: the green outline is the predicted lesion's border.");
      document.body.setAttribute("data-state", "done");
    });
  }).catch(function (error) { showError(String(error)); });
}

document.getElementById("file").addEventListener("change", function (event) {
  if (event.target.files.length) { segment(event.target.files[0]); }
});
var drop = document.getElementById("drop");
drop.addEventListener("dragover", function (event) { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
drop.addEventListener("drop", function (event) {
  event.preventDefault(); drop.classList.remove("over");
  if (event.dataTransfer.files.length) { segment(event.dataTransfer.files[0]); }
});
loadSettings();
</script>
</body>
</html>
"""
