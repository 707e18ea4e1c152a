"""How the report names things: one label style for categories and precincts, and a glossary of
the source's codes that a reader cannot be expected to know."""
from __future__ import annotations

import re

import pandas as pd

SMALL_WORDS = {"of", "and", "or", "the", "to", "in", "for", "a", "an"}
GLOSSARY = {  # code as the source writes it: what it means (said plainly where the source does not)
    "DEST/DAM/VAND": "destruction, damage or vandalism (of property)",
    "BURG/BREAK & ENTER": "burglary, breaking and entering",
    "OCU": "a precinct value naming an MPD special unit (Organized Crime Unit), not a station area",
    "STIS": "a precinct value naming an MPD special unit, not a station area; the source does not expand it",
    "MOTORS": "a precinct value naming an MPD special unit, not a station area",
    "MEM": "a precinct value the source does not explain; it is not one of MPD's nine station areas",
    "numeric precincts (such as 10)": "precinct codes the source does not explain; shown as given",
    "UNKNOWN (precinct)": "no precinct in the source row",
    "NIBRS Group A": "the 20-odd serious offense types NIBRS counts in full (assault, burglary, theft, ...)",
    "NIBRS Group B": "lesser offense types (disorderly conduct, trespass, DUI, ...) counted only with an arrest nationally",
    "Crimes against persons / property / society": "NIBRS's grouping by what an offense harms, as the source row gives it",
}


def label(text: object) -> object:
    """A category or precinct in the report's one style: capitalised words, small words lower case
    ("Dest/Dam/Vand of Property"); anything that is not text is left alone."""
    if not isinstance(text, str) or not text.isupper():
        return text
    words = re.split(r"(\W+)", text.lower())
    return "".join(word if i and word in SMALL_WORDS else word[:1].upper() + word[1:] for i, word in enumerate(words))


def percent(share: float) -> str:
    """A share as a percentage: "<0.1%" for a small share that is not none, "0%" for none."""
    if pd.isna(share):
        return "–"
    return "0%" if share == 0 else "<0.1%" if 0 < share < 0.0005 else f"{share:.1%}"


def labelled(values: pd.Series) -> pd.Series:
    return values.map(label)


def glossary_table() -> pd.DataFrame:
    return pd.DataFrame({"code": list(GLOSSARY), "meaning": list(GLOSSARY.values())})
