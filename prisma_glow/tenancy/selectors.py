"""Reads of the tenancy app that the API, the admin and the accept page share."""

from __future__ import annotations

from prisma_glow.tenancy.models import Invitation, hash_secret


def invitation_by_token(token: str) -> Invitation | None:
    """The invitation whose link carries ``token`` (whatever its state), or None. Looked up by the
    secret's hash, the only form stored; one query."""
    token = str(token or "")
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=hash_secret(token))
        .first()
    )
