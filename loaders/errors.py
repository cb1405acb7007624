"""The one exception the data layer raises for bad or missing data."""

from __future__ import annotations


class DataError(Exception):
    """Bad or missing data. The message names the path and says what to do about it.

    Programming mistakes (a batch size of 0, an input larger than the resize size) raise ValueError
    instead: they are the caller's bug, not the data's.
    """
