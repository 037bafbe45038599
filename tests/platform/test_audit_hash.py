"""Audit hashes survive the database: every accepted JSON value hashes the same once read back from
PostgreSQL's jsonb or SQLite's text (hash version 2, canonical numbers); events hashed the version 1
way keep verifying; values JSON cannot carry (NaN, the infinities) are refused before anything is
stored."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tokenize
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils import timezone

from prisma_glow.audit.canonical import canonical_json, canonical_number, validate_json_value
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_record, audit_verify_chain
from tests.support.api import assert_error
from tests.support.audit import tamper_audit
from tools.models import Tool
from tools.services import tool_create, tool_update

pytestmark = pytest.mark.django_db

#: Numbers that PostgreSQL's jsonb gives back in another form than Python writes them (1.5e300 as its
#: 301 digits, 1e16 as an integer, -0.0 as 0.0), or that sit at the edges of a float.
EXTREMES = {
    "huge": 1.5e300,
    "negative_huge": -1.5e300,
    "largest": 1.7976931348623157e308,
    "negative_zero": -0.0,
    "tiny": 1e-300,
    "denormal": 5e-324,
    "exponent_16": 1e16,
    "exponent_22": 1e22,
    "one_point_zero": 1.0,
    "small": -1.5e-7,
    "long_decimal": 0.1234567890123456789,
    "thirty_digits": 123456789012345678901234567890,
    "negative_thirty_digits": -987654321098765432109876543210,
    "past_2_53": 9007199254740993,
    "unicode": "Ünïcode ✓ 日本 \u2028 ' \" \\ %s",
    "nested": {"list": [1.5e300, [-0.0, {"ß": 2.50, "e": [1e-300, 5e-324, 1e300]}]], "true": True},
}


def schema_with(values: dict) -> dict:
    """A valid JSON Schema for a tool that carries ``values`` (as bounds, a default and examples)."""
    return {
        "type": "object",
        "properties": {
            "amount": {
                "type": "number",
                "maximum": values["huge"],
                "minimum": values["negative_huge"],
                "default": values["negative_zero"],
                "examples": [values],
            }
        },
    }


# --- the canonical form ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([1.5e300, 15 * 10**299, Decimal("1.5E+300"), Decimal("1500E+297")], "15" + "0" * 299),
        ([-0.0, 0, 0.0, Decimal("-0.00")], "0"),
        ([1e16, 10**16, Decimal("10000000000000000")], "10000000000000000"),
        ([1.0, 1, Decimal("1.000")], "1"),
        ([2.5, Decimal("2.50")], "2.5"),
        ([-1.5e-7, Decimal("-0.00000015")], "-0.00000015"),
        ([5e-324], "0." + "0" * 323 + "5"),
        ([0.1234567890123456789], "0.12345678901234568"),
        ([123456789012345678901234567890], "123456789012345678901234567890"),
    ],
)
def test_a_number_is_written_by_its_value_in_one_form(values, text):
    """An int, a float and a Decimal of the same value write the same: the shortest exact decimal,
    fixed notation, no trailing zeros, no negative zero."""
    assert {canonical_number(v) for v in values} == {text}


def test_canonical_json_reads_back_the_same_from_jsonb():
    """Whatever PostgreSQL's jsonb makes of the numbers (``1.5e300`` as 301 digits, read as an int;
    ``-0.0`` as ``0.0``), the re-read value writes the same canonical text; Python's own JSON does not."""
    if connection.vendor != "postgresql":
        pytest.skip("jsonb is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [json.dumps(EXTREMES)])
        text = cursor.fetchone()[0]
    back = json.loads(text)
    assert canonical_json(back) == canonical_json(EXTREMES)
    assert json.dumps(back, sort_keys=True) != json.dumps(EXTREMES, sort_keys=True)  # the finding
    assert canonical_json(json.loads(text, parse_float=Decimal)) == canonical_json(EXTREMES)


# --- writes through the real paths verify ------------------------------------------------------------


def test_extreme_numbers_through_the_tools_api_keep_the_chain_verified(org, editor_client):
    """A tool's input schema full of extreme numbers, created then edited through the API: the chain
    verifies once the events are read back from the database (on PostgreSQL this failed before)."""
    response = editor_client.post(
        "/api/v1/tools/",
        {"name": "Extremes", "url_template": "https://x.example/r", "input_schema": schema_with(EXTREMES)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    tool_id = response.json()["id"]
    changed = dict(EXTREMES, huge=-1e300, negative_zero=-0.0, tiny=2.2250738585072014e-308)
    response = editor_client.patch(
        f"/api/v1/tools/{tool_id}/", {"input_schema": schema_with(changed)}, format="json"
    )
    assert response.status_code == 200, response.json()
    events = AuditEvent.objects.filter(organization=org, object_id=str(tool_id)).order_by("id")
    assert [e.action for e in events] == ["tool.create", "tool.update"]
    assert all(e.hash_version == 2 for e in events)
    stored = Tool.objects.get(pk=tool_id).input_schema["properties"]["amount"]
    assert stored["examples"][0]["tiny"] == 2.2250738585072014e-308
    assert stored["examples"][0]["thirty_digits"] == 123456789012345678901234567890
    assert audit_verify_chain(org) == []


def test_extreme_numbers_through_the_service_keep_the_chain_verified(org, owner):
    tool = tool_create(
        organization=org,
        actor=owner,
        name="Extremes",
        url_template="https://x.example/r",
        input_schema=schema_with(EXTREMES),
    )
    tool_update(
        tool=tool, actor=owner, description="Edited", input_schema=schema_with(dict(EXTREMES, huge=1e308))
    )
    assert AuditEvent.objects.filter(organization=org).count() == 2
    assert audit_verify_chain(org) == []


# --- version 1 events -------------------------------------------------------------------------------


def _store_version_1(org, *, action: str, after, prev_hash: str) -> AuditEvent:
    """An event written as the code before hash version 2 wrote it (formula copied, not imported)."""
    at = timezone.now()
    payload = {
        "organization": org.pk, "actor_user": None, "actor_api_key": None, "actor_label": "",
        "action": action, "object_type": "", "object_id": "", "object_repr": "", "before": None,
        "after": after, "ip": None, "at": at.isoformat(), "prev_hash": prev_hash,
    }  # fmt: skip
    text = json.dumps(payload, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    with connection.cursor() as cursor:  # without hash_version, as the old code's INSERT
        cursor.execute(
            "INSERT INTO audit_auditevent (organization_id, actor_label, action, object_type, object_id, "
            "object_repr, after, at, prev_hash, hash) VALUES (%s, '', %s, '', '', '', %s, %s, %s, %s)",
            [org.pk, action, json.dumps(after), at, prev_hash, digest],
        )
    return AuditEvent.objects.get(hash=digest)


def test_version_1_events_keep_verifying_before_and_after_version_2_ones(org, owner):
    old = _store_version_1(org, action="old.one", after={"n": 1.5, "s": "Ä", "l": [1, None]}, prev_hash="")
    assert old.hash_version == 1  # the column's default, for rows written without it
    older = _store_version_1(org, action="old.two", after={"n": 2}, prev_hash=old.hash)
    new = audit_record(organization=org, action="new.one", actor=owner, after=EXTREMES)
    assert new.prev_hash == older.hash and new.hash_version == 2
    audit_record(organization=org, action="new.two", after=EXTREMES)
    assert audit_verify_chain(org) == []


def test_the_hash_version_is_covered_by_the_hash(org):
    """Relabelling a version 2 event as version 1 breaks it: the version is part of what is hashed."""
    event = audit_record(organization=org, action="x", after={"n": 1})
    tamper_audit("UPDATE audit_auditevent SET hash_version = 1 WHERE id = %s", [event.pk])
    assert audit_verify_chain(org) == [event.pk]


def test_the_api_shows_each_events_hash_version(org, admin_client_api):
    """An outside verifier needs the formula of each event: the API gives its hash version."""
    _store_version_1(org, action="old.one", after={"n": 1}, prev_hash="")
    audit_record(organization=org, action="new.one", after={"n": 1e300})
    response = admin_client_api.get("/api/v1/audit-events/", {"ordering": "at"})
    assert response.status_code == 200, response.json()
    versions = {row["action"]: row["hash_version"] for row in response.json()["results"]}
    assert versions == {"old.one": 1, "new.one": 2}


# --- values JSON cannot carry --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "named"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e999", "1e999"),
        ("-" + "9" * 4301, "4301 digits; the limit is 4300"),
    ],
    ids=["nan", "inf", "-inf", "1e999", "4301-digits"],
)
def test_the_api_refuses_numbers_json_cannot_carry(org, editor_client, token, named):
    body = (
        '{"name": "T", "url_template": "https://x.example", "input_schema": {"type": "object", '
        f'"properties": {{"n": {{"type": "number", "default": {token}}}}}}}}}'
    )
    response = editor_client.generic("POST", "/api/v1/tools/", body, content_type="application/json")
    assert named in assert_error(response, 400)["message"]
    assert not Tool.objects.filter(organization=org).exists()
    assert not AuditEvent.objects.filter(organization=org).exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_the_service_refuses_numbers_json_cannot_carry(org, owner, bad):
    """A ValidationError naming the field and where in it, before anything is stored (PostgreSQL would
    refuse NaN with a database error; SQLite would store text that is not JSON)."""
    schema = {"type": "object", "properties": {"n": {"type": "number", "default": bad}}}
    with pytest.raises(ValidationError) as caught:
        tool_create(
            organization=org, actor=owner, name="T", url_template="https://x.example", input_schema=schema
        )
    message = caught.value.message_dict["input_schema"][0]
    assert "properties.n.default" in message
    assert not Tool.objects.filter(organization=org).exists()
    assert not AuditEvent.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), float("-inf"), 10**4300], ids=["nan", "inf", "-inf", "4301-digits"]
)
def test_audit_record_refuses_numbers_json_cannot_carry(org, bad):
    with pytest.raises(ValidationError) as caught:
        audit_record(organization=org, action="x", after={"data": {"n": [1, bad]}})
    assert "data.n.1" in caught.value.message_dict["data"][0]
    assert not AuditEvent.objects.filter(organization=org).exists()


