"""Reading request bodies the way the real store does: each helper checks one kind of field
and records a problem under the field's name instead of failing at the first one, so a 422
names every bad field at once."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.providers.xseries.sandbox.db import Doc
from reconciler.providers.xseries.sandbox.errors import bad_request, invalid
from reconciler.providers.xseries.sandbox.views import money

JSON = dict[str, Any]
CODE_TYPES = ("CUSTOM", "EAN", "ISBN", "ITF", "JAN", "UPC")
DIMENSIONS = ("weight", "length", "width", "height")
UNITS = {"weight_unit": ("CT", "G", "OZ", "LB", "KG"), "dimensions_unit": ("IN", "CM", "MM", "YD")}


def json_object(body: object) -> JSON:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def section(fields: JSON, name: str, errors: dict[str, Any]) -> JSON:
    value = fields.get(name, {})
    if not isinstance(value, dict):
        errors[name] = f"{name} must be an object"
        return {}
    return value


def required_name(fields: JSON) -> str:
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid({"name": "Name is required"})
    return name.strip()


def named_extras(kind: str, fields: JSON, current: Doc | None) -> JSON:
    """The fields besides `name` that brands, suppliers and tags keep."""
    extras: JSON = {}
    if kind in ("brand", "supplier"):
        description = fields.get("description", (current or {}).get("description"))
        if description is not None and not isinstance(description, str):
            raise invalid({"description": "description must be a string"})
        # The published schemas type description as a plain string: "" stands for none.
        extras["description"] = description or ""
    if kind == "supplier":
        contact = fields.get("contact", (current or {}).get("contact", {}))
        if not isinstance(contact, dict):
            raise invalid({"contact": "contact must be an object"})
        extras["contact"] = contact
        extras["source"] = "USER"
        markup = fields.get("default_markup", (current or {}).get("default_markup"))
        if markup is not None:
            errors: dict[str, Any] = {}
            value = number_field({"default_markup": markup}, "default_markup", errors, "")
            if errors:
                raise invalid(errors)
            extras["default_markup"] = money(value)
    return extras


def optional_str(fields: JSON, key: str, errors: dict[str, Any], where: str) -> str | None:
    value = fields.get(key)
    if value is None or isinstance(value, str):
        return value
    errors[f"{where}{key}"] = f"{key} must be a string"
    return None


def number_field(fields: JSON, key: str, errors: dict[str, Any], where: str) -> Decimal | None:
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        errors[f"{where}{key}"] = f"{key} must be a number"
        return None
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        errors[f"{where}{key}"] = f"{key} must be a number"
        return None
    if not amount.is_finite():
        errors[f"{where}{key}"] = f"{key} must be a number"
        return None
    return amount


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def dimensions(fields: JSON, errors: dict[str, Any], where: str) -> JSON:
    dims: JSON = {}
    for key in DIMENSIONS:
        value = number_field(fields, key, errors, where)
        if value is not None:
            dims[key] = str(value)
    for key, allowed in UNITS.items():
        if key in fields:
            if fields[key] in allowed:
                dims[key] = fields[key]
            else:
                errors[f"{where}{key}"] = f"{key} must be one of {', '.join(allowed)}"
    return dims


def product_codes_of(value: object, errors: dict[str, Any], where: str) -> list[JSON]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors[where] = "product_codes must be a list"
        return []
    codes: list[JSON] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str):
            errors[where] = "Each product code needs a code"
            return []
        kind = str(entry.get("type") or "CUSTOM").upper()
        code = entry["code"].strip()
        if kind not in CODE_TYPES or not code:
            errors[where] = f"Product code types are {', '.join(CODE_TYPES)} with a non-empty code"
            return []
        codes.append({"type": kind, "code": code})
    return codes


def sku_from_codes(codes: list[JSON]) -> str | None:
    """The SKU a list of codes implies: its first CUSTOM code, else its first code."""
    for code in codes:
        if code["type"] == "CUSTOM":
            return str(code["code"])
    return str(codes[0]["code"]) if codes else None


def supplier_details(entry: JSON, errors: dict[str, Any], where: str) -> JSON:
    """Per-product supplier code and supply price from a `product_suppliers` entry."""
    changes: JSON = {}
    if "code" in entry:
        code = entry["code"]
        if code is not None and not isinstance(code, str):
            errors[where + "code"] = "code must be a string"
        else:
            changes["supplier_code"] = code or None
    price = number_field(entry, "price", errors, where)
    if price is not None:
        # -1 deletes the price, as the 2.1 API documents.
        changes["supply_price"] = None if price == -1 else str(price)
    return changes


def same_values(
    values: dict[str, str], attribute_ids: list[str], members: list[Doc], own_id: str | None
) -> str | None:
    """The id of another family member with the same attribute values, if any."""
    wanted = tuple(values.get(a, "").casefold() for a in attribute_ids)
    for member in members:
        if member["id"] == own_id:
            continue
        if tuple(member["values"].get(a, "").casefold() for a in attribute_ids) == wanted:
            return str(member["id"])
    return None


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "product"
