"""EvalConfig (one typed record of a run's settings) and RunFolder (the one owner of a run folder's files):
flags derive from the config, resume compares field by field, a folder belongs to one configuration,
identifiers and rows read from a folder are checked, and files written there never leave it."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from medsbench.errors import MedsbenchError
from medsbench.models.spec import ModelSpec
from medsbench.records.config import EvalConfig
from medsbench.records.folder import RunFolder, check_plan
from medsbench.redact import REDACTED
from test_runs import CountingBackend, make_workspace, rows_of


# --------------------------------------------------------------------------- EvalConfig


def test_every_config_field_has_its_eval_flag_and_no_flag_lives_in_the_command_only():
    from medsbench.commands.eval import BACKEND_FLAGS, HELP, PLACE_FLAGS, SCORE_FLAGS, eval_cmd

    params = set(inspect.signature(eval_cmd).parameters)
    fields = set(EvalConfig.cli_fields())
    assert fields <= params, f"config fields without a flag: {fields - params}"
    assert params - fields == set(PLACE_FLAGS) | set(BACKEND_FLAGS) | set(SCORE_FLAGS), \
        "a flag that is neither config, place, backend nor scoring"
    # the flags' help texts are the fields' descriptions
    for name in fields:
        default = inspect.signature(eval_cmd).parameters[name].default
        assert HELP[name] and default.help.startswith(HELP[name]), name


def test_config_is_frozen_normalised_and_records_a_redacted_model():
    spec = ModelSpec.parse("openai:gpt-x,base_url=http://u:pw@h:8/v1?token=T,api_key_env=MY_KEY")
    config = EvalConfig.from_flags(model=spec, tasks="task57", shard="2/4", definitions="defs.json", limit=5)
    with pytest.raises(ValidationError, match="frozen"):
        config.limit = 6  # type: ignore[misc]
    assert config.shard == "2/4" and config.shard_index == (2, 4)
    assert config.definitions == str(Path("defs.json").resolve())
    data = json.loads(config.model_dump_json())
    assert data["model"] == "openai:gpt-x,base_url=http://h:8/v1,api_key_env=MY_KEY" and data["model_complete"] is False
    assert "pw" not in json.dumps(data) and "T" not in data["model"].split("?")[-1]
    again = EvalConfig.model_validate(data)
    assert again.measured() == config.measured() and again.digest() == config.digest()
    with pytest.raises(MedsbenchError, match="--limit"):
        EvalConfig.from_flags(limit=0)
    with pytest.raises(MedsbenchError, match="1 <= I <= N"):
        EvalConfig.from_flags(shard="0/2")


def test_digest_names_one_configuration_and_ignores_where_the_key_comes_from():
    base = EvalConfig.from_flags(model="openai:m,api_key_env=A", tasks="mcqa")
    same = EvalConfig.from_flags(model="openai:m,api_key_env=B,concurrency=2", tasks="mcqa")
    assert base.digest() == same.digest() and base.differences(same) == []
    other = EvalConfig.from_flags(model="openai:m", tasks="mcqa", seed=1)
    assert other.digest() != base.digest() and base.differences(other) == ["seed"]
    assert base.default_run_name() != EvalConfig.from_flags(model="openai:m", tasks="ner").default_run_name()


def test_resume_compares_field_by_field_and_names_every_difference():
    recorded = EvalConfig.from_flags(model="hf:/m/x,dtype=float32", tasks="all", limit=5)
    assert recorded.resumed_with("RUN/manifest.json", tasks="all", limit=5) == recorded
    with pytest.raises(MedsbenchError) as err:
        recorded.resumed_with("RUN/manifest.json", limit=6, seed=2, model="hf:/m/x,dtype=bfloat16")
    text = str(err.value)
    assert "--limit 6 conflicts with the run's 5" in text and "--seed 2 conflicts with the run's 0" in text
    assert "--model hf:/m/x,dtype=bfloat16 conflicts" in text and "\n" not in text
    # A spec whose credentials were dropped when recorded must be given again, and may be.
    lossy = EvalConfig.from_flags(model="openai:m,base_url=http://u:secret@h/v1")
    stored = EvalConfig.model_validate(json.loads(lossy.model_dump_json()))
    with pytest.raises(MedsbenchError, match="held credentials"):
        stored.resumed_with("RUN/manifest.json")
    restored = stored.resumed_with("RUN/manifest.json", model="openai:m,base_url=http://u:secret@h/v1,api_key_env=K")
    assert restored.model_complete and "secret" in restored.model.unredacted()


def test_a_schema_1_manifest_is_read_with_its_settings_and_shards_renumbered(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    old = {
        "schema_version": 1, "model": "hf:/m/x", "backend": {"backend": "hf"}, "protocol": "official", "seed": 3,
        "tasks": {}, "args": {"tasks": "mcqa", "limit": 4, "shard": "0/2", "backend_options": {"dtype": "bfloat16"}},
        "generation": {}, "prompt_template_sha256": "x", "status": "finished",
    }
    (run / "manifest.json").write_text(json.dumps(old))
    manifest = RunFolder(run).manifest()
    assert manifest.config is not None and manifest.protocol == "official" and manifest.config.seed == 3
    assert manifest.config.shard == "1/2" and manifest.config.limit == 4
    assert manifest.config.model.redacted() == "hf:/m/x,dtype=bfloat16"
    (run / "manifest.json").write_text(json.dumps({**old, "schema_version": 9}))
    with pytest.raises(MedsbenchError, match="schema_version 9"):
        RunFolder(run).manifest()


# --------------------------------------------------------------------------- one run per folder


def test_eval_refuses_a_folder_of_another_configuration_unless_overwrite(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws", n_mcqa=4, n_ner=2)
    run = tmp_path / "run"
    evaluate(CountingBackend(), "task57", workspace=ws, out=run, progress=False)
    before = (run / "predictions.jsonl").read_bytes()
    for other in ({"tasks": "task126"}, {"limit": 2}, {"spec": "instance:another"}):
        kwargs = {"tasks": "task57", **other}
        with pytest.raises(MedsbenchError, match="holds a run of another configuration .*--out.*--overwrite"):
            evaluate(CountingBackend(), kwargs.pop("tasks"), workspace=ws, out=run, progress=False, **kwargs)
        assert (run / "predictions.jsonl").read_bytes() == before
    # the same configuration again is a rerun (from the cache), not a new run
    evaluate(CountingBackend(), "task57", workspace=ws, out=run, progress=False)
    res = evaluate(CountingBackend(), "task126", workspace=ws, out=run, progress=False, overwrite=True)
    assert {r["task_id"] for r in rows_of(run)} == {"task126"} and not (run / "judged.json").exists()
    assert res.manifest.config.tasks == "task126"


def test_default_run_folders_of_different_configurations_never_collide(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws", n_mcqa=4, n_ner=2)
    a = evaluate(CountingBackend(), "task57", workspace=ws, progress=False)
    b = evaluate(CountingBackend(), "task126", workspace=ws, progress=False)
    c = evaluate(CountingBackend(), "task57", workspace=ws, progress=False, limit=2)
    assert len({a.run_dir, b.run_dir, c.run_dir}) == 3
    assert all(r.run_dir.parent == (ws / "runs") for r in (a, b, c))
    assert {row["task_id"] for row in rows_of(a.run_dir)} == {"task57"}  # untouched by b and c


def test_cli_names_the_remedy_when_a_folder_holds_another_run(tmp_path, tiny_model_dir):
    from test_runs_integrity import cli

    ws = make_workspace(tmp_path / "ws", n_mcqa=3, n_ner=2)
    run = tmp_path / "run"
    common = ["--model", f"hf:{tiny_model_dir}", "-w", str(ws), "--out", str(run), "--max-new-tokens", "2", "--no-progress"]
    assert cli("eval", *common, "--tasks", "task57").returncode == 0
    proc = cli("eval", *common, "--tasks", "task126")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "holds a run of another configuration (tasks differ)" in proc.stderr and "--overwrite" in proc.stderr


# --------------------------------------------------------------------------- what a folder may hold


def _finished_run(tmp_path: Path) -> Path:
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws", n_mcqa=4, n_ner=3)
    run = tmp_path / "run"
    evaluate(CountingBackend(), "task57,task126", workspace=ws, out=run, progress=False)
    return run


def _rewrite(run: Path, edit) -> None:
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    rows = edit(rows)
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: rows + [rows[0]], "duplicated row: task57 item 'q0'"),
        (lambda rows: rows[1:], "task57: 3 row\\(s\\), manifest.json planned 4"),
        (lambda rows: [{**r, "id": "zz"} if r["id"] == "q1" else r for r in rows], "not the ones manifest.json planned"),
        (lambda rows: rows + [{**rows[0], "task_id": "task999"}], "task task999 was never planned"),
        (lambda rows: [{**rows[0], "task_id": "../../../../tmp/x/escaped"}] + rows[1:], "not a valid task id"),
        (lambda rows: [{**rows[0], "task_id": "<script>alert(1)</script>"}] + rows[1:], "not a valid task id"),
        (lambda rows: [{**rows[0], "id": "a\x00b"}] + rows[1:], "not a valid instance id"),
    ],
)
def test_rows_that_are_not_the_planned_ones_are_refused_where_they_are_read(tmp_path, edit, message):
    run = _finished_run(tmp_path)
    _rewrite(run, edit)
    with pytest.raises(MedsbenchError, match=message) as err:
        RunFolder(run).predictions()
    assert "\n" not in str(err.value)


def test_a_manifest_with_a_hostile_task_id_is_refused(tmp_path):
    run = _finished_run(tmp_path)
    data = json.loads((run / "manifest.json").read_text())
    data["tasks"]["../escape"] = data["tasks"].pop("task57")
    (run / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(MedsbenchError, match="task id '../escape' is not a valid name"):
        RunFolder(run).manifest()


def test_check_plan_accepts_exactly_the_plan(tmp_path):
    run = _finished_run(tmp_path)
    folder = RunFolder(run)
    rows = folder.predictions(plan=False)
    check_plan(folder.manifest(), rows, "x")  # the run's own rows
    with pytest.raises(MedsbenchError):
        check_plan(folder.manifest(), rows[::-1], "x")  # same ids, another order: not the planned sequence


def test_redacted_urls_keep_no_query_userinfo_or_fragment_in_any_file(tmp_path):
    from medsbench.pipeline import evaluate

    ws = make_workspace(tmp_path / "ws", n_mcqa=2, n_ner=0)
    url = "http://alice:s3cret@127.0.0.1:9/v1?pwd=PWDVAL&credential=CREDVAL#FRAGVAL"
    res = evaluate(CountingBackend(), "task57", workspace=ws, out=tmp_path / "r", progress=False,
                   spec=f"openai:m,base_url={url}")
    files = "".join(p.read_text() for p in res.run_dir.iterdir() if p.is_file())
    for secret in ("s3cret", "PWDVAL", "CREDVAL", "FRAGVAL", "alice"):
        assert secret not in files
    assert res.manifest.config.model_complete is False and REDACTED not in res.manifest.model


# --------------------------------------------------------------------------- score and compare


def test_score_and_compare_take_run_folders_and_refuse_duplicates_and_no_overlap(tmp_path):
    from medsbench.metrics import score_predictions
    from medsbench.metrics.compare import compare_rows
    from test_runs_integrity import cli

    run = _finished_run(tmp_path)
    proc = cli("score", str(run))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "results.json").read_text())["protocol"] == "medsbench"  # from the manifest
    dup = tmp_path / "dup.jsonl"
    lines = (run / "predictions.jsonl").read_text().splitlines()
    dup.write_text("\n".join(lines + lines[:2]) + "\n")
    with pytest.raises(MedsbenchError, match="duplicated item: task57 id 'q0'"):
        score_predictions(dup)
    proc = cli("score", str(dup))
    assert proc.returncode == 1 and "duplicated item" in proc.stderr
    rows = RunFolder(run).predictions()
    others = [r.model_copy(update={"id": f"x{r.id}"}) for r in rows]
    with pytest.raises(MedsbenchError, match="share no item"):
        compare_rows(rows, others)
    apart = tmp_path / "apart.jsonl"
    apart.write_text("".join(r.model_dump_json() + "\n" for r in others))
    proc = cli("compare", str(run), str(apart))
    assert proc.returncode == 1 and "share no item" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("compare", str(run), str(run))
    assert proc.returncode == 0 and str(run) in proc.stdout.replace("\n", "")
