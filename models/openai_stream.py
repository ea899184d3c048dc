"""A client for OpenAI-compatible inference servers (vLLM, TGI, llama.cpp, transformers serve): streamed tokens and log-probabilities.

Completions (``prompt``, ``logprobs: K``: choices[].logprobs.tokens / token_logprobs / top_logprobs)
and chat completions (``messages``, ``logprobs: true, top_logprobs: K``: choices[].logprobs.content[])
are asked for with ``stream: true`` and read as server-sent events. Only the standard library: the
socket has a timeout on connecting and on every read, the whole stream a deadline, and every line,
event and the whole body are bounded before they are kept, so a silent, endless or hostile server
is one line, never a hang. Whatever arrived before a failure stays in the StreamResult beside the
error line (``error``), so a cut-off stream still shows its tokens.

The entropy of a token is over the top-K alternatives the server returned only (the rest of the
vocabulary is not known here), in nats; ``top_mass`` says how much probability those K cover.
No torch, no numpy: this runs on the explorer's worker thread and in `llmviz stream`.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import math
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

MAX_LINE_BYTES = 1 << 20        # one line of the event stream
MAX_EVENT_BYTES = 4 << 20       # one event (its data lines joined)
MAX_BODY_BYTES = 64 << 20       # everything one stream may send
MAX_ERROR_BYTES = 64 << 10      # the body of an HTTP error, kept for its message
MAX_TOKENS = 100_000            # tokens one stream may deliver
MAX_TOP_LOGPROBS = 20           # OpenAI's own limit for top_logprobs
MAX_PROMPT_CHARS = 1 << 20
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0           # a large model's first token on a busy server may take this long
TOTAL_TIMEOUT_S = 600.0
NO_LOGPROBS = "no log-probabilities from this server"


class StreamError(Exception):
    """A stream that could not be made or read: the message is one line naming the server or the field."""


@dataclass(frozen=True)
class StreamRequest:
    """What to ask: the server's base URL (``http://HOST:PORT/v1``), the model, the prompt and the sampling."""

    url: str
    model: str
    prompt: str
    chat: bool = False
    top_logprobs: int = 5           # K alternatives per token; 0: the chosen token's log-probability only
    max_tokens: int = 64
    temperature: float = 0.0
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    total_timeout_s: float = TOTAL_TIMEOUT_S
    stream: bool = True             # False: the whole answer at once (what a stream is compared with)

    def check(self) -> None:
        """ValueError naming the field when the request cannot be sent as it is."""
        endpoint(self.url, self.chat)
        if not self.model or len(self.model) > 1000 or any(c in self.model for c in "\r\n"):
            raise ValueError("model: give the server's model name (one line, at most 1000 characters)")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt: at most {MAX_PROMPT_CHARS} characters, got {len(self.prompt)}")
        if not 0 <= int(self.top_logprobs) <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top-logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {self.top_logprobs}")
        if not 1 <= int(self.max_tokens) <= MAX_TOKENS:
            raise ValueError(f"max-tokens must be between 1 and {MAX_TOKENS}, got {self.max_tokens}")
        if not (math.isfinite(self.temperature) and 0.0 <= self.temperature <= 10.0):
            raise ValueError(f"temperature must be between 0 and 10, got {self.temperature}")
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value <= 86400.0):
                raise ValueError(f"{name}: a timeout must be between 0 and 86400 s, got {value}")

    def body(self) -> dict:
        """The JSON the server is sent."""
        body = {"model": self.model, "stream": bool(self.stream), "max_tokens": int(self.max_tokens),
                "temperature": float(self.temperature)}
        if self.chat:
            body["messages"] = [{"role": "user", "content": self.prompt}]
            body["logprobs"] = True
            body["top_logprobs"] = int(self.top_logprobs)
        else:
            body["prompt"] = self.prompt
            body["logprobs"] = int(self.top_logprobs)
        return body


