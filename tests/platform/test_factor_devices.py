"""prisma_glow.accounts.models: the second-factor devices, their secrets protected at rest.

Codes are checked through ``factors.check_code`` (the one door), against rows in the real database;
the concurrency test runs real threads against PostgreSQL's row locks."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.oath import totp

from prisma_glow import factors
from prisma_glow.accounts.models import AuthenticatorDevice, BackupCode, BackupCodeDevice
from tests.factories import TOTPDeviceFactory, UserFactory, backup_codes, totp_code

pytestmark = pytest.mark.django_db


def test_devices_are_django_otp_devices():
    """django-otp finds them (its middleware, ``devices_for_user``, ``login()`` work with them)."""
    user = UserFactory()
    device = TOTPDeviceFactory(user=user)
    backup_codes(user)
    found = list(devices_for_user(user))
    assert {type(d) for d in found} == {AuthenticatorDevice, BackupCodeDevice}
    assert device.persistent_id == f"accounts.authenticatordevice/{device.pk}"


def test_a_new_authenticator_draws_its_own_160_bit_key_and_keeps_it():
    first, second = TOTPDeviceFactory(), TOTPDeviceFactory()
    assert len(first.bin_key) == 20 and first.bin_key != second.bin_key
    key = first.key
    first.save()
    first.refresh_from_db()
    assert first.key == key, "saving again keeps the key"


def test_config_url_is_what_an_authenticator_app_reads(settings):
    settings.OTP_TOTP_ISSUER = "Prisma Glow"
    device = TOTPDeviceFactory(user=UserFactory(username="mira"))
    url = urlsplit(device.config_url)
    assert (url.scheme, url.netloc, url.path) == ("otpauth", "totp", "/Prisma%20Glow%3Amira")
    query = parse_qs(url.query)
    assert query["issuer"] == ["Prisma Glow"] and query["digits"] == ["6"] and query["period"] == ["30"]
    assert query["algorithm"] == ["SHA1"]
    import base64

    assert base64.b32decode(query["secret"][0]) == device.bin_key


def test_a_totp_code_of_the_next_step_is_accepted_then_nothing_up_to_it():
    """One step of clock drift either way; after a code, neither it nor an earlier step's works."""
    device = TOTPDeviceFactory()
    ahead = totp_code(device, drift=1)
    assert factors.check_code(device.user, ahead) == device
    device.refresh_from_db()
    assert factors.check_code(device.user, totp_code(device)) is None, "the current step is now spent"
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


def test_no_drift_is_learnt(settings):
    """A code one step ahead does not move the window: two steps ahead is still refused after it."""
    device = TOTPDeviceFactory()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert factors.check_code(device.user, totp_code(device, drift=1)) == device
        traveller.shift(timedelta(seconds=31))  # past the wait a wrong code would cause
        device.refresh_from_db()
        two_ahead = f"{totp(device.bin_key, 30, 0, 6, 2):06d}"
        assert factors.check_code(device.user, two_ahead) is None


def test_a_backup_code_is_accepted_once_in_any_case_and_with_dashes():
    user = UserFactory()
    codes = backup_codes(user, count=3)
    assert all(len(code) == 10 for code in codes)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        device = factors.check_code(user, f"{codes[1][:5].upper()}-{codes[1][5:]}")
        assert isinstance(device, BackupCodeDevice)
        assert BackupCode.objects.filter(device=device).count() == 2
        assert factors.check_code(user, codes[1]) is None
        traveller.shift(timedelta(seconds=1))  # the wait after that wrong try
        assert factors.check_code(user, codes[0]) is not None, "the others still work"


def test_a_backup_code_with_a_known_index_and_a_wrong_secret_is_refused_and_throttled():
    user = UserFactory()
    code = backup_codes(user, count=1)[0]
    wrong = code[:2] + ("a" * 8 if code[2:] != "a" * 8 else "b" * 8)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert factors.check_code(user, wrong) is None
        device = BackupCodeDevice.objects.get(user=user)
        assert device.throttling_failure_count == 1
        assert factors.wait_seconds(user, code) == 1
        assert factors.check_code(user, code) is None, "a right code during the wait is not checked"
        assert BackupCode.objects.filter(device=device).count() == 1, "and not consumed"
        traveller.shift(timedelta(seconds=1))
        assert factors.check_code(user, code) == device
    device.refresh_from_db()
    assert device.throttling_failure_count == 0 and device.last_used_at is not None


def test_backup_code_indexes_are_distinct_within_a_device():
    user = UserFactory()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes")
    codes = device.issue(40)
    assert len({code[:2] for code in codes}) == 40
    assert sorted(BackupCode.objects.filter(device=device).values_list("index", flat=True)) == sorted(
        code[:2] for code in codes
    )


@pytest.mark.django_db(transaction=True)
def test_one_backup_code_used_by_many_requests_at_once_works_once():
    """The device's row lock (``for_verify``) makes the lookup, the hash check and the deletion one
    step: of eight concurrent sign-ins with the same code exactly one gets in."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers on its own")
    user = UserFactory()
    code = backup_codes(user, count=1)[0]
    barrier = threading.Barrier(8)
    results = []

    def attempt():
        try:
            barrier.wait()
            results.append(factors.check_code(user, code) is not None)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


@pytest.mark.django_db(transaction=True)
def test_migration_0002_drops_django_otps_clear_tables_and_their_history():
    """A database that had django-otp's TOTP and backup-code plugins loses their tables (keys and codes
    in clear) and their migration history; one that never had them migrates as well."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0001_devices")])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE otp_totp_totpdevice (id integer PRIMARY KEY, key varchar(80))")
        cursor.execute("INSERT INTO otp_totp_totpdevice (id, key) VALUES (1, 'deadbeef')")
        cursor.execute("CREATE TABLE otp_static_staticdevice (id integer PRIMARY KEY)")
        cursor.execute(
            "CREATE TABLE otp_static_statictoken (id integer PRIMARY KEY, "
            "device_id integer REFERENCES otp_static_staticdevice (id), token varchar(16))"
        )
        for app in ("otp_totp", "otp_static"):
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES (%s, '0001_initial', %s)",
                [app, timezone.now()],
            )
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0002_drop_clear_otp_tables")])
    tables = set(connection.introspection.table_names())
    assert not tables & {"otp_totp_totpdevice", "otp_static_staticdevice", "otp_static_statictoken"}
    assert {"accounts_authenticatordevice", "accounts_backupcode"} <= tables
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app IN ('otp_totp', 'otp_static')")
        assert cursor.fetchone()[0] == 0
