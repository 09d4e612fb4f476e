"""Rank strategies' parameters given as words (``rebalance="M"``, ``weighting="equal"``)
and the int64 codes the grid and the kernels hold for them."""

from __future__ import annotations

from sweepbt._validate import is_integer

#: rank strategies' parameters given as words, stored in the grid as int64 codes:
#: ``rebalance`` "W"/"M"/"Q"/"Y" (negative codes) or a whole number of bars n >= 1 (n
#: itself); ``weighting`` a name of kernels.WEIGHTINGS (its Weighting value)
CALENDAR_CODES = {"W": -1, "M": -2, "Q": -3, "Y": -4}
WEIGHTING_NAMES = ("equal", "inverse_vol", "score")
CHOICE_PARAMS = ("rebalance", "weighting")


def encode_choice(name, value, where=""):
    """The int64 code of one value of a CHOICE_PARAMS parameter; ValueError naming the
    forms allowed."""
    if name == "weighting":
        if isinstance(value, str) and value in WEIGHTING_NAMES:
            return WEIGHTING_NAMES.index(value)
        raise ValueError(f"weighting{where} must be one of {', '.join(WEIGHTING_NAMES)}; "
                         f"got {value!r}")
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.upper() in CALENDAR_CODES:
        return CALENDAR_CODES[text.upper()]
    if isinstance(text, str) and text.isdigit():
        text = int(text)
    if is_integer(text) and int(text) >= 1:
        return int(text)
    raise ValueError(f"rebalance{where} must be 'W' (ISO week), 'M' (month), 'Q' (quarter), "
                     f"'Y' (year) or a whole number of bars >= 1; got {value!r}")


def decode_choice(name, code):
    """The value a user gives for code ``code`` of ``name``: a word, or a number of bars."""
    code = int(code)
    if name == "weighting":
        return WEIGHTING_NAMES[code]
    if code < 0:
        return next(k for k, v in CALENDAR_CODES.items() if v == code)
    return code
