"""``ModelSpec``: a model spec string parsed once (``kind:target,key=value,...``), with typed options.

Forms: ``default[,k=v]`` | ``hf:PATH_OR_NAME[,k=v]`` | ``vllm:PATH_OR_NAME[,k=v]`` |
``openai:MODEL[,base_url=..,k=v]``. Every place that needs a model's kind, a run name, a display
name or a loggable form of the spec asks this class; credentials in URLs never leave it
(:meth:`ModelSpec.redacted`, :mod:`medsbench.redact`).

Backend kinds are registered (:func:`register_backend`, a :class:`BackendKind`: options class,
loader, cheap checks); :mod:`medsbench.models` registers the built-in ones, and an installed package
adds its own through the ``medsbench.backends`` entry-point group (``toy = my_pkg.backend:KIND``, a
``BackendKind``), loaded the first time a spec names a kind not yet registered. Options are typed per
backend kind (:class:`HFOptions` for ``default``/``hf``, :class:`OpenAIOptions`,
:class:`VLLMOptions`): values are coerced (``batch_size=4`` -> 4, ``trust_remote_code=yes`` -> True)
and an option the backend does not know is an error that lists the ones it knows.

Command-line flags (``--dtype``, ``--device``, ``--batch-size``, ``--api-key-env``,
``--trust-remote-code``) merge through the same options (:meth:`ModelSpec.settings`), winning over
the spec's own options. A flag that has no meaning for the backend kind is ignored only where
the kind's ``ignored_flags`` say so (e.g. ``--dtype`` for ``openai``: the server owns its weights);
any other unknown override is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import entry_points
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
)

from medsbench.errors import MedsbenchError
from medsbench.redact import REDACTED, SECRET_NAME, redact_text

#: Options that never change what a run measures: where the API key comes from, transport and retries.
UNMEASURED_OPTIONS = frozenset(
    {"api_key_env", "concurrency", "max_attempts", "timeout", "backoff_base", "backoff_cap", "max_connection_errors"}
)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- typed options


OptionsT = TypeVar("OptionsT", bound="BackendOptions")


class BackendOptions(BaseModel):
    """Options of one backend kind; unknown keys are refused, strings from the spec are coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def known(cls) -> tuple[str, ...]:
        return tuple(sorted(cls.model_fields))

    def kwargs(self) -> dict[str, Any]:
        """Constructor keyword arguments of the backend (options left unset are not passed)."""
        return self.model_dump(exclude_none=True)


class HFOptions(BackendOptions):
    """``default`` and ``hf:``: :class:`medsbench.models.hf.HFBackend`."""

    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    device: str = Field(default="cpu", pattern=r"^(cpu|mps|(cuda|xpu|npu)(:\d+)?)$")
    batch_size: PositiveInt | Literal["auto"] = "auto"
    threads: PositiveInt | None = None
    prune_every: NonNegativeInt = 32  # 0: one uninterrupted generate per batch
    share_prefix: NonNegativeInt = 16  # min. common prompt-prefix tokens whose KV cache a batch shares (0: off)
    row_prefill: bool | None = None  # prompts prefilled one row at a time (None: on CPU only)
    continuous: bool | None = None  # continuous batching (None: where row_prefill is on)
    chat_template: Literal["model", "none"] = "model"  # none: the official plain prompt, even for a chat model
    max_length: PositiveInt | None = None
    trust_remote_code: bool = False
    revision: str | None = None  # a Hub name's branch, tag or commit

    def kwargs(self) -> dict[str, Any]:
        return self.model_dump()  # None is meaningful here (threads, max_length: the model's own)


class OpenAIOptions(BackendOptions):
    """``openai:``: :class:`medsbench.models.openai_backend.OpenAIBackend`."""

    base_url: str | None = Field(default=None, pattern=r"^https?://")
    api_key_env: str = Field(default="OPENAI_API_KEY", pattern=ENV_NAME.pattern)
    concurrency: PositiveInt = 8
    max_attempts: PositiveInt = 6
    timeout: float = Field(default=120.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)  # seconds to open a connection (timeout: the whole request)
    backoff_base: NonNegativeFloat = 1.0
    backoff_cap: NonNegativeFloat = 60.0
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_connection_errors: PositiveInt = 5  # circuit breaker: consecutive connection failures before giving up
    max_timeouts: PositiveInt = 2  # circuit breaker: different requests timing out in a row before giving up


class VLLMOptions(BackendOptions):
    """``vllm:``: :class:`medsbench.models.vllm_backend.VLLMBackend` (engine arguments of ``vllm.LLM``)."""

    chat_template: Literal["model", "none"] | None = None  # none: the official plain prompt (None: the model's template)
    trust_remote_code: bool = False
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16", "half", "float"] | None = None
    tensor_parallel_size: PositiveInt | None = None
    data_parallel_size: PositiveInt | None = None
    pipeline_parallel_size: PositiveInt | None = None
    max_model_len: PositiveInt | None = None
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    quantization: str | None = None
    enforce_eager: bool | None = None
    max_num_seqs: PositiveInt | None = None
    seed: int | None = None
    # ray: tensor/pipeline parallel across the nodes of a Ray cluster (vLLM's multi-node path);
    # uni: one process (saves a worker on CPU); external_launcher: data parallel under torchrun
    distributed_executor_backend: Literal["ray", "mp", "uni", "external_launcher"] | None = None
    enable_prefix_caching: bool | None = None

    def kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class InstanceOptions(BackendOptions):
    """``instance:NAME``: a backend object handed to the runner in code (tests, notebooks); never loaded from a spec."""


