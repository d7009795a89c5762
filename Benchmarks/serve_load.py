"""Concurrent streaming chats against OpenAI-compatible servers: aggregate generated tokens/s and time to first
token (p50, p99), each client asking for max_tokens tokens at temperature 0. Used by Benchmarks/serve.sh.

    python Benchmarks/serve_load.py NAME=URL [NAME=URL ...] --clients 1 4 16 --tokens 128
"""
import argparse
import asyncio
import json
import statistics
import time

import httpx

PROMPTS = ["Tell me a long story about a lighthouse keeper.", "Explain how a bicycle works, step by step.",
           "Write a letter to a friend about a trip to the mountains.", "Describe the water cycle in detail."]


async def one(client, url, model, prompt, tokens):
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first, text, failed = None, "", False
    try:
        return await read(client, url, body, started)
    except httpx.HTTPError as e:
        print(f"  request failed: {type(e).__name__}: {e}", flush=True)
        return None, "", True


async def read(client, url, body, started):
    first, text, failed = None, "", False
    async with client.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        if r.status_code != 200:
            return None, 0, True
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                failed = True
            for c in event.get("choices", []):
                piece = c.get("delta", {}).get("content")
                if piece:
                    text += piece
                    if first is None:
                        first = time.perf_counter() - started
    return first, text, failed


def count(tokenizer_url, text):
    """Tokens of the generated text, by the model's own tokenizer (Attend's /tokenize), the same for every server."""
    r = httpx.post(tokenizer_url + "/tokenize", json={"content": text}, timeout=60)
    return len(r.json()["tokens"])


async def run(url, model, clients, tokens, tokenizer_url):
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients + 4)) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*[one(client, url, model, PROMPTS[i % len(PROMPTS)], tokens) for i in range(clients)])
        wall = time.perf_counter() - started
    ttft = sorted(r[0] for r in results if r[0] is not None)
    total = sum(count(tokenizer_url, r[1]) for r in results)
    failed = sum(1 for r in results if r[2] or r[0] is None)
    p = lambda q: ttft[min(len(ttft) - 1, int(q * len(ttft)))] if ttft else float("nan")
    return total / wall, statistics.median(ttft) if ttft else float("nan"), p(0.99), failed, total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("servers", nargs="+", help="NAME=URL")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    a = parser.parse_args()
    servers = [s.split("=", 1) for s in a.servers]
    print("tokens counted with the first server's /tokenize (an Attend server)")
    print(f"| clients | server | aggregate tokens/s | TTFT p50 s | TTFT p99 s | failed | tokens |")
    print("|---|---|---|---|---|---|---|")
    for n in a.clients:
        rates = []
        for name, url in servers:
            rate, p50, p99, failed, total = asyncio.run(run(url, a.model, n, a.tokens, servers[0][1]))
            rates.append(rate)
            print(f"| {n} | {name} | {rate:.1f} | {p50:.2f} | {p99:.2f} | {failed} | {total} |", flush=True)
        if len(rates) == 2:
            print(f"| {n} | ratio {servers[0][0]} / {servers[1][0]} | {rates[0] / rates[1]:.2f}x | | | | |", flush=True)


main()
