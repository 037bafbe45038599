import pytest

from tests.factories import AgentFactory


@pytest.mark.django_db
def test_dashboard_renders(staff_client, org):
    AgentFactory(organization=org)
    response = staff_client.get("/admin/")
    assert response.status_code == 200, response.content[:3000]
