"""Model backends behind one protocol: ``load_backend(spec).generate(requests) -> responses``.

Specs are parsed by :class:`medsbench.models.spec.ModelSpec` (the one parser). Each backend kind is
registered once (:func:`medsbench.models.spec.register_backend`): the built-in ones below are
``default`` (the embedded SmolLM2-135M-Instruct), ``hf:PATH_OR_NAME``, ``vllm:PATH_OR_NAME`` and
``openai:MODEL``. A new backend is one module with its class and a ``register_backend`` call.
Heavy libraries load only when a backend is created.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.models.base import Backend
from medsbench.models.spec import (
    BackendKind,
    HFOptions,
    ModelSpec,
    OpenAIOptions,
    VLLMOptions,
    register_backend,
)


def check_spec(spec: str | ModelSpec, **overrides: Any) -> ModelSpec:
    """Cheap checks before any task planning or model loading: syntax, typed options, local folders,
    API keys. Returns the parsed spec."""
    parsed = ModelSpec.parse(spec)
    settings = parsed.settings(**overrides)
    if parsed.backend.check is not None:
        parsed.backend.check(parsed, settings)
    return parsed


def load_backend(spec: str | ModelSpec, **overrides: Any) -> Backend:
    """Create the backend named by ``spec``; ``overrides`` (CLI flags) win over spec options when not None.

    Options are validated (names and types) before anything is constructed; errors raised while
    loading the model itself are not reinterpreted as option errors.
    """
    parsed = ModelSpec.parse(spec)
    return parsed.backend.load(parsed, parsed.settings(**overrides))


# --------------------------------------------------------------------------- built-in kinds


def _local_folder(spec: ModelSpec, options: Any) -> None:
    if spec.target.startswith(("/", ".", "~")):
        folder = Path(spec.target).expanduser()
        if not folder.is_dir():
            raise MedsbenchError("model folder not found", where=str(folder))


def _api_key(spec: ModelSpec, options: OpenAIOptions) -> None:
    if not os.environ.get(options.api_key_env):
        raise MedsbenchError(
            f"openai backend needs an API key in ${options.api_key_env} (set it, or name another variable with --api-key-env)"
        )


def _load_hf(spec: ModelSpec, options: HFOptions) -> Backend:
    from medsbench.models.hf import HFBackend

    return HFBackend(spec.target, options)


def _load_default(spec: ModelSpec, options: HFOptions) -> Backend:
    from medsbench.models.default import default_model_dir
    from medsbench.models.hf import HFBackend

    return HFBackend(str(default_model_dir()), options)


def _load_vllm(spec: ModelSpec, options: VLLMOptions) -> Backend:
    from medsbench.models.vllm_backend import VLLMBackend

    return VLLMBackend(spec.target, **options.kwargs())


def _load_openai(spec: ModelSpec, options: OpenAIOptions) -> Backend:
    from medsbench.models.openai_backend import OpenAIBackend

    return OpenAIBackend(spec.target, options)


_NO_KEY = frozenset({"api_key_env"})
register_backend(BackendKind("default", HFOptions, _load_default, target="none", ignored_flags=_NO_KEY,
                             display_name="SmolLM2-135M-Instruct"))
register_backend(BackendKind("hf", HFOptions, _load_hf, ignored_flags=_NO_KEY, check=_local_folder))
# vLLM places the model on the visible GPUs itself (CUDA_VISIBLE_DEVICES) and batches continuously.
register_backend(BackendKind("vllm", VLLMOptions, _load_vllm, ignored_flags=_NO_KEY | {"device", "batch_size"},
                             check=_local_folder))
# A remote API owns its dtype, device and batching.
register_backend(BackendKind("openai", OpenAIOptions, _load_openai,
                             ignored_flags=frozenset({"dtype", "device", "batch_size", "trust_remote_code"}), check=_api_key))

__all__ = ["check_spec", "load_backend"]
