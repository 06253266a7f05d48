"""Our crop model against AquaCrop-OSPy on the real daily weather files AquaCrop ships.

Both models get the same forcing — a station's daily Tmin, Tmax, rain and
reference ET0 — the same soil texture class, rainfed, starting at field
capacity on the planting day; each uses its own crop parameters (ours from
the catalog, AquaCrop's from its crop files). For each season we record the
dry yield (ours: the product's yield times its dry-matter share) and the
season length (planting to maturity, or to the day the crop died or froze).

``champion_climate.txt`` (Nebraska, 1982-2018) is held out: it is never used
to set anything here and is run once, as the independent check
(:data:`HELD_OUT`). Needs the ``aquacrop`` package (the ``dev`` extra).

    .venv/bin/python -m firmware_sim.world.validation [--sites tunis,brussels] [--crops maize]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import spearmanr

from agrimatch.agronomy import CROPS, SOILS
from firmware_sim.world._sun import extraterrestrial_mj_m2
from firmware_sim.world.crop_season import simulate_season_on
from firmware_sim.world.weather import DailyWeather

Array = NDArray[np.float64]

# Our catalog crop -> AquaCrop's crop file (the thermal-time versions, like ours).
AQUACROP_CROP = {"maize": "MaizeGDD", "potato": "PotatoGDD", "tomato": "TomatoGDD"}
# Our soil class -> AquaCrop's built-in texture class.
AQUACROP_SOIL = {"sandy_loam": "SandyLoam", "loam": "Loam", "silt_loam": "SiltLoam"}
# AquaCrop's cultivars (MaizeGDD, PotatoGDD, TomatoGDD) in our thermal time: the median
# of our degree-days (McMaster & Wilhelm, the catalog's base and cap) from planting to
# AquaCrop's maturity over the calibration sites' seasons in which AquaCrop's crop
# matured (Tunis maize, which dies of drought every year, left out). Never the
# held-out file. Both models then grow the same cultivar, each with its own mechanism.
AQUACROP_CULTIVAR_GDD = {"maize": 1490.0, "potato": 1100.0, "tomato": 1540.0}
SEASON_DAYS = 330  # the longest window a season may take (an unmatured crop stops there)


@dataclass(frozen=True, slots=True)
class Site:
    """A weather file AquaCrop ships, where it is, and when each crop is planted there."""

    name: str
    file: str
    lat: float
    planting: dict[str, str]  # crop -> "MM-DD" (local practice)
    soil: str = "sandy_loam"


def _plant(maize: str, potato: str, tomato: str) -> dict[str, str]:
    return {"maize": maize, "potato": potato, "tomato": tomato}


SITES: dict[str, Site] = {
    s.name: s
    for s in (
        Site("tunis", "tunis_climate.txt", 36.8, _plant("05-01", "02-15", "04-01")),
        Site("brussels", "brussels_climate.txt", 50.8, _plant("05-01", "04-15", "05-15")),
        Site("hyderabad", "hyderabad_climate.txt", 17.4, _plant("06-20", "11-01", "10-15")),
        Site("cordoba", "cordoba_climate.txt", -31.4, _plant("10-15", "08-20", "10-01")),
        Site("cambridge", "cambridge_climate.txt", 52.2, _plant("05-01", "04-01", "05-20")),
        Site("champion", "champion_climate.txt", 40.4, _plant("05-01", "04-20", "05-15")),
    )
}
HELD_OUT = "champion"
CALIBRATION_SITES = tuple(name for name in SITES if name != HELD_OUT)


@dataclass(frozen=True, slots=True)
class SeasonPair:
    """One season of one crop at one site, as each model saw it."""

    site: str
    crop: str
    year: int
    ours_dry_t_ha: float
    aquacrop_dry_t_ha: float
    ours_days: int
    aquacrop_days: int
    ours_matured: bool


@dataclass(frozen=True, slots=True)
class Agreement:
    """How far our seasons agree with AquaCrop's for one crop (at one or more sites)."""

    crop: str
    sites: tuple[str, ...]
    seasons: int
    spearman: float  # rank agreement of the seasons' yields
    ours_mean_t_ha: float
    aquacrop_mean_t_ha: float
    ours_days: float  # mean season length
    aquacrop_days: float
    matured_share: float  # share of our seasons that reached maturity

    @property
    def level(self) -> float:
        """Our mean dry yield over AquaCrop's."""
        return (
            self.ours_mean_t_ha / self.aquacrop_mean_t_ha if self.aquacrop_mean_t_ha else math.nan
        )


