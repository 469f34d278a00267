// The drawing canvas: pointer strokes (mouse, pen, touch) or the keyboard, white ink on black
// like the training digits; `onChange` runs after each stroke segment.

const INK = 32; // stroke width in canvas pixels (the canvas is 280 wide): thick, like the scanned digits
const STEP = 14; // keyboard pen step

export class Pad {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onChange = onChange;
    this.drawn = false;
    this.last = null;
    this.cursor = { x: canvas.width / 2, y: canvas.height / 2, down: false };
    this.clear();
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const type of ["pointerup", "pointercancel", "pointerleave"]) {
      canvas.addEventListener(type, () => (this.last = null));
    }
    canvas.addEventListener("keydown", (e) => this.key(e));
  }

  clear() {
    const { ctx, canvas } = this;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    this.drawn = false;
  }

  /** The drawing as a PNG blob, or null when nothing is drawn. */
  png() {
    if (!this.drawn) return Promise.resolve(null);
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png"));
  }

  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * this.canvas.width) / box.width,
      y: ((event.clientY - box.top) * this.canvas.height) / box.height,
    };
  }

  down(event) {
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.point(event);
    this.line(this.last, this.last);
  }

  move(event) {
    if (!this.last) return;
    const next = this.point(event);
    this.line(this.last, next);
    this.last = next;
  }

  line(from, to) {
    const { ctx } = this;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = INK;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    this.drawn = true;
    this.onChange();
  }

  key(event) {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const c = this.cursor;
    if (event.key in moves) {
      const [dx, dy] = moves[event.key];
      const from = { x: c.x, y: c.y };
      c.x = Math.min(Math.max(c.x + dx * STEP, 0), this.canvas.width);
      c.y = Math.min(Math.max(c.y + dy * STEP, 0), this.canvas.height);
      if (c.down) this.line(from, c);
    } else if (event.key === " ") {
      c.down = !c.down;
      if (c.down) this.line(c, c);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      this.clear();
      this.onChange();
    } else {
      return;
    }
    event.preventDefault();
  }
}

/** Paint an image (rows of numbers in [lo, hi]) onto a small canvas, grayscale. */
export function paintGray(canvas, rows, lo = 0, hi = 16) {
  const h = rows.length;
  const w = rows[0].length;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  rows.flat().forEach((v, i) => {
    const g = Math.round((255 * Math.min(Math.max(v - lo, 0), hi - lo)) / (hi - lo));
    image.data.set([g, g, g, 255], 4 * i);
  });
  ctx.putImageData(image, 0, 0);
}
