"""ASVS 5.0 V5 (file handling) for the cases imported from a file (``POST /evaluation-suites/{id}/cases/import/``)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluations.models import Case, Suite
from tests.conftest import client_for
from tests.factories import AgentFactory
from tests.support.api import assert_error


@pytest.fixture
def import_url(org):
    suite = Suite.objects.create(organization=org, agent=AgentFactory(organization=org), name="S")
    return f"/api/v1/evaluation-suites/{suite.pk}/cases/import/"


def post(client, url, name, data: bytes):
    return client.post(url, {"file": SimpleUploadedFile(name, data)}, format="multipart")


def test_v5_2_1_a_file_over_the_limit_is_refused(editor, import_url):
    """ASVS 5.0 V5.2.1: an import larger than 2 MB is refused before it is read as cases."""
    data = b"name,input\n" + b"a,b\n" * 600_000
    body = assert_error(post(client_for(editor), import_url, "cases.csv", data), 400, fields=["file"])
    assert body["errors"]["file"] == ["The file is larger than 2 MB; split it."]
    assert not Case.objects.exists()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("cases.exe", b"MZ\x90\x00", "Upload a .csv file"),
        ("cases.csv", b"\xff\xfe\x00n\x00a", "The file is not UTF-8 text."),
        ("cases.jsonl", b'{"name": "a", "input": "b\x00"}', "NUL character"),
    ],
)
def test_v5_2_2_only_csv_or_jsonl_text_is_accepted(editor, import_url, name, data, message):
    """ASVS 5.0 V5.2.2: the extension must be .csv / .jsonl and the content UTF-8 text that parses as
    such; anything else is refused and nothing is imported."""
    body = assert_error(post(client_for(editor), import_url, name, data), 400, fields=["file"])
    assert message in body["errors"]["file"][0]
    assert not Case.objects.exists()


def test_v5_2_2_too_many_rows_are_refused(editor, import_url):
    """ASVS 5.0 V5.2.2 / V2.4.1: at most 1,000 cases per file (each becomes rows and later runs)."""
    data = ("name,input\n" + "".join(f"case {n},question {n}\n" for n in range(1001))).encode()
    body = assert_error(post(client_for(editor), import_url, "cases.csv", data), 400, fields=["file"])
    assert body["errors"]["file"] == ["The file holds 1001 cases; at most 1000 may be imported at once."]
