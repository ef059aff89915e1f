"""End to end: the workflows' own steps, run locally against the sandbox store.

Each workflow file is executed by `workflow_runner.LocalRunner`: the real `run:` scripts under
bash with GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_EVENT_PATH pointing at temporary files,
every job on a fresh clone of a bare "origin" repository (a new runner), the store's API served
by the sandbox on 127.0.0.1, and GitHub's API by the fake on 127.0.0.1. What has to come out:
one pull-request comment however often the plan runs, job summaries, and a state file that
survives on the `catalog-state` branch and is picked up by the next run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_github import FakeGitHub
from gh_helpers import git
from workflow_runner import JobResult, LocalRunner

from reconciler.github import DRIFT_LABEL, PLAN_MARKER, STATE_BRANCH
from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-token"
PR = 7

Results = dict[str, list[JobResult]]


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Merch", "-c", "user.email=m@example.com", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    """(origin, working clone): a catalog repository with the example catalog and these
    workflows, as a team would have after copying them."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    (work / "catalog").mkdir()
    (work / "catalog" / "catalog.yaml").write_text(CATALOG_YAML)
    (work / "catalog" / "apparel.yaml").write_text(APPAREL_YAML)
    shutil.copytree(ROOT / ".github" / "workflows", work / ".github" / "workflows")
    commit_all(work, "The catalog")
    git(work, "push", "-q", "origin", "HEAD:main")
    return origin, work


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    fake.add_pull_request(PR)
    with fake.serve() as url:
        yield fake, url


def new_sandbox() -> SandboxStore:
    return SandboxStore(token=TOKEN, rate_limit=None, image_processing_seconds=0.01, seed=1234)


@pytest.fixture
def store() -> Iterator[tuple[SandboxStore, str]]:
    sandbox = new_sandbox()
    with serve_in_thread(sandbox) as url:
        yield sandbox, url
    sandbox.close()


def set_price(sandbox: SandboxStore, sku: str, price: float) -> None:
    """An edit in the store's back office: outside the catalog."""
    with Client("http://sandbox.test", TOKEN, transport=SandboxTransport(sandbox)) as client:
        [row] = client.products_by_sku(sku)
        client.update_product(row["id"], details={"price_including_tax": price})


def live_price(sandbox: SandboxStore, sku: str) -> object:
    with Client("http://sandbox.test", TOKEN, transport=SandboxTransport(sandbox)) as client:
        [row] = client.products_by_sku(sku)
        return row["price_including_tax"]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


# A small catalog of the design's format: a family with variants, a simple product, names.
CATALOG_YAML = """\
settings:
  prune: none
brands:
  - name: Acme
    description: Everyday basics.
tags: [summer, cotton]
"""
APPAREL_YAML = """\
products:
  - handle: classic-tee
    name: Classic Tee
    description: "<p>Soft cotton. Our best seller since day one.</p>"
    brand: Acme
    supplier: Acme Supply
    category: Apparel / Tops
    tags: [summer, cotton]
    price: 25.00
    supply_price: 8.00
    options: [Size, Colour]
    variants:
      - {sku: TEE-S-BLK, options: {Size: S, Colour: Black}}
      - {sku: TEE-M-BLK, options: {Size: M, Colour: Black}}
      - {sku: TEE-L-BLK, options: {Size: L, Colour: Black}, price: 27.00}
  - handle: gift-wrap
    name: Gift Wrap
    sku: GIFT-WRAP
    price: 3.50
"""
TEE_PRICE = "tags: [summer, cotton]\n    price: 25.00\n"


@pytest.fixture
def runs(
    tmp_path: Path,
    repo: tuple[Path, Path],
    github: tuple[FakeGitHub, str],
) -> Callable[..., Results]:
    """Run a workflow file as GitHub would for an event; each call is a new workflow run."""
    origin, work = repo
    fake, api_url = github
    counter = iter(range(1, 100))

    def run(
        workflow: str,
        *,
        ref: str,
        event_name: str,
        variables: dict[str, str],
        environments: dict[str, dict[str, dict[str, str]]] | None = None,
        secrets: dict[str, str] | None = None,
        inputs: dict[str, str] | None = None,
    ) -> Results:
        number = next(counter)
        head = git(origin, "rev-parse", f"refs/heads/{ref}")
        event: dict[str, object] = {"after": head, "ref": f"refs/heads/{ref}"}
        if event_name == "pull_request":
            event = {
                "action": "synchronize",
                "number": PR,
                "pull_request": {
                    "number": PR,
                    "head": {"sha": head, "ref": ref, "repo": {"full_name": fake.repository}},
                    "base": {"ref": "main", "repo": {"full_name": fake.repository}},
                },
            }
        runner = LocalRunner(
            root=tmp_path / f"run{number}-{workflow.removesuffix('.yml')}",
            origin=origin,
            ref=ref,
            event_name=event_name,
            event=event,
            variables=variables,
            secrets={"LIGHTSPEED_TOKEN": TOKEN} if secrets is None else secrets,
            inputs=inputs or {},
            environments=environments or {},
            extra_env={"GITHUB_API_URL": api_url},
            run_id=str(1000 + number),
            repository=fake.repository,
            github_token=fake.token,
        )
        return runner.run(work / ".github" / "workflows" / workflow)

    return run


