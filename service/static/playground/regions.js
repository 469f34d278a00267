// "Linear regions between two digits": POST /regions with logits=true, and the logits along
// the segment A -> B, exact at every knot and straight between them.

import { call, report } from "./api.js";
import { DIGITS } from "./digits.js";
import { paintGray } from "./draw.js";
import { PALETTE, plot, vline } from "./plots.js";

export class Segment {
  constructor(labels) {
    this.labels = labels;
    this.ends = { a: DIGITS[1], b: DIGITS[7] };
    for (const slot of ["a", "b"]) {
      const select = document.getElementById(`preset-${slot}`);
      select.replaceChildren(
        ...DIGITS.map((_, digit) => new Option(`digit ${digit}`, String(digit))),
        new Option("your drawing", "drawing"),
      );
      select.value = slot === "a" ? "1" : "7";
      select.addEventListener("change", () => {
        if (select.value !== "drawing") this.set(slot, DIGITS[Number(select.value)]);
      });
    }
  }

  /** Put an image (8x8 rows, raw range) at end `slot` and walk again. */
  set(slot, image, fromDrawing = false) {
    this.ends[slot] = image;
    if (fromDrawing) document.getElementById(`preset-${slot}`).value = "drawing";
    this.walk();
  }

  async walk() {
    const { a, b } = this.ends;
    paintGray(document.getElementById("slot-a"), a);
    paintGray(document.getElementById("slot-b"), b);
    try {
      const answer = await call("/regions", { json: { start: a, end: b, logits: true } });
      report(null);
      this.show(answer);
    } catch (error) {
      report(error);
    }
  }

  show(answer) {
    const { t, logits } = answer.knots;
    const series = this.labels.map((label, k) => ({
      label: `logit ${label}`,
      stroke: PALETTE[k % PALETTE.length],
      width: 1.5,
    }));
    const data = [t, ...this.labels.map((_, k) => logits.map((row) => row[k]))];
    const marks = (u) => {
      for (const x of answer.breakpoints) vline(u, x, { color: "#868e96", top: 0.94 });
      for (const x of answer.decision_changes) vline(u, x, { color: "#c92a2a", dash: [5, 4], width: 1.5 });
    };
    plot(document.getElementById("regions-plot"), series, data, {
      xLabel: "t (A at 0, B at 1)",
      yLabel: "logit",
      marks,
    });
    const labels = answer.pieces.map((piece) => piece.label);
    const path = labels.filter((label, i) => i === 0 || label !== labels[i - 1]);
    document.getElementById("regions-facts").textContent =
      `${answer.activation_regions} activation regions, ${answer.linear_pieces} linear pieces; ` +
      `the label goes ${path.join(" → ")} ` +
      `(${answer.decision_changes.length} decision changes); affine check ${answer.max_abs_error.toExponential(1)}.`;
    window.playground.regions = { answer, data };
  }
}
