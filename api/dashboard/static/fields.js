// Fields: their latest readings, this season's forecast, and a field's telemetry chart.

import { get, mapLimit, Problem, seg } from "./api.js";
import { COLORS, drawChart } from "./charts.js";
import { $, el, setOptions } from "./dom.js";
import * as f from "./format.js";

const SHOWN_READINGS = ["soil_moisture_10cm", "air_temp", "rain", "ndvi"];
const DAY_MS = 86400e3;
const TELEMETRY_DAYS = 30;

export const fieldKey = (field) => `${field.farm}/${field.field}`;

/** Fill the fields table and the telemetry picker. */
export function renderFields(fields, onPick) {
  const rows = fields.map((field) =>
    el(
      "tr",
      { dataset: { field: fieldKey(field) }, class: "pickable", onclick: () => onPick(field) },
      el("td", {}, `${field.farm} / ${field.field}`),
      el("td", {}, field.crop),
      el("td", {}, field.region),
      el("td", { class: "num" }, f.num(field.area_ha, 2)),
      el("td", {}, f.day(field.planted_on)),
      el("td", { class: "readings" }, latestReadings(field.latest)),
      el("td", { class: "yield" }, el("span", { class: "muted" }, "…")),
      el("td", { class: "harvest nowrap" }, el("span", { class: "muted" }, "…")),
      el("td", { class: "drivers" }),
    ),
  );
  $("fields-table").tBodies[0].replaceChildren(...rows);
  setOptions(
    $("telemetry-field"),
    fields.map((field) => ({ value: fieldKey(field), label: `${field.farm} / ${field.field} (${field.crop})` })),
  );
}

function latestReadings(latest) {
  if (!latest) return el("span", { class: "muted" }, "no readings yet");
  const sensors = Object.keys(latest.readings);
  const shown = SHOWN_READINGS.filter((s) => s in latest.readings);
  const all = sensors.sort().map((s) => f.reading(s, latest.readings[s])).join("\n");
  return el(
    "span",
    { title: all },
    el("span", { class: "when" }, f.stamp(latest.time)),
    ...shown.map((s) => el("span", { class: "chip" }, f.reading(s, latest.readings[s]))),
    sensors.length > shown.length ? el("span", { class: "muted" }, ` +${sensors.length - shown.length} more`) : null,
  );
}

/**
 * Each field's forecast into its row; returns how many fields have one.
 * A field without one (404: not sown, or no forecast run yet) says so; a refused key stops all.
 */
export async function loadForecasts(fields) {
  const forecasts = await mapLimit(fields, 4, async (field) => {
    const row = rowOf(field);
    try {
      const answer = await get(`farms/${seg(field.farm)}/fields/${seg(field.field)}/forecast`);
      showForecast(row, answer.forecast);
      return answer.forecast;
    } catch (error) {
      if (!(error instanceof Problem) || error.status === 401) throw error;
      row.querySelector(".yield").replaceChildren(el("span", { class: "muted", title: error.detail }, "no forecast"));
      row.querySelector(".harvest").replaceChildren("—");
      return null;
    }
  });
  layoutIntervals(forecasts.filter(Boolean));
  return forecasts.filter(Boolean).length;
}

const rowOf = (field) => $("fields-table").querySelector(`tr[data-field="${CSS.escape(fieldKey(field))}"]`);

function showForecast(row, forecast) {
  row.dataset.yieldP10 = forecast.yield_t_ha_p10;
  row.dataset.yieldP90 = forecast.yield_t_ha_p90;
  row.dataset.crop = forecast.crop;
  row.querySelector(".yield").replaceChildren(
    el(
      "span",
      { class: "value" },
      `${f.num(forecast.yield_t_ha_p50)} (${f.num(forecast.yield_t_ha_p10)}–${f.num(forecast.yield_t_ha_p90)})`,
    ),
    el("span", { class: "interval", "aria-hidden": "true" }, el("span", { class: "range" }), el("span", { class: "mid" })),
  );
  // The API says when the interval rests on too few harvested seasons to be trusted.
  if (forecast.interval_trust === "few_seasons") {
    row.querySelector(".yield").append(
      el(
        "span",
        { class: "muted few-seasons", title: "P10–P90 learned from too few harvested seasons of this crop" },
        ` rough: ${forecast.training_seasons} season${forecast.training_seasons === 1 ? "" : "s"}`,
      ),
    );
  }
  row.querySelector(".yield .interval").dataset.p50 = forecast.yield_t_ha_p50;
  row.querySelector(".harvest").replaceChildren(
    forecast.harvest_p50
      ? `${f.day(forecast.harvest_p50)} (${f.monthDay(forecast.harvest_p10)} – ${f.monthDay(forecast.harvest_p90)})`
      : "—",
  );
  const drivers = [...(forecast.drivers ?? [])]
    .sort((a, b) => Math.abs(b.effect_t_ha) - Math.abs(a.effect_t_ha))
    .slice(0, 3)
    .map((d) => `${d.feature.replaceAll("_", " ")} ${f.signed(d.effect_t_ha)}`);
  row.querySelector(".drivers").replaceChildren(drivers.join(", ") || el("span", { class: "muted" }, "—"));
}

