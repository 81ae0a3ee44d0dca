"""AWS connections over the API: what a customer is told to create (external id, least-privilege
policy, CloudFormation), registering a role, and verifying it against a moto server on loopback
(through a fault proxy when AWS must refuse)."""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import TenantFixture
from tests.fixtures.aws import ACCOUNT_ID, ROLE_ARN, aws_client, aws_runtime
from tests.fixtures.http import api_client, api_key, assert_problem
from valdrix.cli.main import app as cli
from valdrix.connections.service import external_id_is_ours
from valdrix.jobs.repository import ScheduleRepository
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.scanning.registry import load_all_detectors

SETUP = "/api/v1/connections/aws/setup"
CONNECTIONS = "/api/v1/connections"
VALDRIX_PRINCIPAL = "arn:aws:iam::999988887777:role/valdrix-scanner"
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")


@pytest.fixture
async def aws_api(runtime: Runtime, aws_endpoint: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a deployment whose AWS is the simulator and whose principal is known."""
    configured = aws_runtime(runtime, aws_endpoint, aws={"principal_arn": VALDRIX_PRINCIPAL})
    async with api_client(configured) as client:
        yield client


async def issued_external_id(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await client.get(SETUP, headers=auth)
    assert response.status_code == 200, response.text
    external_id: str = response.json()["external_id"]
    return external_id


async def register(
    client: httpx.AsyncClient, auth: dict[str, str], **fields: Any
) -> httpx.Response:
    """POST a connection of the simulator's role; ``fields`` override the defaults."""
    body = {
        "name": f"production {uuid.uuid4().hex[:6]}",
        "role_arn": ROLE_ARN,
        "regions": ["us-west-2"],
        **fields,
    }
    if "external_id" not in body:
        body["external_id"] = await issued_external_id(client, auth)
    return await client.post(CONNECTIONS, json=body, headers=auth)


async def registered(client: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> str:
    response = await register(client, auth, **fields)
    assert response.status_code == 201, response.text
    connection_id: str = response.json()["id"]
    return connection_id


# --- what the customer creates ---------------------------------------------------------------


async def test_setup_issues_a_fresh_external_id_signed_for_this_tenant(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    other: TenantFixture = await make_tenant()

    first = await issued_external_id(client, tenant.auth)
    second = await issued_external_id(client, tenant.auth)

    assert first != second
    assert first.startswith("vdx-")
    assert external_id_is_ours(runtime.keyring, tenant.tenant_id, first)
    assert external_id_is_ours(runtime.keyring, tenant.tenant_id, second)
    assert not external_id_is_ours(runtime.keyring, other.tenant_id, first)


async def test_setup_policy_grants_exactly_the_declared_permissions(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    response = await client.get(SETUP, headers=tenant.auth)
    assert response.status_code == 200, response.text
    setup = response.json()

    declared = {p for d in load_all_detectors().for_provider("aws") for p in d.permissions}
    cost_imports = {"ce:GetCostAndUsage", "organizations:DescribeOrganization"}
    expected = sorted(declared | cost_imports | {"ec2:DescribeRegions"})
    [statement] = setup["iam_policy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == expected
    assert setup["required_permissions"] == expected
    for action in statement["Action"]:
        assert IAM_ACTION.match(action), f"{action!r} is not one exact IAM action"
        assert "*" not in action
    assert set(setup["iam_policy"]) == {"Version", "Statement"}


async def test_setup_with_an_export_location_grants_reading_that_prefix_only(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    response = await client.get(
        SETUP, params={"focus_export_uri": "s3://acme-billing/focus"}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    setup = response.json()
    scan, listing, reading = setup["iam_policy"]["Statement"]
    assert not {"s3:GetObject", "s3:ListBucket"} & set(scan["Action"])
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"] == "arn:aws:s3:::acme-billing"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "focus/*"}}
    assert (reading["Action"], reading["Resource"]) == (
        "s3:GetObject",
        "arn:aws:s3:::acme-billing/focus/*",
    )
    assert {"s3:GetObject", "s3:ListBucket"} <= set(setup["required_permissions"])
    role = setup["cloudformation_template"]["Resources"]["ValdrixScanRole"]["Properties"]
    assert role["Policies"][0]["PolicyDocument"] == setup["iam_policy"]
    bad = await client.get(SETUP, params={"focus_export_uri": "ftp://x"}, headers=tenant.auth)
    assert bad.status_code == 422 and "focus_export_uri" in bad.json()["detail"]


async def test_setup_cloudformation_role_trusts_valdrix_only_with_the_external_id(
    aws_api: httpx.AsyncClient, client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    response = await aws_api.get(SETUP, headers=tenant.auth)
    assert response.status_code == 200, response.text
    setup = response.json()

    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": VALDRIX_PRINCIPAL},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": setup["external_id"]}},
    }
    role = setup["cloudformation_template"]["Resources"]["ValdrixScanRole"]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [trust]
    assert [p["PolicyDocument"] for p in role["Properties"]["Policies"]] == [setup["iam_policy"]]
    assert setup["valdrix_principal_arn"] == VALDRIX_PRINCIPAL
    assert setup["trust_policy"]["Statement"] == [trust]

    # A deployment that does not know its principal asks for it as a template parameter.
    unconfigured = (await client.get(SETUP, headers=tenant.auth)).json()
    template = unconfigured["cloudformation_template"]
    assert "ValdrixPrincipalArn" in template["Parameters"]
    [statement] = template["Resources"]["ValdrixScanRole"]["Properties"][
        "AssumeRolePolicyDocument"
    ]["Statement"]
    assert statement["Principal"] == {"AWS": {"Ref": "ValdrixPrincipalArn"}}
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == unconfigured["external_id"]
    assert unconfigured["trust_policy"] is None


async def test_the_template_downloads_as_a_file_for_an_issued_external_id_only(
    aws_api: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    other: TenantFixture = await make_tenant()
    setup = (await aws_api.get(SETUP, headers=tenant.auth)).json()
    template_url = f"{SETUP.removesuffix('setup')}cloudformation-template"
    params = {"external_id": setup["external_id"]}

    response = await aws_api.get(template_url, params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.json() == setup["cloudformation_template"]
    refused = await aws_api.get(template_url, params=params, headers=other.auth)
    assert "was not issued to this tenant" in assert_problem(refused, 422)["detail"]


# --- registering ------------------------------------------------------------------------------


async def test_registering_a_role_with_an_issued_external_id_schedules_its_scans(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()

    response = await register(client, tenant.auth, name="  production  ")

    assert response.status_code == 201, response.text
    connection = response.json()
    assert connection["name"] == "production"
    assert (connection["provider"], connection["role_arn"]) == ("aws", ROLE_ARN)
    assert (connection["status"], connection["account_id"]) == ("pending", None)
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        schedule = await ScheduleRepository(session).for_target("scan", uuid.UUID(connection["id"]))
    assert schedule is not None
    assert schedule.enabled
    assert schedule.next_due_at <= utcnow()  # the first scan is due at once
    listed = (await client.get(CONNECTIONS, headers=tenant.auth)).json()
    assert [c["id"] for c in listed] == [connection["id"]]


async def test_an_external_id_not_issued_to_this_tenant_is_refused(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    other: TenantFixture = await make_tenant()
    ours = await issued_external_id(client, tenant.auth)
    nonce, signature = ours.removeprefix("vdx-").split("-")

    for external_id in [
        await issued_external_id(client, other.auth),
        "vdx-0123456789abcdef-0123456789abcdef01234567",
        f"vdx-{nonce}-{signature[::-1]}",
        "my-own-external-id",
    ]:
        response = await register(client, tenant.auth, external_id=external_id)
        assert "external_id" in assert_problem(response, 422)["detail"]
    assert (await client.get(CONNECTIONS, headers=tenant.auth)).json() == []
    # Not ASCII: refused like any other, never a server error.
    template = await client.get(
        f"{CONNECTIONS}/aws/cloudformation-template",
        params={"external_id": f"vdx-{nonce}-\u00e9t\u00e9{signature[4:]}"},
        headers=tenant.auth,
    )
    assert "external_id" in assert_problem(template, 422)["detail"]


async def test_a_malformed_role_arn_is_refused_naming_the_field(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()

    for role_arn in [
        "arn:aws:iam::12345:role/ValdrixScanRole",
        "arn:aws:iam::123456789012:user/someone",
        "ValdrixScanRole",
    ]:
        response = await register(client, tenant.auth, role_arn=role_arn)
        assert "role_arn" in assert_problem(response, 422)["detail"]


async def test_a_role_arn_with_whitespace_or_a_line_break_is_refused_naming_the_field(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()

    for role_arn in [
        ROLE_ARN + "\n",  # a regex's ``$`` matches before a final line break
        ROLE_ARN + "\r\n",
        ROLE_ARN + " ",
        " " + ROLE_ARN,
        ROLE_ARN.replace("role/", "role/Valdrix Scan"),
        ROLE_ARN.replace("role/", "role/Valdrix\nScan"),
        ROLE_ARN.replace(ACCOUNT_ID, "١٢٣٤٥٦٧٨٩٠١٢"),  # digits, but not ASCII ones
        ROLE_ARN.replace("ValdrixScanRole", "Valdrix\u00e9Role"),
    ]:
        response = await register(client, tenant.auth, role_arn=role_arn)
        assert "role_arn" in assert_problem(response, 422)["detail"], repr(role_arn)
    assert (await client.get(CONNECTIONS, headers=tenant.auth)).json() == []


async def test_a_second_connection_with_the_same_name_conflicts(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    await registered(client, tenant.auth, name="production")

    response = await register(client, tenant.auth, name="production")

    assert "production" in assert_problem(response, 409)["detail"]


async def test_threshold_overrides_are_validated_against_each_detectors_thresholds(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()

    for thresholds, field in [
        ({"aws.no-such-detector": {}}, "thresholds.aws.no-such-detector"),
        ({"aws.ec2-idle": {"cpu_percent": 500}}, "thresholds.aws.ec2-idle.cpu_percent"),
        ({"aws.ec2-idle": {"cpu_percnt": 5}}, "thresholds.aws.ec2-idle.cpu_percnt"),
        ({"aws.ebs-unattached": {"min_age_days": "soon"}}, "thresholds.aws.ebs-unattached"),
    ]:
        response = await register(client, tenant.auth, thresholds=thresholds)
        assert assert_problem(response, 422)["detail"].startswith(field), thresholds

    overrides = {"aws.ec2-idle": {"cpu_percent": 5}, "aws.ebs-unattached": {"min_age_days": 7}}
    response = await register(client, tenant.auth, thresholds=overrides)
    assert response.status_code == 201, response.text
    assert response.json()["thresholds"] == overrides
    response = await client.patch(
        f"{CONNECTIONS}/{response.json()['id']}",
        json={"thresholds": {"aws.ec2-idle": {"lookback_days": 0}}},
        headers=tenant.auth,
    )
    assert assert_problem(response, 422)["detail"].startswith(
        "thresholds.aws.ec2-idle.lookback_days"
    )


# --- verifying against (simulated) AWS --------------------------------------------------------


async def test_verify_assumes_the_role_and_reports_its_account(
    aws_api: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    connection_id = await registered(aws_api, tenant.auth)

    response = await aws_api.post(f"{CONNECTIONS}/{connection_id}/verify", headers=tenant.auth)

    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "account_id": ACCOUNT_ID, "reason": None}
    connection = (await aws_api.get(f"{CONNECTIONS}/{connection_id}", headers=tenant.auth)).json()
    assert (connection["status"], connection["account_id"]) == ("verified", ACCOUNT_ID)
    assert connection["last_verified_at"] is not None


async def test_verify_explains_that_aws_denied_assuming_the_role(
    runtime: Runtime, make_tenant: Any, fault_proxy: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    proxy = fault_proxy(deny_operations={"AssumeRole"})
    async with api_client(aws_runtime(runtime, proxy.url)) as denied_api:
        connection_id = await registered(denied_api, tenant.auth)

        response = await denied_api.post(
            f"{CONNECTIONS}/{connection_id}/verify", headers=tenant.auth
        )

        assert response.status_code == 200, response.text
        verdict = response.json()
        assert (verdict["ok"], verdict["account_id"]) == (False, None)
        assert "access denied" in verdict["reason"].lower()
        assert "external id" in verdict["reason"]
        connection = (
            await denied_api.get(f"{CONNECTIONS}/{connection_id}", headers=tenant.auth)
        ).json()
        assert (connection["status"], connection["status_reason"]) == ("error", verdict["reason"])
    assert proxy.calls[("sts", "AssumeRole")] == 1


# --- who may do what ------------------------------------------------------------------------


async def test_setting_up_registering_and_verifying_need_the_admin_role(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    connection_id = await registered(client, tenant.auth)
    external_id = await issued_external_id(client, tenant.auth)
    viewer = await api_key(client, tenant.auth, "viewer")
    member = await api_key(client, tenant.auth, "member")

    for auth in (viewer, member):
        assert_problem(await client.get(SETUP, headers=auth), 403)
        assert_problem(await register(client, auth, external_id=external_id), 403)
        assert_problem(
            await client.post(f"{CONNECTIONS}/{connection_id}/verify", headers=auth), 403
        )
    # Reading is for everyone in the tenant.
    listed = await client.get(CONNECTIONS, headers=viewer)
    assert [c["id"] for c in listed.json()] == [connection_id]


async def test_another_tenants_connection_is_not_found(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    outsider: TenantFixture = await make_tenant()
    url = f"{CONNECTIONS}/{await registered(client, tenant.auth)}"

    for response in [
        await client.get(url, headers=outsider.auth),
        await client.post(f"{url}/verify", headers=outsider.auth),
        await client.patch(url, json={"name": "mine now"}, headers=outsider.auth),
        await client.delete(url, headers=outsider.auth),
    ]:
        assert_problem(response, 404)
    assert (await client.get(CONNECTIONS, headers=outsider.auth)).json() == []
    assert (await client.get(url, headers=tenant.auth)).json()["name"].startswith("production")


# --- quick-create -------------------------------------------------------------------------------

TEMPLATE_URL = "https://valdrix-public.s3.us-east-1.amazonaws.com/cloudformation/scan-role.json"


def quick_create_parameters(url: str) -> dict[str, str]:
    """The query of the console's quick-create page (it sits after the URL's ``#``)."""
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "eu-west-1.console.aws.amazon.com")
    route, _, query = parts.fragment.partition("?")
    assert route == "/stacks/quickcreate"
    return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))


def as_document(value: Any) -> Any:
    """A policy document as boto3 returns it: a mapping from AWS; the simulator returns the
    inline policies a stack creates as their Python text."""
    return ast.literal_eval(value) if isinstance(value, str) else value


async def test_the_quick_create_link_and_the_published_template_create_the_setups_role(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    configured = aws_runtime(
        runtime,
        aws_endpoint,
        aws={
            "principal_arn": VALDRIX_PRINCIPAL,
            "cloudformation_template_url": TEMPLATE_URL,
            "cloudformation_region": "eu-west-1",
        },
    )
    export = "s3://acme-billing/focus exports/"
    async with api_client(configured) as client:
        plain = (await client.get(SETUP, headers=tenant.auth)).json()
        with_exports = (
            await client.get(SETUP, params={"focus_export_uri": export}, headers=tenant.auth)
        ).json()

    # What the customer's console would do with the link: create the published template's
    # stack with the link's parameters. Each role is the one the setup describes.
    published = json.loads(CliRunner().invoke(cli, ["connections", "quick-create-template"]).stdout)
    cloudformation = aws_client(aws_endpoint, "cloudformation", "eu-west-1")
    iam = aws_client(aws_endpoint, "iam", "us-east-1")
    for number, setup in enumerate((plain, with_exports)):
        link = quick_create_parameters(setup["cloudformation_quick_create_url"])
        assert link["templateURL"] == TEMPLATE_URL
        assert link["param_ExternalId"] == setup["external_id"]
        assert link["stackName"] == "ValdrixScanRole"
        cloudformation.create_stack(
            StackName=f"{link['stackName']}{number}",
            TemplateBody=json.dumps(published),
            Parameters=[
                {"ParameterKey": name.removeprefix("param_"), "ParameterValue": value}
                for name, value in link.items()
                if name.startswith("param_")
            ],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        role = iam.get_role(RoleName="ValdrixScanRole")["Role"]
        assert role["AssumeRolePolicyDocument"] == setup["trust_policy"]
        policy = iam.get_role_policy(RoleName="ValdrixScanRole", PolicyName="ValdrixWasteScan")
        assert as_document(policy["PolicyDocument"]) == setup["iam_policy"]
        cloudformation.delete_stack(StackName=f"{link['stackName']}{number}")  # and its role
    assert "s3:GetObject" not in json.dumps(plain["iam_policy"])
    assert "arn:aws:s3:::acme-billing/focus exports/*" in json.dumps(with_exports["iam_policy"])


async def test_without_a_published_template_the_setup_offers_the_file_only(
    aws_api: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    setup = (await aws_api.get(SETUP, headers=tenant.auth)).json()
    assert setup["cloudformation_quick_create_url"] is None
    assert setup["cloudformation_template"]["Resources"]["ValdrixScanRole"]


@pytest.mark.parametrize(
    ("aws", "refusal"),
    [
        (
            {"principal_arn": VALDRIX_PRINCIPAL, "cloudformation_template_url": "https://example.com/t.json"},
            "must be the https:// URL of an S3 object",
        ),
        (
            {"principal_arn": VALDRIX_PRINCIPAL, "cloudformation_template_url": "http://b.s3.amazonaws.com/t.json"},
            "must be the https:// URL of an S3 object",
        ),
        (
            {"principal_arn": VALDRIX_PRINCIPAL, "cloudformation_template_url": "https://b.s3-website-us-east-1.amazonaws.com/t.json"},
            "must be the https:// URL of an S3 object",
        ),
        ({"cloudformation_template_url": TEMPLATE_URL}, "needs VALDRIX_AWS_PRINCIPAL_ARN"),
        ({"cloudformation_region": "Frankfurt"}, "cloudformation_region"),
    ],
)  # fmt: skip
def test_a_quick_create_setting_that_cannot_work_is_refused_at_start(
    runtime: Runtime, aws: dict[str, str], refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        runtime.settings.updated(aws=aws)
