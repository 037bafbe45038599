"""Sign-in lockout (django-axes): failed sign-ins lock a username *from one address*.

``settings.LOCKOUT_FAILURES`` failures for one username from one address (``AXES_LOCKOUT_PARAMETERS``:
the pair, so nobody can lock a colleague out from elsewhere, and guessing many usernames from one
address does not lock them all) refuse that pair for ``settings.LOCKOUT_MINUTES``, even with the right
password. The address is the audit log's (``prisma_glow.audit.context.request_ip``: ``REMOTE_ADDR``,
which a proxy sets from its trusted header), never a header a client could write.

What is here: the authentication backend in front of Django's (``LockoutBackend``); the login page
axes answers with while a pair is locked (``lockout_response``: the admin's own login page, saying
until when, the same whether or not the username exists); the audit event when a pair locks
(``record_lock``, connected in ``TenancyConfig.ready``); the locks an owner sees on the dashboard
(``locked_logins``) and the one write, lifting a lock (``login_unlock``), which the members admin
and ``manage.py unlock_login`` call.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.forms.utils import ErrorDict
from django.shortcuts import render
from django.utils import timezone

from prisma_glow.audit.services import audit_person_event, audit_record
from prisma_glow.tenancy.models import Membership, Organization

LOCKED_STATUS = 429


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a sign-in from a locked (username, address) pair before Django's ``ModelBackend``
    checks the password (it must come first in ``AUTHENTICATION_BACKENDS``).

    An ``authenticate()`` without a request (the test client's ``login()``, code that checks a
    password outside a request) has no address to lock: it is left to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


# --- While locked ---------------------------------------------------------------------------------


def locked_until(*, username: str | None, ip_address: str | None) -> dt.datetime | None:
    """When the lock of this (username, address) pair ends, or None when it is not locked."""
    cool_off = get_cool_off()
    if cool_off is None:
        return None
    attempt = (
        AccessAttempt.objects.filter(
            username=username,
            ip_address=ip_address,
            failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
            attempt_time__gte=timezone.now() - cool_off,
        )
        .order_by("-attempt_time")
        .first()
    )
    return attempt.attempt_time + cool_off if attempt is not None else None


def lockout_message(until: dt.datetime | None) -> str:
    """What the login page says while a pair is locked: when to retry, nothing about the account."""
    if until is None:
        return "Too many failed sign-ins. Try again later, or ask an owner of your organisation to unlock it."
    minutes = max(1, -(-int((until - timezone.now()).total_seconds()) // 60))
    at = timezone.localtime(until).strftime("%H:%M %Z")
    return (
        f"Too many failed sign-ins for this username from your address: signing in is locked until {at} "
        f"(in {minutes} minute{'s' if minutes != 1 else ''}). Try again then, or ask an owner of your "
        "organisation to unlock it."
    )


def lockout_response(request, original_response=None, credentials=None):
    """The admin's login page with the lock's message (``AXES_LOCKOUT_CALLABLE``), status 429.

    The page is the one a wrong password gets, with another message: whether the username exists
    shows nowhere (an unknown username locks and reads the same)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    until = locked_until(username=username, ip_address=getattr(request, "axes_ip_address", None))
    form = AuthenticationForm(request, initial={"username": username})
    # Errors set without validating: validating would authenticate (and count a failure) again.
    form._errors = ErrorDict(
        {NON_FIELD_ERRORS: form.error_class([lockout_message(until)], error_class="nonfield")}
    )
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "form": form,
        "username": "",
        REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME, ""),
        "site_name": admin.site.site_header,
    }
    request.current_app = admin.site.name
    return render(request, "admin/login.html", context, status=LOCKED_STATUS)


# --- Audit ----------------------------------------------------------------------------------------


def _user_of(username: str | None):
    if not username:
        return None
    return get_user_model().objects.filter(username=username).first()


def record_lock(sender, request, username, ip_address, **kwargs) -> None:
    """Audit ``login.locked`` when a pair locks (axes' ``user_locked_out``), in each organisation of
    the user, or as a system event for a username no member has. Axes sends the signal again for each
    refused attempt while locked; only the lock itself (the failure that reached the limit) is recorded."""
    if getattr(request, "axes_failures_since_start", None) is None:
        return  # an attempt refused while already locked
    until = locked_until(username=username, ip_address=ip_address)
    after = {
        "username": username or "",
        "ip_address": ip_address,
        "failures": request.axes_failures_since_start,
        "failure_limit": get_failure_limit(request, None),
        "locked_until": until.isoformat() if until else None,
    }
    audit_person_event(user=_user_of(username), action="login.locked", after=after)


# --- Reads and writes for owners and operators ------------------------------------------------------


@dataclass(frozen=True)
class LockedLogin:
    """A locked (username, address) pair of one of an organisation's members."""

    membership: Membership
    ip_address: str | None
    failures: int
    locked_until: dt.datetime


def locked_logins(*, organization: Organization) -> list[LockedLogin]:
    """The organisation's members' current locks, the newest first (two queries)."""
    cool_off = get_cool_off()
    if cool_off is None:
        return []
    members = {
        m.user.get_username(): m
        for m in Membership.objects.filter(organization=organization).select_related("user", "organization")
    }
    attempts = AccessAttempt.objects.filter(
        username__in=list(members),
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
        attempt_time__gte=timezone.now() - cool_off,
    ).order_by("-attempt_time")
    return [
        LockedLogin(
            membership=members[a.username],
            ip_address=a.ip_address,
            failures=a.failures_since_start,
            locked_until=a.attempt_time + cool_off,
        )
        for a in attempts
    ]


def validate_address(value: str | None) -> str | None:
    """``value`` as a canonical IP address (None when empty); ``ValidationError`` when it is not one."""
    if value is None or not str(value).strip():
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise ValidationError({"ip_address": f"“{value}” is not an IP address."}) from None


@transaction.atomic
def login_unlock(*, username: str, ip_address: str | None = None, actor=None, organization=None) -> int:
    """Forget ``username``'s failed sign-ins (from ``ip_address`` only, when given), lifting its
    locks; returns how many records were removed. Audited (``login.unlocked``) in ``organization``
    (an owner's door), or in each of the user's organisations (the operator's), when any was removed."""
    ip_address = validate_address(ip_address)
    if not username:
        raise ValidationError({"username": "Give the username to unlock."})
    removed = reset(username=username, ip=ip_address)
    if removed:
        after = {"username": username, "ip_address": ip_address, "records_removed": removed}
        user = _user_of(username)
        if organization is not None:
            audit_record(
                organization=organization, action="login.unlocked", actor=actor, obj=user, after=after
            )
        else:
            audit_person_event(user=user, action="login.unlocked", actor=actor, after=after)
    return removed
