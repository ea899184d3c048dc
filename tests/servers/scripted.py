"""A small standard-library HTTP server on 127.0.0.1 that misbehaves on purpose, for the stream client's error tests.

The first path segment picks the behaviour (the client's base URL is http://127.0.0.1:PORT/BEHAVIOUR/v1):
ok (three tokens with log-probabilities, then [DONE]), plain (the same tokens without log-probabilities), notfound (OpenAI's 404 for an unknown model, with
/v1/models listing the real one), crash (a 500 with a plain-text body), garbage (an event that is not
JSON), html (a web page instead of events), cut (two tokens, then the connection closes), cutchunk (the
chunked body ends in the middle of a chunk), silent (headers never come), stall (one token, then
nothing), trickle (a comment every 0.2 s, for ever), longline (a line longer than the client takes),
slowstart (waits on an Event before its first token: the explorer's frame must not wait with it).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKENS = [("Hello", -0.1, {"Hello": -0.1, "Hi": -2.5}), (",", -0.5, {",": -0.5, "!": -1.2}),
          (" world", -1.0, {" world": -1.0, " there": -1.1})]
MODEL = "scripted-model"


def chunk(i: int, chat: bool, logprobs: bool = True) -> bytes:
    text, lp, top = TOKENS[i]
    if not logprobs:
        choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
    elif chat:
        choice = {"index": 0, "delta": {"content": text}, "logprobs": {"content": [
            {"token": text, "logprob": lp, "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()]}]}}
    else:
        choice = {"index": 0, "text": text, "logprobs": {"tokens": [text], "token_logprobs": [lp], "top_logprobs": [top]}}
    if i == len(TOKENS) - 1:
        choice["finish_reason"] = "length"
    return b"data: " + json.dumps({"model": MODEL, "choices": [choice]}).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet test output
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _events(self, parts, ctype="text/event-stream", chunked=False, close=False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        for part in parts:
            if callable(part):
                part()
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            self.wfile.flush()
        if chunked and not close:
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def do_GET(self):
        if self.path.endswith("/v1/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode(),
                       "application/json")
        else:
            self._send(404, b'{"error": {"message": "no such path"}}', "application/json")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, request))
        kind = self.path.strip("/").split("/")[0]
        chat = self.path.endswith("/chat/completions")
        tokens = [chunk(i, chat) for i in range(len(TOKENS))]
        if kind == "plain":
            self._events([chunk(i, chat, logprobs=False) for i in range(len(TOKENS))] + [b"data: [DONE]\n\n"],
                         chunked=True)
        elif kind == "ok":
            self._events([b": keep-alive\n\n", *tokens, b"data: [DONE]\n\n"], chunked=True)
        elif kind == "notfound":
            self._send(404, json.dumps({"error": {"message": f"The model `{request.get('model')}` does not exist.",
                                                  "type": "NotFoundError", "code": 404}}).encode(), "application/json")
        elif kind == "crash":
            self._send(500, b"Internal Server Error: CUDA out of memory", "text/plain")
        elif kind == "garbage":
            self._events([tokens[0], b"data: {this is not json\n\n"], chunked=True)
        elif kind == "html":
            self._send(200, b"<html><body>Welcome to nginx!</body></html>\n", "text/html")
        elif kind == "cut":
            self._events(tokens[:2])  # Connection: close, no [DONE], no finish_reason
        elif kind == "cutchunk":
            self._events([tokens[0], tokens[1][:20]], chunked=True, close=True)
            self.wfile.write(b"40\r\n" + b"data: {\"choi")  # a chunk announced longer than what follows
        elif kind == "silent":
            self.server.release.wait(30)
        elif kind == "stall":
            self._events([tokens[0], lambda: self.server.release.wait(30)], chunked=True)
        elif kind == "trickle":
            def trickle():
                for _ in range(150):
                    if self.server.release.is_set():
                        return
                    self.wfile.write(b"b\r\n: waiting\n\n\r\n")
                    self.wfile.flush()
                    time.sleep(0.2)
            self._events([tokens[0], trickle], chunked=True)
        elif kind == "longline":
            self._events([b"data: " + b"x" * (2 << 20) + b"\n\n"], chunked=True)
        elif kind == "slowstart":
            self._events([lambda: self.server.release.wait(30), *tokens, b"data: [DONE]\n\n"], chunked=True)
        else:
            self._send(404, b'{"detail": "Not Found"}', "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hung up on purpose is no news
        pass


class ScriptedServer:
    """The server on a free port in a daemon thread; ``url(kind)`` is a base URL; ``release`` lets waiting ones go."""

    def __init__(self):
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.requests = []
        self.httpd.release = threading.Event()
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="scripted server", daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list:
        return self.httpd.requests

    @property
    def release(self) -> threading.Event:
        return self.httpd.release

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}/v1"

    def close(self) -> None:
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
