"""Every route is public on purpose, tenant-protected, or the operator's (behind the metrics
token), and no tenant route lets tenant A read, change or even detect tenant B's objects.

A new route fails this test until it is added to ``PUBLIC_ROUTES`` (rarely right), uses a
``require_tenant_access`` scope, or is in ``OPERATOR_ROUTES`` behind ``require_metrics_token``;
a new path parameter fails until ``B_OBJECTS`` says which of B's objects to aim at, and a new
body until ``SAMPLE_BODIES`` has one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

from tests.costs.helpers import give_tenant_cost_data
from tests.jobs.helpers import give_tenant_a_queued_job
from tests.llm.helpers import give_tenant_llm_spend
from tests.observability.helpers import metrics_auth
from tests.scanning.helpers import give_tenant_a_scanned_connection
from valdrix.app import OPERATOR_ROUTES, PUBLIC_ROUTES
from valdrix.observability.exposition import require_metrics_token
from valdrix.tenancy.auth import is_tenant_guard
from valdrix.web.routing import PageRoute
from valdrix.web.sign_in import PUBLIC_PAGES

# Valid request bodies, so a request reaches the object lookup instead of failing validation.
SAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/tenant"): {"timezone": "Europe/Paris"},
    ("POST", "/api/v1/members"): {"email": "cross-tenant-probe@example.com", "role": "viewer"},
    ("PATCH", "/api/v1/members/{membership_id}"): {"role": "viewer"},
    ("POST", "/api/v1/api-keys"): {"name": "probe", "role": "viewer"},
    ("POST", "/api/v1/connections"): {
        "name": "probe",
        "role_arn": "arn:aws:iam::123456789012:role/Probe",
        "external_id": "vdx-0000000000000000-000000000000000000000000",
    },
    ("PATCH", "/api/v1/connections/{connection_id}"): {"name": "renamed by A"},
    ("POST", "/api/v1/scans"): {"connection_id": "{connection_id}"},
    ("PATCH", "/api/v1/findings/{finding_id}"): {"status": "dismissed", "note": "A was here"},
    # Every finding A's filter lists: A's own alone, whatever the filter names.
    ("POST", "/api/v1/findings/status"): {"status": "dismissed", "note": "A's", "filter": {}},
    ("PATCH", "/api/v1/llm/budget"): {"daily_cap_usd": "0.50"},
}
# Routes that take a file upload instead of a JSON body.
SAMPLE_UPLOADS: dict[tuple[str, str], tuple[str, bytes]] = {
    ("POST", "/api/v1/costs/imports"): (
        "focus.csv",
        (Path(__file__).parent / "data" / "focus" / "focus_sample_1000.csv").read_bytes(),
    ),
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
AWS_SETUP_ROUTES = (
    "/api/v1/connections/aws/setup",
    "/api/v1/connections/aws/cloudformation-template",
)


def _dependencies(dependant: Any) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_dependencies(sub))
    return found


def _flatten(routes) -> list[APIRoute]:
    """All endpoint routes, including those of included (possibly nested) routers."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(_flatten(route.original_router.routes))
        elif hasattr(route, "routes"):
            found.extend(_flatten(route.routes))
    return found


def _api_routes(app) -> list[tuple[str, str, APIRoute]]:
    """The API's routes; the dashboard's pages answer in HTML and are held below."""
    return [
        (method, route.path, route)
        for route in _flatten(app.routes)
        if not isinstance(route, PageRoute)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"})
    ]


def _page_routes(app) -> list[tuple[str, str, APIRoute]]:
    return [
        (method, route.path, route)
        for route in _flatten(app.routes)
        if isinstance(route, PageRoute)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"})
    ]


def _tenant_routes(app) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, route in _api_routes(app)
        if any(is_tenant_guard(dep) for dep in _dependencies(route.dependant))
    ]


def _operator_routes(app) -> set[tuple[str, str]]:
    return {
        (method, path)
        for method, path, route in _api_routes(app)
        if require_metrics_token in _dependencies(route.dependant)
    }


def test_every_route_is_public_on_purpose_tenant_protected_or_the_operators(client):
    app = client._transport.app
    schema_paths = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    routes = {(method, path) for method, path, _ in _api_routes(app)}
    assert schema_paths <= routes | PUBLIC_ROUTES
    assert _operator_routes(app) == OPERATOR_ROUTES
    assert not OPERATOR_ROUTES & (PUBLIC_ROUTES | set(_tenant_routes(app)))
    unprotected = (schema_paths | routes) - set(_tenant_routes(app)) - PUBLIC_ROUTES
    unprotected -= OPERATOR_ROUTES
    assert not unprotected, f"neither public nor protected: {sorted(unprotected)}"


async def test_every_page_is_public_on_purpose_or_signed_in_and_sends_strangers_to_sign_in(
    client,
):
    pages = _page_routes(client._transport.app)
    assert pages, "the dashboard's pages are PageRoutes"
    guarded = {
        (method, path)
        for method, path, route in pages
        if any(is_tenant_guard(dep) for dep in _dependencies(route.dependant))
    }
    unguarded = {(method, path) for method, path, _ in pages} - guarded - PUBLIC_PAGES
    assert not unguarded, f"neither public nor signed in: {sorted(unguarded)}"
    for method, path in sorted(guarded):
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await client.request(method, url)
        assert response.status_code == 303, f"{method} {path}: {response.status_code}"
        assert response.headers["location"].startswith("/sign-in"), f"{method} {path}"
        assert not PUBLIC_PAGES & {(method, path)}


