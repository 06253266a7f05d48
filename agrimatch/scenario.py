"""Scenario files: the simulated world's farms, weather anomalies and markets.

A scenario is TOML, validated on load with errors that name the file, the
place in it and what is wrong. Shipped scenarios live in
``agrimatch/scenarios/`` and are loaded by name (``garlic-glut``); any other
path is loaded as a file. ``farm_groups`` expand, deterministically for the
scenario's seed, into many farms, so a scenario reaches the magnitudes of the
real cases (hundreds of farms) in a few lines.

A region far from the world model's climate stations gets a generic climate
(:attr:`Scenario.climate_fallbacks`, logged as a warning on load) unless it
names a real daily weather file (``weather_file``, AquaCrop's format; a path
relative to the scenario file), which is read and checked on load: it must
cover every season the scenario simulates.
"""

from __future__ import annotations

import logging
import random
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from agrimatch.agronomy import CROPS, SOILS
from agrimatch.agronomy.seasons import planting_date
from agrimatch.climate_stations import STATION_RADIUS_KM, in_china_box, nearest_station
from agrimatch.contract.topics import ID_RE
from agrimatch.weather_table import WeatherFileError, read_weather_table

log = logging.getLogger(__name__)
# The world model's water balance starts this many days before planting
# (firmware_sim.world.season.SPINUP_DAYS): a weather file must cover them too.
SEASON_SPINUP_DAYS = 60

Id = Annotated[str, Field(pattern=f"^{ID_RE.pattern}$")]
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]


def _known(catalog: Mapping[str, object], kind: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in catalog:
            raise ValueError(f"unknown {kind} {value!r} (known: {', '.join(sorted(catalog))})")
        return value

    return check


CropName = Annotated[str, AfterValidator(_known(CROPS, "crop"))]
SoilName = Annotated[str, AfterValidator(_known(SOILS, "soil"))]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message says where and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Model):
    id: Id
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    elevation_m: float = 100.0
    # A daily weather file (AquaCrop's format) relative to the scenario file; after
    # loading, the absolute path. Without one, the climate of the nearest station
    # within 250 km, else a generic one.
    weather_file: str | None = None


@dataclass(frozen=True, slots=True)
class ClimateFallback:
    """A region with no climate station near it and no weather file: generic climate."""

    region: str
    name: str
    nearest_station: str
    distance_km: float

    calibrated: bool = True  # inside China, where the generic climate is fitted

    def message(self) -> str:
        rough = "" if self.calibrated else " (fitted for China: elsewhere a rough guess)"
        return (
            f"region {self.region!r} ({self.name}) is {self.distance_km:,.0f} km from the "
            f"nearest climate station ({self.nearest_station}; stations reach "
            f"{STATION_RADIUS_KM:.0f} km): it gets a generic climate estimated from its "
            f"latitude, longitude and elevation{rough}. For its real weather give the region "
            'a daily weather file, weather_file = "path/to/weather.txt" (relative to the scenario; '
            "AquaCrop's format: Day Month Year Tmin(C) Tmax(C) Prcp(mm) Et0(mm))"
        )


class FieldPlan(_Model):
    """One field: what grows there, how large, planted when, on what soil."""

    id: Id
    crop: CropName
    area_ha: float = Field(gt=0, le=10_000)
    planting: MonthDay  # month-day of planting (or of bud break, for orchards)
    soil: SoilName = "loam"
    devices: int = Field(default=1, ge=0, le=50)
    camera: bool = False  # a canopy-camera node publishing a vegetation index


class Farm(_Model):
    id: Id
    region: Id
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    fields: tuple[FieldPlan, ...] = Field(min_length=1)


