"""The named simulator scenarios: what happens on the ground and in the sky, and when.

A scenario is a plan, not code: five acquisitions (time, haze, cloud, misregistration,
which PlanetScope instrument took it, how wet the soil is and how bare the deciduous trees
are), the dated events (burns in the settlement or in a field, a harvest), how the cloud
lies, and which sensor images it all. :mod:`pipeline.sim.simulate` paints and images any plan
with one engine, so a new hard case is a new entry here and never a copy of imaging code.

Every scenario except ``"demo"`` is built so that a naive method (a fixed threshold on a raw
index difference, no co-registration, no normalisation, no masks) fails it; the
``description`` of each plan says how. All times are UTC; in Mali local time is UTC.

Examples
--------
>>> from pipeline.sim.scenarios import SCENARIOS
>>> plan = SCENARIOS["cloud_flagged"]
>>> plan.cloud_scene, f"{plan.acquisitions[plan.cloud_scene].time:%Y-%m-%d}", plan.shadow_flagged
(2, '2024-01-28', True)

References
----------
.. [1] Planet Labs PBC, "PlanetScope overview" (developers.planet.com/docs/data/planetscope):
   Dove Classic (PS2) bands 455-515, 500-590, 590-670, 780-860 nm; Dove-R (PS2.SD) and
   SuperDove (PSB.SD) share one filter response (blue 464-517, green 547-585, red 650-682,
   NIR 846-888 nm).
.. [2] Lobell, D. B. & Asner, G. P. (2002). Moisture effects on soil reflectance. Soil Science
   Society of America Journal 66(3), 722-727. (wet soil darkens in every band)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Literal

__all__ = ["Acquisition", "Event", "Haze", "Instrument", "SCENARIOS", "Scenario", "ScenarioPlan"]

#: Named simulator scenarios (see each plan's ``description``):
#:
#: - ``"demo"``: the reported story; two attacks, mild haze, a flagged cloud on 31 January.
#: - ``"large_shift"``: the demo story with 25-30 px misregistration between dates.
#: - ``"satellite_response"``: alternate scenes from Dove Classic and SuperDove, whose band
#:   passes read each material differently (not one linear map per band).
#: - ``"haze_after"``: dense harmattan dust on the two after-attack scenes only.
#: - ``"cloud_flagged"``: a low cumulus over burned compounds on 28 January, its shadow over
#:   other compounds, both flagged in UDM2.
#: - ``"shadow_unflagged"``: the same sky, but UDM2 misses the shadow.
#: - ``"dry_season"``: no settlement burn; leaf fall, a harvest, a field stubble burn, rain
#:   and an earlier acquisition time.
#: - ``"single_compound"``: one 10 x 10 m burn in one compound.
#: - ``"sentinel2"``: the demo story seen by a Sentinel-2-like sensor on a 10 m grid.
#: - ``"partial_burns"``: compounds of many sizes, neighbours 3 m apart with their walls
#:   between them; only 30-90 % of each compound catches, some burns leave mostly white ash.
#: - ``"leaf_drop"``, ``"harvest"``, ``"wet_soil"``, ``"building_shadow"``,
#:   ``"cloud_shadow_unflagged"``: one non-fire darkening each, alone; nothing burns.
#: - ``"nonfire_with_burns"``: all five of them in a village burned on two dates.
#: - ``"cloud_over_burns"``: the 31 January scene's flagged cloud hides burns of the 29th,
#:   which must be bracketed from the clear 28 January scene.
#: - ``"burns_at_dawn"``: the first attack is first visible on a scene taken at 07:50, whose long
#:   shadows fall elsewhere than on the scenes around it.
Scenario = Literal["demo", "large_shift", "satellite_response", "haze_after", "cloud_flagged",
                   "shadow_unflagged", "dry_season", "single_compound", "sentinel2", "partial_burns",
                   "leaf_drop", "harvest", "wet_soil", "building_shadow", "cloud_shadow_unflagged",
                   "nonfire_with_burns", "cloud_over_burns", "burns_at_dawn"]
#: Harmattan dust level of a scene; all but ``"none"`` are flagged as light haze in UDM2
#: because the ground stays visible (``"dense"`` is t = 0.80).
Haze = Literal["none", "light", "moderate", "dense"]
#: PlanetScope instrument of a scene: ``""`` = not modelled (the demo's per-satellite gains
#: only), ``"PS2"`` = Dove Classic, ``"PSB.SD"`` = SuperDove [1].
Instrument = Literal["", "PS2", "PSB.SD"]

_UTC = timezone.utc


def _at(month: int, day: int, hour: int = 10, minute: int = 38) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=_UTC)


@dataclass(frozen=True)
class Acquisition:
    """One planned scene and the conditions it is taken under."""

    time: datetime
    """Acquisition time, UTC; sets the sun angles and so the length of every shadow."""
    haze: Haze = "none"
    """Harmattan dust between the ground and the sensor."""
    cloud: bool = False
    """Whether the scenario's cumulus (and its shadow) is in this scene; one scene at most."""
    coarse_shift_px: tuple[int, int] = (0, 0)
    """Whole-pixel misregistration added to the scene's random sub-pixel shift (rows, cols)."""
    instrument: Instrument = ""
    """PlanetScope instrument: sets band gains/offsets and each material's band response."""
    leaf_loss: float = 0.0
    """Share of their leaves the deciduous trees have shed (0 = full canopy, 1 = bare)."""
    soil_wetness: float = 0.0
    """Darkening of soils by moisture, as a fraction of their dry reflectance (0.35 = 35 %)."""


