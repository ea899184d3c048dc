"""`llmviz stream --url http://HOST:PORT/v1 --model NAME --prompt TEXT [--chat] [--top-logprobs K] [--json]`: tokens from an
OpenAI-compatible server as they arrive, each with its probability, its top-K alternatives and their entropy.

Works with any server of that API (vLLM, TGI, llama.cpp's server, transformers serve); one that sends no
log-probabilities still streams its text and says so. Bad arguments are one line and exit code 2; a server
that cannot be reached, answers an HTTP error or breaks off is one line and exit code 1, after what arrived.
"""
from __future__ import annotations

import json
import math
import sys

from llmviz.scenes.cli.common import parse_int, shown


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("stream", help="stream tokens and log-probabilities from an OpenAI-compatible server",
                              description="Send a prompt to an OpenAI-compatible server (vLLM, TGI, llama.cpp, "
                                          "transformers serve) and print its tokens as they arrive, with each one's "
                                          "probability, its top-K alternatives and their entropy (over the top-K "
                                          "only).")
    p.add_argument("--url", required=True, help="the server's base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", required=True, help="the model name the server knows (GET /v1/models lists them)")
    p.add_argument("--prompt", required=True, help="the prompt (with --chat: the user's message)")
    p.add_argument("--chat", action="store_true", help="use /chat/completions instead of /completions")
    p.add_argument("--top-logprobs", default="5", help="alternatives per token, 0 to 20 (default 5; 0: the "
                   "chosen token's log-probability only)")
    p.add_argument("--max-tokens", default="64", help="tokens to generate (default 64)")
    p.add_argument("--temperature", default="0", help="sampling temperature (default 0: greedy)")
    p.add_argument("--timeout", default="60", help="seconds to wait for each piece of the stream (default 60)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON at the end")
    p.set_defaults(func=run)


def _fail(message: str, code: int) -> int:
    print(f"llmviz stream: error: {message}", file=sys.stderr)
    return code


def request_from(args):
    """The StreamRequest the arguments ask for; ValueError naming the argument."""
    from llmviz.models.openai_stream import MAX_TOKENS, MAX_TOP_LOGPROBS, StreamRequest

    top = parse_int(args.top_logprobs, "--top-logprobs", 0, MAX_TOP_LOGPROBS)
    max_tokens = parse_int(args.max_tokens, "--max-tokens", 1, MAX_TOKENS)
    values = {}
    for flag, text, low, high in (("--temperature", args.temperature, 0.0, 10.0), ("--timeout", args.timeout, 0.1, 3600.0)):
        try:
            value = float(str(text)[:40])
        except ValueError:
            raise ValueError(f"{flag} {shown(text)} is not a number") from None
        if not low <= value <= high:  # NaN fails here too
            raise ValueError(f"{flag} must be between {low:g} and {high:g}, got {shown(text)}")
        values[flag] = value
    request = StreamRequest(args.url, args.model, args.prompt, chat=args.chat, top_logprobs=top, max_tokens=max_tokens,
                            temperature=values["--temperature"], read_timeout_s=values["--timeout"],
                            connect_timeout_s=min(values["--timeout"], 10.0))
    request.check()
    return request


def token_line(index: int, token) -> str:
    """One streamed token for the terminal: its text (quoted), probability, entropy and alternatives."""
    text = json.dumps(token.text, ensure_ascii=False)
    if token.logprob is None:
        return f"{index:4d}  {text}"
    line = f"{index:4d}  {text:<16} p {token.probability:.4f}  logprob {token.logprob:8.4f}"
    if token.top:
        line += f"  H(top-{len(token.top)}) {token.entropy:.3f} nats  covers {token.top_mass:.3f}  | "
        line += "  ".join(f"{json.dumps(t, ensure_ascii=False)} {math.exp(lp):.3f}" for t, lp in token.top)
    return line


def run(args) -> int:
    from llmviz.models.openai_stream import Stream, endpoint

    try:
        request = request_from(args)
    except ValueError as err:
        return _fail(str(err), 2)
    scheme, host, port, path = endpoint(request.url, request.chat)
    if not args.json:
        what = f"top-{request.top_logprobs} log-probabilities" if request.top_logprobs else "log-probabilities"
        print(f"{scheme}://{host}:{port}{path}, model {request.model}, asking for {what}; "
              f"entropy is over the top-K only", flush=True)
    count = 0

    def show(token):
        nonlocal count
        count += 1
        if not args.json:
            print(token_line(count, token), flush=True)

    result = Stream(request, on_token=show).run()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        served = f" (served as {result.served_model})" if result.served_model not in (None, request.model) else ""
        print(f"text{served}: {json.dumps(result.text, ensure_ascii=False)}")
        figures = [f"{len(result.tokens)} tokens", f"finish: {result.finish_reason or 'none'}"]
        if result.first_token_s is not None:
            figures.append(f"first token after {result.first_token_s * 1000:.0f} ms")
        if result.tokens_per_s is not None:
            figures.append(f"{result.tokens_per_s:.1f} tokens/s after it")
        print(", ".join(figures))
        if result.logprobs_note:
            print(result.logprobs_note)
    if result.error:
        return _fail(result.error, 1)
    return 0
