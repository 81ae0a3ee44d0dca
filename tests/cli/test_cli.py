"""The ``valdrix`` command line, run for real as a subprocess.

Most commands share the session's database (through the two URLs and the session key); the
embedded-server commands (``db url``, ``demo``, ``serve`` without URLs) get a fresh
``VALDRIX_HOME`` each, and every server a test starts is stopped before it ends.
"""

from __future__ import annotations

import json
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from tests.cli.helpers import (
    COMMAND_TIMEOUT,
    DEMO_READY_TIMEOUT,
    STOPPED_BY_SIGTERM,
    VALDRIX,
    DemoRun,
    embedded_home,
    env_for_session_database,
    env_with_home,
    free_ports,
    in_background,
    one_line,
    postmaster,
    valdrix,
    valdrix_json,
    valdrix_output,
)
from tests.fixtures.http import bearer
from valdrix.config import generate_key_entry, parse_encryption_keys

if TYPE_CHECKING:  # importing them at run time would make pytest try to collect TestDatabase
    from tests.conftest import TenantFixture, TestDatabase


@pytest.fixture
def shared_env(database: TestDatabase, encryption_keys: str, tmp_path: Path) -> dict[str, str]:
    return env_for_session_database(database, encryption_keys, tmp_path / "home")


# --- tenants and API keys, on the session's database -----------------------------------------


