// The playground: wires the drawing pad, the network view, the regions walk and the
// activation plot to the service's own endpoints. window.playground holds what each panel
// last showed (tests and curious people read it).

import { call, debounce, report, whenKeyGiven } from "./api.js";
import { Activations } from "./activations.js";
import { Pad } from "./draw.js";
import { clearPrediction, deadUnits, showNetwork, showPrediction } from "./network.js";
import { Segment } from "./regions.js";

window.playground = {
  prediction: null,
  explanation: null,
  monitor: null,
  regions: null,
  activation: null,
};

const MONITOR_MAX_AGE_MS = 5000;
let sequence = 0; // answers to older drawings are dropped
let monitor = { at: 0, dead: null };

async function deadNow() {
  if (Date.now() - monitor.at > MONITOR_MAX_AGE_MS) {
    try {
      const answer = await call("/monitor/relu");
      window.playground.monitor = answer;
      monitor = { at: Date.now(), dead: deadUnits(answer) };
    } catch {
      monitor = { at: Date.now(), dead: null }; // no monitor (RELU_SERVE_MONITOR=false)
    }
  }
  return monitor.dead;
}

/** The canvas carries data-pending from a change until its answer is shown (tests wait on it). */
function pending(canvas, on) {
  if (on) canvas.dataset.pending = "true";
  else delete canvas.dataset.pending;
}

async function classify(pad) {
  const mine = ++sequence;
  const png = await pad.png();
  if (png === null) {
    clearPrediction();
    pending(pad.canvas, false);
    return;
  }
  const form = new FormData();
  form.append("files", png, "drawing.png");
  form.append("top_k", "5");
  form.append("return_input", "true");
  try {
    const answer = await call("/predict", { form });
    if (mine !== sequence) return;
    const prediction = answer.predictions[0];
    showPrediction(prediction);
    window.playground.prediction = prediction;
    const [explanation, dead] = await Promise.all([
      call("/explain", { json: { inputs: prediction.input, units: true } }),
      deadNow(),
    ]);
    if (mine !== sequence) return;
    showNetwork(explanation, dead);
    window.playground.explanation = explanation;
    report(null);
  } catch (error) {
    report(error);
  }
  if (mine === sequence) pending(pad.canvas, false);
}

async function start() {
  const model = await call("/model");
  document.getElementById("model-line").textContent =
    `Serving ${model.name} ${model.version}: ${model.labels.length} classes, ` +
    `input ${model.input_shape.join("×")}, raw range ${model.input_range.join("..")}.`;
  const canvas = document.getElementById("draw-canvas");
  const later = debounce(() => classify(pad), 150);
  const pad = new Pad(canvas, () => {
    pending(canvas, true);
    later();
  });
  document.getElementById("clear").addEventListener("click", () => {
    pad.clear();
    pending(canvas, true);
    classify(pad);
  });
  const segment = new Segment(model.labels);
  for (const slot of ["a", "b"]) {
    document.getElementById(`to-${slot}`).addEventListener("click", () => {
      const seen = window.playground.prediction?.input;
      if (seen) segment.set(slot, seen, true);
    });
  }
  const activations = new Activations((await call("/activations")).activations);
  await Promise.all([segment.walk(), activations.draw()]);
  document.body.dataset.ready = "true";
}

function run() {
  start().catch((error) => {
    report(error);
    whenKeyGiven(run);
  });
}

// uPlot's script is deferred; modules run after deferred scripts, so it is loaded by now.
run();