def only(results: Results, job: str) -> JobResult:
    [result] = results[job]
    return result


def succeeded(job: JobResult) -> JobResult:
    assert job.result == "success", job.log()
    return job


def test_plan_comment_apply_state_and_drift(
    repo: tuple[Path, Path],
    github: tuple[FakeGitHub, str],
    store: tuple[SandboxStore, str],
    runs: Callable[..., Results],
) -> None:
    origin, work = repo
    fake, _ = github
    sandbox, store_url = store
    settings = {"LIGHTSPEED_STORE": "acme", "LIGHTSPEED_BASE_URL": store_url}

    # -- a merchandiser opens a pull request raising the Classic Tee's price ------------------
    git(work, "checkout", "-q", "-b", "tee-price")
    edit(work / "catalog" / "apparel.yaml", TEE_PRICE, TEE_PRICE.replace("25.00", "26.00"))
    commit_all(work, "Classic Tee costs 26.00")
    git(work, "push", "-q", "origin", "tee-price")

    first = runs("catalog-plan.yml", ref="tee-price", event_name="pull_request", variables=settings)
    succeeded(only(first, "prepare"))
    plan = succeeded(only(first, "plan"))
    assert plan.matrix == {"store": "acme"}
    assert plan.step("plan").outputs == {"exit-code": "2"}  # the store is empty: all creates
    succeeded(only(first, "comment"))
    [comment] = fake.comments_on(PR)
    first_body = comment["body"]  # the fake edits this dict in place
    assert comment["body"].startswith(PLAN_MARKER)
    assert "`acme`: 10 to create" in comment["body"]
    assert "`acme`: 10 to create" in plan.summary  # the job summary has it too
    assert plan.workspace is not None
    artifact = plan.workspace.parent.parent / "artifacts" / "plan-acme"
    files = {p.name for p in artifact.iterdir()}
    assert files == {"plan.md", "plan.err", "plan.saved.json", "plan.json", "result.json"}
    assert json.loads((artifact / "plan.json").read_text())["summary"] == {"create": 10}
    assert TOKEN not in "".join(p.read_text() for p in artifact.iterdir())

    # -- a second push to the pull request: the same comment is updated, none is added --------
    edit(work / "catalog" / "apparel.yaml", "Our best seller since day one.", "Our best seller.")
    commit_all(work, "Shorter description")
    git(work, "push", "-q", "origin", "tee-price")
    second = runs(
        "catalog-plan.yml", ref="tee-price", event_name="pull_request", variables=settings
    )
    succeeded(only(second, "comment"))
    [updated] = fake.comments_on(PR)
    assert updated["id"] == comment["id"]
    assert updated["body"] != first_body  # it names the new head commit
    assert git(origin, "branch", "--list", STATE_BRANCH) == ""  # plans never save state

    # -- merged: the apply workflow applies and saves the state -------------------------------
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--ff-only", "tee-price")
    git(work, "push", "-q", "origin", "main")
    applied = runs("catalog-apply.yml", ref="main", event_name="push", variables=settings)
    assert only(applied, "stores").outputs == {"stores": '["acme"]'}
    job = succeeded(only(applied, "apply"))
    assert job.step("restore").outputs["restored"] == "false"
    assert job.step("plan").outputs == {"exit-code": "2"}
    assert job.step("apply").outputs == {"exit-code": "0"}
    assert "Applied to `acme`: 13 changes" in job.summary
    assert live_price(sandbox, "TEE-S-BLK") == 26.0
    assert git(origin, "ls-tree", "-r", "--name-only", STATE_BRANCH).splitlines() == [
        "README.md",
        "acme/state.db",
    ]

    # -- the next apply picks the state up: a warm refresh, nothing to do ---------------------
    again = runs(
        "catalog-apply.yml", ref="main", event_name="workflow_dispatch", variables=settings
    )
    job = succeeded(only(again, "apply"))
    assert job.step("restore").outputs["restored"] == "true"
    plan_log = job.step("plan").stderr
    assert "Reading every product" not in plan_log  # the change feed, from the saved cursor
    assert job.step("plan").outputs == {"exit-code": "0"}
    assert job.step("apply").outcome == "skipped"
    assert "`acme`: no changes" in job.summary
    assert len(git(origin, "log", "--format=%H", STATE_BRANCH).splitlines()) in (1, 2)

    # -- someone edits a price in the store: the nightly check opens one issue ----------------
    set_price(sandbox, "TEE-M-BLK", 31.0)
    night = runs("catalog-drift.yml", ref="main", event_name="schedule", variables=settings)
    drift = succeeded(only(night, "drift"))
    assert drift.step("Open, update or close the drift issue").outputs["drift"] == "1"
    [issue] = [i for i in fake.issues.values() if "pull_request" not in i]
    assert issue["state"] == "open" and issue["labels"] == [{"name": DRIFT_LABEL}]
    assert "TEE-M-BLK" in issue["body"] and "`31.00`" in issue["body"]

    # -- they put it back: the next check closes the issue ------------------------------------
    set_price(sandbox, "TEE-M-BLK", 26.0)
    night = runs("catalog-drift.yml", ref="main", event_name="schedule", variables=settings)
    succeeded(only(night, "drift"))
    assert issue["state"] == "closed"


