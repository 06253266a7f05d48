// Numbers, dates and units as the tables and charts show them (fixed "en"
// locale: the same page for everyone, and tests that read it).

const numberFormats = new Map();
function nf(digits) {
  if (!numberFormats.has(digits)) {
    numberFormats.set(
      digits,
      new Intl.NumberFormat("en", { minimumFractionDigits: digits, maximumFractionDigits: digits }),
    );
  }
  return numberFormats.get(digits);
}

const missing = (v) => v === null || v === undefined || Number.isNaN(v);

export const num = (v, digits = 1) => (missing(v) ? "—" : nf(digits).format(v));
export const signed = (v, digits = 1) => (missing(v) ? "—" : (v > 0 ? "+" : "") + num(v, digits));
export const tonnes = (kg, digits = 1) => (missing(kg) ? "—" : num(kg / 1000, digits));
export const cny = (v) => (missing(v) ? "—" : `¥${num(v, 0)}`);
export const percent = (p) => (missing(p) ? "—" : `${num(p * 100, 0)}%`);

/** "2026-05-22" → "05-22" (same year as the window it is shown in). */
export const monthDay = (iso) => (iso ? iso.slice(5, 10) : "—");
export const day = (iso) => (iso ? iso.slice(0, 10) : "—");
/** An ISO timestamp as "2026-04-14 18:00 UTC+08:00", or its date alone at midnight (a day). */
export function stamp(iso) {
  const parts = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)[^Z+-]*(Z|[+-]\d\d:?\d\d)?$/.exec(iso ?? "");
  if (!parts) return iso || "—";
  const [, date, time, zone] = parts;
  if (time === "00:00") return date;
  return `${date} ${time} ${!zone || zone === "Z" ? "UTC" : `UTC${zone}`}`;
}

/** "2026-06-01 – 06-21": a window from its first to its last day. */
export const dateWindow = (start, end) => `${day(start)} – ${monthDay(end)}`;

/** ISO date (a week's Monday, a harvest day) → unix seconds at 00:00 UTC, as the charts' x. */
export const dateSeconds = (iso) => Date.parse(`${iso.slice(0, 10)}T00:00:00Z`) / 1000;
export const timeSeconds = (iso) => Date.parse(iso) / 1000;

// SenML units of the canonical sensors, as agrimatch/contract/sensors.py sets
// them (tests/dashboard checks the two agree).
export const SENSOR_UNITS = {
  soil_moisture_10cm: "%",
  soil_moisture_30cm: "%",
  soil_temp: "Cel",
  air_temp: "Cel",
  air_temp_min: "Cel",
  air_temp_max: "Cel",
  air_rh: "%RH",
  rain: "mm",
  solar_rad: "W/m2",
  leaf_wetness: "%",
  battery: "V",
  rsrp: "dBm",
  sinr: "dB",
  latency: "ms",
  ndvi: "/",
};
const DISPLAY_UNITS = { Cel: "°C", "W/m2": "W/m²", "/": "" };

export function unit(sensor) {
  const senml = SENSOR_UNITS[sensor] ?? "";
  return DISPLAY_UNITS[senml] ?? senml;
}

/** "air_temp 21.4 °C" */
export function reading(sensor, value) {
  const u = unit(sensor);
  return `${sensor.replaceAll("_", " ")} ${num(value, sensor === "ndvi" ? 2 : 1)}${u ? ` ${u}` : ""}`;
}