@pytest.fixture(scope="module")
def cli_tenants(
    database: TestDatabase, encryption_keys: str, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """Two tenants made with ``valdrix tenants create`` (run side by side to save time)."""
    env = env_for_session_database(
        database, encryption_keys, tmp_path_factory.mktemp("cli") / "home"
    )
    suffix = uuid.uuid4().hex[:6]

    def create(label: str) -> subprocess.Popen[str]:
        name, email = f"{label} {suffix}", f"ops-{suffix}@{label.lower()}.example"
        args = ["tenants", "create", name, "--tier", "growth", "--admin-email", email, "--json"]
        return subprocess.Popen(
            [*VALDRIX, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    processes = [create("Alpha"), create("Bravo")]
    created = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
        assert process.returncode == 0, stderr
        created.append(json.loads(stdout))
    return created


async def test_tenants_create_prints_the_tenant_and_an_owner_key_that_works(
    client: httpx.AsyncClient, cli_tenants: list[dict[str, Any]]
) -> None:
    alpha = cli_tenants[0]
    assert alpha["name"].startswith("Alpha ")
    assert alpha["tier"] == "growth"
    assert alpha["api_key"].startswith("vdx_")
    assert alpha["invite_token"], "an owner without a password is invited"

    response = await client.get("/api/v1/tenant", headers=bearer(alpha["api_key"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["name"], body["tier"]) == (alpha["tenant_id"], alpha["name"], "growth")
    me = (await client.get("/api/v1/auth/me", headers=bearer(alpha["api_key"]))).json()
    assert me["role"] == "owner"
    members = (await client.get("/api/v1/members", headers=bearer(alpha["api_key"]))).json()
    assert [(m["email"], m["role"], m["status"]) for m in members] == [
        (alpha["admin_email"], "owner", "invited")
    ]


async def test_an_owner_key_from_the_cli_never_reaches_another_tenants_rows(
    client: httpx.AsyncClient, cli_tenants: list[dict[str, Any]]
) -> None:
    alpha, bravo = cli_tenants
    as_alpha, as_bravo = bearer(alpha["api_key"]), bearer(bravo["api_key"])
    bravo_members = (await client.get("/api/v1/members", headers=as_bravo)).json()
    bravo_membership = bravo_members[0]["id"]

    alpha_members = (await client.get("/api/v1/members", headers=as_alpha)).json()
    assert {m["id"] for m in alpha_members}.isdisjoint({m["id"] for m in bravo_members})
    assert bravo["admin_email"] not in {m["email"] for m in alpha_members}
    alpha_keys = (await client.get("/api/v1/api-keys", headers=as_alpha)).json()
    assert alpha["api_key_id"] in {k["id"] for k in alpha_keys}
    assert bravo["api_key_id"] not in {k["id"] for k in alpha_keys}
    alpha_audit = (await client.get("/api/v1/audit-log", headers=as_alpha)).json()["items"]
    assert alpha_audit, "alpha's own creation is audited"
    assert not {e["target_id"] for e in alpha_audit} & {
        bravo["tenant_id"],
        bravo["api_key_id"],
        bravo_membership,
    }

    for method, path, body in [
        ("PATCH", f"/api/v1/members/{bravo_membership}", {"role": "viewer"}),
        ("DELETE", f"/api/v1/members/{bravo_membership}", None),
        ("DELETE", f"/api/v1/api-keys/{bravo['api_key_id']}", None),
    ]:
        response = await client.request(method, path, json=body, headers=as_alpha)
        assert response.status_code == 404, f"{method} {path}: {response.text}"

    assert (await client.get("/api/v1/tenant", headers=as_bravo)).status_code == 200
    assert (await client.get("/api/v1/members", headers=as_bravo)).json() == bravo_members


async def test_api_keys_create_issues_a_viewer_key_that_reads_but_cannot_manage_keys(
    client: httpx.AsyncClient, cli_tenants: list[dict[str, Any]], shared_env: dict[str, str]
) -> None:
    alpha = cli_tenants[0]
    issued = valdrix_json(
        "api-keys", "create", "--tenant", alpha["tenant_id"], "--role", "viewer", env=shared_env
    )
    assert issued["tenant_id"] == alpha["tenant_id"]
    assert issued["role"] == "viewer"
    assert issued["key"].startswith("vdx_")
    as_viewer = bearer(issued["key"])

    response = await client.get("/api/v1/tenant", headers=as_viewer)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == alpha["tenant_id"]
    response = await client.post(
        "/api/v1/api-keys", json={"name": "escalation", "role": "viewer"}, headers=as_viewer
    )
    assert response.status_code == 403, response.text

    keys = (await client.get("/api/v1/api-keys", headers=bearer(alpha["api_key"]))).json()
    assert {key["id"]: key["role"] for key in keys}[issued["id"]] == "viewer"


def test_api_keys_create_for_an_unknown_tenant_fails_with_one_readable_line(
    shared_env: dict[str, str],
) -> None:
    args = ["api-keys", "create", "--role", "viewer", "--json"]
    result = valdrix(*args, "--tenant", str(uuid.uuid4()), env=shared_env)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["valdrix: tenant not found"]


def test_tenants_create_with_an_unknown_tier_fails_naming_the_valid_tiers(
    shared_env: dict[str, str],
) -> None:
    options = ["--tier", "platinum", "--admin-email", "ops@nope.example"]
    result = valdrix("tenants", "create", "Nope Inc", *options, env=shared_env)
    assert result.returncode != 0
    message = one_line(result.stderr)
    assert "Invalid value for '--tier'" in message
    assert "'platinum' is not one of 'free', 'starter', 'growth', 'pro', 'enterprise'" in message
    assert "Traceback" not in result.stderr


def test_tenants_create_with_a_malformed_admin_email_fails_and_creates_nothing(
    shared_env: dict[str, str], database: TestDatabase
) -> None:
    name = f"Typo {uuid.uuid4().hex[:6]}"
    with psycopg.connect(database.superuser) as conn:
        before = conn.execute("SELECT count(*) FROM tenants").fetchone()

    result = valdrix(
        "tenants",
        "create",
        name,
        "--tier",
        "free",
        "--admin-email",
        "ops.typo.example",
        env=shared_env,
    )

    assert result.returncode != 0
    assert result.stderr.splitlines()[-1].startswith("valdrix: email: 'ops.typo.example' is not")
    with psycopg.connect(database.superuser) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == before


async def test_keys_rotate_reencrypts_under_the_first_key_and_back(
    client: httpx.AsyncClient,
    make_tenant,  # type: ignore[no-untyped-def]
    shared_env: dict[str, str],
    encryption_keys: str,
) -> None:
    tenant: TenantFixture = await make_tenant()
    new_entry = generate_key_entry()
    try:
        forward = valdrix_json(
            "keys",
            "rotate",
            env=shared_env | {"VALDRIX_ENCRYPTION_KEYS": f"{new_entry},{encryption_keys}"},
        )
        assert forward["active_key_id"] == new_entry.partition(":")[0]
        assert forward["reencrypted"]["tenants.name"] >= 1
        assert forward["reencrypted"]["users.email"] >= 1
    finally:  # the rest of the suite reads this database with the session key only
        back = valdrix_json(
            "keys",
            "rotate",
            env=shared_env | {"VALDRIX_ENCRYPTION_KEYS": f"{encryption_keys},{new_entry}"},
        )
    assert back == {
        "active_key_id": encryption_keys.partition(":")[0],
        "reencrypted": forward["reencrypted"],
    }
    response = await client.get("/api/v1/tenant", headers=tenant.auth)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == tenant.name


# --- the embedded database ---------------------------------------------------------------------


def test_db_url_prints_a_least_privilege_app_url_and_the_owner_url(tmp_path: Path) -> None:
    with embedded_home(tmp_path / "home") as home:
        env = env_with_home(home, VALDRIX_ENCRYPTION_KEYS=generate_key_entry())
        valdrix_output("migrate", env=env)
        app_url = valdrix_output("db", "url", "--role", "app", env=env).strip()
        owner_url = valdrix_output("db", "url", "--role", "owner", env=env).strip()

        with psycopg.connect(app_url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("valdrix_app",)
            assert conn.execute(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == (False, False)
            tables = conn.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            assert "tenants" in {name for name, _ in tables}, "migrate created the schema"
            owned = conn.execute(
                "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid),"
                " (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
                " FROM pg_roles r WHERE r.rolname = current_user"
            ).fetchone()
            assert owned == (0, 0), "the app role owns no table, sequence, index or function"
            assert conn.execute(
                "SELECT pg_has_role(current_user, 'valdrix_owner', 'MEMBER')"
            ).fetchone() == (False,)

        with psycopg.connect(owner_url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("valdrix_owner",)
        assert {owner for _, owner in tables} == {"valdrix_owner"}


@pytest.mark.parametrize(
    "keys", [None, "k1:changeme-put-a-real-key-here"], ids=["keys-unset", "placeholder-key"]
)
def test_serve_outside_the_demo_refuses_to_start_without_a_real_encryption_key(
    tmp_path: Path, keys: str | None
) -> None:
    with embedded_home(tmp_path / "home") as home:
        env = env_with_home(home)
        if keys is not None:
            env["VALDRIX_ENCRYPTION_KEYS"] = keys
        started = time.monotonic()
        [port] = free_ports(1)
        result = valdrix("serve", "--port", str(port), env=env)
        assert time.monotonic() - started < 15
        assert result.returncode != 0
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith("valdrix: configuration error: VALDRIX_ENCRYPTION_KEYS")
        assert not (home / "postgres").exists(), "refused before starting a database"


# --- the demo ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """``valdrix demo --once --json`` on a fresh home."""
    with embedded_home(tmp_path_factory.mktemp("demo") / "home") as home:
        yield DemoRun(home, valdrix("demo", "--once", "--json", env=env_with_home(home)))


def test_demo_once_prints_credentials_as_one_json_line_and_makes_a_private_key_file(
    first_demo: DemoRun,
) -> None:
    result = first_demo.result
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1, "with --json everything else goes to stderr"
    summary = first_demo.summary
    assert "api_url" not in summary, "--once serves no API"
    assert summary["api_key"].startswith("vdx_")
    uuid.UUID(summary["tenant_id"])

    assert stat.S_IMODE(first_demo.key_file.stat().st_mode) == 0o600
    assert parse_encryption_keys(first_demo.key_file.read_text())
    assert f"created encryption key file {first_demo.key_file} (mode 0600)" in result.stderr
    assert summary["api_key"] in result.stderr, "the human summary is on stderr"


def test_demo_run_again_reuses_its_tenant_and_issues_a_new_working_key(
    first_demo: DemoRun, tmp_path: Path
) -> None:
    key_file_before = first_demo.key_file.read_text()
    again = valdrix("demo", "--once", "--json", env=first_demo.env())
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.splitlines()[0])
    assert summary["tenant_id"] == first_demo.summary["tenant_id"]
    assert summary["api_key"] != first_demo.summary["api_key"]
    assert "created encryption key file" not in again.stderr
    assert first_demo.key_file.read_text() == key_file_before

    [port] = free_ports(1)
    api_url = f"http://127.0.0.1:{port}"
    with in_background(
        "serve", "--port", str(port), env=first_demo.serve_env(), logs=tmp_path
    ) as serve:
        serve.wait_until_ready(api_url)
        response = httpx.get(f"{api_url}/api/v1/tenant", headers=bearer(summary["api_key"]))
        assert response.status_code == 200, response.text
        assert response.json()["id"] == summary["tenant_id"]


def test_demo_serves_and_a_second_server_shares_its_database_and_outlives_it(
    first_demo: DemoRun, tmp_path: Path
) -> None:
    demo_port, serve_port = free_ports(2)
    serve_url = f"http://127.0.0.1:{serve_port}"
    with in_background(
        "demo", "--json", "--port", str(demo_port), env=first_demo.env(), logs=tmp_path
    ) as demo:
        summary = json.loads(demo.first_line(timeout=DEMO_READY_TIMEOUT))
        assert summary["tenant_id"] == first_demo.summary["tenant_id"]
        assert summary["api_url"] == f"http://127.0.0.1:{demo_port}"
        as_demo = bearer(summary["api_key"])
        demo.wait_until_ready(summary["api_url"])
        response = httpx.get(f"{summary['api_url']}/api/v1/tenant", headers=as_demo)
        assert response.status_code == 200, response.text
        # The printed sign-in opens the dashboard it names.
        assert summary["dashboard_url"] == f"{summary['api_url']}/"
        with httpx.Client(base_url=summary["api_url"]) as browser:
            signed_in = browser.post(
                "/sign-in",
                data={"email": summary["admin_email"], "password": summary["admin_password"]},
            )
            assert signed_in.status_code == 303, signed_in.text
            overview = browser.get(summary["dashboard_url"])
            assert overview.status_code == 200 and "Open waste" in overview.text

        with in_background(
            "serve", "--port", str(serve_port), env=first_demo.serve_env(), logs=tmp_path
        ) as serve:
            serve.wait_until_ready(serve_url)
            response = httpx.get(f"{serve_url}/api/v1/tenant", headers=as_demo)
            assert response.status_code == 200, response.text
            assert response.json()["id"] == summary["tenant_id"]

            assert demo.stop() == STOPPED_BY_SIGTERM, demo.output()
            assert httpx.get(f"{serve_url}/readyz").status_code == 200
            response = httpx.get(f"{serve_url}/api/v1/tenant", headers=as_demo)
            assert response.status_code == 200, response.text

            assert serve.stop() == STOPPED_BY_SIGTERM, serve.output()
    assert postmaster(first_demo.home) is None, "the last process out stops the database"


def test_serve_with_workers_refuses_a_metrics_address_only_one_of_them_could_hold(
    shared_env: dict[str, str],
) -> None:
    (port,) = free_ports(1)
    result = valdrix(
        "serve", "--port", str(port), "--workers", "2",
        env={**shared_env, "VALDRIX_METRICS_LISTEN": "127.0.0.1:9464"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "VALDRIX_METRICS_LISTEN" in result.stderr and "--workers" in result.stderr