def test_an_invalid_catalog_fails_the_check_and_says_why(
    repo: tuple[Path, Path], github: tuple[FakeGitHub, str], runs: Callable[..., Results]
) -> None:
    _origin, work = repo
    fake, _ = github
    git(work, "checkout", "-q", "-b", "broken")
    edit(work / "catalog" / "apparel.yaml", TEE_PRICE, TEE_PRICE.replace("25.00", "-3"))
    commit_all(work, "A negative price")
    git(work, "push", "-q", "origin", "broken")
    results = runs(
        "catalog-plan.yml",
        ref="broken",
        event_name="pull_request",
        variables={"LIGHTSPEED_STORE": "acme", "LIGHTSPEED_BASE_URL": "http://127.0.0.1:9"},
    )
    prepare = only(results, "prepare")
    assert prepare.result == "failure"
    assert prepare.step("validate").outcome == "failure"
    assert only(results, "plan").result == "skipped"
    succeeded(only(results, "comment"))
    [comment] = fake.comments_on(PR)
    assert "The catalog is not valid" in comment["body"]
    assert "catalog/apparel.yaml:" in comment["body"]


def test_two_stores_plan_side_by_side_and_one_failure_hides_nothing(
    repo: tuple[Path, Path],
    github: tuple[FakeGitHub, str],
    store: tuple[SandboxStore, str],
    runs: Callable[..., Results],
) -> None:
    _origin, work = repo
    fake, _ = github
    _, acme_url = store
    git(work, "checkout", "-q", "-b", "two-stores")
    edit(
        work / "catalog" / "catalog.yaml",
        "  prune: none\n",
        "  prune: none\n  stores: [acme, beta]\n",
    )
    commit_all(work, "Two stores")
    git(work, "push", "-q", "origin", "two-stores")
    results = runs(
        "catalog-plan.yml",
        ref="two-stores",
        event_name="pull_request",
        variables={"LIGHTSPEED_STORE": "ignored-when-settings-list-stores"},
        secrets={},  # no repository secret: each store's environment has its own token
        environments={
            "acme": {
                "vars": {"LIGHTSPEED_BASE_URL": acme_url},
                "secrets": {"LIGHTSPEED_TOKEN": TOKEN},
            },
            "beta": {
                "vars": {"LIGHTSPEED_BASE_URL": acme_url},
                "secrets": {"LIGHTSPEED_TOKEN": "revoked"},
            },
        },
    )
    assert only(results, "prepare").outputs["stores"] == '["acme", "beta"]'
    acme, beta = results["plan"]
    assert (acme.matrix["store"], acme.result) == ("acme", "success")
    assert (beta.matrix["store"], beta.result) == ("beta", "failure")
    # each store had its own state file
    assert (acme.workspace / ".catalog" / "state" / "acme.db").exists()
    succeeded(only(results, "comment"))
    [comment] = fake.comments_on(PR)
    assert "`acme`: 10 to create" in comment["body"]
    assert "`beta`: plan failed" in comment["body"]
    assert "revoked" not in comment["body"]


