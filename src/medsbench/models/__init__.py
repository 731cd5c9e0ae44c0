"""Model backends behind one protocol: ``load_backend(spec).generate(requests) -> responses``.

Specs are parsed by :class:`medsbench.models.spec.ModelSpec` (the one parser): ``default`` |
``hf:PATH_OR_NAME[,dtype=..,device=..,batch_size=..]`` | ``vllm:PATH_OR_NAME[,tensor_parallel_size=..]`` |
``openai:MODEL[,base_url=..,concurrency=..]``; each kind's options are typed (``HFOptions``,
``OpenAIOptions``, ``VLLMOptions``). Heavy libraries load only when a backend is created.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.models.base import Backend, BaseBackend, Rendered, Request, Response
from medsbench.models.spec import (
    IGNORED_FLAGS,
    KINDS,
    HFOptions,
    ModelSpec,
    OpenAIOptions,
    VLLMOptions,
    known_options,
)


def check_spec(spec: str | ModelSpec, **overrides: Any) -> ModelSpec:
    """Cheap checks before any task planning or model loading: syntax, typed options, local folders,
    API keys. Returns the parsed spec."""
    parsed = ModelSpec.parse(spec)
    settings = parsed.settings(**overrides)
    if parsed.kind in ("hf", "vllm") and parsed.target.startswith(("/", ".", "~")):
        folder = Path(parsed.target).expanduser()
        if not folder.is_dir():
            raise MedsbenchError("model folder not found", where=str(folder))
    if isinstance(settings, OpenAIOptions):
        env = settings.api_key_env
        if not os.environ.get(env):
            raise MedsbenchError(
                f"openai backend needs an API key in ${env} (set it, or name another variable with --api-key-env)"
            )
    return parsed


def load_backend(spec: str | ModelSpec, **overrides: Any) -> Backend:
    """Create the backend named by ``spec``; ``overrides`` (CLI flags) win over spec options when not None.

    Options are validated (names and types) before anything is constructed; errors raised while
    loading the model itself are not reinterpreted as option errors.
    """
    parsed = ModelSpec.parse(spec)
    settings = parsed.settings(**overrides)
    if parsed.kind in ("default", "hf"):
        from medsbench.models.hf import HFBackend

        target = parsed.target
        if parsed.kind == "default":
            from medsbench.models.default import default_model_dir

            target = str(default_model_dir())
        return HFBackend(target, **settings.kwargs())
    if parsed.kind == "openai":
        from medsbench.models.openai_backend import OpenAIBackend

        return OpenAIBackend(parsed.target, **settings.kwargs())
    from medsbench.models.vllm_backend import VLLMBackend

    return VLLMBackend(parsed.target, **settings.kwargs())


__all__ = [
    "IGNORED_FLAGS",
    "KINDS",
    "Backend",
    "BaseBackend",
    "HFOptions",
    "ModelSpec",
    "OpenAIOptions",
    "Rendered",
    "Request",
    "Response",
    "VLLMOptions",
    "check_spec",
    "known_options",
    "load_backend",
]
