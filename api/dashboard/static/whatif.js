// The what-if form: area scale and planting shift per crop, a weather scenario;
// POST /v1/whatif and the surplus of each crop and region before → after.

import { post } from "./api.js";
import { $, el } from "./dom.js";
import * as f from "./format.js";
import { campaignRows } from "./recommendations.js";

/** One row of inputs per crop. */
export function offerCrops(crops) {
  $("whatif-crops").replaceChildren(
    ...crops.map((crop) =>
      el(
        "tr",
        { dataset: { crop } },
        el("td", {}, crop),
        el("td", {}, el("input", { class: "area-scale", type: "number", min: 0, max: 10, step: 0.05, value: 1, "aria-label": `${crop} area scale` })),
        el("td", {}, el("input", { class: "shift-days", type: "number", min: -120, max: 120, step: 1, value: 0, "aria-label": `${crop} planting shift, days` })),
      ),
    ),
  );
}

/** The request body: only what differs from the plan (scale 1 and shift 0 change nothing). */
export function whatIfRequest(asOf) {
  const body = { area_scale: {}, planting_shift_days: {} };
  if (asOf) body.as_of = asOf;
  for (const row of $("whatif-crops").rows) {
    const crop = row.dataset.crop;
    const scale = Number(row.querySelector(".area-scale").value);
    const shift = Math.round(Number(row.querySelector(".shift-days").value));
    if (Number.isFinite(scale) && scale !== 1) body.area_scale[crop] = scale;
    if (Number.isFinite(shift) && shift !== 0) body.planting_shift_days[crop] = shift;
  }
  const weather = $("whatif-weather").value;
  if (weather) body.weather = weather;
  return body;
}

// [column, format, whether more is worse]: more surplus and more at risk are worse;
// more campaigns is neither (they answer the surplus), so it is not coloured.
const COMPARED = [
  ["peak_surplus_kg_p50", (v) => f.tonnes(v), true],
  ["surplus_weeks", (v) => f.num(v, 0), true],
  ["surplus_at_risk_kg", (v) => f.tonnes(v), true],
  ["value_at_risk_cny", f.cny, true],
  ["campaigns", (v) => (Array.isArray(v) ? String(v.length) : f.num(v, 0)), null],
];
const count = (v) => (Array.isArray(v) ? v.length : v);

function beforeAfter(row, name, format, moreIsWorse) {
  const before = count(row[`${name}_before`]);
  const after = count(row[`${name}_after`]);
  const change = after - before;
  const verdict =
    Math.abs(change) < 1e-9 || moreIsWorse === null ? "same" : change > 0 === moreIsWorse ? "worse" : "better";
  return el(
    "td",
    { class: `num ${name} ${verdict}`, dataset: { before, after } },
    `${format(row[`${name}_before`])} → ${format(row[`${name}_after`])}`,
  );
}

/** Run the what-if; `onDone` gets the answer (or the problem). */
export async function runWhatIf(asOf) {
  const answer = await post("whatif", whatIfRequest(asOf));
  $("whatif-table").tBodies[0].replaceChildren(
    ...answer.comparison.map((row) =>
      el(
        "tr",
        { dataset: { crop: row.crop, region: row.region } },
        el("td", {}, `${row.crop} / ${row.region}`),
        COMPARED.map(([name, format, moreIsWorse]) => beforeAfter(row, name, format, moreIsWorse)),
      ),
    ),
  );
  $("whatif-campaigns").tBodies[0].replaceChildren(...campaignRows(answer.campaigns ?? []));
  $("whatif-result").hidden = false;
  return answer;
}