def test_drift_opens_one_pull_request_with_the_pulled_values(
    repo: tuple[Path, Path],
    github: tuple[FakeGitHub, str],
    store: tuple[SandboxStore, str],
    runs: Callable[..., Results],
) -> None:
    """CATALOG_DRIFT_REPORT=pull-request: the nightly check pulls the store's value into the
    catalog and offers it as one pull request per store, kept current and closed when gone."""
    origin, _work = repo
    fake, _ = github
    sandbox, store_url = store
    settings = {"LIGHTSPEED_STORE": "acme", "LIGHTSPEED_BASE_URL": store_url}
    succeeded(
        only(runs("catalog-apply.yml", ref="main", event_name="push", variables=settings), "apply")
    )
    main = git(origin, "rev-parse", "main")

    set_price(sandbox, "TEE-M-BLK", 31.0)
    with_pr = {**settings, "CATALOG_DRIFT_REPORT": "pull-request"}
    night = runs("catalog-drift.yml", ref="main", event_name="schedule", variables=with_pr)
    drift = succeeded(only(night, "drift"))
    assert drift.step("Open, update or close the drift issue").outcome == "skipped"
    accept = succeeded(only(night, "accept"))
    assert (
        accept.step("Open, update or close the drift pull request").outputs["outcome"] == "created"
    )
    [pull] = fake.pulls()
    assert pull["head"] == {"ref": "catalog-drift/acme"} and pull["base"] == {"ref": "main"}
    assert "TEE-M-BLK" in pull["body"] and "`31.00`" in pull["body"]
    assert not [i for i in fake.issues.values() if "pull_request" not in i]  # no issue
    # The branch is main plus one commit that changes exactly the drifted value.
    assert git(origin, "rev-parse", "catalog-drift/acme~1") == main
    diff = git(origin, "diff", "--unified=0", main, "catalog-drift/acme")
    changed = [d for d in diff.splitlines() if d[:1] in "+-" and d[:3] not in ("+++", "---")]
    assert changed == [
        "-      - {sku: TEE-M-BLK, options: {Size: M, Colour: Black}}",
        "+      - {sku: TEE-M-BLK, options: {Size: M, Colour: Black}, price: 31.00}",
    ]
    assert TOKEN not in git(origin, "log", "-p", "catalog-drift/acme")

    # The next night, same drift: still one pull request, its description unchanged.
    night = runs("catalog-drift.yml", ref="main", event_name="schedule", variables=with_pr)
    accept = succeeded(only(night, "accept"))
    assert accept.step("Open, update or close the drift pull request").outputs["outcome"] in (
        "unchanged",
        "updated",
    )
    assert len(fake.pulls()) == 1

    # Both: the issue and the pull request side by side.
    both = {**settings, "CATALOG_DRIFT_REPORT": "both"}
    night = runs("catalog-drift.yml", ref="main", event_name="schedule", variables=both)
    succeeded(only(night, "accept"))
    assert len([i for i in fake.issues.values() if "pull_request" not in i]) == 1

    # The store's value is put back: the pull request closes itself.
    set_price(sandbox, "TEE-M-BLK", 25.0)
    night = runs("catalog-drift.yml", ref="main", event_name="schedule", variables=with_pr)
    accept = succeeded(only(night, "accept"))
    assert (
        accept.step("Open, update or close the drift pull request").outputs["outcome"] == "closed"
    )
    assert pull["state"] == "closed"


def test_the_default_drift_report_runs_no_accept_job(
    repo: tuple[Path, Path],
    github: tuple[FakeGitHub, str],
    store: tuple[SandboxStore, str],
    runs: Callable[..., Results],
) -> None:
    sandbox, store_url = store
    settings = {"LIGHTSPEED_STORE": "acme", "LIGHTSPEED_BASE_URL": store_url}
    succeeded(
        only(runs("catalog-apply.yml", ref="main", event_name="push", variables=settings), "apply")
    )
    set_price(sandbox, "TEE-M-BLK", 31.0)
    night = runs("catalog-drift.yml", ref="main", event_name="schedule", variables=settings)
    drift = succeeded(only(night, "drift"))
    assert drift.step("pull").outcome == "skipped"
    assert only(night, "accept").result == "skipped"
    assert github[0].pulls() == []
