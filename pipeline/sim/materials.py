"""The simulated ground's materials: label codes and reflectance spectra, with their sources.

Each 1 m cell of the simulator's ground map (:mod:`pipeline.sim.ground`) holds one material code;
these tables say what each material reflects in the sensors' bands. The values are
representative, rounded to the ranges of the cited spectra: they are not measurements.

References
----------
.. [1] Kokaly, R. F. et al. (2017). USGS Spectral Library Version 7. U.S. Geological Survey
   Data Series 1035. (soils, dry grass, green vegetation, in the visible, NIR and SWIR)
.. [2] Trigg, S. & Flasse, S. (2000). Characterizing the spectral-temporal response of burned
   savannah using in situ spectroradiometry and infrared thermometry. International Journal
   of Remote Sensing 21(16), 3161-3168. (savanna char and ash)
.. [3] Pereira, J. M. C. et al. (1999). Spectral characterisation and discrimination of burnt
   areas. In Chuvieco, E. (ed.), Remote Sensing of Large Wildfires, Springer, 123-138.
.. [4] Planet Labs PBC, "PlanetScope overview": Dove Classic (PS2) and SuperDove (PSB.SD)
   band passes.
"""

from __future__ import annotations

import numpy as np

# Representative surface reflectance (blue, green, red, NIR) of each ground material. Rounded
# values in the ranges of the cited spectra, not band-integrated library spectra: sand,
# laterite, dry vegetation (dry grass and millet stubble) and tree canopy after [1]; char and
# ash after [2, 3]. The village materials are variants of soil and dry grass (mud brick is soil,
# thatch and fences are dry grass stems) and are our own choice. They stand for what the
# SuperDove / Sentinel-2 band passes see; Dove Classic reads them through _PS2_RESPONSE.
SPECTRA: dict[str, tuple[float, float, float, float]] = {
    "sand": (0.14, 0.20, 0.27, 0.33),
    "laterite": (0.09, 0.14, 0.24, 0.30),
    "dry_vegetation": (0.08, 0.12, 0.17, 0.27),
    "tree": (0.03, 0.07, 0.05, 0.38),
    "lane": (0.16, 0.22, 0.29, 0.35),  # trampled sand between compounds
    "track": (0.18, 0.25, 0.32, 0.38),  # compacted sandy paths, brighter than their sides
    "wall": (0.13, 0.18, 0.25, 0.31),  # banco (sun-dried mud brick)
    "yard": (0.15, 0.21, 0.28, 0.33),  # swept earth
    "thatch": (0.13, 0.19, 0.25, 0.36),
    "old_thatch": (0.11, 0.16, 0.21, 0.31),  # weathered roofs and granary caps
    "straw": (0.10, 0.14, 0.19, 0.29),  # secco mat fences and stalk piles
    "char": (0.04, 0.04, 0.05, 0.06),
    "ash": (0.20, 0.21, 0.22, 0.23),
    "old_scar": (0.07, 0.08, 0.10, 0.15),  # a December field fire, char mixed into sand
}
# Materials only the dry season paints, appended so the demo's label codes never change. A
# deciduous crown in leaf is the tree spectrum; shedding moves it toward bare branches over
# litter and soil (NIR ~0.25, red up), after [1]'s dry-stem and soil spectra.
_SPECTRA_EXTRA: dict[str, tuple[float, float, float, float]] = {
    "deciduous_tree": (0.03, 0.07, 0.05, 0.38),
    "bare_crown": (0.09, 0.12, 0.16, 0.25),
    "millet": (0.07, 0.10, 0.14, 0.25),  # standing dry stalks: dry grass darkened by their shade
}
# SWIR (1.61, 2.19 um) reflectance for the Sentinel-2 scenario: sand, dry grass and green
# canopy after [1]; ash brighter than char in the SWIR after [2, 3]; the rest by analogy
# (soil-like, dry-grass-like) and our own choice. Char keeps much of its SWIR while its NIR
# collapses (which is why NBR works on burned grass and sand): on a real Sentinel-2 pair of a
# dry-grassland fire (the 5 Incident of 2024, California) the pixels with dNBR above 0.3 read
# NIR 0.06 and SWIR 2.19 um 0.18 after the fire. An old scar is char mixed into sand.
SWIR_SPECTRA: dict[str, tuple[float, float]] = {
    "sand": (0.45, 0.40), "laterite": (0.42, 0.36), "dry_vegetation": (0.38, 0.27),
    "tree": (0.18, 0.08), "lane": (0.47, 0.42), "track": (0.50, 0.45), "wall": (0.44, 0.39),
    "yard": (0.46, 0.41), "thatch": (0.42, 0.30), "old_thatch": (0.37, 0.27), "straw": (0.36, 0.26),
    "char": (0.16, 0.18), "ash": (0.32, 0.29), "old_scar": (0.27, 0.26),
    "deciduous_tree": (0.18, 0.08), "bare_crown": (0.32, 0.25), "millet": (0.35, 0.25),
}
MATERIALS = tuple(SPECTRA) + tuple(_SPECTRA_EXTRA)
ALL_SPECTRA = {**SPECTRA, **_SPECTRA_EXTRA}
LUT = np.array([ALL_SPECTRA[m] for m in MATERIALS], dtype=np.float32).T  # (band, material)
LUT_S2 = np.array([ALL_SPECTRA[m] + SWIR_SPECTRA[m] for m in MATERIALS], dtype=np.float32).T
(SAND, LATERITE, DRY_VEG, TREE, LANE, TRACK, WALL, YARD, THATCH, OLD_THATCH, STRAW,
 CHAR, ASH, OLD_SCAR, DECIDUOUS, BARE_CROWN, MILLET) = range(len(MATERIALS))
SOILS = (SAND, LATERITE, LANE, TRACK, WALL, YARD, OLD_SCAR)  # what rain darkens
CROWNS = (TREE, DECIDUOUS)
FUEL = (DRY_VEG, MILLET, STRAW)  # what a field fire turns to char

# Dove Classic (PS2) relative to SuperDove (PSB.SD), per material class and band. PS2's green,
# red and NIR passes (500-590, 590-670, 780-860 nm) sit 20-45 nm shorter than SuperDove's
# (547-585, 650-682, 846-888 nm) [4]: soils and dry grass, whose reflectance rises with
# wavelength, read lower; a green canopy reads higher in red (PS2 misses most of the 670 nm
# chlorophyll well) and lower in green (it averages in the blue-green slope). Factors stay
# within 4 %, our own estimate of the size of such effects, not a calibration.
_PS2_RESPONSE = {
    "soil": (0.995, 0.98, 0.97, 0.985),
    "dry": (0.99, 0.975, 0.96, 0.99),
    "green": (1.0, 0.97, 1.04, 0.99),
    "burned": (1.0, 1.0, 0.995, 0.995),
}
_MATERIAL_CLASS = {m: "soil" for m in ("sand", "laterite", "lane", "track", "wall", "yard", "old_scar")} | {
    m: "dry" for m in ("dry_vegetation", "thatch", "old_thatch", "straw", "bare_crown", "millet")} | {
    "tree": "green", "deciduous_tree": "green", "char": "burned", "ash": "burned"}
PS2_FACTORS = np.array([_PS2_RESPONSE[_MATERIAL_CLASS[m]] for m in MATERIALS], dtype=np.float32).T
