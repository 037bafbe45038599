"""OpenAI-compatible chat completions through the official ``openai`` SDK.

Works with anything that speaks ``POST {base_url}/chat/completions``: OpenAI, Azure OpenAI (its v1
endpoint, ``https://<resource>.openai.azure.com/openai/v1/``), Ollama (``http://host:11434/v1``), vLLM
and the llama.cpp server.

Timeout and retries are explicit. The SDK's own retries are switched off (``max_retries=0``) because
the SDK also retries 409 responses, any response carrying ``x-should-retry: true`` and timed-out
requests — a timed-out call retried twice would take three times the configured timeout. Here a
call is retried, up to the provider's ``max_retries``, only after a connection error (not a timeout),
HTTP 408, 429 or 5xx, with a short exponential back-off (``Retry-After`` honoured up to a few
seconds), and never past the time the execution has left. The API key is decrypted only to build the
client and never appears in a trace or an error.

Every connection goes through the platform's outbound guard (``prisma_glow.outbound``) with the
providers' allow-list (``settings.PROVIDER_ALLOWED_HOSTS``): the host is resolved and checked at each
call and the socket pinned to a checked address. Redirects are not followed (the SDK follows none
with the client given here; a 3xx is an unreachable provider). The user is told
"provider unreachable (<name>)" whatever stands behind a failed connection or a non-provider answer
(refused, disconnected, a 404 page of some other service) so that errors cannot map internal
services; the cause goes to the log. A refusal by the guard says so, since the allow-list is the
firm's own configuration. "Test connection" (``check_connection``) follows the same rule.

The stored key is sent to the provider only: any text the provider supplies (an error's message, the
excerpt of a body written to the log, a model's name) has the key replaced with ``[redacted]``
(``_redact``) before it is shown, audited or logged, since some servers echo what they received.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2
import openai

from agents.runtime.errors import ProviderError
from agents.runtime.providers.base import ConnectionCheck, ModelRequest, ModelResponse, Provider, ToolCall
from prisma_glow import outbound

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429})
AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
BACKOFF_BASE = 0.5
BACKOFF_MAX = 4.0
#: Statuses of ``GET /models`` that mean "no model list here": the test sends a one-token request.
LIST_UNSUPPORTED = frozenset({404, 405, 501})
NOT_OPENAI_COMPATIBLE = (
    "The address answered, but not as an OpenAI-compatible API: check the base URL (it usually ends in /v1)."
)
REDACTED = "[redacted]"


def _seconds(value: float) -> str:
    return f"{round(value, 1):g} s"


def _provider_answered(exc: openai.APIStatusError) -> bool:
    """Whether an error response comes from an OpenAI-compatible server: a JSON object with an
    ``error``: a string (Ollama) or an object with a ``message`` (OpenAI, Azure, vLLM, llama.cpp).
    Anything else (an HTML page, another service's JSON such as Elasticsearch's ``{"error": {"reason"…}}``,
    a redirect) is some other service at that address."""
    try:
        payload = json.loads(exc.response.content or b"")
    except (ValueError, httpx2.ResponseNotRead):
        return False
    error = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(error, str) or (isinstance(error, dict) and isinstance(error.get("message"), str))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` (supplied by the provider) with every secret the client sent replaced by ``[redacted]``;
    done before any cut, so that half a key cannot survive one."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _body_excerpt(response: httpx2.Response, secrets: tuple[str, ...]) -> str:
    try:
        return _redact(response.text, secrets)[:200]
    except httpx2.ResponseNotRead:
        return "(body not read)"


def _status_reason(exc: openai.APIStatusError, secrets: tuple[str, ...]) -> str:
    status = exc.status_code
    detail = ""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        detail = _redact(str(error.get("message", "") if isinstance(error, dict) else error), secrets)[:200]
    if status == 401:
        return "provider rejected the API key (HTTP 401)"
    if status == 403:
        return "provider refused access (HTTP 403)" + (f": {detail}" if detail else "")
    if status == 404:
        return "provider endpoint or model not found (HTTP 404)" + (f": {detail}" if detail else "")
    if status == 429:
        return "provider rate limit reached (HTTP 429)"
    if status >= 500:
        return f"provider error (HTTP {status})"
    return f"provider rejected the request (HTTP {status})" + (f": {detail}" if detail else "")


class _DeadlineStream(httpx2.SyncByteStream):
    def __init__(self, stream, deadline: float):
        self._stream = stream
        self._deadline = deadline

    def __iter__(self):
        for part in self._stream:
            if time.monotonic() > self._deadline:
                raise httpx2.ReadTimeout("the response took longer than the provider's timeout")
            yield part

    def close(self) -> None:
        self._stream.close()


class _DeadlineTransport(httpx2.BaseTransport):
    """Fails a response body still arriving after ``deadline`` (``time.monotonic()``) with a timeout."""

    def __init__(self, transport: httpx2.BaseTransport, deadline: float):
        self._transport = transport
        self._deadline = deadline

    def handle_request(self, request):
        response = self._transport.handle_request(request)
        response.stream = _DeadlineStream(response.stream, self._deadline)
        return response

    def close(self) -> None:
        self._transport.close()


class OpenAICompatibleProvider(Provider):
    """One provider row (base URL, encrypted key, timeout, retries) behind the SDK."""

    kind = "openai_compatible"
    label = "OpenAI-compatible"

    def __init__(self, provider_row, *, http_client: httpx2.Client | None = None):
        self.row = provider_row
        self.base_url = provider_row.base_url.rstrip("/")
        self.max_retries = int(provider_row.max_retries)
        self._http_client = http_client

    def _client(self, timeout: float) -> openai.OpenAI:
        """An SDK client whose calls end within ``timeout`` seconds overall: httpx's read timeout
        applies to each read, so a server trickling its answer would otherwise outlast it."""
        headers = {}
        host = (urlsplit(self.base_url).hostname or "").lower()
        if self.row.api_key and host.endswith(AZURE_HOSTS):
            # Azure OpenAI's v1 endpoint also reads the key from its own header.
            headers["api-key"] = self.row.api_key
        return openai.OpenAI(
            default_headers=headers or None,
            # Local servers (Ollama, llama.cpp) need no key, but the SDK insists on one.
            api_key=self.row.api_key or "no-key",
            base_url=self.base_url or None,  # blank: the SDK default (OpenAI)
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            max_retries=0,
            http_client=self._http_client
            or httpx2.Client(
                trust_env=False,
                follow_redirects=False,
                transport=_DeadlineTransport(
                    outbound.GuardedTransport(outbound.provider_policy()), time.monotonic() + timeout
                ),
            ),
        )

    def _body(self, request: ModelRequest, stream: bool) -> dict:
        body: dict = {"model": request.model, "messages": request.messages}
        if request.tools:
            body["tools"] = request.tools
        if request.temperature is not None:
            body["temperature"] = request.temperature
        body["max_tokens"] = request.max_tokens  # always set (ModelRequest fills in the default)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    # --- calls with retries ------------------------------------------------------------------------

    def _create(self, request: ModelRequest, stream: bool):
        """The SDK call, retried per the policy above; returns (result, attempts, client)."""
        deadline = time.monotonic() + request.timeout
        attempt = 0
        # Whether an attempt may have reached the model (so may be billed): budgets count nothing for
        # a call only when no attempt did (``ProviderError.processed``).
        reached = False
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderError(
                    f"provider timed out after {_seconds(request.timeout)}", processed=reached
                )
            client = self._client(remaining)
            try:
                return client.chat.completions.create(**self._body(request, stream)), attempt, client
            except openai.APITimeoutError as exc:
                client.close()
                # A connection that timed out before it was made sent nothing.
                connected = not isinstance(exc.__cause__, httpx2.ConnectTimeout)
                raise ProviderError(
                    f"provider timed out after {_seconds(request.timeout)}", processed=reached or connected
                )
            except outbound.DestinationRefused as exc:
                # Raised by the guard before any connection: not retried, and the same whatever
                # listens (or not) at the refused address.
                client.close()
                self._log_unreachable(f"refused by the outbound guard: {exc}")
                raise ProviderError(
                    f"{self._unreachable()}: its address is not allowed by the outbound policy",
                    processed=reached,
                )
            except openai.APIConnectionError as exc:
                client.close()
                self._log_unreachable(f"connection failed: {exc.__cause__ or exc}")
                # Refused or unresolvable: nothing was sent. Broken off later: it may have been.
                reached = reached or not isinstance(exc.__cause__, httpx2.ConnectError)
                error = ProviderError(self._unreachable(), retryable=True)
                retry_after = None
            except openai.APIStatusError as exc:
                client.close()
                retryable = exc.status_code in RETRY_STATUSES or exc.status_code >= 500
                if _provider_answered(exc):
                    error = ProviderError(
                        _status_reason(exc, self._secrets()), status_code=exc.status_code, retryable=retryable
                    )
                else:
                    # Neither the status nor the body reaches the user: they would tell services apart.
                    self._log_not_a_provider(exc)
                    error = ProviderError(self._unreachable(), retryable=retryable)
                retry_after = _retry_after(exc.response)
            except openai.APIResponseValidationError:
                client.close()
                raise ProviderError("provider returned a malformed response (not a chat completion)")
            except (ValueError, openai.OpenAIError) as exc:
                client.close()
                raise ProviderError(f"provider returned a malformed response ({exc.__class__.__name__})")
            # An HTTP error status: the provider refused or failed the call, and bills none.
            error.processed = reached
            if not error.retryable or attempt > self.max_retries:
                # The number of attempts tells a provider's 5xx from its 4xx; for an unreachable
                # address it would tell a closed port (retried) from another service (not retried).
                if attempt > 1 and error.reason != self._unreachable():
                    error.reason += f", after {attempt} attempts"
                raise error
            pause = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
            if retry_after is not None:
                pause = min(BACKOFF_MAX, max(pause, retry_after))
            if time.monotonic() + pause >= deadline:
                raise error
            time.sleep(pause)

    def _unreachable(self) -> str:
        return f"provider unreachable ({self.row.name})"

    def _secrets(self) -> tuple[str, ...]:
        """What the client sends that is secret: the key, as ``Authorization: Bearer`` and, for
        Azure, as the ``api-key`` header (the same value)."""
        return (self.row.api_key,) if self.row.api_key else ()

    def _log_unreachable(self, cause: str) -> None:
        logger.warning(
            "Provider %s (id %s, organisation %s) unreachable at %s: %s",
            self.row.name,
            self.row.pk,
            self.row.organization_id,
            self.base_url,
            _redact(cause, self._secrets()),
        )

    def _log_not_a_provider(self, exc: openai.APIStatusError) -> None:
        self._log_unreachable(
            f"HTTP {exc.status_code} that is not an OpenAI-compatible answer: "
            f"{_body_excerpt(exc.response, self._secrets())!r}"
        )

    # --- "Test connection" -------------------------------------------------------------------------

    def check_connection(self) -> ConnectionCheck:
        """List the models (``GET {base_url}/models``) with the client, outbound guard and timeout of
        a run; where the server has no model list (404, 405, 501), send a one-token chat completion
        to the default model through ``complete`` instead. The error, if any, says what to fix, and
        like a run's never tells a closed port, an unknown name and another service's answer apart."""
        timeout = float(self.row.timeout_seconds)
        started = time.monotonic()
        client = self._client(timeout)
        try:
            raw = client.models.with_raw_response.list()
            models = _model_ids(json.loads(raw.http_response.content))
        except openai.APIStatusError as exc:
            if exc.status_code not in LIST_UNSUPPORTED:
                return self._failed(started, "models", self._check_status_error(exc))
            if not self.row.default_model and not _provider_answered(exc):
                # Without a model to ask, another service's 404 would read differently from a closed port.
                self._log_not_a_provider(exc)
                return self._failed(started, "models", self._check_unreachable())
        except (openai.APITimeoutError, openai.APIConnectionError, outbound.OutboundError) as exc:
            return self._failed(started, "models", self._check_connection_error(exc, timeout))
        except (openai.OpenAIError, ValueError) as exc:
            self._log_unreachable(f"the model list was not an OpenAI-compatible answer ({exc!r})")
            return self._failed(started, "models", NOT_OPENAI_COMPATIBLE)
        else:
            if models is None:
                self._log_unreachable(
                    "the model list was not an OpenAI-compatible answer: "
                    f"{_body_excerpt(raw.http_response, self._secrets())!r}"
                )
                return self._failed(started, "models", NOT_OPENAI_COMPATIBLE)
            models = sorted({_redact(model, self._secrets()) for model in models if model})
            return ConnectionCheck(ok=True, method="models", latency_ms=_elapsed_ms(started), models=models)
        finally:
            client.close()
        return self._one_token(started, timeout)

    def _one_token(self, started: float, timeout: float) -> ConnectionCheck:
        if not self.row.default_model:
            return self._failed(
                started,
                "completion",
                "The provider does not list its models: set a default model, so that the test can "
                "send it a one-token request instead.",
            )
        remaining = max(0.001, timeout - (time.monotonic() - started))
        request = ModelRequest(
            messages=[{"role": "user", "content": "Reply with the word OK."}],
            model=self.row.default_model,
            max_tokens=1,
            timeout=remaining,
        )
        try:
            response = self.complete(request)
        except ProviderError as exc:
            if exc.reason == self._unreachable():
                # Whatever answered the model list, neither answer was a provider's: the runs' rule
                # (what it was is logged, not shown).
                return self._failed(started, "completion", self._check_unreachable())
            return self._failed(started, "completion", f"The one-token request failed: {exc.reason}.")
        return ConnectionCheck(
            ok=True,
            method="completion",
            latency_ms=_elapsed_ms(started),
            models=[_redact(response.model or self.row.default_model, self._secrets())],
            answer=_redact(response.content, self._secrets()),
        )

    @staticmethod
    def _failed(started: float, method: str, error: str) -> ConnectionCheck:
        return ConnectionCheck(ok=False, method=method, latency_ms=_elapsed_ms(started), error=error)

    def _check_unreachable(self) -> str:
        """The one message for a refused connection, an unknown name, a hang-up and an answer that
        is not a provider's: the runs' ``provider unreachable (<name>)`` and where to look."""
        return (
            f"{self._unreachable()}: no OpenAI-compatible answer from the base URL. Check its host, "
            "port and path (it usually ends in /v1) and that the server is running; the cause is in "
            "the server log, not shown here."
        )

    def _check_status_error(self, exc: openai.APIStatusError) -> str:
        status = exc.status_code
        if not _provider_answered(exc):
            # As for runs: neither the status nor the body of some other service is shown, even a 401.
            self._log_not_a_provider(exc)
            return self._check_unreachable()
        if status == 401:
            return (
                "The provider refused the API key (HTTP 401): type the key again, or check that it "
                "has not been revoked."
            )
        if status == 403:
            return (
                "The provider refused access (HTTP 403): the key may lack the permission to list "
                "models, or the account is restricted."
            )
        if status == 429:
            return "The provider's rate limit is reached (HTTP 429): try again in a minute."
        if status >= 500:
            return f"The provider failed (HTTP {status}): try again later, or ask its operator."
        return f"The provider refused the request: {_status_reason(exc, self._secrets())}."

    def _check_connection_error(self, exc: Exception, timeout: float) -> str:
        refused = _cause(exc, outbound.DestinationRefused)
        if refused is not None:
            # The firm's own allow-list: its reason (the address's kind, the setting) is theirs to see.
            self._log_unreachable(f"refused by the outbound guard: {refused}")
            return f"Blocked by the outbound policy: {refused}"
        lookup = _cause(exc, outbound.LookupFailed)
        if isinstance(exc, openai.APITimeoutError) or (lookup is not None and lookup.timed_out):
            # The runs' "provider timed out after N s" (a slow lookup is a connect timeout there too).
            self._log_unreachable(f"timed out: {exc.__cause__ or exc}")
            return (
                f"The provider timed out after {_seconds(timeout)} (its timeout): check that the "
                "server is running and reachable, or raise the timeout."
            )
        # Refused, unresolvable, broken off: one message, as for runs.
        self._log_unreachable(f"connection failed: {lookup or exc.__cause__ or exc}")
        return self._check_unreachable()

    def stream(self, request: ModelRequest, *, stream: bool = True) -> Iterator[str | ModelResponse]:
        started = time.monotonic()
        result, attempts, client = self._create(request, stream)
        try:
            if not stream:
                response = _from_completion(result)
            else:
                response = yield from self._consume(result, request, started)
        finally:
            client.close()
        response.attempts = attempts
        yield response

    def _consume(self, chunks, request: ModelRequest, started: float):
        content: list[str] = []
        calls: dict[int, dict] = {}
        usage = None
        finish = ""
        model = request.model
        try:
            for chunk in chunks:
                if time.monotonic() - started > request.timeout:
                    raise ProviderError(f"provider timed out after {_seconds(request.timeout)}")
                model = getattr(chunk, "model", None) or model
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is None:
                        continue
                    if delta.content:
                        content.append(delta.content)
                        yield delta.content
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(_slot(call, calls), {"id": "", "name": "", "arguments": ""})
                        if call.id:
                            slot["id"] = call.id
                        if call.function is not None:
                            slot["name"] += call.function.name or ""
                            slot["arguments"] += _text(call.function.arguments)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except ProviderError:
            raise
        except openai.APITimeoutError:
            raise ProviderError(f"provider timed out after {_seconds(request.timeout)}")
        except httpx2.TimeoutException as exc:
            raise ProviderError(f"provider timed out after {_seconds(request.timeout)}") from exc
        except (httpx2.HTTPError, openai.APIError) as exc:
            raise ProviderError(f"provider stream broke off ({exc.__class__.__name__})")
        except (ValueError, TypeError, AttributeError) as exc:
            raise ProviderError(f"provider sent a malformed stream ({exc.__class__.__name__})")
        tool_calls = [
            ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["arguments"])
            for index, slot in sorted(calls.items())
        ]
        return ModelResponse(
            content="".join(content),
            tool_calls=tool_calls,
            tokens_in=getattr(usage, "prompt_tokens", None) if usage else None,
            tokens_out=getattr(usage, "completion_tokens", None) if usage else None,
            finish_reason=finish,
            model=model or "",
        )


def _slot(call, calls: dict) -> int:
    """Which tool call a streamed fragment belongs to. Servers that omit ``index`` start a new call
    with a new ``id`` and continue the last one without."""
    if call.index is not None:
        return int(call.index)
    if not calls:
        return 0
    last = max(calls)
    if call.id and calls[last]["id"] and call.id != calls[last]["id"]:
        return last + 1
    return last


def _text(arguments) -> str:
    """Tool-call arguments as JSON text; some servers send an object instead of a string."""
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _model_ids(payload) -> list[str] | None:
    """The model names of an OpenAI-compatible ``GET /models`` answer (``{"data": [{"id": …}, …]}``;
    an empty list is a real provider's possible answer), or None for anything else (``{"data": "abc"}``,
    ``{"data": [1]}``, another service's JSON)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return None
    if not all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in data):
        return None
    return [item["id"] for item in data]


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _cause(exc: BaseException, kind: type[BaseException]):
    """``exc`` or the first exception of ``kind`` among its causes (the SDK and httpx wrap the guard's)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _retry_after(response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def _from_completion(completion) -> ModelResponse:
    """A ``ModelResponse`` from a non-streamed completion, checking its shape."""
    if isinstance(completion, str) or not getattr(completion, "choices", None):
        raise ProviderError("provider returned a malformed response (no choices)")
    try:
        choice = completion.choices[0]
        message = choice.message
        calls = [
            ToolCall(
                id=call.id or f"call_{i}", name=call.function.name, arguments=_text(call.function.arguments)
            )
            for i, call in enumerate(message.tool_calls or [])
        ]
        usage = completion.usage
        return ModelResponse(
            content=message.content or "",
            tool_calls=calls,
            tokens_in=usage.prompt_tokens if usage is not None else None,
            tokens_out=usage.completion_tokens if usage is not None else None,
            finish_reason=choice.finish_reason or "",
            model=completion.model or "",
        )
    except (AttributeError, TypeError, IndexError) as exc:
        raise ProviderError(f"provider returned a malformed response ({exc.__class__.__name__})")


__all__ = ["OpenAICompatibleProvider"]
