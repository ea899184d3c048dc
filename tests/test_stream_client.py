"""The OpenAI-compatible stream client against a real HTTP server on 127.0.0.1 that misbehaves on purpose
(tests/servers/scripted.py): what it sends is parsed as sent, and every fault is one line with what arrived kept."""
import json
import math
import socket
import threading

import pytest

from llmviz.models.openai_stream import NO_LOGPROBS, Stream, StreamRequest, chunk_tokens, complete, stream
from llmviz.scenes.cli.main import main
from servers.processes import free_port
from servers.scripted import MODEL, TOKENS, ScriptedServer


@pytest.fixture(scope="module")
def server():
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def held(server):
    """The server's waiting behaviours wait (until the test ends)."""
    server.release.clear()
    yield server
    server.release.set()


def ask(url, chat=False, **kw):
    return stream(StreamRequest(url, "m", "hi", chat=chat, **kw))


@pytest.mark.parametrize("chat", [False, True])
def test_tokens_logprobs_and_alternatives_are_what_the_server_sent(server, chat):
    r = ask(server.url("ok"), chat, top_logprobs=2)
    assert r.error is None and r.finish_reason == "length" and r.served_model == MODEL
    assert [(t.text, t.logprob) for t in r.tokens] == [(text, lp) for text, lp, _ in TOKENS]
    for token, (_, _, top) in zip(r.tokens, TOKENS):
        assert token.top == sorted(top.items(), key=lambda kv: -kv[1])
        assert token.probability == pytest.approx(math.exp(token.logprob))
        # entropy over the returned top-K only, worked out by hand from the server's numbers
        assert token.entropy == pytest.approx(-sum(math.exp(v) * v for v in top.values()))
        assert token.top_mass == pytest.approx(sum(math.exp(v) for v in top.values()))
    assert r.text == "".join(text for text, _, _ in TOKENS) and not r.logprobs_note


def test_the_request_asks_each_api_for_log_probabilities_its_own_way(server):
    ask(server.url("ok"), False, top_logprobs=3, max_tokens=7)
    path, body = server.requests[-1]
    assert path.endswith("/ok/v1/completions")
    assert body == {"model": "m", "prompt": "hi", "stream": True, "logprobs": 3, "max_tokens": 7, "temperature": 0.0}
    ask(server.url("ok"), True, top_logprobs=4)
    path, body = server.requests[-1]
    assert path.endswith("/ok/v1/chat/completions")
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert (body["logprobs"], body["top_logprobs"], body["stream"]) == (True, 4, True)


def test_a_whole_json_answer_is_taken_as_one():
    """The non-streamed shapes of both APIs (what `complete` reads) give the same tokens as their chunks."""
    text, tokens = chunk_tokens({"choices": [{"text": "ab", "logprobs": {
        "tokens": ["a", "b"], "token_logprobs": [-1.0, -2.0], "top_logprobs": [{"a": -1.0}, {"b": -2.0, "c": -3.0}]}}]},
        chat=False)
    assert text == "ab" and [(t.text, t.logprob, t.top) for t in tokens] == [
        ("a", -1.0, [("a", -1.0)]), ("b", -2.0, [("b", -2.0), ("c", -3.0)])]
    text, tokens = chunk_tokens({"choices": [{"message": {"content": "x"}, "logprobs": {"content": [
        {"token": "x", "logprob": -0.5, "top_logprobs": [{"token": "x", "logprob": -0.5}]}]}}]}, chat=True)
    assert text == "x" and (tokens[0].text, tokens[0].logprob, tokens[0].top) == ("x", -0.5, [("x", -0.5)])
    _, plain = chunk_tokens({"choices": [{"delta": {"content": " hi"}}]}, chat=True)
    assert [(t.text, t.logprob, t.top) for t in plain] == [(" hi", None, [])]


