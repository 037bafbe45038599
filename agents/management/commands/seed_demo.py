"""``manage.py seed_demo [--org SLUG]``: a demonstration firm with agents, knowledge and guardrails.

Idempotent: every object is looked up by its natural key (organisation slug, username, provider,
knowledge base and guardrail name, agent slug, document title) and created only when missing, through
the same audited services the API and the admin use. A second run changes nothing; two slugs give
two independent organisations (only the built-in tools, which belong to no organisation, are shared).
No demo object takes a name the journeys of SCENARIOS.md create ("VAT adviser (demo)", so that a
person's own "VAT adviser" is accepted); a database seeded under the old name has that agent renamed
(audited) on the next run rather than a second one added.

The owner's credentials come from ``PRISMA_GLOW_DEMO_USERNAME`` / ``PRISMA_GLOW_DEMO_PASSWORD`` or,
when unset, are ``demo`` (``<slug>-owner`` for other slugs) with a generated password. They are
printed once, when the user is created, and written to ``var/demo-login.txt`` (mode 0600) so that
``make run`` can show them again; the password is never written anywhere else. A second admin,
``<owner>-reviewer`` (same password rule), approves activations: each active demo agent's release 1
goes live through an activation request the owner makes and the reviewer approves (four eyes,
``agents.activation``), so the approval inbox shows a recorded decision from the start.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.db import transaction

from agents.activation import activation_request_approve, activation_request_create
from agents.models import Agent, AgentGuardrail, AgentKnowledge, AgentTool, ModelProvider
from agents.services import (
    GUARDRAIL,
    KNOWLEDGE,
    TOOL,
    agent_create,
    agent_update,
    assignment_create,
    provider_create,
    release_create,
)
from guardrails.models import Guardrail
from guardrails.services import guardrail_create
from knowledge.models import Document, DocumentStatus, KnowledgeBase
from knowledge.services import document_create, document_process, knowledge_base_create
from personas.models import Persona
from personas.services import persona_create
from prisma_glow.tenancy.models import Membership, Organization, Role
from prisma_glow.tenancy.services import membership_add, organization_create
from tools.models import Tool

DATA_DIR = Path(__file__).resolve().parent / "demo_data"

# --- What the demonstration firm contains ------------------------------------------------------

PROVIDER = {"name": "Offline engine", "kind": "offline", "default_model": "offline-extractive"}


@dataclass(frozen=True)
class DocumentSpec:
    title: str
    filename: str
    jurisdiction: str = ""
    effective_from: date | None = None
    reference: str = ""


@dataclass(frozen=True)
class KnowledgeBaseSpec:
    name: str
    description: str
    documents: tuple[DocumentSpec, ...]


KNOWLEDGE_BASES = (
    KnowledgeBaseSpec(
        "EU VAT guidance",
        "The firm's notes on EU VAT: place of supply, reverse charge, invoices and rates.",
        (
            DocumentSpec(
                "EU VAT: place of supply of services and the reverse charge",
                "eu-vat-place-of-supply.md",
                "EU",
                date(2010, 1, 1),
                "TAX-VAT-01",
            ),
            DocumentSpec(
                "VAT invoices: mandatory content, time limits and EU rates",
                "eu-vat-invoices-and-rates.md",
                "EU",
                date(2025, 1, 1),
                "TAX-VAT-02",
            ),
        ),
    ),
    KnowledgeBaseSpec(
        "Audit methodology",
        "The firm's audit methodology notes (ISA 530 sampling, tests of controls and details).",
        (
            DocumentSpec(
                "Audit sampling guidance: tests of controls and tests of details",
                "audit-sampling-guidance.md",
                reference="AUD-SAM-01",
            ),
        ),
    ),
    KnowledgeBaseSpec(
        "Quality management",
        "Acceptance, independence and engagement letter procedures.",
        (
            DocumentSpec(
                "Engagement letter checklist", "engagement-letter-checklist.md", reference="QM-ENG-03"
            ),
        ),
    ),
    KnowledgeBaseSpec(
        "Firm reference",
        "Internal policies and the filing calendar, for the helpdesk and engagement teams.",
        (
            DocumentSpec(
                "UK and US tax and payroll deadlines",
                "uk-us-tax-and-payroll-deadlines.md",
                reference="GEN-DL-01",
            ),
            DocumentSpec(
                "Firm helpdesk: IT, security and client data FAQ",
                "firm-helpdesk-faq.md",
                reference="IT-FAQ-02",
            ),
        ),
    ),
)

DISCLAIMER = (
    "This answer was prepared by an AI assistant from the firm's guidance. It is not tax, audit or legal "
    "advice until a qualified professional of the firm has reviewed it."
)

# (name, kind, action, config, description); stages are the guardrail kind's defaults.
GUARDRAILS = (
    (
        "PII redaction",
        "pii",
        "redact",
        {},
        "Replaces personal data (IBANs, card numbers, tax and national identifiers, e-mail addresses, "
        "phone numbers) with placeholders before any model call; the requester sees the originals.",
    ),
    (
        "Prompt injection",
        "prompt_injection",
        "block",
        {"threshold": 0.5},
        "Blocks attempts to override the agent's instructions, in the question and in retrieved passages.",
    ),
    (
        "Citations required",
        "citation_required",
        "block",
        {"min_citations": 1},
        "An answer built on the firm's guidance must cite at least one passage.",
    ),
    (
        "Professional disclaimer",
        "disclaimer",
        "append",
        {"text": DISCLAIMER, "position": "end"},
        "Appends the firm's review disclaimer to every answer.",
    ),
    (
        "Blocked topics",
        "blocked_topics",
        "block",
        {
            "topics": [
                {
                    "name": "Tax evasion",
                    "terms": ["evade tax", "evading tax", "tax evasion", "hide income", "off the books"],
                },
                {
                    "name": "Falsifying records",
                    "terms": [
                        "backdate the invoice",
                        "backdate an invoice",
                        "fake invoice",
                        "alter the audit trail",
                    ],
                },
                {
                    "name": "Market abuse",
                    "terms": ["insider information", "insider trading", "stock tip"],
                },
            ]
        },
        "Refuses requests to evade tax, falsify records or trade on inside information.",
    ),
)


@dataclass(frozen=True)
class AgentSpec:
    name: str
    slug: str
    type: str
    description: str
    persona_name: str
    system_prompt: str
    tone: str
    audience: str
    tools: tuple[str, ...]
    knowledge: tuple[str, ...]
    guardrails: tuple[str, ...] = field(
        default=(
            "PII redaction",
            "Prompt injection",
            "Blocked topics",
            "Citations required",
            "Professional disclaimer",
        )
    )
    active: bool = True
    # (slug, name) pairs an earlier version of this command seeded the agent under: re-seeding such a
    # database renames that agent (audited) instead of adding a second one next to it.
    former: tuple[tuple[str, str], ...] = ()


# No demo object takes a name that a journey of SCENARIOS.md creates (Mira's "VAT adviser" in
# scenario 1 must not be refused as a duplicate): tests/agents/test_seed_demo.py checks the list.
AGENTS = (
    AgentSpec(
        name="VAT adviser (demo)",
        slug="vat-adviser-demo",
        type="tax",
        description="Answers EU VAT questions from the firm's guidance: place of supply, reverse charge, "
        "invoices, rates; computes VAT and validates VAT numbers and IBANs.",
        persona_name="Senior VAT specialist",
        system_prompt=(
            "You are a senior VAT specialist in the indirect tax practice of the firm. You answer questions "
            "from the firm's staff about EU VAT: place of supply, the reverse charge, intra-Community supplies, "
            "invoice requirements and rates.\n\n"
            "Rules:\n"
            "- Base every statement on the firm's guidance passages provided to you and cite them with their "
            "number, e.g. [1]. If the passages do not cover the question, say so plainly and suggest whom to "
            "ask; never fill the gap from memory.\n"
            "- Establish the facts that decide the treatment (B2B or B2C, where each party is established, the "
            "kind of supply) and state any assumption you make.\n"
            "- Use the VAT calculator for any computation and the VAT number / IBAN validator when a number is "
            "given. Show amounts with two decimals and the currency.\n"
            "- Never give a definitive opinion for a client without review by a VAT manager: say what must be "
            "checked before advising."
        ),
        tone="precise, professional",
        audience="Tax staff and managers of the firm",
        tools=("vat-calculator", "vat-iban-validator", "business-day-deadline", "currency-calculator"),
        knowledge=("EU VAT guidance", "Firm reference"),
        former=(("vat-adviser", "VAT adviser"),),
    ),
    AgentSpec(
        name="Audit sampling assistant",
        slug="audit-sampling-assistant",
        type="audit",
        description="Helps audit teams plan and evaluate samples under ISA 530 and the firm's methodology.",
        persona_name="Audit methodology reviewer",
        system_prompt=(
            "You are the audit methodology reviewer of the firm. You help engagement teams design and "
            "evaluate audit samples under ISA 530 and the firm's methodology note on audit sampling.\n\n"
            "Rules:\n"
            "- Cite the methodology passages you rely on, e.g. [1]. Where the firm's audit software sets a "
            "sample size, it prevails: say so.\n"
            "- For a sample size, ask for (or state your assumption about) the confidence level, tolerable and "
            "expected deviation rates and the population size, then use the audit sample size tool.\n"
            "- When evaluating results, explain what a deviation means for the planned reliance on the "
            "control and what further procedures are needed.\n"
            "- Do not conclude on the audit opinion: that is the engagement partner's judgement."
        ),
        tone="methodical",
        audience="Audit seniors and managers",
        tools=("audit-sample-size", "business-day-deadline"),
        knowledge=("Audit methodology",),
    ),
    AgentSpec(
        name="Engagement letter reviewer",
        slug="engagement-letter-reviewer",
        type="advisory",
        description="Reviews draft engagement letters against the firm's quality management checklist. "
        "In review by the risk partner before going live.",
        persona_name="Risk and quality reviewer",
        system_prompt=(
            "You are a reviewer in the firm's risk and quality team. Staff paste a draft engagement letter or "
            "describe one; you check it against the firm's engagement letter checklist.\n\n"
            "Rules:\n"
            "- Go through the checklist headings in order (acceptance, parties and scope, responsibilities, "
            "reporting, fees and liability, data and technology, terms and signatures) and list what is "
            "missing or weak, citing the checklist passage for each point, e.g. [1].\n"
            "- Flag at once anything that stops work from starting: incomplete client due diligence, "
            "unconfirmed independence, or a letter that is not countersigned.\n"
            "- Do not draft legal clauses such as liability caps: refer them to the risk partner."
        ),
        tone="constructive, direct",
        audience="Engagement managers and partners",
        tools=("business-day-deadline",),
        knowledge=("Quality management",),
        active=False,
    ),
    AgentSpec(
        name="Firm helpdesk",
        slug="firm-helpdesk",
        type="general",
        description="Answers staff questions on IT, security, client data handling and filing deadlines.",
        persona_name="Helpdesk assistant",
        system_prompt=(
            "You are the firm's helpdesk assistant. You answer staff questions about IT and security, the "
            "handling of client data, expenses, and the UK and US filing and payroll calendar.\n\n"
            "Rules:\n"
            "- Answer from the firm's policies and reference notes and cite them, e.g. [1]; if they do not "
            "cover the question, say so and point to the IT self-service portal or the helpdesk phone line.\n"
            "- Use the business-day deadline tool to count business days and the currency calculator for "
            "conversions.\n"
            "- Never ask for or repeat a password or a one-time code. For a suspected security incident, tell "
            "the person to call the helpdesk immediately."
        ),
        tone="friendly, concise",
        audience="All staff",
        tools=("business-day-deadline", "currency-calculator"),
        knowledge=("Firm reference",),
        guardrails=("PII redaction", "Prompt injection", "Blocked topics", "Citations required"),
    ),
)


# --- The command --------------------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Create (idempotently) a demonstration organisation with an owner, agents of each type, personas, "
        "tools, knowledge bases with indexed documents and guardrails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", default="demo", help="The organisation's slug (default: demo).")
        parser.add_argument("--name", default="", help="The organisation's name (default: from the slug).")

    def handle(self, *args, org: str, name: str, **options):
        try:
            validate_slug(org)
        except ValidationError:
            raise CommandError(f"'{org}' is not a valid slug: use letters, digits, hyphens and underscores.")
        self.created: dict[str, int] = {}
        password = None
        try:
            with transaction.atomic():
                organization = self._organization(org, name)
                user, password = self._owner(organization)
                reviewer, reviewer_password = self._reviewer(organization, user)
                provider = self._provider(organization)
                knowledge_bases = {
                    spec.name: self._knowledge_base(organization, spec) for spec in KNOWLEDGE_BASES
                }
                guardrails = {g[0]: self._guardrail(organization, *g) for g in GUARDRAILS}
                tools = self._builtin_tools()
                for spec in AGENTS:
                    self._agent(
                        organization, (user, reviewer), provider, spec, tools, knowledge_bases, guardrails
                    )
        except ValidationError as exc:
            raise CommandError(f"The demo data could not be created: {exc}") from exc

        failed = Document.objects.filter(
            knowledge_base__organization=organization, status=DocumentStatus.FAILED
        ).values_list("title", "error")
        if failed:
            lines = "; ".join(f"{title}: {error}" for title, error in failed)
            raise CommandError(f"Some demo documents could not be processed: {lines}")

        login_file = self._write_login(organization, user, password, reviewer, reviewer_password)
        if self.created:
            summary = ", ".join(f"{kind} {count}" for kind, count in self.created.items())
            self.stdout.write(f"Seeded organisation '{organization.slug}'. Created: {summary}.")
        else:
            self.stdout.write(f"Organisation '{organization.slug}' is already seeded; nothing changed.")
        if password is not None:
            self.stdout.write(
                self.style.SUCCESS(f"Log in at /admin/ as '{user.get_username()}' with password: {password}")
            )
        if reviewer_password is not None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"The second admin, who approves activations (four eyes), is '{reviewer.get_username()}' "
                    f"with password: {reviewer_password}"
                )
            )
        if password is not None or reviewer_password is not None:
            self.stdout.write(f"(Saved to {login_file}; shown once.)")

    # --- Steps, each creating only what is missing ----------------------------------------------

    def _note(self, kind: str) -> None:
        self.created[kind] = self.created.get(kind, 0) + 1

    def _organization(self, slug: str, name: str) -> Organization:
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            default = (
                "Prisma Glow Demo Firm" if slug == "demo" else f"{slug.replace('-', ' ').title()} (demo)"
            )
            organization = organization_create(name=name or default, slug=slug, actor=None)
            self._note("organisation")
        return organization

    def _owner(self, organization: Organization):
        """The owner user: created with a password on the first run, otherwise left untouched."""
        User = get_user_model()
        default = "demo" if organization.slug == "demo" else f"{organization.slug}-owner"
        username = os.environ.get("PRISMA_GLOW_DEMO_USERNAME") or default
        user = User.objects.filter(username=username).first()
        password = None
        if user is None:
            password = os.environ.get("PRISMA_GLOW_DEMO_PASSWORD") or secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=username, email=f"{username}@example.com", password=password, is_staff=True
            )
            self._note("user")
            if os.environ.get("PRISMA_GLOW_DEMO_PASSWORD"):
                password = "(the value of PRISMA_GLOW_DEMO_PASSWORD)"
        elif not user.is_staff:
            raise CommandError(
                f"The user '{username}' exists but is not staff; choose another PRISMA_GLOW_DEMO_USERNAME."
            )
        if not Membership.objects.filter(organization=organization, user=user).exists():
            # The operator's command may make an existing login (PRISMA_GLOW_DEMO_USERNAME) owner
            # of a second demo firm.
            membership_add(
                organization=organization,
                actor=None,
                user=user,
                role=Role.OWNER,
                allow_members_elsewhere=True,
            )
            self._note("membership")
        return user, password

    def _reviewer(self, organization: Organization, owner):
        """The second admin (``<owner>-reviewer``): activating a release takes a request and another
        person's approval (four eyes), so the demo has someone to approve. Created once with a password
        (PRISMA_GLOW_DEMO_PASSWORD when set, else a generated one), otherwise left untouched."""
        User = get_user_model()
        username = f"{owner.get_username()}-reviewer"
        user = User.objects.filter(username=username).first()
        password = None
        if user is None:
            password = os.environ.get("PRISMA_GLOW_DEMO_PASSWORD") or secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=username, email=f"{username}@example.com", password=password, is_staff=True
            )
            self._note("user")
            if os.environ.get("PRISMA_GLOW_DEMO_PASSWORD"):
                password = "(the value of PRISMA_GLOW_DEMO_PASSWORD)"
        if not Membership.objects.filter(organization=organization, user=user).exists():
            membership_add(
                organization=organization,
                actor=None,
                user=user,
                role=Role.ADMIN,
                allow_members_elsewhere=True,
            )
            self._note("membership")
        return user, password

    def _provider(self, organization: Organization) -> ModelProvider:
        provider = ModelProvider.objects.filter(organization=organization, name=PROVIDER["name"]).first()
        if provider is None:
            has_default = ModelProvider.objects.filter(organization=organization, is_default=True).exists()
            provider = provider_create(
                organization=organization, actor=None, is_default=not has_default, **PROVIDER
            )
            self._note("provider")
        return provider

    def _knowledge_base(self, organization: Organization, spec: KnowledgeBaseSpec) -> KnowledgeBase:
        knowledge_base = KnowledgeBase.objects.filter(organization=organization, name=spec.name).first()
        if knowledge_base is None:
            knowledge_base = knowledge_base_create(
                organization=organization, actor=None, name=spec.name, description=spec.description
            )
            self._note("knowledge bases")
        for doc in spec.documents:
            document = Document.objects.filter(knowledge_base=knowledge_base, title=doc.title).first()
            if document is None:
                document = document_create(
                    knowledge_base=knowledge_base,
                    actor=None,
                    title=doc.title,
                    text=(DATA_DIR / doc.filename).read_text(encoding="utf-8"),
                    jurisdiction=doc.jurisdiction,
                    effective_from=doc.effective_from,
                    metadata={"reference": doc.reference} if doc.reference else {},
                )
                self._note("documents")
            if document.status != DocumentStatus.READY:
                # Index now, so the demo answers at once even before the worker has started.
                document_process(document)
        return knowledge_base

    def _guardrail(self, organization, name, kind, action, config, description) -> Guardrail:
        guardrail = Guardrail.objects.filter(organization=organization, name=name).first()
        if guardrail is None:
            guardrail = guardrail_create(
                organization=organization,
                actor=None,
                name=name,
                kind=kind,
                action=action,
                config=config,
                description=description,
            )
            self._note("guardrails")
        return guardrail

    def _builtin_tools(self) -> dict[str, Tool]:
        wanted = {slug for spec in AGENTS for slug in spec.tools}
        tools = {t.slug: t for t in Tool.objects.filter(organization__isnull=True, slug__in=wanted)}
        missing = sorted(wanted - set(tools))
        if missing:
            raise CommandError(
                f"Built-in tools missing: {', '.join(missing)}. Run 'manage.py migrate' first (it registers them)."
            )
        return tools

    def _agent(self, organization, people, provider, spec: AgentSpec, tools, knowledge_bases, guardrails):
        user, reviewer = people
        agent = Agent.objects.filter(organization=organization, slug=spec.slug).first()
        if agent is None:
            agent = self._former_agent(organization, spec)
        created = agent is None
        if created:
            agent = agent_create(
                organization=organization,
                actor=None,
                name=spec.name,
                slug=spec.slug,
                type=spec.type,
                description=spec.description,
                owner=user,
                provider=provider,
            )
            self._note("agents")
        if not Persona.objects.filter(agent=agent).exists():
            persona_create(
                agent=agent,
                actor=None,
                name=spec.persona_name,
                system_prompt=spec.system_prompt,
                tone=spec.tone,
                audience=spec.audience,
                activate=True,
            )
            self._note("personas")
        for slug in spec.tools:
            if not AgentTool.objects.filter(agent=agent, tool=tools[slug]).exists():
                assignment_create(kind=TOOL, agent=agent, tool=tools[slug], actor=None)
        for kb_name in spec.knowledge:
            kb = knowledge_bases[kb_name]
            if not AgentKnowledge.objects.filter(agent=agent, knowledge_base=kb).exists():
                assignment_create(kind=KNOWLEDGE, agent=agent, knowledge_base=kb, actor=None, top_k=4)
        for guardrail_name in spec.guardrails:
            guardrail = guardrails[guardrail_name]
            if not AgentGuardrail.objects.filter(agent=agent, guardrail=guardrail).exists():
                assignment_create(kind=GUARDRAIL, agent=agent, guardrail=guardrail, actor=None)
        if created and spec.active:
            # Only an agent created by this run is put live: a status someone changed later stays.
            # It goes live as any release does: the owner requests, the reviewer approves (recorded and
            # audited; the approval inbox shows the decision).
            release = release_create(agent=agent, actor=user, notes="Release of the demo configuration.")
            request = activation_request_create(
                agent=agent, release=release, actor=user, notes="The demo configuration, ready for clients."
            )
            activation_request_approve(request=request, actor=reviewer)

    def _former_agent(self, organization, spec: AgentSpec) -> Agent | None:
        """The agent as an earlier version of this command seeded it, renamed to the current name and slug.

        Only an agent that still has the former slug, name and the demo description is taken: one that a
        person created or edited under that name is not the demo's, and is left alone (the current demo
        agent is then created next to it).
        """
        for slug, name in spec.former:
            agent = Agent.objects.filter(
                organization=organization, slug=slug, name=name, description=spec.description
            ).first()
            if agent is not None:
                if Agent.objects.filter(organization=organization, name=spec.name).exists():
                    return None
                self._note("renamed agents")
                return agent_update(agent=agent, actor=None, name=spec.name, slug=spec.slug)
        return None

    def _write_login(
        self, organization: Organization, user, password: str | None, reviewer, reviewer_password: str | None
    ) -> Path:
        """Keep the logins where ``make run`` can print them again (owner-only file mode)."""
        name = "demo-login.txt" if organization.slug == "demo" else f"demo-login-{organization.slug}.txt"
        path = Path(settings.VAR_DIR) / name
        if password is None and reviewer_password is None and path.exists():
            return path

        def shown(secret, who):
            return (
                secret
                if secret is not None
                else f"(unchanged; reset it with: manage.py changepassword {who})"
            )

        secret = shown(password, user.get_username())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                f"Organisation: {organization.name} ({organization.slug})\n"
                f"Login:        {user.get_username()}\n"
                f"Password:     {secret}\n"
                f"Reviewer:     {reviewer.get_username()} (a second admin: approves activation requests "
                "in /admin/approvals/)\n"
                f"Password:     {shown(reviewer_password, reviewer.get_username())}\n"
            )
        path.chmod(0o600)
        return path