@dataclass
class Token:
    """One streamed token: its text, log-probability and the top-K alternatives (text, log-probability), best first."""

    text: str
    logprob: float | None = None
    top: list = field(default_factory=list)

    @property
    def probability(self) -> float | None:
        return None if self.logprob is None else math.exp(self.logprob)

    @property
    def entropy(self) -> float | None:
        """-sum p ln p over the returned top-K alternatives only (nats); None without them."""
        if not self.top:
            return None
        return -sum(math.exp(lp) * lp for _, lp in self.top if lp > -math.inf)

    @property
    def top_mass(self) -> float | None:
        """The probability the returned top-K alternatives cover together."""
        return sum(math.exp(lp) for _, lp in self.top) if self.top else None

    def as_dict(self) -> dict:
        return {"text": self.text, "logprob": self.logprob, "probability": self.probability,
                "top_logprobs": [{"text": t, "logprob": lp} for t, lp in self.top],
                "entropy_top_k_nats": self.entropy, "top_k_mass": self.top_mass}


@dataclass
class StreamResult:
    """What one stream delivered so far. The worker appends; a reader (the frame) only reads."""

    request: StreamRequest
    tokens: list = field(default_factory=list)
    text: str = ""                      # the text as the server streamed it (may hold what no token carries)
    served_model: str | None = None     # the "model" field of the server's answer
    finish_reason: str | None = None
    error: str | None = None            # one line, when the stream failed; the tokens above stay
    done: bool = False
    started: float = field(default_factory=time.monotonic)
    first_token_s: float | None = None  # from sending the request to the first token
    elapsed_s: float = 0.0

    @property
    def has_logprobs(self) -> bool:
        return any(t.logprob is not None for t in self.tokens)

    @property
    def logprobs_note(self) -> str:
        """"" when the server sent log-probabilities; otherwise the line that says it did not."""
        return "" if self.has_logprobs or not self.tokens else NO_LOGPROBS

    @property
    def tokens_per_s(self) -> float | None:
        """Tokens after the first, over the time after the first (the decoding rate, not the prompt's)."""
        span = self.elapsed_s - (self.first_token_s or 0.0)
        return (len(self.tokens) - 1) / span if len(self.tokens) > 1 and span > 0 else None

    def as_dict(self) -> dict:
        r = self.request
        return {"url": r.url, "model": r.model, "served_model": self.served_model,
                "api": "chat/completions" if r.chat else "completions", "prompt": r.prompt,
                "top_logprobs": r.top_logprobs, "max_tokens": r.max_tokens, "temperature": r.temperature,
                "text": self.text, "tokens": [t.as_dict() for t in self.tokens], "finish_reason": self.finish_reason,
                "logprobs": self.has_logprobs, "note": self.logprobs_note or None, "error": self.error,
                "first_token_s": self.first_token_s, "elapsed_s": self.elapsed_s, "tokens_per_s": self.tokens_per_s,
                "entropy": "over the top-K alternatives the server returned only, in nats"}