@pytest.mark.parametrize("kind, words, kept", [
    ("notfound", ["HTTP 404", "unknown model 'm'", "does not exist", f"the server has: {MODEL}"], 0),
    ("crash", ["HTTP 500", "CUDA out of memory"], 0),
    ("garbage", ["not JSON", "after 1 tokens"], 1),
    ("html", ["not an event stream", "text/html"], 0),
    ("cut", ["cut off", "no [DONE]"], 2),
    ("cutchunk", ["cut off after 1 tokens"], 1),
    ("longline", ["longer than"], 0),
    ("nowhere", ["HTTP 404", "Not Found"], 0),
])
@pytest.mark.parametrize("chat", [False, True])
def test_a_fault_is_one_line_and_what_arrived_is_kept(server, kind, words, kept, chat):
    r = ask(server.url(kind), chat)
    assert r.error and "\n" not in r.error and r.done
    for word in words:
        assert word in r.error
    assert [t.text for t in r.tokens] == [text for text, _, _ in TOKENS[:kept]]


def test_a_server_that_never_answers_times_out(held):
    r = ask(held.url("silent"), read_timeout_s=0.5)
    assert r.error.endswith("no answer within 0.5 s (timeout)") and not r.tokens


def test_a_stream_that_stalls_times_out_with_its_tokens(held):
    r = ask(held.url("stall"), read_timeout_s=0.5)
    assert "no data for 0.5 s after 1 tokens (read timeout)" in r.error and [t.text for t in r.tokens] == ["Hello"]


def test_a_stream_that_never_ends_meets_its_deadline(held):
    """Keep-alive comments every 0.2 s would beat any read timeout; the total deadline still ends it."""
    r = ask(held.url("trickle"), read_timeout_s=5, total_timeout_s=1.0)
    assert "ran past 1 s after 1 tokens (total timeout)" in r.error and len(r.tokens) == 1


def test_an_unreachable_port_is_one_line():
    port = free_port()
    r = ask(f"http://127.0.0.1:{port}/v1")
    assert r.error == f"cannot reach http://127.0.0.1:{port}/v1/completions: connection refused " \
                      f"(is the server running on port {port}?)"


