async def test_tenant_endpoint_answers_for_its_own_key(client, make_tenant):
    tenant = await make_tenant()
    response = await client.get("/api/v1/tenant", headers=tenant.auth)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == tenant.name