@dataclass(frozen=True)
class Event:
    """A dated change on the ground; the truth records burns, the metadata the rest."""

    name: str
    """Stable identifier, e.g. ``"attack-2024-01-27"``."""
    time: datetime
    """Assumed time it happened, UTC; the first scene after it is the first to show it."""
    reported: str
    """What was reported or assumed, in words."""
    setting: Literal["settlement", "outside"] = "settlement"
    """Where it burns: compounds of the village, or a field outside it."""


@dataclass(frozen=True)
class ScenarioPlan:
    """Everything that makes one scenario: the simulator's engine does the rest."""

    name: str
    """The scenario's name, one of :data:`Scenario`."""
    description: str
    """One sentence: what makes this case hard."""
    acquisitions: tuple[Acquisition, ...]
    """The five scenes, in time order."""
    events: tuple[Event, ...]
    """Burns in time order; settlement events are numbered 1, 2... in this order."""
    settlement_burns: Literal["two_events", "one_compound", "none"] = "two_events"
    """Which compounds burn: the first ``n_burned_first`` then the rest, one only, or none."""
    cloud_geometry: Literal["far_return", "across_village"] = "far_return"
    """Demo cumulus (high base, shadow off to the north-west) or a low one whose shadow falls
    on the village side away from the sun, across the line between the two attacks."""
    attack_towards_sun: bool = False
    """Put the first attack on the sun side of the village, so a cloud there shadows the rest."""
    shadow_flagged: bool = True
    """Whether UDM2 flags the cloud shadow (it sometimes does not)."""
    sensor: Literal["planetscope", "sentinel2"] = "planetscope"
    """3 m four-band PlanetScope-like, or 10 m Sentinel-2-like with 20 m SWIR bands."""
    fine_shift_px: tuple[float, float] = (0.3, 4.0)
    """Range of each scene's random misregistration per axis, pixels (random sign)."""
    tree_shadows: bool = True
    """Paint tree shadows from each scene's sun; off only for the frozen demo rendering."""
    harvest_time: datetime | None = None
    """When a millet field outside the village is cut to stubble (None: no harvest)."""
    notes: tuple[str, ...] = field(default=())
    """Extra notes for the series metadata."""
    burn_extent: Literal["most", "partial"] = "most"
    """How much of a burned compound catches: most of it (the demo), or a random 30-90 % of the
    ground inside its walls in one irregular patch, a third of them mostly white ash."""
    layout: Literal["lattice", "blocks"] = "lattice"
    """Compounds one per lattice slot, 20-28 m (the demo), or slots holding one compound of
    8-30 m or two neighbours 1 m apart (each behind its own 1 m wall: 3 m of unburned ground,
    one PlanetScope pixel, between their yards), some with a corner cut off."""
    courtyard_trees: bool = False
    """Plant a deciduous tree over a third of the courtyards (its leaf fall reads as darkening)."""
    building_shadows: bool = False
    """Walls (2 m) and huts (3 m) cast shadows from each scene's sun, as trees do."""
    sky_light: Literal["neutral", "bluish"] = "neutral"
    """What lights a shadow: the same share of every band (the demo), or the dusty sky's bluish light
    (:data:`pipeline.sim.sky.SKY_LIGHT_BLUISH`), which keeps more of the blue than of the NIR, so that a shadow
    darkens the NIR most, as char does."""

    @property
    def cloud_scene(self) -> int | None:
        """Index of the scene with the cumulus, or None."""
        return next((k for k, a in enumerate(self.acquisitions) if a.cloud), None)