// Each bar spans P10–P90 on a scale shared by the fields of one crop, from just
// under its lowest P10 to just over its highest P90 (garlic's 20 t/ha and
// tomato's 50 t/ha on one scale, or one from zero, would hide the spreads).
function layoutIntervals(forecasts) {
  const bounds = new Map();
  for (const fc of forecasts) {
    const [low, high] = bounds.get(fc.crop) ?? [Infinity, 0];
    bounds.set(fc.crop, [Math.min(low, fc.yield_t_ha_p10), Math.max(high, fc.yield_t_ha_p90)]);
  }
  for (const row of $("fields-table").tBodies[0].rows) {
    const bar = row.querySelector(".interval");
    if (!bar) continue;
    const [low, high] = bounds.get(row.dataset.crop);
    const origin = low * 0.9;
    const scale = 100 / Math.max(1e-9, high * 1.05 - origin);
    const at = (value) => `${(value - origin) * scale}%`;
    const [p10, p90, p50] = [row.dataset.yieldP10, row.dataset.yieldP90, bar.dataset.p50].map(Number);
    const range = bar.querySelector(".range");
    range.style.left = at(p10); // CSSOM, which the CSP allows (style attributes it does not)
    range.style.width = `${Math.max(0.5, (p90 - p10) * scale)}%`;
    bar.querySelector(".mid").style.left = at(p50);
    bar.title = `on a scale of ${f.num(origin)}–${f.num(high * 1.05)} t/ha, shared by the ${row.dataset.crop} fields`;
  }
}

/** The sensors to offer for a field: those it reports, the usual ones first. */
export function sensorsOf(field) {
  const reported = Object.keys(field?.latest?.readings ?? f.SENSOR_UNITS);
  return [...SHOWN_READINGS.filter((s) => reported.includes(s)), ...reported.filter((s) => !SHOWN_READINGS.includes(s)).sort()];
}

export function offerSensors(field) {
  setOptions($("telemetry-sensor"), sensorsOf(field).map((s) => ({ value: s, label: s.replaceAll("_", " ") })));
}

/** A field's daily means of `sensor` over the 30 days to its latest reading. */
export async function showTelemetry(field, sensor) {
  // To the latest day with readings (its start is latest.time), not to today: a
  // field whose node went quiet still shows its last month.
  const to = new Date((field.latest ? Date.parse(field.latest.time) : Date.now()) + DAY_MS);
  const from = new Date(to.getTime() - TELEMETRY_DAYS * DAY_MS);
  const answer = await get(`farms/${seg(field.farm)}/fields/${seg(field.field)}/telemetry`, {
    from: from.toISOString(),
    to: to.toISOString(),
    every: "1d",
    sensors: sensor,
  });
  const points = answer.points ?? [];
  // Daily buckets are the field's calendar days (in the API's zone): plot them by date.
  const xs = points.map((p) => f.dateSeconds(p.time));
  const ys = points.map((p) => (typeof p[sensor] === "number" ? p[sensor] : null));
  const u = f.unit(sensor);
  $("telemetry-range").textContent =
    `${field.farm} / ${field.field}: the 30 days to ${f.day(field.latest?.time ?? to.toISOString())}, daily means, ${ys.filter((y) => y !== null).length} days with readings`;
  drawChart("telemetry", $("telemetry-chart"), {
    series: [{ label: `${sensor.replaceAll("_", " ")} (daily mean)`, stroke: COLORS.line, width: 2, points: { show: true, size: 5 } }],
    data: [xs, ys],
    yLabel: u ? `${sensor.replaceAll("_", " ")}, ${u}` : sensor.replaceAll("_", " "),
  });
}
