"""A rotated R-Series refresh token is kept between CI runs: `catalog ci keep-refresh-token`
seals it with the secret's public key and writes it back through GitHub's REST API (issue 14).
The fake GitHub opens the sealed box with its private key, as GitHub does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fake_github import FakeGitHub
from gh_helpers import parse_github_output

from reconciler.cli import cli
from reconciler.errors import ConfigError, GitHubError
from reconciler.github import GitHub, rotated_refresh_token
from reconciler.github.rest import seal

CONFIGURED = "def50200-configured-refresh-token"
ROTATED = "def50200-rotated-refresh-token-after-this-run"
SECRETS_PAT = "github_pat_11AAAA_secrets_writer"


def write_tokens(path: Path, *, refresh: str, seed: str) -> Path:
    """A token file as the R-Series client leaves it after refreshing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "access_token": "eyJ.access",
                "refresh_token": refresh,
                "expires_at": 1.0,
                "seed": seed,
            }
        )
    )
    return path


@pytest.fixture
def secrets_api() -> Iterator[tuple[FakeGitHub, dict[str, str]]]:
    fake = FakeGitHub(token=SECRETS_PAT)
    with fake.serve() as url:
        yield fake, {"GITHUB_API_URL": url, "CATALOG_SECRETS_TOKEN": SECRETS_PAT}


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Result]:
    (tmp_path / "output").write_text("")
    base = {
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_REPOSITORY": "acme/catalog",
        "LIGHTSPEED_REFRESH_TOKEN": CONFIGURED,
        "LIGHTSPEED_TOKEN_FILE": "",
        "CATALOG_SECRETS_TOKEN": "",
    }

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env={**base, **(env or {})})

    return invoke


def rotated_output(tmp_path: Path) -> str:
    return parse_github_output((tmp_path / "output").read_text())["rotated"]


def test_a_sealed_secret_opens_to_the_value_only_with_the_private_key() -> None:
    fake = FakeGitHub()
    with GitHub(
        token=fake.token,
        repository=fake.repository,
        api_url=fake.base_url,
        transport=fake.transport(),
    ) as gh:
        gh.set_secret("LIGHTSPEED_REFRESH_TOKEN", ROTATED)
        gh.set_secret("LIGHTSPEED_REFRESH_TOKEN", ROTATED + "-2", environment="acme")
    assert fake.secrets == {
        (None, "LIGHTSPEED_REFRESH_TOKEN"): ROTATED,
        ("acme", "LIGHTSPEED_REFRESH_TOKEN"): ROTATED + "-2",
    }
    assert fake.requests == [
        ("GET", "/repos/acme/catalog/actions/secrets/public-key"),
        ("PUT", "/repos/acme/catalog/actions/secrets/LIGHTSPEED_REFRESH_TOKEN"),
        ("GET", "/repos/acme/catalog/environments/acme/secrets/public-key"),
        ("PUT", "/repos/acme/catalog/environments/acme/secrets/LIGHTSPEED_REFRESH_TOKEN"),
    ]


def test_sealing_is_randomized_and_never_holds_the_value() -> None:
    from nacl.encoding import Base64Encoder
    from nacl.public import PrivateKey

    key = PrivateKey.generate().public_key.encode(Base64Encoder).decode()
    one, two = seal(key, ROTATED), seal(key, ROTATED)
    assert one != two  # an ephemeral key per box
    assert ROTATED not in one and "rotated" not in one


def test_a_rotated_token_is_written_to_the_store_environment_secret(
    run: Callable[..., Result], tmp_path: Path, secrets_api: tuple[FakeGitHub, dict[str, str]]
) -> None:
    fake, env = secrets_api
    tokens = write_tokens(tmp_path / "tokens.json", refresh=ROTATED, seed=CONFIGURED)
    result = run(
        "ci",
        "keep-refresh-token",
        "--environment",
        "acme",
        env={**env, "LIGHTSPEED_TOKEN_FILE": str(tokens)},
    )
    assert result.exit_code == 0, result.output
    assert fake.secrets == {("acme", "LIGHTSPEED_REFRESH_TOKEN"): ROTATED}
    assert "Saved the rotated R-Series refresh token to LIGHTSPEED_REFRESH_TOKEN" in result.output
    assert ROTATED not in result.output and SECRETS_PAT not in result.output
    assert rotated_output(tmp_path) == "true"


def test_the_token_file_defaults_to_the_one_beside_the_state_file(
    run: Callable[..., Result], tmp_path: Path, secrets_api: tuple[FakeGitHub, dict[str, str]]
) -> None:
    fake, env = secrets_api
    write_tokens(tmp_path / "state" / "rseries-tokens.json", refresh=ROTATED, seed=CONFIGURED)
    result = run(
        "--state", str(tmp_path / "state" / "acme.db"), "ci", "keep-refresh-token", env=env
    )
    assert result.exit_code == 0, result.output
    assert fake.secrets == {(None, "LIGHTSPEED_REFRESH_TOKEN"): ROTATED}


@pytest.mark.parametrize(
    "tokens",
    [
        None,  # no refresh in this run (an access token, X-Series, the sandbox)
        {"refresh": CONFIGURED, "seed": CONFIGURED},  # refreshed without rotation
        {"refresh": ROTATED, "seed": "an-older-chain"},  # a file left from another chain
    ],
)
def test_nothing_is_written_when_the_token_did_not_rotate(
    run: Callable[..., Result],
    tmp_path: Path,
    secrets_api: tuple[FakeGitHub, dict[str, str]],
    tokens: dict[str, str] | None,
) -> None:
    fake, env = secrets_api
    path = tmp_path / "tokens.json"
    if tokens is not None:
        write_tokens(path, **tokens)
    result = run("ci", "keep-refresh-token", env={**env, "LIGHTSPEED_TOKEN_FILE": str(path)})
    assert result.exit_code == 0, result.output
    assert "did not rotate" in result.output
    assert fake.requests == [] and fake.secrets == {}
    assert rotated_output(tmp_path) == "false"


def test_a_rotation_without_a_token_that_may_write_secrets_fails_loudly(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", refresh=ROTATED, seed=CONFIGURED)
    result = run("ci", "keep-refresh-token", env={"LIGHTSPEED_TOKEN_FILE": str(tokens)})
    assert isinstance(result.exception, ConfigError)
    assert "CATALOG_SECRETS_TOKEN is not set" in str(result.exception)
    assert ROTATED not in str(result.exception) + result.output


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refused_write_says_which_permission_the_token_needs(
    run: Callable[..., Result],
    tmp_path: Path,
    secrets_api: tuple[FakeGitHub, dict[str, str]],
    status: int,
) -> None:
    fake, env = secrets_api
    fake.fail_next = [status]
    tokens = write_tokens(tmp_path / "tokens.json", refresh=ROTATED, seed=CONFIGURED)
    result = run(
        "ci",
        "keep-refresh-token",
        "--environment",
        "acme",
        env={**env, "LIGHTSPEED_TOKEN_FILE": str(tokens)},
    )
    assert isinstance(result.exception, GitHubError)
    message = str(result.exception)
    assert f"was refused ({status}): give CATALOG_SECRETS_TOKEN write access" in message
    assert ROTATED not in message + result.output and SECRETS_PAT not in message
    assert fake.secrets == {}


def test_an_unreadable_token_file_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"tokens\.json is unreadable"):
        rotated_refresh_token(path, CONFIGURED)
