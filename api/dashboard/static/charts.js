// Charts on uPlot (vendored, loaded as the global `uPlot` before the modules).
//
// `charts` holds every chart on the page by name with the data it was given:
// the page redraws and resizes through it, and tests read chart state from it
// (`(await import("./charts.js")).charts.get("balance")`) instead of pixels.

export const charts = new Map(); // name → { plot, marks }

const HEIGHT = 300;
export const COLORS = {
  supply: "#2e7d32",
  supplyBand: "rgba(46, 125, 50, 0.18)",
  demand: "#1565c0",
  demandBand: "rgba(21, 101, 192, 0.15)",
  line: "#6a1b9a",
  mark: "rgba(239, 108, 0, 0.16)",
  markEdge: "rgba(239, 108, 0, 0.7)",
};

function library() {
  const uPlot = globalThis.uPlot;
  if (!uPlot) throw new Error("the chart library did not load (vendor/uPlot.iife.min.js)");
  return uPlot;
}

const resize = new ResizeObserver((entries) => {
  for (const entry of entries) {
    for (const { plot } of charts.values()) {
      if (plot.root.parentElement === entry.target) {
        plot.setSize({ width: chartWidth(entry.target), height: HEIGHT });
      }
    }
  }
});

const chartWidth = (container) => Math.max(320, Math.floor(container.clientWidth));

/**
 * Draw (or redraw) chart `name` in `container`.
 * series: [{label, stroke, width, dash, fill}] after x; data: [xs, ...ys] (x in unix seconds);
 * bands: [{series: [upper, lower], fill}] by series index (x is 0);
 * marks: [{from, to, label}] (unix seconds) shaded behind the series.
 */
export function drawChart(name, container, { series, data, bands = [], marks = [], yLabel }) {
  const uPlot = library();
  destroyChart(name);
  container.replaceChildren();
  const x = { time: true };
  if (marks.length) {
    // Windows outside the data's weeks (stored produce sold later) still show.
    const first = Math.min(...marks.map((m) => m.from));
    const last = Math.max(...marks.map((m) => m.to));
    x.range = (_plot, min, max) => [Math.min(min ?? first, first), Math.max(max ?? last, last)];
  }
  const options = {
    width: chartWidth(container),
    height: HEIGHT,
    // Dates are calendar days and ISO weeks: show them in UTC, not the viewer's zone.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    scales: { x },
    series: [{ label: "date" }, ...series.map((s) => ({ spanGaps: false, points: { show: false }, ...s }))],
    bands,
    axes: [{}, { label: yLabel, size: 64 }],
    hooks: { drawClear: [(plot) => drawMarks(plot, marks)] },
  };
  const plot = new uPlot(options, data, container);
  charts.set(name, { plot, marks });
  resize.observe(container);
  return plot;
}

export function destroyChart(name) {
  const chart = charts.get(name);
  if (!chart) return;
  resize.unobserve(chart.plot.root.parentElement);
  chart.plot.destroy();
  charts.delete(name);
}

// Campaign windows: columns behind the series, labelled at the top.
function drawMarks(plot, marks) {
  if (!marks.length) return;
  const { ctx, bbox } = plot;
  const ratio = globalThis.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${Math.round(11 * ratio)}px sans-serif`;
  ctx.textBaseline = "top";
  for (const mark of marks) {
    const left = Math.max(bbox.left, plot.valToPos(mark.from, "x", true));
    const right = Math.min(bbox.left + bbox.width, plot.valToPos(mark.to, "x", true));
    if (right <= left) continue;
    ctx.fillStyle = COLORS.mark;
    ctx.fillRect(left, bbox.top, right - left, bbox.height);
    ctx.fillStyle = COLORS.markEdge;
    ctx.fillRect(left, bbox.top, Math.max(1, ratio), bbox.height);
    if (mark.label) ctx.fillText(mark.label, left + 3 * ratio, bbox.top + 3 * ratio);
  }
  ctx.restore();
}

/** Series of a P10–P90 band with its P50 line: [p10, p90, p50], their band. */
export function quantileSeries(label, stroke, fill, first) {
  return {
    series: [
      { label: `${label} P10`, stroke: fill, width: 1 },
      { label: `${label} P90`, stroke: fill, width: 1 },
      { label: `${label} P50`, stroke, width: 2 },
    ],
    bands: [{ series: [first + 1, first], fill }],
  };
}
