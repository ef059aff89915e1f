"""Guardrails (`settings.guardrails`): valid YAML that is still a mistake, caught before apply.

Four rules, each on with its default unless the catalog turns it off:

- `price-jump`: a price moves by more than a percentage of what it was (default 50%), up or down.
- `margin`: a price below the supply price plus a margin floor, as a percentage of the price
  (default 0%: never below the supply price).
- `removals`: more products deactivated or deleted in one apply than a number (default 25) or
  a percentage of the products the catalog manages.
- `zero-price`: a price of 0.

`catalog validate` checks what the catalog alone can say (a price of 0, a price under the
catalog's own supply price); a plan checks every change against the live store's values. A
product's `allow: [RULE]` in the YAML makes an intended exception (a clearance sale); apply
refuses any other violation unless `--allow RULE` is given. Pure, and in the catalog's terms
(price, supply_price, active, products): the same rules hold for every platform.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.live import Live, LiveProduct, money_text
from reconciler.model import Catalog, Guardrails, Json, Rule
from reconciler.plan import Action, Change, Kind, Plan, Violation
from reconciler.problems import Finding, JsonPath

CATALOG = "catalog"  # Violation.allowed: the product's `allow:` in the YAML
OPTION = "option"  # Violation.allowed: `--allow RULE` given to the plan
LABEL_PREFIX = "catalog:allow-"  # a pull-request label that allows a rule in CI


# -- settings ---------------------------------------------------------------------------------


def parse(data: Mapping[str, Any] | None) -> Guardrails:
    """`settings.guardrails` as validated YAML (the schema has checked the shapes): a number
    or "N%", `off` / false to turn a rule off, true for its default."""
    data = data or {}
    default = Guardrails()

    def percent(key: Rule, fallback: Decimal | None) -> Decimal | None:
        value = data.get(str(key), True)
        if value is True or value == "on":
            return fallback
        if value is False or value == "off":
            return None
        return Decimal(str(value).removesuffix("%"))

    removals: int | None = default.removals
    removals_percent: Decimal | None = None
    value = data.get(str(Rule.REMOVALS), True)
    if value is False or value == "off":
        removals = None
    elif isinstance(value, str) and value.endswith("%"):
        removals, removals_percent = None, Decimal(value.removesuffix("%"))
    elif value is not True and value != "on":
        removals = int(Decimal(str(value)))
    zero = data.get(str(Rule.ZERO_PRICE), True)
    return Guardrails(
        price_jump=percent(Rule.PRICE_JUMP, default.price_jump),
        margin=percent(Rule.MARGIN, default.margin),
        removals=removals,
        removals_percent=removals_percent,
        zero_price=not (zero is False or zero == "off"),
    )


def parse_rules(values: Iterable[str], *, where: str) -> tuple[Rule, ...]:
    """Rule names from a command line or labels; ValueError names the unknown one."""
    out: list[Rule] = []
    for value in values:
        try:
            rule = Rule(value.strip())
        except ValueError:
            known = ", ".join(str(r) for r in Rule)
            raise ValueError(f'{where} "{value}" is not a guardrail; use one of {known}') from None
        if rule not in out:
            out.append(rule)
    return tuple(out)


def rules_from_labels(labels: Iterable[str]) -> tuple[Rule, ...]:
    """Rules allowed by pull-request labels such as `catalog:allow-price-jump` (others ignored)."""
    known = {str(r) for r in Rule}
    found = [
        label.removeprefix(LABEL_PREFIX)
        for label in labels
        if label.startswith(LABEL_PREFIX) and label.removeprefix(LABEL_PREFIX) in known
    ]
    return tuple(Rule(r) for r in sorted(set(found)))


# -- offline: the catalog's own values (catalog validate) ------------------------------------


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


_AMOUNT = re.compile(r"0*[0-9]{1,9}(\.[0-9]{1,5})?")  # the schema's `money`, written as text


def _amount(value: object) -> Decimal | None:
    """A price as the schema accepts it (0 <= amount < 10^9); None for anything it refuses,
    which the schema reports itself."""
    if isinstance(value, str) and not _AMOUNT.fullmatch(value):
        return None
    number = _decimal(value)
    return number if number is not None and 0 <= number < 1_000_000_000 else None


def catalog_findings(files: Sequence[Mapping[str, Any]]) -> list[tuple[int, Finding]]:
    """Prices of 0 and prices under the catalog's own supply price, per file (by index).

    Runs on raw file data that passed the schema; the settings come from whichever file holds
    them (only catalog.yaml may). A product's `allow:` excuses it.
    """
    settings: Mapping[str, Any] = {}
    out: list[tuple[int, Finding]] = []
    for n, data in enumerate(files):
        if isinstance(data.get("settings"), dict):
            settings = data["settings"]
            out.extend((n, f) for f in _settings_findings(settings))
    rails = _parsed(settings)
    owners = settings.get("fields")
    if rails is None or out or (isinstance(owners, dict) and owners.get("price") == "store"):
        # Settings the schema refuses are reported there; a catalog that never writes a
        # price has nothing of it to check.
        return out
    for n, data in enumerate(files):
        products = data.get("products")
        for i, p in enumerate(products if isinstance(products, list) else ()):
            if isinstance(p, dict):
                out.extend((n, f) for f in _product_findings(p, ("products", i), rails))
    return out


def _parsed(settings: Mapping[str, Any]) -> Guardrails | None:
    """The guardrails of settings that may have failed the schema (None if unreadable): this
    runs beside the schema's own findings, so every problem is reported at once."""
    raw = settings.get("guardrails")
    if raw is not None and not isinstance(raw, dict):
        return None
    try:
        return parse(raw)
    except (ArithmeticError, ValueError, TypeError):
        return None


