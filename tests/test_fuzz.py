"""Fuzzing the readers and the CLI: random and mutated task files, prediction files and
submissions give a clean exit or one ``error:`` line, never a traceback (see tests/fuzzing.py;
bench/fuzz_bench.py runs a larger seeded budget)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import SEEDS, check_clean_failure, commands_for, mutate_file_text, run_cli, write_bench_tasks


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    write_bench_tasks(work)
    return work


def _write(work, name: str, text: str):
    path = work / "in" / name.replace(".", "-") / name  # one folder per kind: `data stats` reads the folder
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_valid_seed_files_are_accepted(name, work):
    """The seeds themselves read cleanly (so the mutations start from something real)."""
    path = _write(work, name, SEEDS[name]())
    for argv in commands_for(name, path, work):
        code, err = run_cli(argv)
        assert code == 0, (argv, err)
        if argv[0] == "board":  # each submission is a new pending entry
            assert "pending" in err + "" or code == 0


@pytest.mark.parametrize("name", sorted(SEEDS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_files_fail_cleanly(name, seed, work):
    rng = random.Random(seed)
    path = _write(work, name, mutate_file_text(name, rng))
    for argv in commands_for(name, path, work):
        code, err = run_cli(argv)
        check_clean_failure(code, err, argv)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=400), name=st.sampled_from(sorted(SEEDS)))
def test_random_bytes_fail_cleanly(blob, name, work):
    path = work / "bytes" / name.replace(".", "-") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    for argv in commands_for(name, path, work):
        code, err = run_cli(argv)
        check_clean_failure(code, err, argv)


def test_hostile_run_folders_neither_crash_a_stage_nor_escape_their_roots(tmp_path):
    from fuzzing import fuzz_run_folders

    res = fuzz_run_folders(tmp_path, 8, seed=3)
    assert res["bad"] == [] and res["outside"] == []
    assert res["codes"].get(1, 0) > 0 and res["codes"].get(0, 0) > 0  # some refused, some (untouched fields) accepted


def test_the_escape_check_sees_a_file_outside_the_roots_and_a_marked_name(tmp_path):
    from fuzzing import MARK, escaped

    root, site = tmp_path, tmp_path / "case0" / "site"
    (site / "runs").mkdir(parents=True)
    (site / "runs" / "ok.html").write_text("x")
    assert escaped(root, [site]) == []
    planted = root / "outside" / MARK
    planted.parent.mkdir()
    planted.write_text("x")  # where a ../ id would land
    named = site / "runs" / f"{MARK}.html"
    named.write_text("x")  # a hostile id used as a file name inside the root
    assert sorted(escaped(root, [site])) == sorted([planted, named])


def test_judged_json_is_checked_where_it_is_read(tmp_path):
    """A judged.json with a hostile judge name, a huge spec or a run path with control characters is refused
    in one line naming the field (it once kept `judge --report` busy for minutes)."""
    import json

    from fuzzing import make_run
    from medsbench.errors import MedsbenchError
    from medsbench.records.folder import RunFolder

    run = make_run(tmp_path)
    path = RunFolder(run).judged_path
    good = json.loads(path.read_text())
    assert RunFolder(run).judged().judges[0].name == "j1"
    for field, value, where in (("name", "../x", "judges.0.name"), ("spec", "x" * 10_000_000, "judges.0.spec")):
        bad = json.loads(json.dumps(good))
        bad["judges"][0][field] = value
        path.write_text(json.dumps(bad))
        with pytest.raises(MedsbenchError, match=where) as err:
            RunFolder(run).judged()
        assert "\n" not in str(err.value) and len(str(err.value)) < 400
    path.write_text(json.dumps({**good, "run": "runs/a\nb"}))
    with pytest.raises(MedsbenchError, match="run .* is not printable text"):
        RunFolder(run).judged()