def _require_aquacrop() -> Any:
    try:
        import aquacrop
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise SystemExit(
            "the AquaCrop comparison needs the aquacrop package: "
            "install the dev extra (.venv/bin/pip install -e '.[dev]')"
        ) from exc
    return aquacrop


def station_weather(site: Site) -> tuple[DailyWeather, Array]:
    """The site's whole weather file as :class:`DailyWeather`, and its ET0 per day.

    The files hold only temperatures, rain and ET0: radiation is estimated by
    Hargreaves-Samani (0.16 sqrt(Tmax - Tmin) Ra) and the dew point set to Tmin,
    neither of which the crop model uses when it is given ET0.
    """
    aquacrop = _require_aquacrop()
    frame = aquacrop.utils.prepare_weather(aquacrop.utils.get_filepath(site.file))
    first = frame["Date"].iloc[0].date()
    days = (frame["Date"] - frame["Date"].iloc[0]).dt.days.to_numpy()
    if not np.array_equal(days, np.arange(len(days))):
        raise ValueError(f"{site.file}: days are not consecutive")
    tmin = frame["MinTemp"].to_numpy(dtype=np.float64)
    tmax = np.maximum(frame["MaxTemp"].to_numpy(dtype=np.float64), tmin)
    doy = frame["Date"].dt.day_of_year.to_numpy()
    ra = extraterrestrial_mj_m2(site.lat, doy)
    zeros = np.zeros(len(tmin))
    weather = DailyWeather(
        first_ordinal=first.toordinal(),
        lat=site.lat,
        lon=0.0,
        elevation_m=0.0,
        tmin_c=tmin,
        tmax_c=tmax,
        tmean_c=(tmin + tmax) / 2.0,
        rain_mm=frame["Precipitation"].to_numpy(dtype=np.float64),
        radiation_mj_m2=0.16 * np.sqrt(tmax - tmin) * ra,
        extraterrestrial_mj_m2=ra,
        sunshine_fraction=zeros,
        dew_point_c=tmin,
        rain_start_h=zeros,
        rain_hours=zeros,
    )
    return weather, frame["ReferenceET"].to_numpy(dtype=np.float64)


def season_years(site: Site, crop: str, weather: DailyWeather) -> list[int]:
    """The years whose whole season window (planting + SEASON_DAYS) lies in the file."""
    first, last = weather.first_day, weather.first_day + timedelta(days=len(weather) - 1)
    out = []
    for year in range(first.year, last.year + 1):
        planted = _planting(site, crop, year)
        if planted >= first and planted + timedelta(days=SEASON_DAYS) <= last:
            out.append(year)
    return out


def _planting(site: Site, crop: str, year: int) -> date:
    month, day = (int(x) for x in site.planting[crop].split("-"))
    return date(year, month, day)


def ours(
    site: Site, crop: str, years: Iterable[int], weather: DailyWeather, et0: Array
) -> list[tuple[float, int, bool]]:
    """Our model's (dry yield t/ha, season days, matured) per year."""
    spec, soil = CROPS[crop], SOILS[site.soil]
    out = []
    for year in years:
        planted = _planting(site, crop, year)
        window = weather.window(planted.toordinal(), SEASON_DAYS)
        i = planted.toordinal() - weather.first_ordinal
        season = simulate_season_on(
            window,
            spec,
            soil,
            0,
            gdd_to_maturity=AQUACROP_CULTIVAR_GDD[crop],
            et0_mm=et0[i : i + SEASON_DAYS],
            initial_fill=1.0,
        )
        dry = season.yield_t_ha * (spec.dry_matter_fraction or 1.0)
        out.append((dry, season.phenology.maturity_index, season.phenology.matured))
    return out


