"""Fixtures of the console tests: an agent with an active persona, clients signed in to the admin."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import AgentFactory, PersonaFactory


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="VAT adviser", slug="vat-adviser", status="draft")
    PersonaFactory(agent=agent, name="Senior VAT specialist", is_active=True)
    return agent


@pytest.fixture
def other_agent(other_org):
    agent = AgentFactory(organization=other_org, name="Other firm's agent", slug="other-agent")
    PersonaFactory(agent=agent, is_active=True)
    return agent


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def editor_web(editor) -> Client:
    return signed_in(editor)


@pytest.fixture
def viewer_web(viewer) -> Client:
    return signed_in(viewer)
