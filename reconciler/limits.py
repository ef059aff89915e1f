"""What a Lightspeed platform can hold, as a value (`Limits`): each provider declares one, and
validate (`rules.limit_findings`) and the planner read it, never the provider itself.

Pure: no I/O, no platform. `DEFAULT` is what the core assumed before platforms had limits (the
X-Series values); a caller that names no platform gets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Limits:
    """What a platform can hold. Validate and the planner read these as a value; neither ever
    sees the provider itself."""

    max_options: int  # X-Series 3; R-Series 3 (attribute set slots)
    max_variants: int  # X-Series 200
    money_places: int  # decimal places the store keeps prices to: X-Series 5, R-Series 2
    leaf_only_categories: bool  # X-Series: products only on a category without subcategories
    delete_means: Literal["delete", "archive"]  # R-Series: DELETE archives (and zeroes stock)
    has_handles: bool  # R-Series: no handle; a family is found by its variants' SKUs
    barcode_lengths: frozenset[int] = frozenset({8, 12, 13, 14})  # R-Series: 11-14 digits
    brand_descriptions: bool = True  # R-Series Manufacturer and Vendor have no description
    family_descriptions: bool = True  # R-Series: no field fits a product's description
    title: str = "the store"  # the platform as messages name it ("R-Series")


DEFAULT = Limits(
    max_options=3,
    max_variants=200,
    money_places=5,
    leaf_only_categories=True,
    delete_means="delete",
    has_handles=True,
    title="X-Series",
)