async def test_operator_routes_refuse_callers_without_the_operators_token(client, make_tenant):
    tenant = await make_tenant()
    for method, path in OPERATOR_ROUTES:
        for headers in ({}, tenant.auth):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, f"{method} {path}: {response.status_code}"
            assert str(tenant.tenant_id) not in response.text
        allowed = await client.request(method, path, headers=metrics_auth(client))
        assert allowed.status_code == 200, f"{method} {path}: {allowed.status_code}"


async def test_tenant_routes_refuse_unauthenticated_callers(client):
    for method, path in _tenant_routes(client._transport.app):
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await client.request(method, url, json=SAMPLE_BODIES.get((method, path)))
        assert response.status_code == 401, f"{method} {path}: {response.status_code}"


def _aimed_at(body, b_objects):
    """The sample body with ``{param}`` placeholders replaced by B's ids, and whether any was."""
    if body is None:
        return None, False
    text = json.dumps(body)
    aimed = text
    for name, value in b_objects.items():
        aimed = aimed.replace("{" + name + "}", value)
    return json.loads(aimed), aimed != text


async def _b_objects(client, b, runtime) -> dict[str, str]:
    await give_tenant_a_queued_job(runtime, b.tenant_id)
    scanned = await give_tenant_a_scanned_connection(runtime, b.tenant_id)
    await give_tenant_llm_spend(runtime, b.tenant_id)
    await give_tenant_cost_data(runtime, b.tenant_id)
    members = (await client.get("/api/v1/members", headers=b.auth)).json()
    keys = (await client.get("/api/v1/api-keys", headers=b.auth)).json()
    jobs = (await client.get("/api/v1/jobs", headers=b.auth)).json()["items"]
    return {
        "membership_id": members[0]["id"],
        "api_key_id": keys[0]["id"],
        "job_id": jobs[0]["id"],
        "connection_id": str(scanned.connection_id),
        "scan_id": str(scanned.scan_id),
        "finding_id": str(scanned.finding_id),
    }


# Query parameters for list routes that need some, so the snapshot holds data.
SNAPSHOT_PARAMS: dict[str, dict[str, str]] = {
    "/api/v1/costs": {
        "start": str(dt.date.today() - dt.timedelta(days=700)),
        "end": str(dt.date.today() + dt.timedelta(days=1)),
        "group_by": "service",
    },
    "/api/v1/costs/readings": {"day": str(dt.date.today() - dt.timedelta(days=1))},
    "/api/v1/costs/tag-keys": {
        "start": str(dt.date.today() - dt.timedelta(days=700)),
        "end": str(dt.date.today() + dt.timedelta(days=1)),
    },
}


async def _snapshot(client, tenant, routes) -> dict[str, Any]:
    """Everything the tenant can list, to prove nothing of it changed."""
    snapshot = {}
    for method, path in routes:
        # The AWS setup mints a fresh external id per call, and its template needs one: not
        # stored data.
        if method == "GET" and "{" not in path and path not in AWS_SETUP_ROUTES:
            response = await client.get(path, params=SNAPSHOT_PARAMS.get(path), headers=tenant.auth)
            assert response.status_code == 200, f"{path}: {response.text}"
            # An export (CSV) is held as its text.
            json_body = response.headers["content-type"].startswith("application/json")
            snapshot[path] = response.json() if json_body else response.text
    return snapshot


async def test_tenant_a_cannot_reach_tenant_b_objects_through_any_route(
    client, make_tenant, runtime
):
    a, b = await make_tenant(), await make_tenant()
    routes = _tenant_routes(client._transport.app)
    b_objects = await _b_objects(client, b, runtime)
    b_markers = [str(b.tenant_id), b.name, b.admin_email, *b_objects.values()]
    before = await _snapshot(client, b, routes)

    for method, path in routes:
        if method in UNSAFE and "{" not in path and path != "/api/v1/auth/logout":
            body = SAMPLE_BODIES.get((method, path))
            upload = SAMPLE_UPLOADS.get((method, path))
            assert body or upload, f"add a sample body for {method} {path}"
        params = re.findall(r"\{([^}]+)\}", path)
        missing = [p for p in params if p not in b_objects]
        assert not missing, f"{method} {path}: tell this test which B object {missing} means"
        url = path
        for param in params:
            url = url.replace("{" + param + "}", b_objects[param])
        body, names_b_object = _aimed_at(SAMPLE_BODIES.get((method, path)), b_objects)
        if (method, path) in SAMPLE_UPLOADS:
            files = {"file": SAMPLE_UPLOADS[(method, path)]}
            response = await client.request(method, url, headers=a.auth, files=files)
        else:
            response = await client.request(method, url, headers=a.auth, json=body)
        if names_b_object:
            assert response.status_code == 404, f"{method} {path} with B's id: {response.text}"
        if params:
            assert response.status_code == 404, f"{method} {url}: {response.status_code}"
            random_url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
            unknown = await client.request(
                method, random_url, headers=a.auth, json=SAMPLE_BODIES.get((method, path))
            )
            assert unknown.json()["detail"] == response.json()["detail"], "existence oracle"
        else:
            assert response.status_code < 500, f"{method} {path}: {response.text}"
        leaked = [marker for marker in b_markers if marker in response.text]
        assert not leaked, f"{method} {url} shows B's data: {leaked}"

    after = await _snapshot(client, b, routes)
    changed = [path for path in before if before[path] != after.get(path)]
    assert not changed, f"B's data changed at {changed}"
    assert (await client.get("/api/v1/tenant", headers=b.auth)).status_code == 200
