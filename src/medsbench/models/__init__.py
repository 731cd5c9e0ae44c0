"""Model backends behind one protocol: ``load_backend(spec).generate(requests) -> responses``.

Specs: ``default`` | ``hf:PATH_OR_NAME[,dtype=..,device=..,batch_size=..]`` |
``vllm:PATH_OR_NAME[,tensor_parallel_size=..]`` | ``openai:MODEL[,base_url=..,concurrency=..]``.
Heavy libraries load only when a backend is created.
"""

from __future__ import annotations

from typing import Any

from medsbench.errors import MedsbenchError
from medsbench.models.base import Backend, BaseBackend, Rendered, Request, Response

KINDS = ("default", "hf", "vllm", "openai")
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """``kind:target,key=value,...`` -> (kind, target, options)."""
    spec = (spec or "").strip()
    if not spec:
        raise MedsbenchError("empty model spec (try: default, hf:PATH, openai:MODEL, vllm:PATH)")
    if ":" not in spec.split(",")[0]:  # "default,threads=1" reads as "default:,threads=1"
        spec_head, _, tail = spec.partition(",")
        spec = f"{spec_head}:" + (f",{tail}" if tail else "")
    kind, _, rest = spec.partition(":")
    if kind not in KINDS:
        raise MedsbenchError(f"unknown model spec '{spec.rstrip(':')}' (kinds: {', '.join(KINDS)}; e.g. hf:/path/to/model)")
    parts = rest.split(",") if rest else []
    target = ""
    if parts and "=" not in parts[0]:
        target = parts.pop(0).strip()
    options: dict[str, str] = {}
    for part in parts:
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        if not eq:
            raise MedsbenchError(f"bad option '{part}' in model spec (expected key=value)")
        options[key.strip()] = value.strip()
    if kind in ("hf", "vllm", "openai") and not target:
        raise MedsbenchError(f"model spec '{spec}' needs a target: {kind}:PATH_OR_NAME")
    return kind, target, options


def _coerce(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, str) and value.lower() in _BOOL:
            out[key] = _BOOL[value.lower()]
        else:
            out[key] = value
    return out


def check_spec(spec: str, **overrides: Any) -> None:
    """Cheap checks before any task planning or model loading: syntax, local folders, API keys."""
    import os
    from pathlib import Path

    kind, target, options = parse_spec(spec)
    if kind == "hf" and target.startswith(("/", ".", "~")):
        folder = Path(target).expanduser()
        if not folder.is_dir():
            raise MedsbenchError("model folder not found", where=str(folder))
    if kind == "openai":
        env = overrides.get("api_key_env") or options.get("api_key_env") or "OPENAI_API_KEY"
        if not os.environ.get(env):
            raise MedsbenchError(
                f"openai backend needs an API key in ${env} (set it, or name another variable with --api-key-env)"
            )


def load_backend(spec: str, **overrides: Any) -> Backend:
    """Create the backend named by ``spec``; ``overrides`` (CLI flags) win over spec options when not None."""
    kind, target, options = parse_spec(spec)
    opts = _coerce(options)
    opts.update({k: v for k, v in overrides.items() if v is not None})
    try:
        if kind in ("default", "hf"):
            from medsbench.models.hf import HFBackend

            if kind == "default":
                from medsbench.models.default import default_model_dir

                target = str(default_model_dir())
            for key in ("prune_every", "max_length", "threads"):
                if key in opts:
                    opts[key] = int(opts[key])
            opts.pop("api_key_env", None)
            return HFBackend(target, **opts)
        if kind == "openai":
            from medsbench.models.openai_backend import OpenAIBackend

            for key in ("concurrency", "max_attempts"):
                if key in opts:
                    opts[key] = int(opts[key])
            for key in ("timeout", "backoff_base", "backoff_cap", "temperature"):
                if key in opts:
                    opts[key] = float(opts[key])
            for key in ("batch_size", "trust_remote_code", "dtype", "device"):
                opts.pop(key, None)
            return OpenAIBackend(target, **opts)
        from medsbench.models.vllm_backend import VLLMBackend

        for key in ("batch_size", "api_key_env", "dtype_name"):
            opts.pop(key, None)
        return VLLMBackend(target, **opts)
    except TypeError as exc:
        raise MedsbenchError(f"bad option in model spec '{spec}': {exc}") from None


__all__ = ["Backend", "BaseBackend", "KINDS", "Rendered", "Request", "Response", "check_spec", "load_backend", "parse_spec"]
