"""An R-Series plan's budget is in the bucket's cost units and its time under the leaky bucket:
(total cost - bucket size) / drip rate when positive, from the store's reported bucket; every
format shows it and a saved plan keeps it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from reconciler.plan import Action, Change, Estimate, FieldChange, Kind, Plan
from reconciler.providers.base import Compiled
from reconciler.providers.rseries.pacing import bucket_estimate
from reconciler.providers.rseries.provider import PROVIDER, step_cost
from reconciler.providers.rseries.refresh import StoreFacts
from reconciler.render import render_json, render_markdown, render_text


def test_a_plan_that_fits_the_bucket_takes_no_wait() -> None:
    assert bucket_estimate(40, 85.5, size=90, window_seconds=90) == Estimate(
        requests=40, seconds=0.0, rate_limit=90, window_seconds=90, units=85.5
    )


def test_beyond_the_bucket_the_rest_drips_out() -> None:
    # 300 units through a 90-unit bucket draining 1/s: 210 s; at 2/s (window 45 s): 105 s.
    assert bucket_estimate(250, 300, size=90, window_seconds=90).seconds == 210.0
    assert bucket_estimate(250, 300, size=90, window_seconds=45).seconds == 105.0


@dataclass
class Step:
    requests: int
    cost: float
    changes: list[Change] = field(default_factory=list)


def test_the_provider_prices_the_compiled_steps_in_units() -> None:
    facts = StoreFacts(bucket_size=90, drip_per_second=1)
    # Two category writes (10 each) and 100 one-unit item writes: 120 units, 30 s past the bucket.
    steps = [Step(1, 10.0), Step(1, 10.0), *(Step(1, 1.0) for _ in range(100))]
    compiled: Compiled[object] = Compiled(steps=steps)  # type: ignore[arg-type]
    est = PROVIDER.estimate(
        compiled,  # type: ignore[arg-type]
        rate_limit=facts.rate_limit,
        window_seconds=facts.window_seconds,
    )
    assert (est.requests, est.units, est.seconds) == (102, 120.0, 30.0)
    assert step_cost(Step(2, 0.0)) == 0.0 and step_cost(object()) == 0.0


def plan(estimate: Estimate) -> Plan:
    change = Change(
        Kind.PRODUCT,
        "tee",
        Action.UPDATE,
        (FieldChange("price", "25.00", "27.00"),),
        remote_id="12",
        live_version="1714557600",  # type: ignore[arg-type]
        requests=3,
    )
    return Plan(
        changes=(change,),
        catalog_digest="d" * 64,
        store="R-Series account 100001",
        tax_exclusive=True,
        estimate=estimate,
        provider="rseries",
    )


def test_every_format_shows_units_and_the_bucket_and_a_saved_plan_keeps_them() -> None:
    rs = plan(bucket_estimate(250, 300.5, size=90, window_seconds=90))
    assert render_text(rs).splitlines()[-1] == (
        "Plan: 0 to create, 1 to update, 0 to deactivate. 250 API requests (300.5 units of "
        "the store's bucket), about 4 min at this store's rate limit."
    )
    assert (
        "The apply costs 250 API requests (300.5 units of the store's bucket), about 4 min "
        "at this store's leaky bucket of 90 units draining 1 a second." in render_markdown(rs)
    )
    doc = json.loads(render_json(rs))
    assert doc["estimate"] == {
        "requests": 250,
        "seconds": 210.5,
        "rate_limit": 90,
        "window_seconds": 90,
        "units": 300.5,
        "drip_per_second": 1.0,
    }
    assert Plan.from_json(rs.to_json()).estimate == rs.estimate
    xs = plan(Estimate(3, 2.6, 350, 300.0))
    assert "units" not in json.loads(render_json(xs))["estimate"]
    assert "units" not in render_text(xs)
    assert "rate limit of 350 requests per 5 min" in render_markdown(xs)
