import pytest


@pytest.mark.django_db
def test_every_page_renders_for_the_owner(owner_client, world):
    failures = {}
    for name, url in world.pages().items():
        response = owner_client.get(url)
        if response.status_code != 200:
            failures[name] = (url, response.status_code, response.content[:300])
    assert not failures, failures
