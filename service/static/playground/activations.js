// "Activation functions": f and f' over a range from POST /activate (float64), a second
// function overlaid, the gradient convention at each kink marked, the state in the URL.

import { call, report } from "./api.js";
import { PALETTE, plot, ring } from "./plots.js";
import { readState, writeState } from "./state.js";

const POINTS = 801;
const MAX_KINKS = 8;
/** Starting values for parameters that have no default. */
const STARTING = { prelu: { weight: 0.25 }, threshold: { threshold: 0.5, value: -1 } };

export class Activations {
  constructor(catalogue) {
    // Only elementwise functions have an f' to plot (softmax, log_softmax, glu do not).
    this.functions = new Map(catalogue.filter((a) => a.elementwise).map((a) => [a.name, a]));
    this.select = document.getElementById("function-select");
    this.compare = document.getElementById("compare-select");
    const names = [...this.functions.keys()];
    this.select.replaceChildren(...names.map((name) => new Option(name, name)));
    this.compare.append(...names.map((name) => new Option(name, name)));
    const state = readState();
    this.select.value = this.functions.has(state.fn) ? state.fn : "relu";
    this.compare.value = this.functions.has(state.vs) ? state.vs : "";
    if (Number.isFinite(state.lo)) document.getElementById("range-lo").value = state.lo;
    if (Number.isFinite(state.hi)) document.getElementById("range-hi").value = state.hi;
    this.buildParams(state.params);
    const form = document.getElementById("activation-form");
    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("change", (event) => {
      if (event.target === this.select) this.buildParams({});
      this.draw();
    });
  }

  buildParams(given) {
    const entry = this.functions.get(this.select.value);
    const box = document.getElementById("params");
    box.replaceChildren(...entry.params.map((param) => this.paramInput(entry.name, param, given)));
  }

  paramInput(fn, param, given) {
    const label = document.createElement("label");
    label.title = param.doc;
    label.append(`${param.name} `);
    const start = given[param.name] ?? STARTING[fn]?.[param.name] ?? param.default;
    let input;
    const choices = /^one of (.*)$/.exec(param.constraint ?? "");
    if (choices) {
      input = document.createElement("select");
      const options = choices[1].split(",").map((c) => c.trim().replace(/^'|'$/g, ""));
      input.append(...options.map((o) => new Option(o, o)));
      input.value = String(start);
    } else if (param.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = start === true || start === "true";
    } else {
      input = document.createElement("input");
      input.type = "number";
      input.step = "any";
      input.value = start ?? "";
    }
    input.dataset.param = param.name;
    input.dataset.type = param.type;
    label.append(input);
    return label;
  }

  /** The parameters as /activate takes them, and as text for the URL. */
  params() {
    const json = {};
    const text = {};
    for (const input of document.querySelectorAll("#params [data-param]")) {
      const name = input.dataset.param;
      if (input.type === "checkbox") {
        json[name] = input.checked;
      } else if (input.value === "") {
        continue;
      } else if (input.tagName === "SELECT") {
        json[name] = input.value;
      } else {
        json[name] = Number(input.value);
      }
      text[name] = String(json[name]);
    }
    return { json, text };
  }

  range() {
    const lo = Number(document.getElementById("range-lo").value);
    const hi = Number(document.getElementById("range-hi").value);
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) throw new Error("the range needs from < to");
    // Grid points on round numbers (x = lo + i * step, to 1e-9): kinks at 0, 0.5, 6, ... are on it.
    const step = (hi - lo) / (POINTS - 1);
    const x = Array.from({ length: POINTS }, (_, i) => Math.round((lo + i * step) * 1e9) / 1e9);
    return { lo, hi, x };
  }

  async draw() {
    try {
      const fn = this.select.value;
      const { json, text } = this.params();
      const { lo, hi, x } = this.range();
      const vs = this.compare.value;
      document.getElementById("share").href = writeState({ fn, lo, hi, vs, params: text });
      const [main, other, info] = await Promise.all([
        evaluate(fn, json, x),
        vs ? evaluate(vs, {}, x) : null,
        call(`/activations/${encodeURIComponent(fn)}`),
      ]);
      const kinks = await kinkPoints(fn, json, x, main, this.functions.get(fn));
      report(null);
      this.show(fn, x, main, vs, other, kinks, info);
    } catch (error) {
      report(error);
    }
  }

  show(fn, x, main, vs, other, kinks, info) {
    document.getElementById("formula").textContent = `${info.name}(x) = ${info.formula}`;
    const where = kinks.map((k) => `${fn}'(${k.x}) = ${k.grad}`).join("; ");
    document.getElementById("kinks").textContent =
      `Kinks: ${info.kinks}` + (where ? `. Marked: ${where} (as torch's autograd).` : "");
    const series = [
      { label: fn, stroke: PALETTE[0], width: 2 },
      { label: `${fn}'`, stroke: PALETTE[1], width: 2, dash: [6, 4] },
    ];
    const data = [x, main.value, main.grad];
    if (other) {
      series.push({ label: vs, stroke: PALETTE[2], width: 1.5 }, { label: `${vs}'`, stroke: PALETTE[4], width: 1.5, dash: [6, 4] });
      data.push(other.value, other.grad);
    }
    const marks = (u) => {
      for (const k of kinks) {
        ring(u, k.x, k.value, PALETTE[0]);
        ring(u, k.x, k.grad, PALETTE[1]);
      }
    };
    plot(document.getElementById("activation-plot"), series, data, { xLabel: "x", yLabel: "", marks });
    window.playground.activation = { fn, x, value: main.value, grad: main.grad, kinks };
  }
}

async function evaluate(fn, params, x) {
  const body = { function: fn, params, x, outputs: ["value", "grad"], dtype: "float64" };
  const answer = await call("/activate", { json: body });
  return { value: answer.value, grad: answer.grad };
}

/** Where f' jumps between two samples of a piecewise-linear f: the kink (where the two lines
 * meet, snapped to a sample; a jump in f: the last sample before it), with f and f' there
 * from the server, so the mark shows torch's convention. */
async function kinkPoints(fn, params, x, main, entry) {
  if (entry.kind !== "piecewise-linear") return [];
  const found = [];
  const { value: f, grad: g } = main;
  for (let i = 0; i + 1 < x.length; i++) {
    if (g[i] === g[i + 1]) continue;
    let at = (f[i + 1] - f[i] + g[i] * x[i] - g[i + 1] * x[i + 1]) / (g[i] - g[i + 1]);
    if (!(at >= x[i] && at <= x[i + 1])) at = x[i];
    const near = Math.abs(at - x[i]) <= Math.abs(at - x[i + 1]) ? x[i] : x[i + 1];
    found.push(Math.abs(at - near) < 1e-9 * (1 + Math.abs(at)) ? near : at);
  }
  const points = [...new Set(found)];
  // rrelu in training mode draws a slope per sample: noise, not kinks.
  if (points.length === 0 || points.length > MAX_KINKS) return [];
  const exact = await evaluate(fn, params, points);
  return points.map((p, i) => ({ x: p, value: exact.value[i], grad: exact.grad[i] }));
}