def test_every_json_column_refuses_numbers_json_cannot_carry():
    """Every model JSONField has the validator, so every service's ``full_clean`` refuses them."""
    fields = [
        field
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.get_fields()
        if isinstance(field, models.JSONField)
    ]
    assert len(fields) >= 10
    assert all(validate_json_value in field.validators for field in fields), fields
    for field in fields:
        with pytest.raises(ValidationError, match="NaN is not a JSON number"):
            field.run_validators({"a": [float("nan")]})
        field.run_validators(EXTREMES)  # extreme but finite: accepted


# --- text and shapes no JSON column holds the same on both databases ------------------------------------


@pytest.mark.parametrize(
    "metadata",
    ['{"a": "\\ud800"}', '{"\\u0000": 1}', '{"a": "x\\u0000y"}', '{"n": NaN}', "[" * 150 + "]" * 150],
    ids=["lone-surrogate", "nul-key", "nul-value", "nan", "too-deep"],
)
def test_json_sent_as_form_text_is_checked_like_a_json_body(org, editor_client, metadata):
    """A document's metadata arrives as text beside its file: parsed as strictly as a JSON body, so an
    unpaired surrogate or a NUL is a 400 naming the field, never a stored row whose every later read
    fails (SQLite) or a database error (PostgreSQL)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge.models import Document, KnowledgeBase

    kb = KnowledgeBase.objects.create(organization=org, name="Manuals")
    response = editor_client.post(
        f"/api/v1/knowledge-bases/{kb.pk}/documents/",
        {"file": SimpleUploadedFile("memo.txt", b"A memo."), "metadata": metadata},
        format="multipart",
    )
    assert "metadata" in assert_error(response, 400)["errors"]
    assert not Document.objects.exists()
    assert audit_verify_chain(org) == []


def test_nesting_past_the_limit_is_a_400_not_a_crash(org, editor_client):
    """json.loads reads about 1,500 levels; the checks and the audit log walk values recursively. Past
    100 levels the API answers 400 naming the limit, whether the body is deeper or not."""
    for depth in (101, 990):
        schema = '{"type": "object", "x": ' + "[" * depth + "]" * depth + "}"
        body = f'{{"name": "T{depth}", "url_template": "https://x.example", "input_schema": {schema}}}'
        response = editor_client.generic("POST", "/api/v1/tools/", body, content_type="application/json")
        assert "100 levels" in str(assert_error(response, 400)["errors"])
    assert not Tool.objects.filter(organization=org).exists()


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"], ids=["lone-surrogate", "nul"])
def test_every_json_column_refuses_text_no_database_stores(org, owner, bad):
    """The model validator covers doors other than the API (the admin's forms): a ValidationError
    naming where, before anything is written."""
    schema = {"type": "object", "properties": {"n": {"type": "string", "default": bad}}}
    with pytest.raises(ValidationError) as caught:
        tool_create(
            organization=org, actor=owner, name="T", url_template="https://x.example", input_schema=schema
        )
    assert "properties.n.default" in caught.value.message_dict["input_schema"][0]
    assert not Tool.objects.filter(organization=org).exists()


def test_an_unknown_hash_version_is_reported_not_raised(org):
    """Whoever edits an event's version to one the code does not know must not stop verification of
    the whole log: that event is reported as broken, and the others still checked."""
    first = audit_record(organization=org, action="x", after={"n": 1})
    second = audit_record(organization=org, action="y", after={"n": 2})
    tamper_audit("UPDATE audit_auditevent SET hash_version = 7 WHERE id = %s", [first.pk])
    assert audit_verify_chain(org) == [first.pk]
    assert second.pk not in audit_verify_chain(org)


def test_no_sql_in_the_project_computes_a_hash():
    """``AuditEvent.compute_hash`` is the one place the audit hash is computed: no SQL string of the
    product (frozen migrations apart, which are history) calls a hashing function."""
    root = Path(__file__).resolve().parents[2]
    hashing = re.compile(r"\b(sha224|sha256|sha384|sha512|md5|digest|hmac|crypt)\s*\(", re.IGNORECASE)
    found = []
    for package in ("prisma_glow", "agents", "personas", "tools", "guardrails", "knowledge"):
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
            for token in tokens:
                if token.type == tokenize.STRING and hashing.search(token.string):
                    found.append(f"{path.relative_to(root)}:{token.start[0]}")
    assert found == []