def test_a_connect_that_hangs_times_out():
    """A listening socket whose accept queue is full drops new connections' SYNs: connect() would wait for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        r = ask(f"http://127.0.0.1:{port}/v1", connect_timeout_s=0.5, read_timeout_s=0.5)
        assert r.error in (f"http://127.0.0.1:{port}/v1/completions: no connect within 0.5 s (timeout)",
                           f"http://127.0.0.1:{port}/v1/completions: no answer within 0.5 s (timeout)")
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_stop_from_another_thread_ends_a_waiting_stream_with_its_tokens(held):
    s = Stream(StreamRequest(held.url("stall"), "m", "hi", read_timeout_s=60))
    worker = threading.Thread(target=s.run)
    worker.start()
    while not s.result.tokens and worker.is_alive():
        worker.join(0.05)
    s.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert s.result.error == "stopped after 1 tokens" and [t.text for t in s.result.tokens] == ["Hello"]


@pytest.mark.parametrize("field, value, words", [
    ("url", "ftp://x/v1", "is not http://HOST:PORT/v1"), ("url", "http://h:99999/v1", "bad port"),
    ("model", "", "model"), ("top_logprobs", 21, "between 0 and 20"), ("max_tokens", 0, "max-tokens"),
    ("temperature", float("nan"), "temperature"), ("read_timeout_s", 0.0, "timeout"),
])
def test_a_request_that_cannot_be_sent_is_refused_before_connecting(field, value, words):
    args = dict(url="http://127.0.0.1:1/v1", model="m", prompt="hi")
    args[field] = value
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Stream(StreamRequest(**args))


def test_complete_asks_for_the_whole_answer(server):
    complete(StreamRequest(server.url("ok"), "m", "hi"))
    assert server.requests[-1][1]["stream"] is False


# ---------------------------------------------------------------- llmviz stream

def test_cli_prints_each_token_with_probability_alternatives_and_entropy(server, capsys):
    assert main(["stream", "--url", server.url("ok"), "--model", "m", "--prompt", "hi", "--top-logprobs", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "entropy is over the top-K only" in out[0]
    first = out[1]
    assert '"Hello"' in first and "p 0.9048" in first and "logprob  -0.1000" in first
    assert f"H(top-2) {-(math.exp(-0.1) * -0.1 + math.exp(-2.5) * -2.5):.3f} nats" in first and '"Hi" 0.082' in first
    assert out[4] == 'text (served as scripted-model): "Hello, world"'
    assert out[5].startswith("3 tokens, finish: length")


def test_cli_json_holds_the_tokens_and_the_error(server, capsys):
    assert main(["stream", "--url", server.url("cut"), "--model", "m", "--prompt", "hi", "--chat", "--json"]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert [t["text"] for t in data["tokens"]] == ["Hello", ","] and data["api"] == "chat/completions"
    assert data["tokens"][0]["top_logprobs"] == [{"text": "Hello", "logprob": -0.1}, {"text": "Hi", "logprob": -2.5}]
    assert "cut off" in data["error"]
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("llmviz stream: error: ") and "cut off" in line


@pytest.mark.parametrize("args, words", [
    (["--url", "localhost:8000"], "is not http://HOST:PORT/v1"),
    (["--top-logprobs", "50"], "--top-logprobs must be an integer between 0 and 20"),
    (["--max-tokens", "x"], "--max-tokens 'x' is not an integer"),
    (["--temperature", "-1"], "--temperature must be between 0 and 10"),
    (["--timeout", "inf"], "--timeout must be between"),
])
def test_cli_bad_arguments_are_one_line_and_exit_2(args, words, capsys):
    base = {"--url": "http://127.0.0.1:1/v1", "--model": "m", "--prompt": "hi"}
    argv = ["stream"] + [x for k, v in base.items() if k not in args for x in (k, v)] + args
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert words in line


def test_cli_says_when_a_server_sends_no_log_probabilities(server, capsys):
    assert main(["stream", "--url", server.url("plain"), "--model", "m", "--prompt", "hi"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:4] == ['   1  "Hello"', '   2  ","', '   3  " world"'] and out[-1] == NO_LOGPROBS


# ---------------------------------------------------------------- hostile bytes

class _Body:
    """The bytes of a response body behind the two calls the event reader makes (a parser's input, not a server)."""

    def __init__(self, data: bytes):
        import io

        self._io = io.BytesIO(data)

    def readline(self, limit):
        return self._io.readline(limit)

    def getheader(self, name, default=None):
        return "text/event-stream"


def _event_bytes():
    from hypothesis import strategies as st

    pieces = st.sampled_from([b"data: ", b"data:", b"\n", b"\r\n", b"\n\n", b": ping\n", b"event: x\n", b"[DONE]",
                              b'{"choices": [', b'{"text": "a", "logprobs": {"tokens": ["a"], "token_logprobs": [',
                              b'"top_logprobs": [{"a": -1}]', b"]}}]}", b'{"delta": {"content": null}}', b"null",
                              b'{"error": "x"}', b"-1e999", b"NaN", b"\xff\xfe", b"}", b"]", b","])
    return st.lists(st.one_of(pieces, st.binary(max_size=12)), max_size=40).map(b"".join)


def test_any_bytes_in_the_stream_give_tokens_or_one_line():
    import os

    from hypothesis import given, settings

    from llmviz.models.openai_stream import StreamError

    @settings(max_examples=int(os.environ.get("LLMVIZ_FUZZ") and 3000 or 200), deadline=None)
    @given(_event_bytes())
    def check(data):
        for chat in (False, True):
            s = Stream(StreamRequest("http://127.0.0.1:1/v1", "m", "hi", chat=chat))
            try:
                s._events(_Body(data), "http://127.0.0.1:1/v1/completions")
            except StreamError as err:
                assert "\n" not in str(err)
            for token in s.result.tokens:
                assert isinstance(token.text, str)
                assert token.logprob is None or isinstance(token.logprob, float)

    check()