_DATES = ((1, 26), (1, 27), (1, 28), (1, 31), (2, 1))
_ATTACKS = (
    Event("attack-2024-01-27", datetime(2024, 1, 27, 18, 0, tzinfo=_UTC),
          "attack reported on the evening of 27 January (Mali local time = UTC)"),
    Event("return-2024-02-01", datetime(2024, 2, 1, 6, 0, tzinfo=_UTC),
          "return reported on 1 February, before the 10:38 UTC pass"),
)


def _scenes(haze: tuple[Haze, ...] = ("none", "light", "none", "none", "moderate"),
            cloud: int | None = 3, **per_scene: tuple) -> tuple[Acquisition, ...]:
    """Five acquisitions on the demo dates at 10:38 UTC; keyword tuples vary per scene."""
    out = []
    for k, (m, d) in enumerate(_DATES):
        extra = {name: values[k] for name, values in per_scene.items()}
        out.append(Acquisition(time=_at(m, d), haze=haze[k], cloud=(k == cloud), **extra))
    return tuple(out)


_DEMO = ScenarioPlan(
    name="demo",
    description="The reported story under fair conditions: sub-4-pixel shifts, mild haze and a "
                "flagged cloud on 31 January over compounds that burn on 1 February.",
    acquisitions=_scenes(), events=_ATTACKS, tree_shadows=False)

# large_shift: whole-pixel offsets chosen so every scene is within 30 px of every other one
# (row spread 27, column spread 28, plus sub-pixel parts below 1 px), and the 27 January
# scene is more than 25 px from the 26 January reference.
_LARGE_SHIFTS = ((0, 0), (27, -17), (6, 9), (24, 11), (13, -16))

# dry_season: rain on the afternoon of 30 January wets the soil seen on the 31st (about a
# third darker [2]), which has nearly dried by 1 February. Deciduous trees shed leaves
# steadily. The 27 January scene is taken an hour earlier (a lower sun, longer shadows).
_DRY_SCENES = tuple(
    replace(a, time=a.time.replace(hour=9, minute=40)) if k == 1 else a
    for k, a in enumerate(_scenes(cloud=None, leaf_loss=(0.0, 0.2, 0.45, 0.8, 1.0),
                                  soil_wetness=(0.0, 0.0, 0.0, 0.35, 0.06))))

# The non-fire cases: no settlement burn and no event at all, so every polygon is a false one.
_NO_BURN = dict(settlement_burns="none", events=(), tree_shadows=True)
# leaf_drop: the deciduous crowns (a third of the courtyards have one) shed their leaves over
# the series, most of it between 28 and 31 January: NIR falls by a third, red triples.
_LEAF_DROP = (0.0, 0.1, 0.25, 0.85, 1.0)
# building_shadow: the 31 January scene is taken at 07:50 UTC, the sun about 25 degrees high
# instead of about 50: every wall and hut shadow is two to three times as long, and turned.
_EARLY = tuple(replace(a, time=a.time.replace(hour=7, minute=50)) if k == 3 else a
               for k, a in enumerate(_scenes(cloud=None)))
