"""Field-level comparison of one object's desired and live values (the only deepdiff user).

Both sides arrive already normalized into the catalog's JSON shape (by the provider, into
`reconciler.live`), so
equality here means equality in the catalog's terms. Only the desired side's keys are compared:
a field the catalog does not declare is never diffed (design invariant 3).

deepdiff's options are pinned here and nowhere else:
- `ignore_order=False`: order-free lists (tags) are sorted before they get here, and the order
  of ordered ones (options, images) is meaningful;
- `threshold_to_diff_deeper=0`: otherwise deepdiff reports a dict with few common keys as one
  replaced value instead of the keys that changed;
- `ignore_string_type_changes` / `ignore_numeric_type_changes` off: money is text already, and a
  bool must never equal an int.
Results are reported per top-level field with the whole before and after value, which is what a
reviewer reads ("tags [a, b] -> [a, c]").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.model import Json

_DEEPDIFF_OPTIONS: dict[str, Any] = {
    "ignore_order": False,
    "threshold_to_diff_deeper": 0,
    "ignore_string_type_changes": False,
    "ignore_numeric_type_changes": False,
    "verbose_level": 1,  # level 0 drops values_changed entirely
}
_ROOT_KEY = re.compile(r"^root\['((?:[^'\\]|\\.)*)'\]")


@dataclass(frozen=True)
class FieldDiff:
    field: str
    before: Json
    after: Json


def diff_fields(
    desired: Mapping[str, Json], live: Mapping[str, Json], *, order: tuple[str, ...] = ()
) -> list[FieldDiff]:
    """The fields of `desired` whose value differs from `live` (missing live = None).

    `order` lists field names in the order to report them; others follow alphabetically.
    """
    left = {k: live.get(k) for k in desired}
    right = dict(desired)
    if left == right and _same_types(left, right):
        return []  # the common case, without deepdiff's cost
    # Imported here: most plans compare equal values only, and deepdiff costs a tenth of a
    # second to import (a plan of an unchanged catalog never pays it).
    from deepdiff import DeepDiff

    changed: set[str] = set()
    result = DeepDiff(left, right, **_DEEPDIFF_OPTIONS)
    for paths in result.values():
        for path in paths if not isinstance(paths, dict) else paths.keys():
            match = _ROOT_KEY.match(str(path))
            if match:
                changed.add(match.group(1))
    rank = {name: i for i, name in enumerate(order)}
    return [
        FieldDiff(field=name, before=left[name], after=right[name])
        for name in sorted(changed, key=lambda n: (rank.get(n, len(rank)), n))
    ]


def _same_types(a: Mapping[str, Json], b: Mapping[str, Json]) -> bool:
    # `True == 1` in Python; a flag must not silently equal a number (or "1" a price).
    return all(type(a[k]) is type(b[k]) for k in b)
