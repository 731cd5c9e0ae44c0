"""Any OpenAI-compatible chat API (OpenAI, vLLM/llama.cpp servers, gateways).

Uses the official async client with its own retries switched off: we retry
429, 5xx, timeouts, connection errors and malformed bodies with exponential
backoff plus full jitter, honour ``Retry-After``, and fail an item (recorded in
its ``error``) only after ``max_attempts``. The key comes from the environment
only and is never logged or put in the run identity; URLs in identities, errors and
logs are redacted (:func:`medsbench.redact.redact_url`).

Time limits: ``connect_timeout`` bounds opening a connection; ``timeout`` bounds one whole
request, from sending it to the last byte of the answer (the longest one generation may take).

Circuit breaker: a server that gives no answer at all is taken to be down after
``max_connection_errors`` consecutive failures to connect (connection refused, host
unreachable, DNS failure, connect timeout), or once ``max_timeouts`` different requests got no
answer within ``timeout``, with no answer of any kind in between (one long request timing out
again and again on its retries fails alone, after ``max_attempts``). Then every request in
flight is abandoned, every remaining request of this backend fails at once with one clear
error, and no further request is sent. Any HTTP answer (429 and 5xx included) proves the server
is there: it resets both counts, and the request keeps its retry/backoff.

A failed item's error keeps what the server said: the HTTP status, the error code (or type) and
the server's message, redacted and cut to :data:`MESSAGE_CHARS` characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

from medsbench.errors import MedsbenchError, require
from medsbench.models.base import BaseBackend, LoglikRequest, LoglikResponse, Request, Response
from medsbench.models.spec import OpenAIOptions, options_with
from medsbench.redact import redact_text, redact_url
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    if value is None:
        ms = headers.get("retry-after-ms")
        try:
            return float(ms) / 1000 if ms is not None else None
        except ValueError:
            return None
    try:
        return max(0.0, float(value))
    except ValueError:

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


#: Exception class names (httpx/httpcore and their successors, and the OS) that mean "could not connect at all".
_CONNECT_FAILURES = {"ConnectError", "ConnectTimeout", "ConnectionRefusedError", "gaierror"}
_CONNECT_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH}


def is_connect_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a failure to establish a connection, not a server answer."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if type(cur).__name__ in _CONNECT_FAILURES:
            return True
        if isinstance(cur, OSError) and cur.errno in _CONNECT_ERRNOS:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


MESSAGE_CHARS = 300  # the longest server message kept in an item's error


def _one_line(text: str) -> str:
    return " ".join(text.split())


def status_error(exc: Any) -> str:
    """``HTTP 400 (context_length_exceeded): This model's maximum context length is ...``: the status,
    the server's error code (else its error type) and its message (else the raw body), redacted and
    cut to :data:`MESSAGE_CHARS` characters (redaction first, so no cut secret escapes it)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    code = getattr(exc, "code", None)
    label = code if code and str(code) != str(status) else getattr(exc, "type", None)
    message = body.get("message") if isinstance(body, dict) else body
    if not isinstance(message, str) or not message.strip():
        response = getattr(exc, "response", None)
        try:
            message = response.text if response is not None else ""
        except Exception:  # a body that cannot be read or decoded
            message = ""
    head = f"HTTP {status}" + (f" ({_one_line(str(label))})" if label else "")
    message = redact_text(_one_line(message or ""))
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1].rstrip() + "…"
    return redact_text(f"{head}: {message}" if message else head)


class _NoAnswer(Exception):
    """A request that got no answer within the backend's ``timeout``."""


class _Tripped(Exception):
    """The breaker tripped while this request was in flight: it was abandoned."""


