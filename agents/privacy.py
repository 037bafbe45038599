"""Who sees client identifiers: one rule, for every door (the staff UI, the API, exports).

An execution's input and answer, and a learning example's, may hold client identifiers (IBANs, VAT
numbers, e-mail addresses…). Their full values are shown only when the object is opened on its own (its
page in the staff UI, its detail endpoint in the API) by

- a member with the editor role or above in the object's organisation (or a site superuser), or
- the run's own requester: the user or API key that ran the execution (``actor_user`` /
  ``actor_api_key``); for a learning example written by hand, the member who wrote it
  (``created_by``); for one proposed from a correction, the requester of the run it corrects (not
  whoever gave the thumbs down, who may be a viewer reading someone else's run).

Everywhere else — lists, object names (and so audit entries' names), change summaries, dashboard
panels, exports — and for everyone else, identifiers are masked (``guardrails.masking``:
``DE89 •••• 3000``). ``may_see_identifiers`` is the rule; ``shown_text`` / ``shown_data`` apply it to
a field. docs/security.md says the same for people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from guardrails.engine import restore
from guardrails.masking import mask_data, mask_text
from prisma_glow.tenancy.models import ROLE_RANK, Role


def may_see_identifiers(viewer, obj, *, opened_alone: bool, user=None) -> bool:
    """Whether ``viewer`` may see the full client identifiers of ``obj`` (an ``Execution`` or a
    ``LearningExample``).

    ``viewer``: a ``prisma_glow.policy.Principal`` with its ``organization`` (the API's ``Access``, the
    staff UI's ``AdminAccess``); ``user``: the person behind it when the principal does not carry one
    (the staff UI passes ``request.user``). ``opened_alone``: the object is shown on its own (its page,
    its detail endpoint); in a list the answer is always no.
    """
    if not opened_alone or viewer is None:
        return False
    organization = getattr(viewer, "organization", None)
    if organization is None or organization.pk != obj.organization_id:
        return False
    if sees_every_identifier(viewer):
        return True
    api_key = getattr(viewer, "api_key", None)
    user = user if user is not None else getattr(viewer, "user", None)
    return _is_requester(obj, user=user if api_key is None else None, api_key=api_key)


def sees_every_identifier(viewer) -> bool:
    """Whether ``viewer`` may open every execution of its organisation in full: a member with the
    editor role or above (never an API key, which sees only its own runs' values), or a site superuser.

    Only they may search the texts that hold identifiers (an execution's input, answer and error, a
    feedback's comment and correction): a search that matches inside a value shown masked
    (``DE89 •••• 3000``) would let anyone else rebuild it digit by digit (``SEARCH_REFUSED``)."""
    if viewer is None:
        return False
    if getattr(viewer, "is_superuser", False):
        return True
    return (
        getattr(viewer, "api_key", None) is None
        and ROLE_RANK.get(getattr(viewer, "role", None), 0) >= ROLE_RANK[Role.EDITOR]
    )


#: Why a search over texts that may hold identifiers is refused (the API's 400 on ``search``).
SEARCH_REFUSED = (
    "Searching the executions' texts needs the editor role or above: they may hold client identifiers, "
    "which you see masked, and a search would reveal them. Filter by agent, conversation, status, "
    "source or date instead."
)


def _is_requester(obj, *, user, api_key) -> bool:
    """Whether ``user`` / ``api_key`` asked for the run behind ``obj`` (or wrote the example)."""
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    if user_id is None and api_key is None:
        return False
    if _stores_placeholders(obj):  # a learning example: its author, or the run it corrects
        if obj.source_feedback_id is None:  # written by hand: its author typed the values
            return user_id is not None and obj.created_by_id == user_id
        # Proposed from a thumbs down: its input is the run's whole input, and whoever gave it (a viewer
        # may) is its ``created_by`` — only the run's own requester counts, never the feedback's author.
        obj = obj.source_feedback.execution
    return (user_id is not None and obj.actor_user_id == user_id) or (
        api_key is not None and obj.actor_api_key_id == api_key.pk
    )


def _stores_placeholders(obj) -> bool:
    """A learning example is stored redacted; an execution keeps the input as typed and the answer
    restored (a placeholder the requester typed stays as typed)."""
    return obj._meta.model_name == "learningexample"


def identifier_mapping(obj) -> dict[str, str]:
    """``obj``'s placeholders and the values they stand for (its encrypted ``redactions``)."""
    return parse_mapping(getattr(obj, "redactions", "") or "")


def parse_mapping(raw: str) -> dict[str, str]:
    """A stored ``redactions`` value (JSON, decrypted) as a mapping; empty when there is none."""
    try:
        mapping = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return mapping if isinstance(mapping, dict) else {}


def shown_text(obj, text: str, *, visible: bool, mapping: Mapping[str, str] | None = None) -> str:
    """One of ``obj``'s texts as this viewer sees it: with the real values when ``visible`` (a learning
    example's placeholders restored), else with every identifier masked, those of ``obj``'s mapping
    included."""
    if not text:
        return text
    mapping = identifier_mapping(obj) if mapping is None else mapping
    full = restore(text, mapping) if _stores_placeholders(obj) else text
    return full if visible else mask_text(full, known=mapping.values())


def shown_data(obj, value: Any, *, visible: bool) -> Any:
    """A structure of ``obj`` (a trace step's input or output, citations) as this viewer sees it."""
    if visible:
        return value
    return mask_data(value, known=identifier_mapping(obj).values())