class FarmGroup(_Model):
    """``count`` farms around a region, their fields drawn from the shares given."""

    region: Id
    count: int = Field(ge=1, le=20_000)
    id_prefix: Id
    fields_per_farm: int = Field(default=2, ge=1, le=50)
    crops: dict[CropName, float]  # crop -> share of fields
    area_ha: tuple[float, float] = (1.0, 5.0)
    planting: dict[str, MonthDay]  # crop -> typical planting month-day
    planting_jitter_days: int = Field(default=7, ge=0, le=60)
    soils: tuple[SoilName, ...] = ("loam",)
    devices_per_field: int = Field(default=1, ge=0, le=50)
    camera_share: float = Field(default=0.0, ge=0, le=1)
    spread_km: float = Field(default=15.0, gt=0, le=500)

    @model_validator(mode="after")
    def _consistent(self) -> FarmGroup:
        if not self.crops or any(share <= 0 for share in self.crops.values()):
            raise ValueError("crops needs at least one crop, each with a positive share")
        missing = sorted(set(self.crops) - set(self.planting))
        if missing:
            raise ValueError(f"planting dates missing for {missing}")
        low, high = self.area_ha
        if not 0 < low <= high:
            raise ValueError(
                f"area_ha must be [low, high] with 0 < low <= high, got {self.area_ha}"
            )
        return self


class Anomaly(_Model):
    """A weather anomaly injected into a region for a period."""

    kind: Literal["drought", "heat_wave", "wet_spell", "frost"]
    region: Id
    start: date
    end: date
    intensity: float = Field(default=1.0, gt=0, le=3)

    @model_validator(mode="after")
    def _ordered(self) -> Anomaly:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Platform(_Model):
    id: Id
    name: str
    campaign_lead_days: int = Field(default=14, ge=0, le=120)  # time to organise a campaign


class DemandShock(_Model):
    """A lasting change in demand, e.g. a new use that makes a crop popular."""

    start: date
    ramp_days: int = Field(default=60, ge=0)
    multiplier: float = Field(gt=0, le=100)


class DemandProfile(_Model):
    """Observed demand for one crop in one region on one platform."""

    platform: Id
    crop: CropName
    region: Id
    base_kg_per_day: float = Field(gt=0)
    trend_per_year: float = Field(default=0.0, ge=-0.9, le=5)
    price_cny_per_kg: float = Field(gt=0)
    price_elasticity: float = Field(default=-0.8, le=0, ge=-5)
    festival_sensitivity: float = Field(default=1.0, ge=0, le=10)
    noise: float = Field(default=0.1, ge=0, le=1)
    shocks: tuple[DemandShock, ...] = ()


