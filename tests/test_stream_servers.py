"""`llmviz stream` against real OpenAI-compatible servers on 127.0.0.1, started here as child processes and always killed:
llama-cpp-python's server on a tiny GGUF written here from a random-weight Llama (it serves log-probabilities),
and `transformers serve` on the same weights as a transformers folder (it streams without them).

Fidelity: at temperature 0 the streamed tokens and log-probabilities equal the same server's non-streamed
answer, and llama.cpp's greedy tokens and log-probabilities equal transformers' own forward on the same
weights (an independent reference for the GGUF writer, too)."""
import importlib.util
import json

import pytest

from llmviz.models.openai_stream import NO_LOGPROBS, StreamRequest, complete, stream
from llmviz.scenes.cli.main import main
from servers.processes import ServerProcess, free_port, llama_cpp_command, transformers_command

PROMPT = "hello world, the model"
ALIAS = "tiny-llama"
TOKENS = 12
# llama.cpp reuses the cached prompt on the second request, so its logits come from another batch split:
# the same tokens, their log-probabilities up to a few 1e-4 apart (measured: 6e-4 at most).
SAME_SERVER_ABS = 2e-3
# llama.cpp (float32 weights, float16 KV cache) against transformers in float64 on the same weights.
TRANSFORMERS_ABS = 1e-2

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None
try:
    from transformers.utils.import_utils import is_serve_available

    HAVE_SERVE = is_serve_available()
except ImportError:
    HAVE_SERVE = False
NO_LLAMA = ("llama-cpp-python's server is not installed: `make test` builds it from its sdist "
            "(the llama-server target of the Makefile); its build failed or was skipped here")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    pytest.importorskip("gguf")
    import torch

    from servers.tiny_llama import write_gguf, write_hf_folder

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny-llama")
    write_hf_folder(folder)
    return folder, write_gguf(folder, folder.parent / "tiny-llama.gguf")


@pytest.fixture(scope="module")
def servers(model_files, tmp_path_factory):
    """Both servers started together (transformers serve's imports take the longest), killed at the end."""
    folder, gguf = model_files
    logs = tmp_path_factory.mktemp("server-logs")
    started = {}
    try:
        if HAVE_SERVE:
            port = free_port()
            started["transformers"] = ServerProcess(transformers_command(folder, port), port, logs / "transformers.log")
        if HAVE_LLAMA:
            port = free_port()
            started["llama"] = ServerProcess(llama_cpp_command(gguf, port, ALIAS), port, logs / "llama.log")
        yield started
    finally:
        for server in started.values():
            server.close()


@pytest.fixture(scope="module")
def llama_url(servers):
    if "llama" not in servers:
        pytest.skip(NO_LLAMA)
    return servers["llama"].url()


@pytest.fixture(scope="module")
def transformers_url(servers):
    if "transformers" not in servers:
        pytest.skip("transformers serve needs transformers[serving] (fastapi, uvicorn, openai): the dev extras")
    return servers["transformers"].url()


def _request(url, chat, model=ALIAS, **kw):
    return StreamRequest(url, model, PROMPT, chat=chat, top_logprobs=3, max_tokens=TOKENS, temperature=0.0, **kw)


@pytest.mark.parametrize("chat", [False, True])
def test_llama_cpp_streamed_tokens_and_logprobs_equal_its_whole_answer(llama_url, chat):
    req = _request(llama_url, chat)
    streamed, whole = stream(req), complete(req)
    assert streamed.error is None and whole.error is None
    assert len(streamed.tokens) == TOKENS and streamed.finish_reason == whole.finish_reason == "length"
    assert [t.text for t in streamed.tokens] == [t.text for t in whole.tokens]
    assert streamed.text == whole.text == "".join(t.text for t in whole.tokens)
    for a, b in zip(streamed.tokens, whole.tokens):
        assert a.logprob == pytest.approx(b.logprob, abs=SAME_SERVER_ABS)
        assert [t for t, _ in a.top] == [t for t, _ in b.top] and len(a.top) == 3
        assert [v for _, v in a.top] == pytest.approx([v for _, v in b.top], abs=SAME_SERVER_ABS)
        if not chat:  # greedy: the most likely one (llama-cpp-python's chat handler adds its repeat penalty)
            assert a.top[0] == (a.text, a.logprob)


def test_llama_cpp_answers_as_transformers_computes_the_same_weights(llama_url, model_files):
    """Greedy tokens from the GGUF through llama.cpp equal transformers' argmax on the folder, step by step."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, _ = model_files
    streamed = stream(_request(llama_url, chat=False))
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float64).eval()
    ids = tokenizer(PROMPT)["input_ids"]
    with torch.no_grad():
        for token in streamed.tokens:
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], -1)
            best = int(logprobs.argmax())
            assert tokenizer.decode([best]) == token.text
            assert float(logprobs[best]) == pytest.approx(token.logprob, abs=TRANSFORMERS_ABS)
            top = torch.topk(logprobs, 3)
            assert [tokenizer.decode([i]) for i in top.indices.tolist()] == [t for t, _ in token.top]
            ids.append(best)


def test_cli_streams_from_llama_cpp(llama_url, capsys):
    assert main(["stream", "--url", llama_url, "--model", ALIAS, "--prompt", PROMPT, "--max-tokens", "4",
                 "--top-logprobs", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["tokens"]) == 4 and data["logprobs"] and data["note"] is None
    assert all(len(t["top_logprobs"]) == 2 and t["entropy_top_k_nats"] > 0 for t in data["tokens"])
    assert data["first_token_s"] > 0 and data["finish_reason"] == "length"


@pytest.mark.parametrize("chat", [False, True])
def test_transformers_serve_streams_text_without_logprobs(transformers_url, model_files, chat):
    folder, _ = model_files
    req = _request(transformers_url, chat, model=str(folder))
    streamed, whole = stream(req), complete(req)
    assert streamed.error is None and whole.error is None
    assert streamed.tokens and not streamed.has_logprobs and streamed.logprobs_note == NO_LOGPROBS
    assert streamed.text == whole.text and "".join(t.text for t in streamed.tokens) == whole.text


def test_transformers_serve_names_an_unknown_model(transformers_url, model_files):
    folder, _ = model_files
    r = stream(_request(transformers_url, False, model="no-such-model"))
    assert r.error.startswith("HTTP 400 from ") and "unknown model 'no-such-model'" in r.error
    assert f"the server has: {folder}" in r.error and not r.tokens


def test_cli_says_transformers_serve_sent_no_logprobs(transformers_url, model_files, capsys):
    folder, _ = model_files
    assert main(["stream", "--url", transformers_url, "--model", str(folder), "--prompt", PROMPT, "--chat",
                 "--max-tokens", "4"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == NO_LOGPROBS
