"""The local workflow runner used by the end-to-end test behaves like GitHub where we rely on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from gh_helpers import git
from workflow_runner import Expression, LocalRunner, condition, interpolate

CONTEXT = {
    "steps": {"plan": {"outputs": {"exit-code": "2"}, "outcome": "success"}},
    "needs": {"prepare": {"outputs": {"stores": '["a","b"]'}, "result": "failure"}},
    "matrix": {"store": "acme"},
    "vars": {},
}
OK = {"success": True, "failure": False, "cancelled": False}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps.plan.outputs.exit-code == '2'", True),
        ("steps.plan.outputs.exit-code == 2", True),
        ("steps.plan.outputs.exit-code != '2'", False),
        ("needs.prepare.outputs.stores != '[]'", True),
        ("fromJSON(needs.prepare.outputs.stores)", ["a", "b"]),
        ("vars.MISSING", None),
        ("matrix.store == 'ACME'", True),  # strings compare case-insensitively
        ("always() && steps.plan.outcome == 'success'", True),
        ("!(steps.plan.outcome == 'success') || matrix.store", "acme"),
    ],
)
def test_expressions(text: str, expected: object) -> None:
    assert Expression(text, CONTEXT, OK).evaluate() == expected


def test_unknown_contexts_and_functions_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown context"):
        Expression("runner.os", CONTEXT, OK).evaluate()
    with pytest.raises(ValueError, match="unsupported function"):
        Expression("hashFiles('x')", CONTEXT, OK).evaluate()


def test_conditions_imply_success() -> None:
    failed = {"success": False, "failure": True, "cancelled": False}
    assert condition("steps.plan.outcome == 'success'", CONTEXT, OK)
    assert not condition("steps.plan.outcome == 'success'", CONTEXT, failed)
    assert condition("always() && steps.plan.outcome == 'success'", CONTEXT, failed)
    assert condition(None, CONTEXT, OK) and not condition(None, CONTEXT, failed)
    assert interpolate("plan-${{ matrix.store }}", CONTEXT, OK) == "plan-acme"


def test_a_workflow_with_needs_matrix_outputs_and_artifacts(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(seed))
    (seed / "hello.txt").write_text("hi\n")
    git(seed, "add", ".")
    git(seed, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x")
    git(seed, "push", "-q", "origin", "HEAD:main")
    workflow = tmp_path / "wf.yml"
    workflow.write_text(
        """
on: push
env:
  GREETING: hello
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      items: ${{ steps.list.outputs.items }}
    steps:
      - uses: actions/checkout@v6
      - id: list
        run: echo 'items=["x","y"]' >> "$GITHUB_OUTPUT"
  each:
    needs: first
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        item: ${{ fromJSON(needs.first.outputs.items) }}
    env:
      ITEM: ${{ matrix.item }}
      TOKEN: ${{ secrets.TOKEN }}
    environment: ${{ matrix.item }}
    steps:
      - uses: actions/checkout@v6
      - run: |
          mkdir out
          echo "$GREETING $ITEM $TOKEN $(cat hello.txt)" > out/said.txt
          echo "said $ITEM" >> "$GITHUB_STEP_SUMMARY"
          test "$ITEM" = x
      - if: always()
        uses: actions/upload-artifact@v6
        with:
          name: said-${{ env.ITEM }}
          path: out
  after:
    needs: each
    if: always()
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v7
        with:
          path: got
      - run: cat got/said-x/said.txt got/said-y/said.txt | false
"""
    )
    runner = LocalRunner(
        root=tmp_path / "run",
        origin=origin,
        ref="main",
        event_name="push",
        event={},
        secrets={"TOKEN": "repo-token"},
        environments={"y": {"secrets": {"TOKEN": "y-token"}}},
    )
    results = runner.run(workflow)
    assert results["first"][0].outputs == {"items": '["x","y"]'}
    x, y = results["each"]
    assert (x.matrix, x.result, y.result) == ({"item": "x"}, "success", "failure")
    assert x.summary == "said x\n"
    said = (runner.artifacts / "said-y" / "said.txt").read_text()
    assert said == "hello y y-token hi\n"  # environment secret overrides the repository's
    assert (runner.artifacts / "said-x" / "said.txt").read_text() == "hello x repo-token hi\n"
    (after,) = results["after"]
    assert after.result == "failure"  # pipefail: `cat ... | false` fails the step
