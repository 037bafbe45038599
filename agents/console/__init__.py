"""The admin's live test console (HTMX): pick an agent, send a message, watch the trace."""