class OpenAIBackend(BaseBackend):
    name = "openai"

    def __init__(self, model: str, options: OpenAIOptions | None = None, **overrides: Any):
        """``options``: the spec's typed options (:class:`medsbench.models.spec.OpenAIOptions`); ``overrides``:
        any of its fields by name."""
        o = options_with(OpenAIOptions, options, overrides)
        base_url, api_key_env = o.base_url, o.api_key_env
        require("openai", "openai", "the openai backend")
        if not model:
            raise MedsbenchError("openai backend needs a model name: openai:MODEL[,base_url=...]")
        key = os.environ.get(api_key_env)
        if not key:
            raise MedsbenchError(
                f"openai backend needs an API key in ${api_key_env} (set it, or name another variable with --api-key-env)"
            )
        self._key = key
        self.model = model
        self.base_url = base_url
        self.concurrency = max(1, int(o.concurrency))
        self.max_attempts = max(1, int(o.max_attempts))
        self.timeout = float(o.timeout)
        self.connect_timeout = float(o.connect_timeout)
        self.backoff_base = float(o.backoff_base)
        self.backoff_cap = float(o.backoff_cap)
        self.temperature = float(o.temperature)
        self.max_connection_errors = max(1, int(o.max_connection_errors))
        self.max_timeouts = max(1, int(o.max_timeouts))
        self.chunk_size = self.concurrency * 4
        self.calls = 0  # HTTP attempts, for tests
        self._connect_failures = 0  # consecutive, across all requests, with no answer in between
        self._timeouts = 0  # consecutive, likewise
        self._timed_out: set[str] = set()  # the requests these timeouts came from
        self.unreachable: str | None = None  # the breaker's error once it tripped (then nothing is sent)
        self._tripped = asyncio.Event()  # replaced per generate() call (one event loop each)

    @property
    def shown_url(self) -> str:
        """The server URL as it may be shown (credentials removed)."""
        return redact_url(self.base_url) if self.base_url else "the OpenAI API"

    def __repr__(self) -> str:  # never show the key or URL credentials
        return f"OpenAIBackend(model={self.model!r}, base_url={self.shown_url!r})"

    def identity(self) -> dict[str, Any]:
        """No weights fingerprint is possible: the server owns the weights (``fingerprint_kind: remote``)."""
        return {
            "backend": "openai",
            "model": self.model,
            "base_url": redact_url(self.base_url) if self.base_url else None,
            "fingerprint_kind": "remote",
            "temperature": self.temperature,
        }

    def generate(self, requests: list[Request]) -> list[Response]:
        return asyncio.run(self._generate_all(requests))

    async def _generate_all(self, requests: list[Request]) -> list[Response]:
        import openai

        if self.unreachable:
            return [self._failed(r, 0.0, self.unreachable) for r in requests]
        # The whole-request limit is ours (_call); the client bounds only opening a connection.
        client = openai.AsyncOpenAI(
            api_key=self._key, base_url=self.base_url, max_retries=0,
            timeout=openai.Timeout(None, connect=self.connect_timeout),
        )
        sem = asyncio.Semaphore(self.concurrency)
        self._tripped = asyncio.Event()
        try:
            return list(await asyncio.gather(*(self._one(client, sem, r) for r in requests)))
        finally:
            await client.close()

    @staticmethod
    def _failed(req: Request, t0: float, error: str) -> Response:
        return Response(req.id, "", None, None, time.perf_counter() - t0 if t0 else 0.0, redact_text(error))

    def _answered(self) -> None:
        """The server answered (anything at all): it is there."""
        self._connect_failures = 0
        self._timeouts = 0
        self._timed_out.clear()

    def _trip(self, error: str) -> None:
        if not self.unreachable:
            self.unreachable = error
            log.error("%s", error)
            self._tripped.set()

    def _connect_failed(self) -> None:
        self._connect_failures += 1
        if self._connect_failures >= self.max_connection_errors:
            self._trip(
                f"server unreachable at {self.shown_url}: {self._connect_failures} consecutive connection errors;"
                " no further requests sent"
            )

    def _no_answer(self, req: Request) -> None:
        self._timeouts += 1
        self._timed_out.add(req.id)
        if len(self._timed_out) >= self.max_timeouts:
            self._trip(
                f"no answer from {self.shown_url} within {self.timeout:g} s ({self._timeouts} consecutive timeouts);"
                " no further requests sent (if the server is only slow, raise timeout=)"
            )

    async def _pause(self, seconds: float) -> None:
        """Back off, but wake at once when the breaker trips."""
        try:
            await asyncio.wait_for(self._tripped.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _call(self, coro: Any) -> Any:
        """Await one API call for at most ``timeout`` seconds; abandon it if the breaker trips meanwhile."""
        call = asyncio.ensure_future(coro)
        trip = asyncio.ensure_future(self._tripped.wait())
        try:
            done, _ = await asyncio.wait({call, trip}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            trip.cancel()
            if not call.done():
                call.cancel()
                with contextlib.suppress(BaseException):
                    await call
        if call in done:
            return call.result()
        raise _Tripped() if self.unreachable else _NoAnswer()

    def _delay(self, attempt: int, exc: Exception) -> float:
        hinted = _retry_after(exc)
        if hinted is not None:
            return min(hinted, self.backoff_cap)
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    async def _attempt(self, client: Any, req: Request, t0: float) -> Response:
        """One request; raises what should be retried (after noting it for the breaker), returns the rest."""
        import openai

        messages = req.messages or [{"role": "user", "content": req.prompt or ""}]
        self.calls += 1
        try:
            resp = await self._call(
                client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    max_tokens=req.max_new_tokens,
                    temperature=self.temperature,
                    **({"stop": list(req.stop)} if req.stop else {}),
                )
            )
        except openai.APIStatusError as exc:
            self._answered()
            if exc.status_code in RETRY_STATUS:
                raise
            return self._failed(req, t0, status_error(exc))
        except _NoAnswer:
            self._no_answer(req)
            raise
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            if is_connect_failure(exc):
                self._connect_failed()
            else:  # a dropped connection: the server was there
                self._answered()
            raise
        except openai.APIResponseValidationError:
            self._answered()
            raise
        self._answered()
        choice = resp.choices[0]  # malformed bodies raise here: often transient behind gateways
        text = choice.message.content
        if text is None:
            raise ValueError("response has no message content")
        usage = getattr(resp, "usage", None)
        return Response(
            req.id,
            text,
            getattr(usage, "prompt_tokens", None),
            getattr(usage, "completion_tokens", None),
            time.perf_counter() - t0,
            None,
            choice.finish_reason if choice.finish_reason in ("stop", "length") else None,
        )

    def _describe(self, exc: Exception) -> str:
        """What went wrong with one attempt, for the item's error."""
        import openai

        if isinstance(exc, openai.APIStatusError):
            return status_error(exc)
        if isinstance(exc, _NoAnswer):
            return f"no answer within {self.timeout:g} s"
        if isinstance(exc, openai.APIResponseValidationError):
            return f"malformed response: {type(exc).__name__}"
        if isinstance(exc, openai.APIConnectionError):
            return type(exc).__name__
        return f"malformed response: {type(exc).__name__}"

    async def _one(self, client: Any, sem: asyncio.Semaphore, req: Request) -> Response:
        import openai

        retried = (openai.APIStatusError, openai.APIConnectionError, openai.APIResponseValidationError, _NoAnswer,
                   ValueError, TypeError, AttributeError, IndexError, KeyError)  # fmt: skip
        last = ""
        t0 = time.perf_counter()
        for attempt in range(self.max_attempts):
            async with sem:
                if self.unreachable:
                    return self._failed(req, t0, self.unreachable)
                try:
                    return await self._attempt(client, req, t0)
                except _Tripped:
                    return self._failed(req, t0, self.unreachable or "abandoned")
                except retried as exc:
                    if self.unreachable:
                        return self._failed(req, t0, self.unreachable)
                    last, err = self._describe(exc), exc
            if attempt + 1 < self.max_attempts:
                await self._pause(self._delay(attempt, err))
                if self.unreachable:
                    return self._failed(req, t0, self.unreachable)
        return self._failed(req, t0, f"failed after {self.max_attempts} attempts: {last}")

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]:
        """Continuations' log-likelihoods from ``/v1/completions`` with ``echo=True, logprobs=1`` (the prompt's
        token log-probabilities, as vLLM's OpenAI server returns them; one generated token is asked and
        ignored). The server tokenises ``context + continuation``; the continuation's tokens are those
        starting at or after the context's end (its trailing white space moved to the continuation, as
        lm-evaluation-harness splits). A chat-only endpoint, or a server that returns no prompt
        log-probabilities, is refused in one line naming what is missing; a token spanning the split fails
        that item."""
        yield from asyncio.run(self._loglik_all(list(requests)))

    async def _loglik_all(self, requests: list[LoglikRequest]) -> list[LoglikResponse]:
        import openai

        client = openai.AsyncOpenAI(api_key=self._key, base_url=self.base_url, max_retries=0, timeout=self.timeout)
        sem = asyncio.Semaphore(self.concurrency)
        try:
            return list(await asyncio.gather(*(self._loglik_one(client, sem, r) for r in requests)))
        finally:
            await client.close()

    async def _loglik_one(self, client: Any, sem: asyncio.Semaphore, req: LoglikRequest) -> LoglikResponse:
        t0 = time.perf_counter()
        split = len(req.context.rstrip())
        scores = []
        for cont in req.continuations:
            echo = await self._echo(client, sem, req.context + cont)
            if isinstance(echo, str):
                return LoglikResponse(req.id, seconds=time.perf_counter() - t0, error=redact_text(echo))
            scored = _echo_score(echo, split, len(req.context + cont))
            if isinstance(scored, str):
                return LoglikResponse(req.id, seconds=time.perf_counter() - t0, error=scored)
            scores.append(scored)
        return LoglikResponse(req.id, [s[0] for s in scores], [s[1] for s in scores], [s[2] for s in scores],
                              scores[0][3] if scores else None, time.perf_counter() - t0)

    async def _echo(self, client: Any, sem: asyncio.Semaphore, text: str) -> Any:
        """The completion's ``logprobs`` of ``text`` echoed back (retried like generations), or an error string."""
        import openai

        last = ""
        for attempt in range(self.max_attempts):
            async with sem:
                self.calls += 1
                try:
                    resp = await client.completions.create(model=self.model, prompt=text, max_tokens=1, echo=True,
                                                           logprobs=1, temperature=0.0)
                    logprobs = resp.choices[0].logprobs
                    if logprobs is None or not logprobs.token_logprobs or logprobs.text_offset is None:
                        raise MedsbenchError(
                            f"--scoring loglik: the server at {self.shown_url} returned no prompt log-probabilities "
                            "for /v1/completions with echo=True, logprobs=1 (vLLM's OpenAI server returns them)")
                    return logprobs
                except openai.APIStatusError as exc:
                    if exc.status_code in (404, 405, 501):
                        raise MedsbenchError(
                            f"--scoring loglik: the server at {self.shown_url} has no /v1/completions endpoint for "
                            f"model {self.model!r} (HTTP {exc.status_code}): likelihood scoring needs completions "
                            "with echo=True and prompt logprobs, which chat-only APIs do not offer") from None
                    last = f"HTTP {exc.status_code}: {type(exc).__name__}"
                    if exc.status_code not in RETRY_STATUS:
                        return last
                    err: Exception = exc
                except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                    last, err = type(exc).__name__, exc
            if attempt + 1 < self.max_attempts:
                await asyncio.sleep(self._delay(attempt, err))
        return f"failed after {self.max_attempts} attempts: {last}"


def _echo_score(logprobs: Any, split: int, end: int) -> tuple[float, int, bool, int] | str:
    """(summed log-probability, token count, every token the top one, context tokens) of the echoed tokens
    in ``[split, end)`` of the prompt, or why they cannot be read (a token spans the split)."""
    offsets, values = list(logprobs.text_offset), list(logprobs.token_logprobs)
    top = list(logprobs.top_logprobs or [None] * len(values))
    total, count, greedy, context = 0.0, 0, True, 0
    for i, (start, value) in enumerate(zip(offsets, values)):
        stop = offsets[i + 1] if i + 1 < len(offsets) else end + 1
        if start >= end:
            break  # the generated token after the prompt
        if start < split:
            context += 1
            if stop > split and start < split:
                return "the server's tokenizer merges the end of the context with the option (a token spans both)"
            continue
        if value is None:
            return "the server returned no log-probability for an option token"
        total += float(value)
        count += 1
        best = max(top[i].values()) if top[i] else None
        greedy = greedy and (best is None or float(value) >= float(best) - 1e-6)
    if count == 0:
        return "the option has no tokens of its own in the server's tokenization"
    return total, count, greedy, context
