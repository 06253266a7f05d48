// The campaign table (by date: platform, window, volume, what it saves, why) and the
// planting table (per crop and region, and per farm, with reasons).

import { el } from "./dom.js";
import * as f from "./format.js";

// The first reason says what it is about; the rest (timing, uplift, volumes) open on demand.
function reasons(list) {
  if (!list?.length) return el("span", { class: "muted" }, "—");
  if (list.length === 1) return el("span", { class: "reason" }, list[0]);
  return el(
    "details",
    { class: "reasons" },
    el("summary", {}, list[0]),
    el("ul", {}, list.slice(1).map((r) => el("li", {}, r))),
  );
}

/** Campaign rows, earliest start first. */
export function campaignRows(campaigns) {
  return [...campaigns]
    .sort((a, b) => a.start.localeCompare(b.start) || (a.rank ?? 0) - (b.rank ?? 0))
    .map((c) =>
      el(
        "tr",
        { dataset: { crop: c.crop, region: c.region, rank: c.rank } },
        el("td", { class: "nowrap" }, f.dateWindow(c.start, c.end)),
        el("td", { title: c.platform }, c.platform_name ?? c.platform),
        el("td", {}, `${c.crop} / ${c.region}`),
        el("td", { class: "num" }, f.tonnes(c.target_kg)),
        el("td", { class: "num" }, f.tonnes(c.expected_absorbed_kg)),
        el("td", { class: "num saves" }, f.cny(c.value_saved_cny)),
        el(
          "td",
          { class: "num", title: c.spoils_from ? `spoils unsold from ${c.spoils_from}` : null },
          c.surplus_at_risk_kg === undefined
            ? "—"
            : `${f.tonnes(c.surplus_at_risk_kg, 0)} t · ${f.cny(c.surplus_value_at_risk_cny)}`,
        ),
        el("td", { class: "why" }, reasons(c.reasons)),
      ),
    );
}

const arrow = (before, after, format) => `${format(before)} → ${format(after)}`;
const changeClass = (change) => (Math.abs(change) < 0.005 ? "same" : change > 0 ? "up" : "down");

/** One <tbody> per crop and region: its totals, then each farm with why it moves (or not). */
export function plantingBodies(planting) {
  return planting.map((p) =>
    el(
      "tbody",
      { dataset: { crop: p.crop, region: p.region } },
      el(
        "tr",
        { class: "group" },
        el("th", { scope: "rowgroup" }, `${p.crop} / ${p.region}`),
        el("td", { class: "num" }, f.num(p.current_ha)),
        el("td", { class: "num" }, f.num(p.recommended_ha)),
        el("td", { class: `num change ${changeClass(p.change_ha)}` }, f.signed(p.change_ha)),
        el("td", { class: "nowrap" }, arrow(p.expected_price_cny_per_kg_before, p.expected_price_cny_per_kg_after, (v) => f.num(v, 2))),
        el("td", { class: "nowrap" }, arrow(p.expected_margin_cny_before, p.expected_margin_cny_after, f.cny)),
        el("td", {}, p.risk),
      ),
      (p.farms ?? []).map((farm) => {
        const change = farm.recommended_ha - farm.current_ha;
        return el(
          "tr",
          { class: `farm ${changeClass(change)}`, dataset: { farm: farm.farm } },
          el("td", { class: "indent" }, farm.farm),
          el("td", { class: "num" }, f.num(farm.current_ha, 2)),
          el("td", { class: "num" }, f.num(farm.recommended_ha, 2)),
          el("td", { class: `num change ${changeClass(change)}` }, f.signed(change, 2)),
          el("td", { colspan: 2, class: "muted" }, farm.binding?.length ? `bound by ${farm.binding.join(", ")}` : ""),
          el("td", { class: "why" }, reasons(farm.reasons)),
        );
      }),
    ),
  );
}

/** A platform's proposals (campaigns recommended to it), by date, with where each stands. */
export function proposalRows(proposals) {
  return [...proposals]
    .sort((a, b) => a.start.localeCompare(b.start))
    .map((p) =>
      el(
        "tr",
        { dataset: { id: p.id, status: p.status } },
        el("td", { class: "nowrap" }, f.dateWindow(p.start, p.end)),
        el("td", {}, `${p.crop} / ${p.region}`),
        el("td", { class: "num" }, f.tonnes(p.target_kg)),
        el("td", { class: "num" }, f.tonnes(p.expected_absorbed_kg)),
        el("td", { class: "num" }, f.cny(p.value_saved_cny)),
        el(
          "td",
          { class: `status ${p.status}` },
          p.status,
          p.decided_at ? el("span", { class: "muted" }, ` ${f.day(p.decided_at)}${p.decided_by ? ` by ${p.decided_by}` : ""}`) : null,
          p.reason ? el("div", { class: "muted" }, p.reason) : null,
        ),
        el("td", { class: "why" }, reasons(p.reasons)),
      ),
    );
}