class CampaignPlan(_Model):
    """A group-buying campaign that happened (history)."""

    platform: Id
    crop: CropName
    region: Id
    start: date
    end: date
    uplift: float = Field(gt=1, le=100, description="demand multiplier while it runs")
    hangover: float = Field(default=0.1, ge=0, lt=1, description="dip after it ends")

    @model_validator(mode="after")
    def _ordered(self) -> CampaignPlan:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Scenario(_Model):
    name: Id
    description: str = ""
    seed: int = 1
    # The festival calendar (holidays) knows Mid-Autumn from 2008 on.
    first_season: int = Field(ge=2008, le=2100, description="year of the first season")
    seasons: int = Field(default=3, ge=1, le=30)
    regions: tuple[Region, ...] = Field(min_length=1)
    farms: tuple[Farm, ...] = ()
    farm_groups: tuple[FarmGroup, ...] = ()
    anomalies: tuple[Anomaly, ...] = ()
    platforms: tuple[Platform, ...] = ()
    demand: tuple[DemandProfile, ...] = ()
    campaigns: tuple[CampaignPlan, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        regions = {r.id for r in self.regions}
        platforms = {p.id for p in self.platforms}
        refs = [("farms", f.id, f.region) for f in self.farms]
        refs += [("farm_groups", g.id_prefix, g.region) for g in self.farm_groups]
        refs += [("anomalies", a.kind, a.region) for a in self.anomalies]
        refs += [("demand", d.crop, d.region) for d in self.demand]
        refs += [("campaigns", c.crop, c.region) for c in self.campaigns]
        for section, what, region in refs:
            if region not in regions:
                raise ValueError(f"{section} {what!r} names unknown region {region!r}")
        for section, items in (("demand", self.demand), ("campaigns", self.campaigns)):
            for item in items:
                if item.platform not in platforms:
                    raise ValueError(f"{section} names unknown platform {item.platform!r}")
        if not self.farms and not self.farm_groups:
            raise ValueError("a scenario needs farms or farm_groups")
        return self

    @property
    def climate_fallbacks(self) -> tuple[ClimateFallback, ...]:
        """The regions that fall back to the generic climate (no station near, no file)."""
        out = []
        for region in self.regions:
            station, km = nearest_station(region.lat, region.lon)
            if region.weather_file is None and km > STATION_RADIUS_KM:
                calibrated = in_china_box(region.lat, region.lon)
                out.append(ClimateFallback(region.id, region.name, station.name, km, calibrated))
        return tuple(out)

    def weather_days_needed(
        self, region: str, seasons: int | None = None
    ) -> tuple[date, date] | None:
        """First and last day the simulator reads of ``region``'s weather in the first
        ``seasons`` (default: the scenario's) seasons, with the water balance's spin-up
        and a day either side; None for a region without fields."""
        plantings: set[tuple[str, str, int]] = set()
        for farm in self.farms:
            if farm.region == region:
                plantings.update((f.crop, f.planting, 0) for f in farm.fields)
        for group in self.farm_groups:
            if group.region == region:
                plantings.update(
                    (crop, group.planting[crop], group.planting_jitter_days) for crop in group.crops
                )
        if not plantings:
            return None
        last_season = self.first_season + (self.seasons if seasons is None else seasons) - 1
        first = min(
            planting_date(crop, day, self.first_season) - timedelta(days=jitter)
            for crop, day, jitter in plantings
        )
        last = max(
            planting_date(crop, day, last_season + 1) + timedelta(days=jitter)
            for crop, day, jitter in plantings
        )
        return first - timedelta(days=SEASON_SPINUP_DAYS + 1), last

    def check_weather_files(self, seasons: int | None = None) -> None:
        """Raise :class:`ScenarioError` if a region's weather file misses days that the
        first ``seasons`` (default: the scenario's) seasons need. Done on load for the
        scenario's seasons; call it before simulating more of them."""
        count = self.seasons if seasons is None else seasons
        for index, region in enumerate(self.regions):
            needed = self.weather_days_needed(region.id, count)
            if region.weather_file is None or needed is None:
                continue
            try:
                table = read_weather_table(region.weather_file)
            except WeatherFileError as exc:
                raise ScenarioError(f"regions.{index}.weather_file: {exc}") from None
            if not table.covers(*needed):
                last = self.first_season + count - 1
                raise ScenarioError(
                    f"regions.{index}.weather_file: {table.path.name} covers {table.span()}, "
                    f"but seasons {self.first_season}-{last} of region {region.id!r} need "
                    f"its weather from {needed[0]} to {needed[1]} (planting minus "
                    f"{SEASON_SPINUP_DAYS} days of soil-water spin-up, to the next "
                    "planting): simulate fewer seasons (first_season, seasons) or give a "
                    "longer file"
                )

    def scaled(self, share: float) -> Scenario:
        """The same world with ``share`` of each farm group's farms and of the demand.

        A group's farms expand in the same order whatever their count, so the
        scaled farms are the first ones of the full scenario; platform demand
        shrinks with the farm count so that a glut stays a glut. Explicit farms
        are kept. For quick runs and tests of a large scenario.
        """
        if not 0 < share <= 1:
            raise ScenarioError(f"scale must be in (0, 1], got {share}")
        if share == 1 or not self.farm_groups:
            return self
        groups = tuple(g.model_copy(update={"count": max(1, round(g.count * share))})
                       for g in self.farm_groups)  # fmt: skip
        actual = sum(g.count for g in groups) / sum(g.count for g in self.farm_groups)
        demand = tuple(d.model_copy(update={"base_kg_per_day": d.base_kg_per_day * actual})
                       for d in self.demand)  # fmt: skip
        return self.model_copy(
            update={
                "farm_groups": groups,
                "demand": demand,
                "description": f"{self.description} (scaled to {actual:.0%} of its farms)",
            }
        )

    def all_farms(self) -> list[Farm]:
        """The explicit farms followed by the expanded farm groups (deterministic for the seed)."""
        regions = {r.id: r for r in self.regions}
        farms = list(self.farms)
        for index, group in enumerate(self.farm_groups):
            farms.extend(
                _expand(group, regions[group.region], random.Random(f"{self.seed}:{index}"))
            )
        ids = [f.id for f in farms]
        duplicates = (
            sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        )
        if duplicates:
            raise ScenarioError(f"scenario {self.name}: duplicate farm ids {duplicates[:5]}")
        return farms


def _expand(group: FarmGroup, region: Region, rng: random.Random) -> list[Farm]:
    crops = sorted(group.crops)
    weights = [group.crops[c] for c in crops]
    km_per_deg = 111.0
    farms = []
    for n in range(group.count):
        fields = []
        for k in range(group.fields_per_farm):
            crop = rng.choices(crops, weights)[0]
            month, day = (int(x) for x in group.planting[crop].split("-"))
            shift = rng.randint(-group.planting_jitter_days, group.planting_jitter_days)
            planted = date.fromordinal(date(2001, month, min(day, 28)).toordinal() + shift)
            fields.append(
                FieldPlan(
                    id=f"f{k + 1:02d}",
                    crop=crop,
                    area_ha=round(rng.uniform(*group.area_ha), 2),
                    planting=f"{planted.month:02d}-{planted.day:02d}",
                    soil=rng.choice(group.soils),
                    devices=group.devices_per_field,
                    camera=rng.random() < group.camera_share,
                )
            )
        farms.append(
            Farm(
                id=f"{group.id_prefix}-{n + 1:04d}",
                region=region.id,
                lat=round(region.lat + rng.gauss(0, group.spread_km / km_per_deg / 2), 4),
                lon=round(region.lon + rng.gauss(0, group.spread_km / km_per_deg / 2), 4),
                fields=tuple(fields),
            )
        )
    return farms


def shipped_scenarios() -> list[str]:
    """Names of the scenarios that ship with agrimatch."""
    folder = resources.files("agrimatch") / "scenarios"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml" and str(name_or_path) in shipped_scenarios():
        folder = resources.files("agrimatch") / "scenarios"
        text = (folder / f"{name_or_path}.toml").read_text()
        return parse_scenario(text, f"scenario {name_or_path!r}", Path(str(folder)))
    else:
        if not path.is_file():
            raise ScenarioError(
                f"no scenario {str(name_or_path)!r}: not a file, and not one of the shipped "
                f"scenarios ({', '.join(shipped_scenarios())})"
            )
        text, source = path.read_text(encoding="utf-8"), str(path)
    return parse_scenario(text, source, path.parent)


def parse_scenario(text: str, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Parse and validate scenario TOML; errors name the source and the place in it.

    Regions' weather files are read relative to ``base_dir`` (the scenario
    file's folder; the working directory when None) and checked; regions left
    to the generic climate are logged as warnings.
    """
    scenario = _validate(text, source)
    scenario = _with_weather_files(scenario, source, base_dir or Path.cwd())
    for fallback in scenario.climate_fallbacks:
        log.warning("%s: %s", source, fallback.message())
    return scenario


def _with_weather_files(scenario: Scenario, source: str, base_dir: Path) -> Scenario:
    """The scenario with its regions' weather files resolved, read and checked."""
    regions = []
    for index, region in enumerate(scenario.regions):
        if region.weather_file is None:
            regions.append(region)
            continue
        where = f"{source}: regions.{index}.weather_file"
        path = (base_dir / Path(region.weather_file).expanduser()).resolve()
        try:
            read_weather_table(path)  # memoised: checked once, here, for the error's place
        except WeatherFileError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        for anomaly in scenario.anomalies:
            if anomaly.region == region.id:
                raise ScenarioError(
                    f"{source}: anomalies: a {anomaly.kind} in region {region.id!r}, whose "
                    f"weather is observed ({path.name}): remove the anomaly or the weather_file"
                )
        regions.append(region.model_copy(update={"weather_file": str(path)}))
    resolved = scenario.model_copy(update={"regions": tuple(regions)})
    try:
        resolved.check_weather_files()
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return resolved


def _validate(text: str, source: str) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"  {where}: {err['msg']}")
        raise ScenarioError(f"{source}: invalid scenario\n" + "\n".join(problems)) from None
