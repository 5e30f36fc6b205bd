"""Honest labels for lenses and data in figures, galleries, tables and UI metadata.

Rule (issue 20): a lens is **real** only when it is a lenscat object imaged by the real
survey. In the embedded default every pixel is simulated, including the lenses rendered at
lenscat positions, so every lens there is **mock**, and outputs made from it carry
:data:`EMBEDDED_DEFAULT_LABEL`. Planted lenses (``source = "mock"``) are mock everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "EMBEDDED_DEFAULT_LABEL",
    "LENS_KINDS",
    "data_label",
    "is_mock_environment",
    "lens_kind",
    "lens_set_label",
    "with_data_label",
]

#: What outputs of the local environment (the embedded mock survey) say they come from.
EMBEDDED_DEFAULT_LABEL: str = "embedded default (mock DR10)"
#: The kinds a lens can be shown as.
LENS_KINDS: tuple[str, ...] = ("real", "mock")


def is_mock_environment(environment: str) -> bool:
    """Whether the ``STRONGLENS_ENV`` environment images the embedded mock survey (``local``)."""
    return environment == "local"


def lens_kind(source: str, *, mock_data: bool) -> str:
    """``"real"`` for a lenscat object on real survey data, else ``"mock"``.

    Args:
        source: the lens's ``source`` (``lenscat`` for catalogued candidates, ``mock`` for
            lenses a simulation planted).
        mock_data: whether the images come from the embedded mock survey.
    """
    return "real" if source == "lenscat" and not mock_data else "mock"


def lens_set_label(kinds: Iterable[str], tier: str = "A") -> str:
    """Row or axis label of a set of lenses: "real Tier-A lenses", "mock Tier-A lenses" or
    "Tier-A lenses (n real, m mock)" when mixed."""
    values = list(kinds)
    unknown = sorted(set(values) - set(LENS_KINDS))
    if unknown:
        raise ValueError(f"lens kinds must be {LENS_KINDS}, got {unknown}")
    n_real, n_mock = values.count("real"), values.count("mock")
    if n_real and n_mock:
        return f"Tier-{tier} lenses ({n_real} real, {n_mock} mock)"
    return f"{'mock' if n_mock else 'real'} Tier-{tier} lenses"


def data_label(mock_data: bool) -> str:
    """Where the images come from: :data:`EMBEDDED_DEFAULT_LABEL` or ``"DR10"``."""
    return EMBEDDED_DEFAULT_LABEL if mock_data else "DR10"


def with_data_label(text: str, mock_data: bool) -> str:
    """``text`` followed by `` [embedded default (mock DR10)]`` on mock data; unchanged on real
    data."""
    return f"{text} [{EMBEDDED_DEFAULT_LABEL}]" if mock_data else text