@dataclass(frozen=True)
class BackendKind:
    """One model backend kind: its spec options, how to check and load it. Register with :func:`register_backend`.

    ``load(spec, options)`` creates the backend (heavy imports happen inside it); ``check(spec, options)``
    runs the cheap checks made before any planning (a local folder exists, an API key is set);
    ``ignored_flags`` are CLI flags without meaning for this kind (e.g. ``--dtype`` for an API: the server
    owns its weights), dropped instead of refused; ``target`` says whether ``kind:TARGET`` needs one.
    """

    name: str
    options: type[BackendOptions]
    load: Callable[[ModelSpec, Any], Any]
    target: Literal["required", "none"] = "required"
    ignored_flags: frozenset[str] = frozenset()
    check: Callable[[ModelSpec, Any], None] | None = None
    display_name: str | None = None  # a fixed display name (default: the target's last path part)


_BACKENDS: dict[str, BackendKind] = {}


def register_backend(kind: BackendKind) -> BackendKind:
    """Make ``kind.name`` a model spec kind (``NAME:TARGET,k=v``); a second registration of a name is an error."""
    if kind.name in _BACKENDS:
        raise ValueError(f"backend kind {kind.name!r} is already registered")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", kind.name):
        raise ValueError(f"backend kind {kind.name!r}: lower-case letters, digits and '_'")
    _BACKENDS[kind.name] = kind
    return kind


#: The entry-point group of backend plugins: each entry a :class:`BackendKind` (its name is the spec kind).
PLUGIN_GROUP = "medsbench.backends"
_plugins_loaded = False


