"""Task file format: lossless round trips, streaming, both layouts."""

from __future__ import annotations

import json

import pytest

from medsbench.errors import MedsbenchError
from medsbench.tasks import format as fmt
from medsbench.tasks import read_meta, read_task, write_task
from medsbench.tasks.format import iter_instances, save_task

OFFICIAL = {
    "Contributors": "MeQSum",
    "Source": ["MeQSum"],
    "URL": ["https://github.com/abachaa/MeQSum"],
    "Categories": ["Text Summarization"],
    "Reasoning": [],
    "Definition": ["Summarize the consumer health question."],
    "Input_language": ["English"],
    "Output_language": ["English"],
    "Instruction_language": ["English"],
    "Domains": ["Public Health"],
    "Positive Examples": [{"input": "x", "output": "y", "explanation": "z"}],
    "Negative Examples": [],
    "Instances": [
        {"id": "a-1", "input": "SUBJECT: metformin MESSAGE: side effects?", "output": "What are the side effects of metformin?"},
        {"id": 7, "input": "Quels sont les effets ? é 中文 😀", "output": ["one", "two"]},
        {"input": "no id here", "output": ["x"], "extra_field": {"k": [1, 2]}},
    ],
}


@pytest.fixture(params=["json", "jsonl"])
def layout(request):
    return request.param


def _roundtrip(tmp_path, obj, layout):
    src = tmp_path / "task1_src.json"
    src.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    task = read_task(src)
    out = tmp_path / f"task1_out.{layout}"
    save_task(task, out)
    return src, out


def test_roundtrip_is_lossless(tmp_path, layout):
    _, out = _roundtrip(tmp_path, OFFICIAL, layout)
    again = read_task(out)
    assert again.to_json() == OFFICIAL
    if layout == "json":
        assert json.loads(out.read_text(encoding="utf-8")) == OFFICIAL


def test_outputs_normalised_to_lists(tmp_path):
    src, _ = _roundtrip(tmp_path, OFFICIAL, "json")
    task = read_task(src)
    assert [i.output for i in task.instances] == [["What are the side effects of metformin?"], ["one", "two"], ["x"]]
    assert [i.id for i in task.instances] == ["a-1", "7", "2"]
    assert task.definition == "Summarize the consumer health question."
    assert task.categories == ["Text Summarization"]
    assert task.task_id == "task1"


def test_streaming_path_matches_whole_file(tmp_path, monkeypatch):
    src, _ = _roundtrip(tmp_path, OFFICIAL, "json")
    whole_meta, whole = read_meta(src), [i.to_json() for i in iter_instances(src)]
    monkeypatch.setattr(fmt, "_WHOLE_FILE_LIMIT", 0)  # force the ijson streaming path
    assert read_meta(src) == whole_meta
    assert [i.to_json() for i in iter_instances(src)] == whole
    assert read_task(src).to_json() == OFFICIAL


def test_meta_after_instances_is_read_when_streaming(tmp_path, monkeypatch):
    obj = {"Instances": [{"id": "1", "input": "a", "output": "b"}], "Definition": ["late key"], "Nested": {"a": [1, {"b": None}]}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(obj))
    monkeypatch.setattr(fmt, "_WHOLE_FILE_LIMIT", 0)
    assert read_meta(path) == {"Definition": ["late key"], "Nested": {"a": [1, {"b": None}]}}


def test_write_task_streams_a_generator(tmp_path, layout):
    meta = {k: v for k, v in OFFICIAL.items() if k != "Instances"}
    pulled = []

    def gen():  # a generator has no length: the writer must consume it once, in order
        for i in range(1000):
            pulled.append(i)
            yield {"id": str(i), "input": f"q{i}", "output": [f"a{i}"]}

    path = tmp_path / f"big.{layout}"
    assert write_task(path, meta, gen()) == 1000
    assert pulled == list(range(1000))
    back = [(inst.id, inst.input, inst.output) for inst in iter_instances(path)]
    assert back == [(str(i), f"q{i}", [f"a{i}"]) for i in range(1000)]
    assert read_meta(path) == meta


def test_split_and_task_id_from_meta_or_name(tmp_path):
    path = tmp_path / "task57_medqa_en.train.json"
    write_task(path, {"Definition": ["d"]}, [{"id": "1", "input": "a", "output": "b"}])
    assert read_task(path).split == "train" and read_task(path).task_id == "task57"
    ours = tmp_path / "whatever.json"
    write_task(ours, {"medsbench": {"task_id": "task12", "split": "test"}}, [{"id": "1", "input": "a", "output": "b"}])
    assert read_task(ours).task_id == "task12" and read_task(ours).split == "test"


@pytest.mark.parametrize("content,where", [
    ('{"Definition": ["d"], "Instances": [{"id": 1, "input": "a",\n', ":2"),
    ("[1, 2, 3]", "must hold one JSON object"),
    ('{"Definition": ["d"]}', "Instances: missing"),
])
def test_bad_files_raise_one_line(tmp_path, content, where):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(MedsbenchError) as exc:
        read_task(path)
    assert str(path) in str(exc.value) and where in str(exc.value)
    assert "\n" not in str(exc.value)


def test_truncated_file_streaming_names_file(tmp_path, monkeypatch):
    path = tmp_path / "trunc.json"
    path.write_text('{"Definition": ["d"], "Instances": [{"id": 1, "input": "a", "output": "b"}, {"id": 2, "inp')
    monkeypatch.setattr(fmt, "_WHOLE_FILE_LIMIT", 0)
    with pytest.raises(MedsbenchError, match="trunc.json: invalid JSON"):
        list(iter_instances(path))


def test_jsonl_requires_header(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "1", "input": "a", "output": "b"}\n')
    with pytest.raises(MedsbenchError, match=r"t.jsonl:1: first line must be"):
        read_meta(path)
    path.write_text('{"__meta__": {}}\n{"id": "1", "input": "a"\n')
    with pytest.raises(MedsbenchError, match=r"t.jsonl:2: invalid JSON"):
        list(iter_instances(path))
