"""Evaluation protocols: how a run turns a task file into prompts, as data.

Three protocols, each a frozen :class:`Protocol`:

* ``official``: what the official scripts (MAGIC-AI4Med/MedS-Ins @185cfc0,
  ``Evaluation/eval.py`` + ``Evaluation/EvalDataset.py``) do: the task file's
  own ``Definition``, 3 demos for every category (MCQA too) drawn from the test
  file itself, the raw input as the zero-shot query (only when ``--shots 0``),
  200 new tokens everywhere, the official prompt template, and the official
  2048-token prompt limit (the tokenizer's ``model_max_length``).
* ``paper``: the paper's text (MCQA zero-shot, 3-shot elsewhere); everything
  else as ``official``, so MCQA gets the official zero-shot path (definition as
  the instruction, raw input as the query).
* ``medsbench`` (the default): demos from the train split (else the test split
  minus the item), the catalog's shots (MCQA 0) and generation limits (1000 new
  tokens for the long-form categories), the ``Input:``/``Output:`` frame in
  zero-shot too, a ``--definitions`` file over the task file's ``Definition``,
  a prompt budget of the whole model context minus the generation room, and
  stop strings: a new ``Input:`` block ends every generation, a blank line ends
  the single-line answers of the categories in ``MEDSBENCH_CATEGORY_STOP``.

Every protocol lists its ``deviations`` from the official scripts (strings the
run copies into its manifest and results). No protocol reproduces the official
scripts' accidents (an unseeded demo draw that can include the item, the
right-side token cut that can drop the query); those are named instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from medsbench.errors import MedsbenchError

DemoPool = Literal["train_else_test", "test"]
DefinitionSource = Literal["definitions_then_task_file", "task_file"]

# The official eval.py loads the tokenizer with model_max_length=2048 and tokenizes with truncation=True.
OFFICIAL_PROMPT_TOKENS = 2048
# The official eval.py: max_new_tokens=200 unless --eos_id is given (then 1000).
OFFICIAL_MAX_NEW_TOKENS = 200
OFFICIAL_SHOTS = 3

# Where every protocol departs from the official scripts (each is kept on purpose).
_SHARED_DEVIATIONS = (
    ("demo sampling: seeded by (seed, task id, instance id), never the item itself nor another item with the same "
    "input; the official EvalDataset.py draws demos unseeded with random.sample from the whole pool, the item included"),
    ("greedy decoding for every model, stopping at the chat template's end-of-turn tokens; the official eval.py calls "
    "generate() without sampling flags, so it samples wherever the checkpoint's generation_config sets do_sample=True"),
    ("chat models are rendered through the tokenizer's own chat template (system = instruction block, user = query) "
    "and tokenized without extra special tokens; the official code hand-writes the Llama 3 / InternLM 2 text (the same "
    "bytes as those models' templates), re-tokenizes it with special tokens on (a second <|begin_of_text|> for "
    "Llama 3), and sends Mistral one user turn (instruction + newline + query, the text of our base-model prompt)"),
    ("a task file whose Definition is a string uses the whole string; the official code takes Definition[0] "
    "(the first character of a string)"),
    ("demo outputs use the first reference; the official code uses the output string, or output[0] for every demo "
    "when any drawn demo has a list output (a string output in such a draw is cut to its first character, an empty "
    "list crashes)"),
)

_OFFICIAL_ONLY = (
    ("prompts over the official 2048-token limit (or the model context minus the generation room, if smaller) drop "
    "demos (last first), then the end of the definition, never the query, and backends that cannot count tokens "
    "(HTTP APIs) send prompts whole; the official eval.py cuts the tokenized prompt at 2048 tokens from the right, "
    "which removes the query and the assistant header of long prompts"),
    ("a --definitions file is ignored: the task file's own Definition is used, as EvalDataset.py does "
    "(it overwrites RewriteDefinitions.json's original_def with the file's Definition); the released MedS-Bench "
    "files carry the official definitions, files converted by medsbench carry its own unless converted with the "
    "official definitions file"),
)


@dataclass(frozen=True)
class Protocol:
    """How prompts and generation limits are chosen for a run.

    ``shots`` is the number of demos for every category (``None``: the catalog's
    per-task shots); ``category_shots`` overrides it per catalog category key.
    ``zero_shot_frame`` keeps the ``Input:``/``Output:`` frame around a zero-shot
    query. ``max_new_tokens`` is ``None`` for the catalog's per-task limit.
    ``prompt_tokens`` caps the prompt (``None``: the model context minus the
    generation room, the only cap the other protocols know). ``stop`` ends every
    generation; ``category_stop`` adds stop strings per catalog category key
    (:meth:`stops_for` joins them; both enter the items' cache keys).
    """

    name: str
    summary: str
    shots: int | None
    category_shots: tuple[tuple[str, int], ...]
    demo_pool: DemoPool
    zero_shot_frame: bool
    max_new_tokens: int | None
    definition_source: DefinitionSource
    prompt_tokens: int | None
    deviations: tuple[str, ...]
    style_fixed: bool = True  # only the official prompt template (prompt style "official") is allowed
    stop: tuple[str, ...] = ()  # stop strings of every category: generation ends where a new demo would start
    # Extra stop strings per catalog category key, where that category's answer format allows them.
    category_stop: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def stops_for(self, category: str) -> tuple[str, ...]:
        """Stop strings for a task of ``category``: the protocol's own, then the category's (no repeats).

        They travel with every request (the backend cuts the output before the first one found) and are
        part of the generation settings hashed into each item's cache key.
        """
        extra = dict(self.category_stop).get(category, ())
        return tuple(dict.fromkeys(self.stop + tuple(extra)))

    def shots_for(self, category: str, catalog_shots: int, override: int | None = None) -> int:
        """Demos per item for a task of ``category`` (an explicit ``--shots`` wins)."""
        if override is not None:
            return override
        by_category = dict(self.category_shots)
        if category in by_category:
            return by_category[category]
        return catalog_shots if self.shots is None else self.shots

    def new_tokens_for(self, catalog_max_new_tokens: int, override: int | None = None) -> int:
        """Generation limit for a task (an explicit ``--max-new-tokens`` wins)."""
        if override is not None:
            return override
        return catalog_max_new_tokens if self.max_new_tokens is None else self.max_new_tokens

    def frame_for(self, shots: int) -> bool:
        """Whether the query keeps the ``Input:``/``Output:`` frame (always with demos requested)."""
        return shots > 0 or self.zero_shot_frame

    def check_style(self, style: str) -> None:
        if self.style_fixed and style != "official":
            raise MedsbenchError(
                f"prompt style '{style}' is not allowed with --protocol {self.name} "
                "(it uses the official prompt template): drop --prompt-style or use --protocol medsbench"
            )

    def to_json(self) -> dict[str, Any]:
        """The record a run manifest / results file keeps."""
        return {
            "name": self.name,
            "summary": self.summary,
            "shots": self.shots,
            "category_shots": dict(self.category_shots),
            "demo_pool": self.demo_pool,
            "zero_shot_frame": self.zero_shot_frame,
            "max_new_tokens": self.max_new_tokens,
            "definition_source": self.definition_source,
            "prompt_tokens": self.prompt_tokens,
            "stop": list(self.stop),
            "category_stop": {category: list(stops) for category, stops in self.category_stop},
            "deviations": list(self.deviations),
        }


OFFICIAL = Protocol(
    name="official",
    summary=(
        "Evaluation/eval.py + EvalDataset.py @185cfc0: the task file's Definition, 3 demos from the test file for "
        "every category, raw input as the zero-shot query, 200 new tokens, 2048-token prompts"
    ),
    shots=OFFICIAL_SHOTS,
    category_shots=(),
    demo_pool="test",
    zero_shot_frame=False,
    max_new_tokens=OFFICIAL_MAX_NEW_TOKENS,
    definition_source="task_file",
    prompt_tokens=OFFICIAL_PROMPT_TOKENS,
    deviations=_SHARED_DEVIATIONS + _OFFICIAL_ONLY,
)

PAPER = Protocol(
    name="paper",
    summary="the paper's text: MCQA zero-shot (official zero-shot path), 3-shot elsewhere; otherwise as official",
    shots=OFFICIAL_SHOTS,
    category_shots=(("mcqa", 0),),
    demo_pool="test",
    zero_shot_frame=False,
    max_new_tokens=OFFICIAL_MAX_NEW_TOKENS,
    definition_source="task_file",
    prompt_tokens=OFFICIAL_PROMPT_TOKENS,
    deviations=(
        ("MCQA is zero-shot as the paper states (definition as the instruction, raw input as the query: the official "
        "no-context path); the released eval.py runs every category 3-shot"),
    )
    + _SHARED_DEVIATIONS
    + _OFFICIAL_ONLY,
)

# Per-category stop strings of the medsbench protocol, adopted only where the answer is a single line (no
# reference in the public task files of the category holds a newline) AND real outputs showed it is safe and
# pays: SmolLM2-135M-Instruct generations without stops (medsbench protocol, 256-token cap), cut offline at each
# candidate and re-scored per item (bench/stop_strings_bench.py). Text classification (HoC, 13 items): a blank
# line cut 4 rambling outputs, 913 of 3080 generated tokens saved (864 with the hf backend's 32-token check),
# every item's strict and reference score unchanged. Not adopted: MCQA (8/17 outputs restate an option after
# a blank line, "The correct answer is D...", which the strict scorer reads: cutting flipped 2 items);
# summarization/explanation/rationale (long-form answers may hold paragraphs; cutting raised BLEU/ROUGE on
# rambling outputs); NER, IE and fact verification (no output held a blank line, so nothing to save; a single
# newline cut IE answers short and lowered their scores); categories without public data here (not measured).
MEDSBENCH_CATEGORY_STOP: tuple[tuple[str, tuple[str, ...]], ...] = (("text_classification", ("\n\n",)),)


def _category_stop_deviation(table: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    """The named deviation of per-category stop strings (listing each category's stops)."""
    parts = "; ".join(f"{category}: {', '.join(repr(s) for s in stops)}" for category, stops in table)
    return (
        f"a blank line ends single-line answers (per-category stop strings, cut from the output: {parts}); "
        "the official code generates to the token limit"
    )


MEDSBENCH = Protocol(
    name="medsbench",
    summary=(
        "medsbench's default: train-split demos, catalog shots (MCQA 0) and generation limits, framed zero-shot "
        "queries, truncation that drops demos first and never cuts the query"
    ),
    shots=None,
    category_shots=(),
    demo_pool="train_else_test",
    zero_shot_frame=True,
    max_new_tokens=None,
    definition_source="definitions_then_task_file",
    prompt_tokens=None,
    deviations=(
        ("demos come from the task's train split when there is one (else the test split minus the item); the "
        "official code draws them from the test file"),
        "shots from the catalog: MCQA zero-shot, 3-shot elsewhere; the official eval.py runs every category 3-shot",
        "a zero-shot query keeps the Input:/Output: frame; the official zero-shot path sends the raw input",
        ("generation limits from the catalog (1000 new tokens for summarization, explanation and rationale, 200 "
        "elsewhere); the official eval.py uses 200 everywhere"),
        ("a --definitions file (RewriteDefinitions.json original_def) replaces the task file's Definition; the "
        "official code always uses the task file's Definition"),
        ("prompts are fitted to the model context minus the generation room by dropping demos (last first), then the "
        "end of the definition, never the query; the official eval.py cuts the tokenized prompt at 2048 tokens from "
        "the right (the query goes first)"),
        "prompt style 'readable' is available (one blank line between demos, a newline before the few-shot hint)",
        ("generation stops where the model starts a new 'Input:' block (stop string '\\nInput:', cut from the "
        "output); the official code generates to the token limit and scores whatever follows the answer"),
        _category_stop_deviation(MEDSBENCH_CATEGORY_STOP),
    )
    + _SHARED_DEVIATIONS,
    style_fixed=False,
    stop=("\nInput:",),
    category_stop=MEDSBENCH_CATEGORY_STOP,
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (OFFICIAL, PAPER, MEDSBENCH)}
DEFAULT_PROTOCOL = "medsbench"


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name`` (a :class:`Protocol` passes through); unknown names are one clear error."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except (KeyError, TypeError):
        raise MedsbenchError(f"unknown protocol '{name}' (known: {', '.join(PROTOCOLS)})") from None


# The official eval.py's model families: hand-written Llama 3 / InternLM 2 texts, Mistral's pipeline,
# GPT-4 / Claude message pairs; every other --model_type gets default_build_inputs (plain text).
OFFICIAL_FAMILIES = "Llama 3, MMedLlama 3, InternLM 2, Mistral, GPT-4, Claude"


def run_deviations(protocol: str | Protocol, identity: dict[str, Any], max_new_tokens: int | None) -> list[str]:
    """What a run under the ``official`` or ``paper`` protocol does differently from the official eval.py
    because of its model and settings (beside the protocol's own deviations), each with the setting that
    matches the official code where there is one. ``identity``: the backend's identity; ``max_new_tokens``:
    the run's explicit token cap (None: the protocol's)."""
    proto = get_protocol(protocol)
    if proto.name not in ("official", "paper"):
        return []
    out = []
    dtype = identity.get("dtype")
    if dtype is not None and dtype != "bfloat16":
        out.append(f"weights in {dtype}; the official eval.py loads every model in bfloat16 (dtype=bfloat16 in the "
                   "model spec matches it; in bf16, batching changes some greedy outputs)")
    if identity.get("chat_template_sha256"):
        out.append("this model is prompted through its own chat template; the official eval.py does that only for "
                   f"its model families ({OFFICIAL_FAMILIES}) and sends any other model plain text (BOS, "
                   "instruction, newline, query): chat_template=none in the model spec sends exactly that")
    if max_new_tokens is None:
        out.append(f"at most {OFFICIAL_MAX_NEW_TOKENS} new tokens, the official default; the official eval.py "
                   "generates up to 1000 when run with --eos_id (--max-new-tokens 1000 matches that)")
    return out