def load_plugins() -> None:
    """Register the :class:`BackendKind` of every installed ``medsbench.backends`` entry point (once).
    A plugin that fails to import, or is not a BackendKind, is an error naming its entry point."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=PLUGIN_GROUP):
        where = f"entry point {ep.name} = {ep.value} ({PLUGIN_GROUP})"
        try:
            kind = ep.load()
        except Exception as exc:  # a broken plugin: say which, never a traceback
            raise MedsbenchError(f"could not load the backend plugin: {type(exc).__name__}: {exc}", where=where) from None
        if not isinstance(kind, BackendKind):
            raise MedsbenchError(f"a backend plugin must be a medsbench.models.spec.BackendKind, got {type(kind).__name__}",
                                 where=where)
        if _BACKENDS.get(kind.name) is not kind:  # a module imported before may have registered it already
            register_backend(kind)


def _known(name: str) -> bool:
    if name not in _BACKENDS:
        load_plugins()
    return name in _BACKENDS


def backend_kind(name: str) -> BackendKind:
    if not _known(name):
        raise MedsbenchError(f"unknown model kind '{name}' (kinds: {', '.join(kinds())})")
    return _BACKENDS[name]


def kinds() -> tuple[str, ...]:
    """The registered backend kinds, plugins included (``instance`` is for code only and not listed)."""
    load_plugins()
    return tuple(k for k in _BACKENDS if k != "instance")


def _refuse_instance(spec: ModelSpec, options: Any) -> Any:
    raise MedsbenchError(f"'{spec.redacted()}' names a backend object that was passed in code; it cannot be loaded "
                         "from its spec (give a model spec such as hf:PATH)")


register_backend(BackendKind("instance", InstanceOptions, _refuse_instance))


def _explain(exc: ValidationError) -> tuple[str, str]:
    """(option, reason) of the first failing option; never quotes the value (it may be a secret)."""
    errors = exc.errors()
    key = str(errors[0]["loc"][0]) if errors and errors[0].get("loc") else "?"
    reasons: list[str] = []
    for err in errors:
        if err.get("loc") and str(err["loc"][0]) == key and err["msg"] not in reasons:
            reasons.append(err["msg"])
    return key, " or ".join(reasons) or "invalid value"


def options_with(cls: type[OptionsT], options: OptionsT | None, overrides: dict[str, Any]) -> OptionsT:
    """``options`` (default: ``cls()``) with ``overrides`` applied and validated; a backend's constructor
    takes its typed options this way (one line names a bad option)."""
    base = options if options is not None else cls()
    if not overrides:
        return base
    try:
        return cls.model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        key, why = _explain(exc)
        raise MedsbenchError(f"{cls.__name__}: option '{key}': {why}") from None


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)  # as written in the spec (strings)

    @classmethod
    def parse(cls, spec: str | ModelSpec, *, strict: bool = True) -> ModelSpec:
        """``kind:target,key=value,...``; one clear line for anything malformed.

        ``strict`` (the default) also checks option names and values against the backend kind's
        typed options; ``strict=False`` checks only the syntax (for reading recorded specs).
        """
        if isinstance(spec, ModelSpec):
            if strict:
                spec.settings()
            return spec
        spec = (spec or "").strip()
        if not spec:
            raise MedsbenchError("empty model spec (try: default, hf:PATH, openai:MODEL, vllm:PATH)")
        if ":" not in spec.split(",")[0]:  # "default,threads=1" reads as "default:,threads=1"
            head, _, tail = spec.partition(",")
            spec = f"{head}:" + (f",{tail}" if tail else "")
        kind, _, rest = spec.partition(":")
        if not _known(kind):
            shown = redact_text(spec.rstrip(":"))
            raise MedsbenchError(f"unknown model spec '{shown}' (kinds: {', '.join(kinds())}; e.g. hf:/path/to/model)")
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
                raise MedsbenchError(f"bad option '{redact_text(part)}' in model spec (expected key=value)")
            options[key.strip()] = value.strip()
        if _BACKENDS[kind].target == "required" and not target:
            raise MedsbenchError(f"model spec '{kind}:' needs a target: {kind}:PATH_OR_NAME")
        if _BACKENDS[kind].target == "none" and target:
            raise MedsbenchError(f"model spec '{kind}' takes no target (got '{redact_text(target)}'); use hf:PATH")
        parsed = cls(kind, target, options)
        if strict:
            parsed.settings()
        return parsed

    # -- options ----------------------------------------------------------
    @property
    def backend(self) -> BackendKind:
        return backend_kind(self.kind)

    def settings(self, **overrides: Any) -> BackendOptions:
        """The typed options of this spec, with ``overrides`` (CLI flags; ``None`` = not given) on top.

        Raises :class:`MedsbenchError` naming the option and, for an unknown one, the backend's
        known options. Overrides in the kind's ``ignored_flags`` are dropped.
        """
        cls = self.backend.options
        known = cls.known()
        for key in self.options:
            if key not in known:
                raise MedsbenchError(
                    f"model spec '{self.redacted()}': unknown option '{key}' for the {self.kind} backend "
                    f"(known: {', '.join(known)})"
                )
        values: dict[str, Any] = dict(self.options)
        for key, value in overrides.items():
            if value is None or key in self.backend.ignored_flags:
                continue
            if key not in known:
                raise MedsbenchError(
                    f"option '{key}' does not apply to the {self.kind} backend (known: {', '.join(known)})"
                )
            values[key] = value
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            key, why = _explain(exc)
            raise MedsbenchError(f"model spec '{self.redacted()}': option '{key}': {why}") from None

    def with_overrides(self, **overrides: Any) -> ModelSpec:
        """This spec with the applicable ``overrides`` written into its options (validated), e.g. to
        record the effective spec of a run in its manifest (via :meth:`redacted`)."""
        self.settings(**overrides)
        merged = dict(self.options)
        for key, value in overrides.items():
            if value is None or key in self.backend.ignored_flags:
                continue
            merged[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return ModelSpec(self.kind, self.target, merged)

    def measured(self) -> ModelSpec:
        """This spec without the options in :data:`UNMEASURED_OPTIONS` (what a resume must not change)."""
        return ModelSpec(self.kind, self.target, {k: v for k, v in self.options.items() if k not in UNMEASURED_OPTIONS})

    # -- strings ----------------------------------------------------------
    def __str__(self) -> str:
        return self.redacted()

    def unredacted(self) -> str:
        """The spec string exactly as it loads again (may carry credentials: never log or save it)."""
        head = f"{self.kind}:{self.target}" if self.target else self.kind
        return ",".join([head, *(f"{k}={v}" for k, v in self.options.items())])

    def redacted(self) -> str:
        """The spec string with credentials removed: what manifests, logs and pages may show.

        ``api_key_env`` names an environment variable, not a secret, so it is kept when it looks like
        one (a value pasted there by mistake, e.g. the key itself, is masked).
        """
        head = f"{self.kind}:{redact_text(self.target)}" if self.target else self.kind
        opts = []
        for key, value in self.options.items():
            if key == "api_key_env":
                value = value if ENV_NAME.match(value) else REDACTED
            elif SECRET_NAME.match(key):
                value = REDACTED
            else:
                value = redact_text(value)
            opts.append(f"{key}={value}")
        return ",".join([head, *opts])

    @property
    def display_name(self) -> str:
        """A short model name: the last path part of the target (names never carry paths), or the kind."""
        if self.backend.display_name:
            return self.backend.display_name
        base = self.target.rstrip("/\\")
        base = re.split(r"[/\\]", base)[-1].replace("..", ".")
        return base or self.kind

    @property
    def run_name(self) -> str:
        """``default`` -> default, ``hf:/m/tuned`` -> hf-tuned, ``openai:gpt-4o`` -> openai-gpt-4o."""
        target = self.target.rstrip("/").rsplit("/", 1)[-1]
        name = f"{self.kind}-{target}" if target else self.kind
        return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "run"


def known_options(kind: str) -> tuple[str, ...]:
    """The option names a backend kind accepts (for help texts and error messages)."""
    return backend_kind(kind).options.known()