# cloud_over_burns: the first attack is on the evening of the 29th, so it is first visible on
# the 31st, the scene whose cloud hides it; only the 1 February scene shows it clear, and its
# honest bracket opens at the last clear scene before, 28 January.
_ATTACKS_29 = (
    Event("attack-2024-01-29", datetime(2024, 1, 29, 18, 0, tzinfo=_UTC),
          "attack reported on the evening of 29 January"),
    _ATTACKS[1],
)

# burns_at_dawn: the first attack is on the night of the 26th, so it is first visible on the 27 January
# scene, taken at 07:50 (sun about 14 degrees high): its char must be dated there, beside the long
# shadows the same scene casts over unburned compounds.
_ATTACKS_26 = (
    Event("attack-2024-01-26", datetime(2024, 1, 26, 21, 0, tzinfo=_UTC),
          "attack reported on the night of 26 January"),
    _ATTACKS[1],
)

SCENARIOS: dict[str, ScenarioPlan] = {p.name: p for p in (
    _DEMO,
    replace(_DEMO, name="large_shift", fine_shift_px=(0.1, 0.9), tree_shadows=True,
            acquisitions=_scenes(coarse_shift_px=_LARGE_SHIFTS),
            description="Scenes are misregistered by up to 30 px between dates, so a "
                        "pixel-by-pixel difference compares different ground everywhere."),
    replace(_DEMO, name="satellite_response", tree_shadows=True,
            acquisitions=_scenes(instrument=("PS2", "PSB.SD", "PS2", "PSB.SD", "PS2")),
            description="Alternate scenes come from Dove Classic and SuperDove, whose band passes "
                        "read trees, soils and dry grass differently, so no per-band gain and "
                        "offset makes the dates comparable everywhere."),
    replace(_DEMO, name="haze_after", tree_shadows=True,
            acquisitions=_scenes(haze=("none", "none", "dense", "none", "dense")),
            description="Dense harmattan dust (t = 0.80, blue path +0.08) on exactly the two "
                        "scenes that first show each attack brightens and flattens them, "
                        "masking the burns' darkening; UDM2 calls it light haze."),
    replace(_DEMO, name="cloud_flagged", tree_shadows=True, cloud_geometry="across_village",
            attack_towards_sun=True, acquisitions=_scenes(cloud=2),
            description="A cumulus hides compounds burned by the first attack on 28 January, the "
                        "day they first show, and its shadow darkens other compounds; both are "
                        "flagged, so the burns can only be dated from the clear 31 January scene."),
    replace(_DEMO, name="shadow_unflagged", sky_light="bluish", tree_shadows=True, cloud_geometry="across_village",
            attack_towards_sun=True, shadow_flagged=False, acquisitions=_scenes(cloud=2),
            description="As cloud_flagged, but UDM2 misses the cloud shadow, which darkens unburned "
                        "compounds and fields on 28 January, the NIR most (bluish sky light), and is gone on 31 January."),
    replace(_DEMO, name="dry_season", tree_shadows=True, settlement_burns="none",
            acquisitions=_DRY_SCENES, harvest_time=datetime(2024, 1, 27, 15, 0, tzinfo=_UTC),
            events=(Event("field-burn-2024-01-29", datetime(2024, 1, 29, 16, 0, tzinfo=_UTC),
                          "a farmer burns the stubble of a cleared field outside the village",
                          "outside"),),
            description="Nothing in the settlement burns, but leaf fall, a harvest, a field "
                        "stubble burn, rain-darkened soil and a different sun angle all change "
                        "the scenes."),
    replace(_DEMO, name="single_compound", tree_shadows=True, settlement_burns="one_compound",
            events=_ATTACKS[:1],
            description="Only one compound burns, over 10 x 10 m (about 11 pixels), so the "
                        "signal is barely larger than co-registration and noise errors."),
    replace(_DEMO, name="sentinel2", tree_shadows=True, sensor="sentinel2", fine_shift_px=(0.3, 0.6),
            description="The demo story at Sentinel-2's 10 m, where a 20-28 m compound spans a few "
                        "pixels and the SWIR bands are 20 m pixels resampled to 10 m."),
    replace(_DEMO, name="partial_burns", tree_shadows=True, burn_extent="partial", layout="blocks",
            description="Compounds of 8-30 m, some in pairs 3 m (one pixel, two walls) apart; only "
                        "30-90 % of each burned compound catches, in one irregular patch, and a "
                        "third of the burns leave mostly white ash, brighter than char."),
    replace(_DEMO, name="leaf_drop", courtyard_trees=True, **_NO_BURN,
            acquisitions=_scenes(cloud=None, leaf_loss=_LEAF_DROP),
            description="Nothing burns; trees over a third of the courtyards drop their leaves, so "
                        "NIR falls strongly over compounds while red rises."),
    replace(_DEMO, name="harvest", harvest_time=datetime(2024, 1, 29, 15, 0, tzinfo=_UTC), **_NO_BURN,
            acquisitions=_scenes(cloud=None),
            description="Nothing burns; a millet field beside the village is cut to stubble and "
                        "bare soil between the 28th and the 31st."),
    replace(_DEMO, name="wet_soil", **_NO_BURN,
            acquisitions=_scenes(cloud=None, soil_wetness=(0.0, 0.0, 0.0, 0.35, 0.0)),
            description="Nothing burns; rain on 30 January darkens every soil, lane and wall by "
                        "about a third in every band on the 31st only."),
    replace(_DEMO, name="building_shadow", building_shadows=True, acquisitions=_EARLY, **_NO_BURN,
            description="Nothing burns; the 31 January scene is taken at 07:50 UTC, so the shadows "
                        "of walls, huts and trees inside every compound are two to three times as "
                        "long and fall the other way."),
    replace(_DEMO, name="cloud_shadow_unflagged", sky_light="bluish", cloud_geometry="across_village", shadow_flagged=False,
            acquisitions=_scenes(cloud=2), **_NO_BURN,
            description="Nothing burns; a flagged cumulus on 28 January casts a shadow across the "
                        "village that UDM2 does not flag, lit by the bluish sky, so the NIR falls most, as under char."),
    replace(_DEMO, name="nonfire_with_burns", sky_light="bluish", tree_shadows=True, courtyard_trees=True, building_shadows=True,
            cloud_geometry="across_village", attack_towards_sun=True, shadow_flagged=False,
            harvest_time=datetime(2024, 1, 29, 15, 0, tzinfo=_UTC),
            acquisitions=tuple(replace(a, time=a.time.replace(hour=7, minute=50)) if k == 1 else a for k, a in
                               enumerate(_scenes(cloud=2, leaf_loss=_LEAF_DROP,
                                                 soil_wetness=(0.0, 0.0, 0.0, 0.35, 0.0)))),
            description="The demo's two attacks beside every non-fire darkening: leaf drop over "
                        "courtyards, a harvest, rain-wet soil on the 31st, long wall and hut shadows "
                        "on the 27th and an unflagged cloud shadow on the 28th, all lit by the bluish sky."),
    replace(_DEMO, name="cloud_over_burns", tree_shadows=True, cloud_geometry="across_village",
            attack_towards_sun=True, events=_ATTACKS_29, acquisitions=_scenes(cloud=3),
            description="The flagged cumulus of 31 January hides compounds burned on the 29th, "
                        "first visible that day; they show clear only on 1 February, beside the "
                        "return's burns, and must be bracketed from the clear 28 January scene."),
    replace(_DEMO, name="burns_at_dawn", sky_light="bluish", tree_shadows=True, courtyard_trees=True,
            building_shadows=True, events=_ATTACKS_26,
            acquisitions=tuple(replace(a, time=a.time.replace(hour=7, minute=50)) if k == 1 else a for k, a in
                               enumerate(_scenes(cloud=None))),
            description="The first attack, on the night of the 26th, is first visible on the 27 January "
                        "scene, taken at 07:50 UTC: its char must be dated there, though that scene's "
                        "long wall, hut and tree shadows fall elsewhere than on the scenes around it."),
)}