def endpoint(url: str, chat: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of the completions (or chat completions) endpoint under the base ``url``;
    a base without a path means /v1. ValueError naming the URL otherwise."""
    text = (url or "").strip()
    if len(text) > 2000:
        raise ValueError("url: at most 2000 characters")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url {text[:80]!r} is not http://HOST:PORT/v1 (or https://)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"url {text[:80]!r} has a bad port") from None
    base = parts.path.rstrip("/") or "/v1"
    path = base + ("/chat/completions" if chat else "/completions")
    return parts.scheme, parts.hostname, port, path


# --------------------------------------------------------------------- reading one chunk

def _top_list(entries) -> list:
    """(text, logprob) pairs, best first, from completions' {token: logprob} or chat's [{token, logprob}]."""
    if isinstance(entries, dict):
        pairs = list(entries.items())
    elif isinstance(entries, list):
        pairs = [(e.get("token"), e.get("logprob")) for e in entries if isinstance(e, dict)]
    else:
        return []
    out = [(str(t), float(lp)) for t, lp in pairs if isinstance(t, str) and isinstance(lp, (int, float))]
    return sorted(out, key=lambda p: -p[1])


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def chunk_tokens(chunk: dict, chat: bool) -> tuple[str, list]:
    """(the chunk's text, its tokens) from one streamed JSON object of either API. With log-probabilities
    the tokens are the ones they name; without, the chunk's text is one token (what the server sent at once)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", []
    choice = choices[0]
    if chat:
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else choice.get("message")
        text = delta.get("content") if isinstance(delta, dict) else None
    else:
        text = choice.get("text")
    text = text if isinstance(text, str) else ""
    logprobs = choice.get("logprobs")
    tokens = []
    if isinstance(logprobs, dict) and chat and isinstance(logprobs.get("content"), list):
        for entry in logprobs["content"]:
            if isinstance(entry, dict) and isinstance(entry.get("token"), str):
                tokens.append(Token(entry["token"], _number(entry.get("logprob")), _top_list(entry.get("top_logprobs"))))
    elif isinstance(logprobs, dict) and not chat and isinstance(logprobs.get("tokens"), list):
        values = logprobs.get("token_logprobs") if isinstance(logprobs.get("token_logprobs"), list) else []
        tops = logprobs.get("top_logprobs") if isinstance(logprobs.get("top_logprobs"), list) else []
        for i, token in enumerate(logprobs["tokens"]):
            if isinstance(token, str):
                tokens.append(Token(token, _number(values[i]) if i < len(values) else None,
                                    _top_list(tops[i]) if i < len(tops) else []))
    if not tokens and text:
        tokens.append(Token(text))
    return text, tokens


def _error_message(body: bytes) -> str:
    """The server's own words from an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300] or "(no message)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(err.get(key), str):
                    return " ".join(err[key].split())[:300]
            if isinstance(err.get("detail"), list):
                return " ".join(json.dumps(err["detail"]).split())[:300]
        if isinstance(err, str):
            return " ".join(err.split())[:300]
    return " ".join(text.split())[:300]


# --------------------------------------------------------------------- the stream

class Stream:
    """One request on its own connection. ``run()`` reads it to the end into ``result`` (on the caller's
    thread: a worker's); ``stop()`` from any other thread ends it at once. ``on_token(token)`` is called as
    each token arrives."""

    def __init__(self, request: StreamRequest, on_token=None):
        request.check()
        self.request = request
        self.result = StreamResult(request)
        self.on_token = on_token
        self._stopped = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """End the stream from another thread: the blocked read returns and ``run`` finishes with what arrived."""
        self._stopped.set()
        conn = self._conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self) -> StreamResult:
        """Read the whole stream; never raises for the server's faults (``result.error`` holds the line)."""
        r = self.result
        r.started = time.monotonic()
        try:
            self._run()
        except StreamError as err:
            r.error = str(err)
        finally:
            r.elapsed_s = time.monotonic() - r.started
            r.done = True
            if self._conn is not None:
                self._conn.close()
        if self.stopped and r.error is None and r.finish_reason is None:
            r.error = f"stopped after {len(r.tokens)} tokens"
        return r

    # ---------------------------------------------------------------- inside run
    def _where(self) -> str:
        scheme, host, port, path = endpoint(self.request.url, self.request.chat)
        return f"{scheme}://{host}:{port}{path}"

    def _connect(self) -> http.client.HTTPResponse:
        req = self.request
        scheme, host, port, path = endpoint(req.url, req.chat)
        where = self._where()
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        kwargs = {"context": ssl.create_default_context()} if scheme == "https" else {}
        conn = cls(host, port, timeout=req.connect_timeout_s, **kwargs)
        self._conn = conn
        body = json.dumps(req.body()).encode()
        try:
            conn.connect()
            conn.sock.settimeout(req.read_timeout_s)
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                           "Accept": "text/event-stream"})
            response = conn.getresponse()
        except socket.gaierror as err:
            raise StreamError(f"cannot reach {where}: unknown host {host!r} ({err.strerror or err})") from None
        except ConnectionRefusedError:
            raise StreamError(f"cannot reach {where}: connection refused (is the server running on port {port}?)") from None
        except (socket.timeout, TimeoutError):
            what = "connect" if conn.sock is None else "answer"
            limit = req.connect_timeout_s if conn.sock is None else req.read_timeout_s
            raise StreamError(f"{where}: no {what} within {limit:g} s (timeout)") from None
        except ssl.SSLError as err:
            raise StreamError(f"{where}: TLS failed ({err.reason or err})") from None
        except (http.client.HTTPException, OSError) as err:
            if self.stopped:
                raise StreamError("stopped before the server answered") from None
            raise StreamError(f"{where}: {type(err).__name__}: {err or 'the connection closed'}") from None
        return response

    def _run(self) -> None:
        req, r = self.request, self.result
        response = self._connect()
        where = self._where()
        if response.status != 200:
            try:
                message = _error_message(response.read(MAX_ERROR_BYTES))
            except (OSError, http.client.HTTPException):
                message = "(the error's body could not be read)"
            said = message.lower()
            if response.status in (400, 404) and ("model" in said or req.model.lower() in said):
                raise StreamError(f"HTTP {response.status} from {where}: unknown model {req.model!r}? "
                                  f"the server says: {message}{self._models_hint()}")
            raise StreamError(f"HTTP {response.status} {response.reason} from {where}: {message}")
        ctype = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":  # a server that ignores stream: true answers once; take it whole
            self._whole_answer(response, where)
            return
        self._events(response, where)

    def _models_hint(self) -> str:
        """" (the server has: a, b)" from GET /v1/models, or "" (a short extra request, bounded like the rest)."""
        scheme, host, port, path = endpoint(self.request.url, False)
        base = path.rsplit("/completions", 1)[0]
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(host, port, timeout=min(self.request.connect_timeout_s, 5.0))
        try:
            conn.request("GET", base + "/models")
            response = conn.getresponse()
            data = json.loads(response.read(MAX_ERROR_BYTES)) if response.status == 200 else None
            names = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)] if isinstance(data, dict) else []
            names = [n for n in names if isinstance(n, str)][:10]
            return f" (the server has: {', '.join(names)})" if names else ""
        except (OSError, ValueError, http.client.HTTPException):
            return ""
        finally:
            conn.close()

    def _deadline_passed(self) -> bool:
        return time.monotonic() - self.result.started > self.request.total_timeout_s

    def _take(self, chunk: dict, where: str) -> None:
        """One JSON object of the stream: an error, or text and tokens."""
        r = self.result
        if isinstance(chunk.get("error"), (dict, str)):
            raise StreamError(f"{where}: the server reported an error in the stream after {len(r.tokens)} tokens: "
                              f"{_error_message(json.dumps(chunk).encode())}")
        if isinstance(chunk.get("model"), str) and r.served_model is None:
            r.served_model = chunk["model"]
        text, tokens = chunk_tokens(chunk, self.request.chat)
        r.text += text
        for token in tokens:
            if len(r.tokens) >= MAX_TOKENS:
                raise StreamError(f"{where}: more than {MAX_TOKENS} tokens in one stream")
            if r.first_token_s is None:
                r.first_token_s = time.monotonic() - r.started
            r.tokens.append(token)
            if self.on_token is not None:
                self.on_token(token)
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            reason = choices[0].get("finish_reason")
            if isinstance(reason, str) and reason:
                r.finish_reason = reason

    def _whole_answer(self, response, where: str) -> None:
        try:
            body = response.read(MAX_BODY_BYTES + 1)
        except (socket.timeout, TimeoutError):
            raise StreamError(f"{where}: no data within {self.request.read_timeout_s:g} s (read timeout)") from None
        except (OSError, http.client.HTTPException) as err:
            raise StreamError(f"{where}: the answer was cut off ({type(err).__name__})") from None
        if len(body) > MAX_BODY_BYTES:
            raise StreamError(f"{where}: the answer is larger than {MAX_BODY_BYTES >> 20} MiB")
        try:
            chunk = json.loads(body)
        except ValueError:
            raise StreamError(f"{where}: the answer is not JSON: {body[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamError(f"{where}: the answer is not a JSON object")
        self._take(chunk, where)
        if not self.result.tokens and self.result.finish_reason is None:
            raise StreamError(f"{where}: the answer holds no choices")

    def _events(self, response, where: str) -> None:
        """Server-sent events: data lines joined until a blank line; comments (":") and other fields skipped;
        ``data: [DONE]`` ends the stream."""
        r, req = self.result, self.request
        total = 0
        data: list[bytes] = []
        size = 0
        saw_event = False
        while True:
            if self.stopped:
                return
            if self._deadline_passed():
                raise StreamError(f"{where}: the stream ran past {req.total_timeout_s:g} s after "
                                  f"{len(r.tokens)} tokens (total timeout)")
            try:
                line = response.readline(MAX_LINE_BYTES + 1)
            except (socket.timeout, TimeoutError):
                raise StreamError(f"{where}: no data for {req.read_timeout_s:g} s after {len(r.tokens)} tokens "
                                  "(read timeout)") from None
            except (OSError, http.client.HTTPException, ValueError) as err:
                if self.stopped:
                    return
                raise StreamError(f"{where}: the stream was cut off after {len(r.tokens)} tokens "
                                  f"({type(err).__name__})") from None
            total += len(line)
            if total > MAX_BODY_BYTES:
                raise StreamError(f"{where}: the stream is larger than {MAX_BODY_BYTES >> 20} MiB")
            if len(line) > MAX_LINE_BYTES:
                raise StreamError(f"{where}: a line of the stream is longer than {MAX_LINE_BYTES >> 10} KiB")
            if not line:  # the server closed the connection
                if self.stopped:
                    return
                if data:
                    raise StreamError(f"{where}: the stream was cut off in the middle of an event after "
                                      f"{len(r.tokens)} tokens")
                if r.finish_reason is not None:
                    return  # finished, only the closing [DONE] is missing
                what = "no event at all" if not saw_event else f"{len(r.tokens)} tokens and no finish"
                raise StreamError(f"{where}: the stream was cut off ({what}: no [DONE])")
            line = line.rstrip(b"\r\n")
            if line:
                if line.startswith(b":"):
                    continue  # a comment: keep-alive
                name, _, value = line.partition(b":")
                if name == b"data":
                    value = value[1:] if value.startswith(b" ") else value
                    size += len(value) + 1
                    if size > MAX_EVENT_BYTES:
                        raise StreamError(f"{where}: an event of the stream is larger than {MAX_EVENT_BYTES >> 20} MiB")
                    data.append(value)
                elif name not in (b"event", b"id", b"retry"):
                    if not saw_event and not data:
                        raise StreamError(f"{where}: not an event stream (Content-Type "
                                          f"{response.getheader('Content-Type')!r}): {line[:60]!r}")
                continue
            if not data:
                continue
            payload, data, size = b"\n".join(data), [], 0
            saw_event = True
            if payload.strip() == b"[DONE]":
                return
            try:
                chunk = json.loads(payload)
            except ValueError:
                raise StreamError(f"{where}: the server sent an event that is not JSON after {len(r.tokens)} "
                                  f"tokens: {payload[:60]!r}") from None
            if not isinstance(chunk, dict):
                raise StreamError(f"{where}: an event is JSON but not an object: {payload[:60]!r}")
            self._take(chunk, where)


def stream(request: StreamRequest, on_token=None) -> StreamResult:
    """Run one request to its end on this thread (the CLI's way; the explorer runs a Stream on a worker)."""
    return Stream(request, on_token).run()


def complete(request: StreamRequest) -> StreamResult:
    """The same request with ``stream: false``: the server's whole answer at once (to compare a stream with)."""
    return Stream(dataclasses.replace(request, stream=False)).run()
