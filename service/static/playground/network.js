// The "Draw" answer and "Inside the network": top-k from /predict, the input the model saw,
// which ReLU units fired (/explain with units=true), dead units (/monitor/relu), saliency and
// the linear region around the drawing.

import { paintGray } from "./draw.js";

const FIRED = [245, 159, 0];
const OFF = [52, 58, 64];
const DEAD = [201, 42, 42];

export function showPrediction(prediction) {
  document.getElementById("prediction").textContent = prediction.label;
  document.getElementById("confidence").textContent =
    `confidence ${(100 * prediction.confidence).toFixed(1)} %`;
  const list = document.getElementById("topk");
  list.replaceChildren(
    ...prediction.top_k.map((entry) => {
      const item = document.createElement("li");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${(100 * entry.probability).toFixed(1)}%`;
      const name = document.createElement("span");
      name.textContent = entry.label;
      const value = document.createElement("span");
      value.textContent = `${(100 * entry.probability).toFixed(1)}%`;
      item.append(name, bar, value);
      return item;
    }),
  );
  paintGray(document.getElementById("model-input"), prediction.input);
}

export function clearPrediction() {
  document.getElementById("prediction").textContent = "–";
  document.getElementById("confidence").textContent = "";
  document.getElementById("topk").replaceChildren();
  document.getElementById("layer-maps").replaceChildren();
  document.getElementById("region-facts").replaceChildren();
}

/** Units that never fired, per layer name, from GET /monitor/relu (flat C-order indices),
 * with the images they were counted over; none marked before the monitor has seen an image. */
export function deadUnits(monitor) {
  const dead = new Map();
  for (const layer of monitor?.layers ?? []) {
    if (layer.images > 0) dead.set(layer.name, { units: new Set(layer.dead), images: layer.images });
  }
  return dead;
}

export function showNetwork(explanation, dead) {
  const maps = document.getElementById("layer-maps");
  const relus = explanation.pattern?.layers.filter((layer) => layer.kind === "relu") ?? [];
  maps.replaceChildren(...relus.map((layer) => layerFigure(layer, dead)));
  const weights = explanation.linear_map.weights[explanation.index];
  paintSaliency(document.getElementById("saliency"), weights);
  const region = explanation.region;
  facts(document.getElementById("region-facts"), [
    ["pattern id", explanation.pattern?.id ?? "–"],
    ["region radius", radius(region)],
    ["nearest switch", region?.nearest ? `${region.nearest.layer} unit ${region.nearest.unit.join(",")}` : "–"],
  ]);
}

function radius(region) {
  if (!region || region.radius == null) return "–";
  if (region.ties > 0) return `0: the drawing lies on ${region.ties} switching surfaces`;
  return `${region.radius.toPrecision(3)} (L2 distance to the region's boundary, normalised input)`;
}

/** `dead`: deadUnits' map, or null when the service has no monitor. */
function layerFigure(layer, deadByLayer) {
  const monitored = deadByLayer?.get(layer.name);
  const dead = monitored?.units ?? new Set();
  const figure = document.createElement("div");
  figure.className = "layer";
  const title = document.createElement("h3");
  title.textContent = layer.name;
  const counts = document.createElement("p");
  const share = ((100 * layer.active) / layer.units).toFixed(0);
  let deadText = "dead units: the monitor is off";
  if (monitored) deadText = `${dead.size} dead over ${monitored.images} sampled images`;
  else if (deadByLayer) deadText = "dead units: the monitor has sampled no image yet";
  counts.textContent = `${layer.active} of ${layer.units} fired now (${share} %); ${deadText}`;
  const canvas = document.createElement("canvas");
  canvas.setAttribute("aria-label", `${layer.name}: ${layer.active} of ${layer.units} units fired`);
  paintUnits(canvas, layer.map, dead);
  figure.append(title, counts, canvas);
  return figure;
}

/** One tile per channel (H x W units each), tiles in a near-square grid, 1 px apart. */
function paintUnits(canvas, map, dead) {
  const channels = Array.isArray(map[0]) ? map : map.map((v) => [[v]]);
  const h = channels[0].length;
  const w = channels[0][0].length;
  const cols = Math.ceil(Math.sqrt(channels.length * (h / w)));
  const rows = Math.ceil(channels.length / cols);
  canvas.width = cols * (w + 1) - 1;
  canvas.height = rows * (h + 1) - 1;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  channels.forEach((tile, c) => {
    const x0 = (c % cols) * (w + 1);
    const y0 = Math.floor(c / cols) * (h + 1);
    tile.forEach((row, y) =>
      row.forEach((on, x) => {
        const unit = (c * h + y) * w + x;
        const color = dead.has(unit) ? DEAD : on ? FIRED : OFF;
        image.data.set([...color, 255], 4 * ((y0 + y) * canvas.width + x0 + x));
      }),
    );
  });
  ctx.putImageData(image, 0, 0);
}

/** Red where the weight raises the logit, blue where it lowers it, white at 0. */
function paintSaliency(canvas, weights) {
  const rows = Array.isArray(weights[0][0]) ? weights[0] : weights;
  const scale = Math.max(...rows.flat().map(Math.abs)) || 1;
  canvas.width = rows[0].length;
  canvas.height = rows.length;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  rows.flat().forEach((v, i) => {
    const t = Math.round(255 * (1 - Math.abs(v) / scale));
    image.data.set(v >= 0 ? [255, t, t, 255] : [t, t, 255, 255], 4 * i);
  });
  ctx.putImageData(image, 0, 0);
}

export function facts(list, pairs) {
  list.replaceChildren(
    ...pairs.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}