def _settings_findings(settings: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    rails = _parsed(settings)
    margin = rails.margin if rails is not None else None
    if margin is not None and margin >= 100:
        out.append(
            Finding(
                ("settings", "guardrails", "margin"),
                f"a margin of {_pct(margin)} is more than any price allows",
                "a margin is a share of the price: use less than 100%, e.g. 30%",
            )
        )
    owners = settings.get("fields")
    if (
        isinstance(owners, dict)
        and owners.get("active") == "store"
        and settings.get("prune") == "deactivate"
    ):
        out.append(
            Finding(
                ("settings", "prune"),
                "prune: deactivate writes active, which settings.fields gives to the store",
                "use prune: none or delete, or let the catalog own active",
            )
        )
    return out


def _product_findings(p: Mapping[str, Any], path: JsonPath, rails: Guardrails) -> list[Finding]:
    allowed = p.get("allow")
    allow = {a for a in allowed if isinstance(a, str)} if isinstance(allowed, list) else set()
    variants = p.get("variants")
    rows: list[tuple[JsonPath, Mapping[str, Any]]] = (
        [((*path, "variants", j), v) for j, v in enumerate(variants) if isinstance(v, dict)]
        if isinstance(variants, list)
        else [(path, p)]
    )
    out: list[Finding] = []
    for row_path, row in rows:
        own_price = "price" in row
        raw_price = row["price"] if own_price else p.get("price")
        raw_supply = row.get("supply_price", p.get("supply_price"))
        price, supply = _amount(raw_price), _amount(raw_supply)
        at: JsonPath = (*(row_path if own_price else path), "price")
        if price is None or (raw_supply is not None and supply is None):
            continue  # not an amount: the schema says so
        if price == 0:
            if rails.zero_price and str(Rule.ZERO_PRICE) not in allow:
                out.append(
                    Finding(
                        at,
                        "a price of 0 (guardrail zero-price)",
                        "write the real price, or add `allow: [zero-price]` to the product if "
                        "it is meant to be free",
                    )
                )
            continue
        if (
            rails.margin is not None
            and supply is not None
            and str(Rule.MARGIN) not in allow
            and below_margin(price, supply, rails.margin)
        ):
            out.append(
                Finding(
                    at,
                    f"price {money_text(price)} is below the supply price {money_text(supply)}"
                    + _floor_words(rails.margin)
                    + " (guardrail margin)",
                    "correct the prices, or add `allow: [margin]` to the product if it is "
                    "meant, e.g. a clearance sale",
                )
            )
    return out


def _floor_words(margin: Decimal) -> str:
    return "" if margin == 0 else f" plus a {_pct(margin)} margin"


def below_margin(price: Decimal, supply: Decimal, margin: Decimal) -> bool:
    """(price - supply) / price < margin%, without dividing (a price of 0 is its own rule)."""
    return supply > 0 and (price - supply) * 100 < price * margin


def _pct(value: Decimal) -> str:
    return f"{format(value.normalize(), 'f')}%"


# -- a plan against the live store ------------------------------------------------------------


def check(
    plan: Plan,
    catalog: Catalog,
    live: Live,
    *,
    allow: Iterable[Rule] = (),
    declared: int | None = None,
) -> Plan:
    """The plan with every violation of the catalog's guardrails, the settings it was checked
    under, and the fields the catalog does not own. Only what the plan writes is checked: a
    store value that already breaks a rule and is left as it is was not this plan's doing.

    `allow`: rules allowed on the command line of `catalog plan` (marked, for the reader).
    `declared`: how many products the whole catalog declares, when `catalog` holds only the
    ones the plan changes (an incremental plan); `catalog` must hold each of those."""
    rails = catalog.settings.guardrails
    allowed = set(allow)
    out: list[Violation] = []
    removed: list[Violation] = []
    for top in plan.changes:
        if top.kind is not Kind.PRODUCT:
            continue
        product = catalog.product(top.key)
        excused = set(product.allow) if product is not None else set()
        found = live.products.get(top.key)
        out.extend(_row_violations(top, found, rails, excused))
        gone = _removal(top, found)
        if gone is not None and rails.on(Rule.REMOVALS):
            removed.append(_mark(gone, excused))
    counted = [v for v in removed if v.allowed is None]
    managed = (len(catalog.products) if declared is None else declared) + sum(
        1 for c in plan.changes if c.kind is Kind.PRODUCT and c.action in _GONE
    )
    if _too_many(len(counted), managed, rails):
        limit = (
            f"{_pct(rails.removals_percent)} of {managed} products"
            if rails.removals_percent is not None
            else f"{rails.removals} products"
        )
        detail = f"{len(counted)} products removed in one apply, more than {limit}"
        out.extend(dataclasses.replace(v, detail=detail) for v in removed)
    violations = [
        dataclasses.replace(v, allowed=OPTION) if v.allowed is None and v.rule in allowed else v
        for v in out
    ]
    return dataclasses.replace(
        plan,
        guardrails=rails.to_data(),
        violations=tuple(violations),
        field_owners={f: str(o) for f, o in catalog.settings.fields},
    )


_GONE = (Action.DEACTIVATE, Action.DELETE)


def _mark(v: Violation, excused: set[Rule]) -> Violation:
    return dataclasses.replace(v, allowed=CATALOG) if Rule(v.rule) in excused else v


def _too_many(n: int, managed: int, rails: Guardrails) -> bool:
    if rails.removals_percent is not None:
        return n * 100 > rails.removals_percent * max(managed, 1)
    return rails.removals is not None and n > rails.removals


def _row_violations(
    top: Change, found: LiveProduct | None, rails: Guardrails, excused: set[Rule]
) -> list[Violation]:
    """Price rules on every sellable row the product change writes a price to."""
    rows: list[tuple[Change, Decimal | None, Decimal | None]] = []
    if any(c.kind is Kind.VARIANT for c in top.children) or (found is not None and found.is_family):
        for child in top.children:
            if child.kind is Kind.VARIANT and child.action in (Action.CREATE, Action.UPDATE):
                row = found.rows.get(child.key) if found is not None else None
                values = row.values if row is not None else None
                rows.append((child, _of(values, "price"), _of(values, "supply_price")))
    elif top.action in (Action.CREATE, Action.UPDATE):
        own = found.rows.get(found.product.sku or "") if found is not None else None
        values = own.values if own is not None else None
        rows.append((top, _of(values, "price"), _of(values, "supply_price")))
    out: list[Violation] = []
    for change, live_price, live_supply in rows:
        out.extend(
            _mark(v, excused) for v in _price_rules(top.key, change, live_price, live_supply, rails)
        )
    return out


def _of(values: Any, name: str) -> Decimal | None:
    return getattr(values, name) if values is not None else None


def _price_rules(
    handle: str,
    change: Change,
    live_price: Decimal | None,
    live_supply: Decimal | None,
    rails: Guardrails,
) -> list[Violation]:
    price_fc, supply_fc = change.field("price"), change.field("supply_price")
    if price_fc is None and supply_fc is None:
        return []
    price = _decimal(price_fc.after) if price_fc is not None else live_price
    supply = _decimal(supply_fc.after) if supply_fc is not None else live_supply
    out: list[Violation] = []

    def violation(rule: Rule, fc_field: str, before: Json, after: Json, detail: str) -> None:
        out.append(Violation(str(rule), handle, change.key, fc_field, before, after, detail))

    if price_fc is not None and price is not None:
        before = _decimal(price_fc.before)
        if price == 0 and rails.zero_price:
            violation(Rule.ZERO_PRICE, "price", price_fc.before, price_fc.after, "a price of 0")
        if rails.price_jump is not None and before is not None and before > 0:
            moved = (price - before) * 100 / before
            if abs(moved) > rails.price_jump:
                violation(
                    Rule.PRICE_JUMP,
                    "price",
                    price_fc.before,
                    price_fc.after,
                    f"{'+' if moved > 0 else ''}{moved:.0f}%, more than {_pct(rails.price_jump)}",
                )
    if (
        rails.margin is not None
        and price is not None
        and price > 0
        and supply is not None
        and below_margin(price, supply, rails.margin)
    ):
        fc = price_fc if price_fc is not None else supply_fc
        assert fc is not None
        violation(
            Rule.MARGIN,
            fc.field,
            fc.before,
            fc.after,
            f"price {money_text(price)} below the supply price {money_text(supply)}"
            + _floor_words(rails.margin),
        )
    return out


def _removal(top: Change, found: LiveProduct | None) -> Violation | None:
    """The product change as a removal (deactivated or deleted), if it is one."""
    if top.action is Action.DELETE:
        return Violation(str(Rule.REMOVALS), top.key, top.key, "product", "in the store", None, "")
    if top.action is Action.DEACTIVATE:
        return Violation(str(Rule.REMOVALS), top.key, top.key, "active", True, False, "")
    if top.action is not Action.UPDATE or found is None:
        return None
    # An update that leaves no row of a product active takes the product off sale too.
    now = {sku: bool(row.values.active) for sku, row in found.rows.items()}
    if not any(now.values()):
        return None
    after = dict(now)
    for change in top.walk():
        fc = change.field("active")
        if fc is None:
            continue
        sku = change.key if change.kind is Kind.VARIANT else (found.product.sku or "")
        if sku in after:
            after[sku] = bool(fc.after)
    if any(after.values()):
        return None
    return Violation(str(Rule.REMOVALS), top.key, top.key, "active", True, False, "")


# -- apply: what is refused, and why ----------------------------------------------------------


def blocking(plan: Plan, allow: Iterable[Rule] = ()) -> list[Violation]:
    """The violations apply must refuse: not excused by the catalog, not allowed by `allow`.
    (A plan's own `--allow` marks are for the reader; apply decides with its own.)"""
    allowed = {str(r) for r in allow}
    return [v for v in plan.violations if v.allowed != CATALOG and v.rule not in allowed]


def describe(v: Violation) -> str:
    """One violation in a reviewer's words: `classic-tee / TEE-S: price 25.00 -> 2.50 (-90%,
    more than 50%)`."""
    where = v.product if v.key == v.product else f"{v.product} / {v.key}"
    if v.rule == Rule.REMOVALS:
        what = "deleted" if v.field == "product" else "set inactive"
        return f"{where}: {what} ({v.detail})"
    return f"{where}: {_label(v.field)} {_show(v.before)} -> {_show(v.after)} ({v.detail})"


def _label(field: str) -> str:
    return field.replace("_", " ")


def _show(value: Json) -> str:
    return "(none)" if value is None else str(value)


def allowed_by(v: Violation) -> str:
    if v.allowed == CATALOG:
        return "allowed by the product's allow: in the catalog"
    if v.allowed == OPTION:
        return "allowed by --allow"
    return ""


def headline(plan: Plan) -> str:
    """The sentence at the top of every rendering of a plan that breaks a guardrail."""
    open_ = [v for v in plan.violations if v.allowed is None]
    rules = sorted({v.rule for v in open_})
    if open_:
        flags = " ".join(f"--allow {r}" for r in rules)
        n = len(open_)
        return (
            f"This plan breaks {n} guardrail{'s' if n != 1 else ''} "
            f"({', '.join(rules)}): catalog apply refuses it unless allowed "
            f"({flags}, a pull-request label {LABEL_PREFIX}{rules[0]}, or allow: [{rules[0]}] "
            "on the product)."
        )
    n = len(plan.violations)
    return f"{n} guardrail violation{'s are' if n != 1 else ' is'} allowed in this plan."


def refusal(blocked: Sequence[Violation], *, shown: int = 5) -> str:
    """The one-sentence reason apply refuses the plan."""
    rules = sorted({v.rule for v in blocked})
    listed = "; ".join(describe(v) for v in blocked[:shown])
    more = len(blocked) - shown
    tail = f"; and {more} more" if more > 0 else ""
    flags = " ".join(f"--allow {r}" for r in rules)
    return (
        f"The plan breaks {len(blocked)} guardrail{'s' if len(blocked) != 1 else ''} "
        f"({', '.join(rules)}): {listed}{tail}. Nothing was applied; fix the catalog, or if "
        f"this is intended apply with {flags} (or add allow: [{rules[0]}] to the product)."
    )


def stale_reason(plan: Plan, catalog: Catalog) -> str | None:
    """Why a saved plan's guardrail check no longer holds: the settings it was checked under
    are not the catalog's now (None when they are)."""
    now = catalog.settings.guardrails.to_data()
    if plan.guardrails == now:
        return None
    if not plan.guardrails:
        return "the plan was made without checking the guardrails"
    moved = [
        f"{rule} {plan.guardrails.get(rule, '(none)')} -> {value}"
        for rule, value in now.items()
        if plan.guardrails.get(rule) != value
    ]
    return f"the guardrail settings changed since the plan was made ({', '.join(moved)})"


def import_allowances(catalog: Catalog) -> Catalog:
    """Products the catalog's own values would fail validation for, each given the `allow:`
    that keeps them as they are: an imported store is what it is, and the exceptions show."""
    rails = catalog.settings.guardrails
    products = []
    for p in catalog.products:
        rules: list[Rule] = []
        for row in p.sellables():
            if row.price is None:
                continue
            if row.price == 0 and rails.zero_price:
                rules.append(Rule.ZERO_PRICE)
            elif (
                rails.margin is not None
                and row.supply_price is not None
                and below_margin(row.price, row.supply_price, rails.margin)
            ):
                rules.append(Rule.MARGIN)
        wanted = tuple(r for r in Rule if r in rules or r in p.allow)
        products.append(dataclasses.replace(p, allow=wanted) if wanted != p.allow else p)
    return dataclasses.replace(catalog, products=tuple(products))
