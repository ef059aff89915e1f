"""Reading the recorded R-Series exchanges in ../shared/reference/rseries (VCR cassettes, legacy
un-versioned API) and replaying them against the sandbox in V3 terms.

The legacy paths `/API/Account/{id}/...` become `/API/V3/Account/{accountID}/...`; `offset`
paging becomes following `next` (see the reference README); ids the recording assigned are
mapped to the ids the sandbox assigned to the same records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]


def reference_dir() -> Path:
    """`../shared/reference/rseries` from the repository root (a worktree sits one deeper)."""
    for base in (REPO.parent, REPO.parent.parent):
        candidate = base / "shared" / "reference" / "rseries"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no shared/reference/rseries above {REPO}")


REFERENCE = reference_dir()

# Relations and fields the sandbox does not model (section 10 lists what it imitates).
NOT_MODELLED = frozenset(
    {"TaxClass", "Note", "CustomFieldValues", "ItemComponents", "Contact", "Reps", "noteID", "m"}
)
ID_FIELDS = {
    "Item": "itemID",
    "ItemMatrix": "itemMatrixID",
    "Category": "categoryID",
    "Vendor": "vendorID",
    "Manufacturer": "manufacturerID",
    "ItemAttributeSet": "itemAttributeSetID",
}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # after /API/, legacy: "Account.json" or "Account/-/Item/430.json"
    query: list[tuple[str, str]]
    body: str
    authorization: str
    status: int
    content_type: str
    headers: dict[str, str]
    response: Any  # parsed JSON body

    @property
    def resource(self) -> str | None:
        parts = self.path.removesuffix(".json").split("/")
        return parts[2] if len(parts) > 2 else None

    @property
    def record_id(self) -> str | None:
        parts = self.path.removesuffix(".json").split("/")
        return parts[3] if len(parts) > 3 else None


def load(relative: str) -> list[Exchange]:
    data = yaml.safe_load((REFERENCE / relative).read_text(encoding="utf-8"))
    out = []
    for interaction in data["http_interactions"]:
        request, response = interaction["request"], interaction["response"]
        uri = urlsplit(request["uri"])
        headers = {k.lower(): v[0] for k, v in response["headers"].items()}
        text = response["body"].get("string", "")
        out.append(
            Exchange(
                method=request["method"].upper(),
                path=uri.path.removeprefix("/API/"),
                query=parse_qsl(uri.query, keep_blank_values=True),
                body=request["body"].get("string", "") or "",
                authorization=(request.get("headers", {}).get("Authorization") or [""])[0],
                status=int(response["status"]["code"]),
                content_type=headers.get("content-type", ""),
                headers=headers,
                response=json.loads(text) if text.strip() else None,
            )
        )
    return out


def cassettes() -> list[str]:
    return sorted(str(p.relative_to(REFERENCE)) for p in REFERENCE.rglob("*.yml"))


def assert_same_shape(recorded: Any, ours: Any, where: str = "$") -> None:
    """`ours` has every key `recorded` has (bar what the sandbox does not model), objects
    where it has objects, arrays where it has arrays, and strings where it has strings."""
    if isinstance(recorded, dict):
        assert isinstance(ours, dict), f"{where}: recorded an object, the sandbox sent {ours!r}"
        for key, value in recorded.items():
            if key in NOT_MODELLED:
                continue
            assert key in ours, f"{where}: the sandbox's answer lacks {key!r}"
            assert_same_shape(value, ours[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(ours, list), f"{where}: recorded an array, the sandbox sent {ours!r}"
        for n, (a, b) in enumerate(zip(recorded, ours, strict=False)):
            assert_same_shape(a, b, f"{where}[{n}]")
    else:
        assert isinstance(recorded, str)
        assert isinstance(ours, str), f"{where}: recorded a string, the sandbox sent {ours!r}"
