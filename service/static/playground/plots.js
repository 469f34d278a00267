// uPlot (vendored, global `uPlot`) set-up shared by the two plots: sized to their box,
// redrawn on resize, with vertical marks drawn in a hook.

export const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

/** The chart and resize observer living in each plot box, replaced on every redraw. */
const live = new WeakMap();

/** A uPlot in `box` (replacing any there); `marks(u)` draws extra lines after the series. */
export function plot(box, series, data, { xLabel, yLabel, marks = () => {} }) {
  const old = live.get(box);
  old?.chart.destroy();
  old?.resizer.disconnect();
  box.replaceChildren();
  const width = () => Math.max(box.clientWidth, 280);
  const chart = new uPlot(
    {
      width: width(),
      height: 320,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, { label: yLabel }],
      series: [{ label: xLabel }, ...series],
      legend: { live: true },
      hooks: { draw: [marks] },
    },
    data,
    box,
  );
  const resizer = new ResizeObserver(() => chart.setSize({ width: width(), height: 320 }));
  resizer.observe(box);
  live.set(box, { chart, resizer });
  return chart;
}

/** A vertical line at x from `top` to the bottom of the plotting area (fraction of its height). */
export function vline(u, x, { color, dash = [], top = 0, width = 1 }) {
  const { ctx, bbox } = u;
  const px = u.valToPos(x, "x", true);
  if (px < bbox.left || px > bbox.left + bbox.width) return;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = width * devicePixelRatio;
  ctx.setLineDash(dash.map((d) => d * devicePixelRatio));
  ctx.beginPath();
  ctx.moveTo(px, bbox.top + top * bbox.height);
  ctx.lineTo(px, bbox.top + bbox.height);
  ctx.stroke();
  ctx.restore();
}

/** A marker (a ring) at (x, y) in data units. */
export function ring(u, x, y, color) {
  const { ctx } = u;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 2 * devicePixelRatio;
  ctx.beginPath();
  ctx.arc(u.valToPos(x, "x", true), u.valToPos(y, "y", true), 5 * devicePixelRatio, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.restore();
}
