"""Tools an agent can call: built-in calculators/validators and HTTP tools."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from prisma_glow import outbound
from prisma_glow.config_stamp import ConfigQuerySet
from prisma_glow.crypto import EncryptedTextField
from prisma_glow.models import TimeStampedModel


class ToolKind(models.TextChoices):
    BUILTIN = "builtin", "Built-in"
    HTTP = "http", "HTTP"


def approval_default(*, kind: str, read_only: bool) -> bool:
    """Whether a new tool requires a person's approval before each call, unless its author says
    otherwise: every tool that reaches outside Prisma Glow (HTTP today, MCP later) and is not marked
    read-only. Built-in tools compute in-process and never do by default. The one rule: every door
    that creates or imports a tool asks it (``tools.services.tool_create``)."""
    return kind != ToolKind.BUILTIN and not read_only


def _string_map(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    POST = "POST", "POST"
    PUT = "PUT", "PUT"
    PATCH = "PATCH", "PATCH"
    DELETE = "DELETE", "DELETE"


class Tool(TimeStampedModel):
    """A callable tool with a JSON Schema for its arguments.

    ``organization`` is null for the built-in tools offered to every organisation (registered from
    ``tools.builtins``); HTTP tools always belong to one organisation. ``secret_headers`` is a JSON
    object of header values stored encrypted (e.g. ``{"Authorization": "Bearer …"}``).
    ``read_only``: the tool only reads (a look-up), it changes nothing anywhere. ``requires_approval``:
    each call the model asks for waits for a person with the editor role to approve, edit or refuse
    it (``agents.runtime.approvals``; an agent's assignment may override it). New tools get it from
    ``approval_default`` unless it is given; tools created before it existed keep False.
    ``inside_firm``: the tool may receive the client identifiers a run has redacted (the runtime
    restores the placeholders in its arguments); built-in tools run in-process and always do
    (``receives_identifiers``), their rows are marked so by ``tools.builtins.sync_builtin_tools``.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="tools"
    )
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80)
    kind = models.CharField(max_length=10, choices=ToolKind.choices, default=ToolKind.HTTP)
    description = models.TextField(
        blank=True, help_text="Shown to the model: say what the tool does and when."
    )
    input_schema = models.JSONField(default=dict, blank=True)
    builtin_key = models.CharField(max_length=60, blank=True)
    http_method = models.CharField(max_length=8, choices=HttpMethod.choices, default=HttpMethod.POST)
    url_template = models.CharField(max_length=500, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    secret_headers = EncryptedTextField(blank=True, default="")
    timeout_seconds = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    max_response_bytes = models.PositiveIntegerField(
        default=256 * 1024, validators=[MinValueValidator(1), MaxValueValidator(10 * 1024 * 1024)]
    )
    is_enabled = models.BooleanField(default=True)
    inside_firm = models.BooleanField(
        "inside the firm",
        default=False,
        help_text="The tool runs on the firm's own systems. When an agent redacts client identifiers, a "
        "tool inside the firm receives the real values (an IBAN, a VAT number) in place of the "
        "placeholders the model writes ([IBAN_1]); a tool outside the firm receives the placeholders. "
        "Built-in tools run inside Prisma Glow and always receive the real values.",
    )
    read_only = models.BooleanField(
        "read-only",
        default=False,
        help_text="The tool only reads (a look-up): it changes nothing, sends nothing, books nothing. "
        "New tools that are not read-only require approval of each call unless you say otherwise.",
    )
    requires_approval = models.BooleanField(
        default=False,
        help_text="Each call the model asks for waits until a person with the editor role approves, "
        "edits or refuses it (the run pauses meanwhile). An agent's assignment may override this.",
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    #: Built-in tools (no organisation) are shared by every organisation (read-only for members).
    organization_shared_when_null = True
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"],
                name="tool_unique_slug_per_org",
                violation_error_message="A tool with this slug already exists in this organisation.",
            ),
            models.UniqueConstraint(
                fields=["slug"],
                condition=Q(organization__isnull=True),
                name="tool_unique_builtin_slug",
                violation_error_message="A built-in tool with this slug already exists.",
            ),
            models.CheckConstraint(condition=Q(kind__in=ToolKind.values), name="tool_kind_valid"),
            models.CheckConstraint(
                condition=Q(http_method__in=HttpMethod.values), name="tool_http_method_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind=ToolKind.BUILTIN) | ~Q(url_template=""),
                name="tool_http_has_url",
                violation_error_message="An HTTP tool needs a URL.",
            ),
            models.CheckConstraint(
                condition=Q(kind=ToolKind.HTTP) | ~Q(builtin_key=""),
                name="tool_builtin_has_key",
                violation_error_message="A built-in tool needs its implementation key.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.kind == ToolKind.BUILTIN

    @property
    def receives_identifiers(self) -> bool:
        """Whether the runtime gives this tool the real values behind a run's placeholders: built-in
        tools (they run in-process) and HTTP tools marked inside the firm."""
        return self.kind == ToolKind.BUILTIN or self.inside_firm

    def needs_approval(self, assignment: bool | None = None) -> bool:
        """Whether a call of this tool waits for a person: the assignment's setting when it has one
        (``AgentTool.requires_approval``), else the tool's."""
        return self.requires_approval if assignment is None else assignment

    def _check_destination(self) -> None:
        """The host is fixed (``url_template_problem``), so the outbound guard can judge it when the
        tool is saved, as a provider's ``base_url`` is: a literal internal address, or a name resolving
        to one now, is refused unless ``HTTP_TOOL_ALLOWED_HOSTS`` allows it. Each call checks again."""
        import string

        fields = [name for _, name, _, _ in string.Formatter().parse(self.url_template) if name]
        try:
            outbound.http_tool_policy().check_url(self.url_template.format(**dict.fromkeys(fields, "x")))
        except outbound.DestinationRefused as exc:
            raise ValidationError({"url_template": str(exc)}) from exc

    def _check_headers(self) -> None:
        """Plain and secret headers are JSON objects of strings that HTTP can carry
        (``tools.http_executor.header_problem``): one httpx cannot encode (``"Bearer …"``, a line
        break, a space in a name) would fail every call of the tool. Every door (the API, the staff
        form, the services) saves through here. The errors never quote a secret header."""
        from tools.http_executor import headers_problems

        errors: dict[str, list[str]] = {}
        if not _string_map(self.headers):
            errors["headers"] = ["Headers must be a JSON object of strings."]
        elif problems := headers_problems(self.headers):
            errors["headers"] = problems
        try:
            secret = json.loads(self.secret_headers) if self.secret_headers else {}
        except (TypeError, ValueError):
            secret = None
        if not _string_map(secret):
            errors["secret_headers"] = ["Secret headers must be a JSON object of strings."]
        elif problems := headers_problems(secret, secret=True):
            errors["secret_headers"] = problems
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        if not isinstance(self.input_schema, dict):
            raise ValidationError({"input_schema": "The input schema must be a JSON object."})
        try:
            Draft202012Validator.check_schema(self.input_schema or {"type": "object"})
        except SchemaError as exc:
            raise ValidationError({"input_schema": f"Not a valid JSON Schema: {exc.message}"}) from exc
        if self.input_schema and self.input_schema.get("type", "object") != "object":
            raise ValidationError({"input_schema": 'Tool arguments are a JSON object: use "type": "object".'})
        self._check_headers()
        if self.kind == ToolKind.HTTP and not self.url_template:
            raise ValidationError({"url_template": "An HTTP tool needs a URL."})
        if self.kind == ToolKind.HTTP and self.url_template:
            from tools.http_executor import url_template_problem

            problem = url_template_problem(self.url_template)
            if problem:
                raise ValidationError({"url_template": problem})
            self._check_destination()
