// Weekly supply against demand for a crop in a region, with the recommended campaign windows.

import { get } from "./api.js";
import { COLORS, drawChart, quantileSeries } from "./charts.js";
import { $, setOptions } from "./dom.js";
import * as f from "./format.js";

const DAY_S = 86400;

export const pairKey = (row) => `${row.crop}|${row.region}`;
const pairLabel = (key) => key.replace("|", " / ");

/** Offer each crop/region pair once, sorted. */
export function offerPairs(select, rows) {
  const keys = [...new Set(rows.map(pairKey))].sort();
  setOptions(select, keys.map((key) => ({ value: key, label: pairLabel(key) })));
  return keys;
}

/** Campaign windows of one pair as chart marks (a window ends at the end of its last day). */
export function campaignMarks(campaigns, key) {
  return campaigns
    .filter((c) => pairKey(c) === key)
    .map((c) => ({
      from: f.dateSeconds(c.start),
      to: f.dateSeconds(c.end) + DAY_S,
      label: c.platform_name ?? c.platform,
      rank: c.rank,
    }));
}

const tonnes = (rows, column) => rows.map((row) => (row[column] ?? null) === null ? null : row[column] / 1000);

/** Supply and demand bands of a pair, from GET /v1/balance. */
export async function showBalance(key, campaigns) {
  const [crop, region] = key.split("|");
  const answer = await get("balance", { crop, region });
  const weeks = answer.weeks.filter((w) => pairKey(w) === key).sort((a, b) => a.week.localeCompare(b.week));
  const supply = quantileSeries("supply", COLORS.supply, COLORS.supplyBand, 1);
  const demand = quantileSeries("demand", COLORS.demand, COLORS.demandBand, 4);
  drawChart("balance", $("balance-chart"), {
    series: [...supply.series, ...demand.series],
    bands: [...supply.bands, ...demand.bands],
    data: [
      weeks.map((w) => f.dateSeconds(w.week)),
      ...["supply_kg_p10", "supply_kg_p90", "supply_kg_p50", "demand_kg_p10", "demand_kg_p90", "demand_kg_p50"].map(
        (column) => tonnes(weeks, column),
      ),
    ],
    marks: campaignMarks(campaigns, key),
    yLabel: "t / week",
  });
  return answer;
}

/** Supply alone (a platform's view), from GET /v1/supply. */
export function drawSupply(weeks, key) {
  const rows = weeks.filter((w) => pairKey(w) === key).sort((a, b) => a.week.localeCompare(b.week));
  const supply = quantileSeries("supply", COLORS.supply, COLORS.supplyBand, 1);
  drawChart("supply", $("supply-chart"), {
    series: supply.series,
    bands: supply.bands,
    data: [rows.map((w) => f.dateSeconds(w.week)), ...["supply_kg_p10", "supply_kg_p90", "supply_kg_p50"].map((c) => tonnes(rows, c))],
    yLabel: "t / week",
  });
}
