"""The backend protocol shared by every model family (``Backend``, ``Request``, ``Response``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from medsbench.errors import MedsbenchError
from medsbench.prompts import Prompt, render_messages


@dataclass
class Request:
    """One generation request: chat ``messages`` or a ready ``prompt`` string (already rendered)."""

    id: str
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_new_tokens: int = 200
    stop: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Response:
    id: str
    text: str
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    seconds: float = 0.0
    error: str | None = None
    finish_reason: str | None = None  # "stop" (end of turn or a stop string), "length" (hit max_new_tokens)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first occurrence of any stop string (the stop string itself dropped, as
    OpenAI-compatible servers do); the flag says whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@dataclass
class LoglikRequest:
    """Score each of ``continuations`` after ``context`` (``--scoring loglik``): the context is the
    rendered prompt plus the task's answer lead-in, each continuation one option's scored string."""

    id: str
    context: str
    continuations: tuple[str, ...]


@dataclass
class LoglikResponse:
    """``logprobs[i]``: log p(continuation i | context), summed over its tokens; ``tokens[i]`` its
    token count; ``greedy[i]``: every continuation token is the model's top token (None: not known)."""

    id: str
    logprobs: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    greedy: list[bool] | None = None
    prompt_tokens: int | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A prompt as the backend will send it: ``text`` is what we record (and hash for the cache)."""

    text: str
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None


@runtime_checkable
class Backend(Protocol):
    name: str

    def identity(self) -> dict[str, Any]:
        """What determines outputs besides prompt and generation config (model hash, dtype, ...)."""

    def render(self, prompt: Prompt) -> Rendered: ...

    def count_tokens(self, prompt: Prompt) -> int | None: ...

    @property
    def context_length(self) -> int | None: ...

    def generate(self, requests: list[Request]) -> list[Response]: ...

    def iter_generate(self, requests: Sequence[Request]) -> Iterator[Response]: ...

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]: ...

    def close(self) -> None: ...


class BaseBackend:
    """Defaults: chat messages rendered remotely, no token counting, chunked streaming."""

    name = "base"
    chunk_size = 8

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name}

    def render(self, prompt: Prompt) -> Rendered:
        return Rendered(render_messages(prompt), messages=prompt.messages())

    def count_tokens(self, prompt: Prompt) -> int | None:
        return None

    @property
    def context_length(self) -> int | None:
        return None

    def generate(self, requests: list[Request]) -> list[Response]:  # pragma: no cover - abstract
        raise NotImplementedError

    def iter_generate(self, requests: Sequence[Request]) -> Iterator[Response]:
        """Responses as they finish, so callers can persist them one chunk at a time."""
        for start in range(0, len(requests), self.chunk_size):
            yield from self.generate(list(requests[start : start + self.chunk_size]))

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[LoglikResponse]:
        """Log-likelihoods of continuations (``--scoring loglik``), yielded as they finish; backends
        that cannot compute them refuse (see :func:`can_score_loglik`)."""
        raise MedsbenchError(f"the {self.name} backend cannot score log-likelihoods: use --scoring generate "
                             "(loglik needs the hf, vllm or default backend, or an openai server with /v1/completions)")

    def close(self) -> None:
        return None


def can_score_loglik(backend: object) -> bool:
    """True when ``backend`` implements :meth:`BaseBackend.loglikelihood` (a remote server may still
    refuse at its first request, naming what it lacks)."""
    method = getattr(type(backend), "loglikelihood", None)
    return method is not None and method is not BaseBackend.loglikelihood