def aquacrop_seasons(site: Site, crop: str, years: Sequence[int]) -> list[tuple[float, int] | None]:
    """AquaCrop-OSPy's (dry yield t/ha, season days) per year, one run per season from
    field capacity at planting; None for a season whose weather cannot bring AquaCrop's
    cultivar to maturity within a year (AquaCrop refuses to run it)."""
    aquacrop = _require_aquacrop()
    frame = aquacrop.utils.prepare_weather(aquacrop.utils.get_filepath(site.file))
    out: list[tuple[float, int] | None] = []
    for year in years:
        planted = _planting(site, crop, year)
        end = planted + timedelta(days=SEASON_DAYS)
        model = aquacrop.AquaCropModel(
            planted.strftime("%Y/%m/%d"),
            end.strftime("%Y/%m/%d"),
            frame,
            aquacrop.Soil(AQUACROP_SOIL[site.soil]),
            aquacrop.Crop(
                AQUACROP_CROP[crop],
                planting_date=planted.strftime("%m/%d"),
                Zmax=CROPS[crop].root_depth_max_m,
            ),
            aquacrop.InitialWaterContent(value=["FC"]),
        )
        try:
            model.run_model(till_termination=True)
        except AssertionError:  # "not enough growing degree days ... to reach maturity"
            out.append(None)
            continue
        result = model.get_simulation_results()
        row = result.iloc[0]
        harvested = date.fromisoformat(str(row["Harvest Date (YYYY/MM/DD)"])[:10])
        out.append((float(row["Dry yield (tonne/ha)"]), (harvested - planted).days))
    return out


def compare(
    site_names: Iterable[str], crop: str, max_seasons: int | None = None
) -> list[SeasonPair]:
    """Seasons of ``crop`` at each site, both models, up to ``max_seasons`` per site."""
    pairs = []
    for name in site_names:
        site = SITES[name]
        weather, et0 = station_weather(site)
        years = season_years(site, crop, weather)[:max_seasons]
        mine = ours(site, crop, years, weather, et0)
        theirs = aquacrop_seasons(site, crop, years)
        for year, (dry, days, matured), theirs_y in zip(years, mine, theirs, strict=True):
            if theirs_y is not None:
                a_dry, a_days = theirs_y
                pairs.append(SeasonPair(name, crop, year, dry, a_dry, days, a_days, matured))
    return pairs


def agreement(pairs: Sequence[SeasonPair]) -> Agreement:
    """Rank agreement, level and season length of a set of season pairs (one crop)."""
    ours_y = np.array([p.ours_dry_t_ha for p in pairs])
    theirs_y = np.array([p.aquacrop_dry_t_ha for p in pairs])
    rho = float(spearmanr(ours_y, theirs_y).statistic) if len(pairs) > 2 else math.nan
    return Agreement(
        crop=pairs[0].crop,
        sites=tuple(dict.fromkeys(p.site for p in pairs)),
        seasons=len(pairs),
        spearman=rho,
        ours_mean_t_ha=float(ours_y.mean()),
        aquacrop_mean_t_ha=float(theirs_y.mean()),
        ours_days=float(np.mean([p.ours_days for p in pairs])),
        aquacrop_days=float(np.mean([p.aquacrop_days for p in pairs])),
        matured_share=float(np.mean([p.ours_matured for p in pairs])),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Our crop model against AquaCrop-OSPy")
    parser.add_argument("--sites", default=",".join(CALIBRATION_SITES))
    parser.add_argument("--crops", default=",".join(AQUACROP_CROP))
    parser.add_argument("--max-seasons", type=int, default=None)
    parser.add_argument("--seasons-table", action="store_true", help="print every season")
    args = parser.parse_args()
    print(
        "| site | crop | seasons | Spearman | ours t/ha | AquaCrop t/ha | level | "
        "ours days | AquaCrop days | matured |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for crop in args.crops.split(","):
        for name in args.sites.split(","):
            pairs = compare([name], crop, args.max_seasons)
            if not pairs:
                print(f"| {name} | {crop} | 0 (AquaCrop's cultivar cannot mature there) |")
                continue
            a = agreement(pairs)
            print(
                f"| {name} | {crop} | {a.seasons} | {a.spearman:.2f} | {a.ours_mean_t_ha:.2f} | "
                f"{a.aquacrop_mean_t_ha:.2f} | {a.level:.2f} | {a.ours_days:.0f} | "
                f"{a.aquacrop_days:.0f} | {a.matured_share:.0%} |"
            )
            if args.seasons_table:
                for p in pairs:
                    print(
                        f"    {p.year} ours {p.ours_dry_t_ha:6.2f} {p.ours_days:4d}d "
                        f"{'M' if p.ours_matured else '-'}  aquacrop {p.aquacrop_dry_t_ha:6.2f} "
                        f"{p.aquacrop_days:4d}d"
                    )


if __name__ == "__main__":
    main()
