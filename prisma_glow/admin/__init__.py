"""The staff UI's base, used by every app's pages: the organisation-scoped ModelAdmin (``base``),
scoping and roles (``scoping``), the HTMX helper (``htmx``), generic form fields (``forms``), generic
list filters (``filters``) and the template tags (``templatetags``).

Each app owns its pages, in its ``admin`` package: the ModelAdmins in ``<app>/admin/__init__.py``
route them (``get_urls()``), the page views and their forms are in ``<app>/admin/pages.py`` (agents,
with more pages, splits them further: ``forms``, ``executions``, ``dashboard``…), the templates in
``<app>/templates/admin/<app>/`` (``tools``, ``guardrails``, ``knowledge``…; the platform's own,
such as ``admin/base_site.html``, in ``prisma_glow/templates/``).

The twenty pages (for the browser tests; ``<id>`` is an object of the signed-in user's organisation):

 1. Dashboard ......................... /admin/
 2. Agent registry .................... /admin/agents/agent/
 3. Agent creation wizard ............. /admin/agents/agent/wizard/  (steps: /admin/agents/agent/wizard/<basics|persona|tools|knowledge|guardrails|review>/)
 4. Agent detail ...................... /admin/agents/agent/<id>/overview/
 5. Persona versions (+ diff) ......... /admin/agents/agent/<id>/personas/  (diff: ?a=<version>&b=<version>)
 6. Persona editor (live preview) ..... /admin/agents/agent/<id>/personas/new/  and  /admin/agents/agent/<id>/personas/<persona id>/edit/
 7. Tool assignments .................. /admin/agents/agent/<id>/assignments/tools/  (also …/knowledge/ and …/guardrails/)
 8. Tool registry ..................... /admin/tools/tool/
 9. Tool form ......................... /admin/tools/tool/add/  and  /admin/tools/tool/<id>/change/
10. Tool test runner .................. /admin/tools/tool/<id>/test/
11. Knowledge bases ................... /admin/knowledge/knowledgebase/
12. Knowledge base (upload, status) ... /admin/knowledge/knowledgebase/<id>/documents/
13. Document and its chunks ........... /admin/knowledge/document/<id>/change/
14. Retrieval tester .................. /admin/knowledge/knowledgebase/search/
15. Guardrails ........................ /admin/guardrails/guardrail/
16. Guardrail form and tester ......... /admin/guardrails/guardrail/<id>/change/  and  /admin/guardrails/guardrail/<id>/test/
17. Test console ....................... /admin/console/
18. Executions ........................ /admin/agents/execution/
19. Execution detail (timeline) ....... /admin/agents/execution/<id>/change/
20. Feedback and learning examples .... /admin/agents/feedback/  and  /admin/agents/learningexample/
    Model providers ................... /admin/agents/modelprovider/  (a provider: /<id>/change/ with Test connection, POST /<id>/test-connection/)
    Budgets ........................... /admin/agents/budget/  (consumption this period; also a dashboard panel)
    Tool calls awaiting approval ...... /admin/tool-approvals/  (also a section of /admin/approvals/; a tool call: /admin/tool-approvals/<id>/, approve / edit / refuse)
    Members ........................... /admin/tenancy/membership/  (a member: /<id>/change/; adding one is inviting)
    Invitations ....................... /admin/tenancy/invitation/  (invite: /add/; one: /<id>/change/ with revoke)
    Accepting an invitation ........... /invitation/<token>/  (outside /admin/: the e-mailed link)
    API keys .......................... /admin/tenancy/apikey/  (create: /add/; a key: /<id>/change/ with rotate and revoke)
    Approval inbox .................... /admin/approvals/  (activation requests: approve with a code, refuse, cancel; tool calls; also a dashboard panel and the agent detail's Activation panel)
    Organisation ...................... /admin/tenancy/organization/<id>/change/  (one-person activation: the owner, with a code)
    Audit log ......................... /admin/audit/auditevent/  and  /admin/audit/auditevent/<id>/change/
    Two-step sign-in .................. /admin/account/security/  (one's own second factor; the code step of signing in: /admin/login/code/)
    Staff guide ....................... /admin/guide/  (docs/guide.md, "Guide" in the header; its images: /admin/guide/images/<name>)

Browser notes: buttons with ``data-confirm`` (deprecate, remove an assignment, revoke a key, start the
wizard over) ask with ``window.confirm`` first — accept the dialog in a browser test. The header links
to the test console (``/admin/console/``), the approvals, the guide (``/admin/guide/``) and the API docs; users with several memberships get an
organisation ``<select name="organization">`` with a "Switch" button.

Every page loads ``prisma_glow/static/admin_ui/admin_ui.css`` and ``admin_ui.js`` and htmx from django-htmx's static
files; no inline script or style. ``tests/support/admin.py::World.pages()`` lists the same URLs for
a set of objects.
"""
