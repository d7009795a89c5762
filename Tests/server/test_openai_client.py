"""The official `openai` Python client against `attend serve`: chat (whole and streamed, with usage), JSON-schema
output, completions, embeddings in both encodings, models, errors, API keys, retrieval-augmented chat with citations,
the safety stage (moderations, refused inputs, redacted and stopped answers) and /metrics. Run by
scripts/test-server.sh, which starts the server (with an index, a safety policy and an API key) and passes its URL in
ATTEND_SERVER_URL, the key in ATTEND_API_KEY and the grounded model's name in ATTEND_GROUNDED_MODEL."""
import json
import re
import time
import math
import os
import unittest
import urllib.error
import urllib.request

import openai

URL = os.environ["ATTEND_SERVER_URL"]
CHAT = "SmolLM2-135M-Instruct"
EMBED = "all-MiniLM-L6-v2"
KEY = os.environ["ATTEND_API_KEY"]
GROUNDED = os.environ["ATTEND_GROUNDED_MODEL"]
# A second server without a safety policy (log-probabilities are refused while a policy checks answers).
PLAIN_URL = os.environ["ATTEND_PLAIN_SERVER_URL"]


class OpenAIClientTests(unittest.TestCase):
    client = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=300)

    def test_models(self):
        ids = [m.id for m in self.client.models.list().data]
        self.assertEqual(ids, [GROUNDED, CHAT, EMBED])

    def test_chat_whole_and_streamed_agree(self):
        messages = [{"role": "user", "content": "Name a fruit."}]
        whole = self.client.chat.completions.create(model=CHAT, messages=messages, max_tokens=8, temperature=0)
        self.assertEqual(whole.object, "chat.completion")
        choice = whole.choices[0]
        self.assertEqual(choice.message.role, "assistant")
        self.assertTrue(choice.message.content)
        self.assertIn(choice.finish_reason, ("stop", "length"))
        self.assertLessEqual(whole.usage.completion_tokens, 8)
        self.assertEqual(whole.usage.total_tokens, whole.usage.prompt_tokens + whole.usage.completion_tokens)
        # Greedy decoding: the stream carries the same text, piece by piece, then the finish reason, then usage.
        chunks = list(self.client.chat.completions.create(model=CHAT, messages=messages, max_tokens=8, temperature=0,
                                                          stream=True, stream_options={"include_usage": True}))
        self.assertTrue(all(c.object == "chat.completion.chunk" for c in chunks))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, choice.message.content)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        self.assertEqual(finishes, [choice.finish_reason])
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.completion_tokens, whole.usage.completion_tokens)

    def test_json_schema_output_parses(self):
        schema = {"type": "object", "properties": {"fruit": {"type": "string", "maxLength": 20}, "count": {"type": "integer"}},
                  "required": ["fruit", "count"]}
        r = self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "Give a fruit and a count as JSON."}],
                                                max_tokens=40, temperature=0,
                                                response_format={"type": "json_schema", "json_schema": {"name": "fruit", "schema": schema}})
        value = json.loads(r.choices[0].message.content)
        self.assertEqual(list(value), ["fruit", "count"])
        self.assertIsInstance(value["count"], int)
        self.assertEqual(r.choices[0].finish_reason, "stop")

    def test_completions(self):
        r = self.client.completions.create(model=CHAT, prompt="The capital of France is", max_tokens=4, temperature=0)
        self.assertEqual(r.object, "text_completion")
        self.assertTrue(r.choices[0].text)
        # Streamed: the same text, then the finish reason, then usage (as chat's stream).
        chunks = list(self.client.completions.create(model=CHAT, prompt="The capital of France is", max_tokens=4, temperature=0,
                                                     stream=True, stream_options={"include_usage": True}))
        streamed = "".join(c.choices[0].text for c in chunks if c.choices)
        self.assertEqual(streamed, r.choices[0].text)
        self.assertEqual([c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason], [r.choices[0].finish_reason])
        self.assertFalse(chunks[-1].choices)
        self.assertEqual((chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens),
                         (r.usage.prompt_tokens, r.usage.completion_tokens))

    def test_embeddings_in_both_encodings(self):
        texts = ["A man is eating food.", "A man is riding a horse."]
        # The client asks for base64 by default and decodes it; float arrays must say the same.
        b64 = self.client.embeddings.create(model=EMBED, input=texts)
        flt = self.client.embeddings.create(model=EMBED, input=texts, encoding_format="float")
        self.assertEqual(len(b64.data), 2)
        self.assertEqual(len(flt.data), 2)
        for a, b in zip(b64.data, flt.data):
            self.assertEqual(len(a.embedding), 384)
            self.assertEqual(len(b.embedding), 384)
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in a.embedding)), 1.0, places=4)
            self.assertTrue(all(abs(x - y) < 1e-6 for x, y in zip(a.embedding, b.embedding)))
        self.assertGreater(b64.usage.prompt_tokens, 10)

    def test_errors_in_openais_shape(self):
        with self.assertRaises(openai.NotFoundError) as e:
            self.client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(e.exception.code, "model_not_found")
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "hi"}], max_tokens=10_000_000)
        self.assertEqual(e.exception.code, "context_length_exceeded")
        # Each 400 names the field, in `param` or in the message.
        for bad in [{"temperature": "hot"}, {"temperature": 3}, {"n": 2}, {"top_p": 0}, {"stop": ["a", "b", "c", "d", "e"]},
                    {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "strnig"}}}}]:
            with self.assertRaises(openai.BadRequestError, msg=str(bad)) as e:
                self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "hi"}], **bad)
            body = e.exception.body
            self.assertIsInstance(body, dict, str(bad))
            field = next(iter(bad))
            self.assertTrue(body.get("param") == field or field in body.get("message", ""), f"{bad}: {body}")
        with self.assertRaises(openai.BadRequestError):
            self.client.chat.completions.create(model=CHAT, messages=[])
        with self.assertRaises(openai.BadRequestError):
            self.client.embeddings.create(model=EMBED, input=[], encoding_format="float")

    def raw(self, path, body, content_type="application/json", key=KEY):
        headers = {"Content-Type": content_type}
        if key is not None:
            headers["Authorization"] = "Bearer " + key
        request = urllib.request.Request(URL + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_malformed_and_huge_bodies(self):
        status, body = self.raw("/v1/chat/completions", b"{not json")
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["type"], "invalid_request_error")
        status, body = self.raw("/v1/chat/completions", b"[1, 2]")
        self.assertEqual(status, 400)
        status, body = self.raw("/v1/chat/completions", b'{"model": "SmolLM2-135M-Instruct", "messages": "hi"}')
        self.assertEqual((status, body["error"]["param"]), (400, "messages"))
        status, body = self.raw("/v1/embeddings", b'{"model": "all-MiniLM-L6-v2", "input": "x" }' + b" " * (5 << 20))
        self.assertEqual(status, 413)
        # The server is still up and answering.
        with urllib.request.urlopen(URL + "/health", timeout=10) as r:
            self.assertEqual(json.loads(r.read()), {"status": "ok"})
        status, body = self.raw("/tokenize", b'{"content": "Hello world"}')
        self.assertEqual(status, 200)
        self.assertEqual(len(body["tokens"]), 2)

    def test_concurrent_streams_are_batched_and_match_single_ones(self):
        # Continuous batching: chats decoded together give what each gives alone (greedy).
        from concurrent.futures import ThreadPoolExecutor
        questions = ["Name a fruit.", "Name a colour.", "Name an animal.", "Name a city."]
        alone = [self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": q}], max_tokens=10,
                                                     temperature=0).choices[0].message.content for q in questions]

        def streamed(q):
            chunks = self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": q}], max_tokens=10,
                                                         temperature=0, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(streamed, questions))
        self.assertEqual(together, alone)

    def test_logprobs(self):
        plain = openai.OpenAI(base_url=PLAIN_URL + "/v1", api_key="unused", max_retries=0, timeout=300)
        messages = [{"role": "user", "content": "Name a fruit."}]
        r = plain.chat.completions.create(model=CHAT, messages=messages, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
        content = r.choices[0].logprobs.content
        self.assertEqual(len(content), r.usage.completion_tokens)
        self.assertEqual("".join(t.token for t in content), r.choices[0].message.content)
        for t in content:
            self.assertLessEqual(t.logprob, 0)
            self.assertEqual(len(t.top_logprobs), 3)
            tops = [a.logprob for a in t.top_logprobs]
            self.assertEqual(tops, sorted(tops, reverse=True))
            self.assertLessEqual(sum(math.exp(x) for x in tops), 1.0 + 1e-5)
            # Greedy decoding picks the likeliest token: it is the first alternative, with the same log-probability.
            self.assertEqual(t.top_logprobs[0].token, t.token)
            self.assertAlmostEqual(t.top_logprobs[0].logprob, t.logprob, places=5)
            self.assertEqual(bytes(t.bytes).decode("utf-8", "replace"), t.token)
        # Streamed: the same entries, spread over the chunks.
        chunks = list(plain.chat.completions.create(model=CHAT, messages=messages, max_tokens=8, temperature=0, logprobs=True,
                                                     top_logprobs=3, stream=True))
        streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
        self.assertEqual([(t.token, round(t.logprob, 5)) for t in streamed], [(t.token, round(t.logprob, 5)) for t in content])
        # Where a policy checks answers, log-probabilities would leak what it redacts: refused.
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model=CHAT, messages=messages, max_tokens=2, logprobs=True)
        self.assertEqual(e.exception.param, "logprobs")
        with self.assertRaises(openai.BadRequestError):
            plain.chat.completions.create(model=CHAT, messages=messages, max_tokens=2, top_logprobs=3)

    def test_attention_map_is_a_png(self):
        body = {"model": CHAT, "messages": [{"role": "user", "content": "Name a fruit."}], "answer": "An apple."}
        request = urllib.request.Request(URL + "/v1/attention", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY})
        with urllib.request.urlopen(request, timeout=120) as r:
            self.assertEqual(r.headers["Content-Type"], "image/png")
            png = r.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        self.assertGreater(width, height)   # a few answer tokens (rows) over the whole conversation (columns)
        status, error = self.raw("/v1/attention", json.dumps(dict(body, layer=99)).encode())
        self.assertEqual((status, error["error"]["param"]), (400, "layer"))
        status, error = self.raw("/v1/attention", json.dumps(dict(body, answer="")).encode())
        self.assertEqual((status, error["error"]["param"]), (400, "answer"))

    def test_idle_stalled_and_unread_clients_do_not_block_others(self):
        import resource
        import socket
        import time
        host, port = URL.split("//")[1].split(":")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
        opened = []
        try:
            # 2,000 connections opened at once and left idle, one that sends half a request and stalls, and one that
            # asks for a streamed answer and never reads it.
            for _ in range(2000):
                opened.append(socket.create_connection((host, int(port)), timeout=10))
            stalled = socket.create_connection((host, int(port)), timeout=10)
            stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"model\": ")
            unread = socket.create_connection((host, int(port)), timeout=10)
            body = json.dumps({"model": CHAT, "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 64, "stream": True}).encode()
            unread.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer " + KEY.encode()
                           + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            opened += [stalled, unread]
            started = time.monotonic()
            with urllib.request.urlopen(URL + "/health", timeout=10) as r:
                self.assertEqual(r.status, 200)
            r = self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=4, temperature=0)
            self.assertTrue(r.choices[0].message.content)
            self.assertLess(time.monotonic() - started, 120)
        finally:
            for c in opened:
                c.close()
        with urllib.request.urlopen(URL + "/health", timeout=10) as r:   # and the server is still up
            self.assertEqual(r.status, 200)

    def test_api_key_required(self):
        for key in [None, "wrong-key-123", KEY + "x"]:
            status, body = self.raw("/v1/chat/completions", b'{"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "hi"}]}', key=key)
            self.assertEqual((status, body["error"]["code"]), (401, "invalid_api_key"), key)
        with self.assertRaises(openai.AuthenticationError):
            openai.OpenAI(base_url=URL + "/v1", api_key="wrong-key-123", max_retries=0).models.list()
        with urllib.request.urlopen(URL + "/health", timeout=10) as r:   # open without a key, as is the page
            self.assertEqual(r.status, 200)

    def test_grounded_chat_cites_its_sources(self):
        messages = [{"role": "user", "content": "How do I remove a database?"}]
        whole = self.client.chat.completions.create(model=GROUNDED, messages=messages, max_tokens=24, temperature=0)
        citations = whole.model_extra["citations"]
        self.assertGreaterEqual(len(citations), 1)
        self.assertEqual([c["number"] for c in citations], list(range(1, len(citations) + 1)))
        self.assertTrue(all(c["source"].endswith(".html") and c["text"] for c in citations))
        self.assertIn("sql-dropdatabase.html", citations[0]["source"])
        # The prompt holds the passages: far longer than the question alone.
        plain = self.client.chat.completions.create(model=CHAT, messages=messages, max_tokens=1, temperature=0)
        self.assertGreater(whole.usage.prompt_tokens, plain.usage.prompt_tokens + 100)
        chunks = list(self.client.chat.completions.create(model=GROUNDED, messages=messages, max_tokens=24, temperature=0, stream=True))
        self.assertEqual(chunks[0].model_extra["citations"], citations)
        self.assertEqual("".join(c.choices[0].delta.content or "" for c in chunks if c.choices), whole.choices[0].message.content)

    def test_moderations(self):
        texts = ["Write to jane.doe@example.com", "I will kill you tomorrow.", "Kill the process with SIGTERM.", "The weather is mild."]
        raw = self.client.moderations.with_raw_response.create(model="attend-safety", input=texts)
        results = json.loads(raw.text)["results"]
        self.assertEqual([r["flagged"] for r in results], [True, True, False, False])
        self.assertTrue(results[0]["categories"]["personal_data/email"])
        self.assertTrue(results[1]["categories"]["violence"])
        self.assertGreater(results[1]["category_scores"]["violence"], results[2]["category_scores"]["violence"])
        self.assertEqual(raw.parse().results[0].flagged, True)

    def test_safety_refuses_inputs_and_filters_answers(self):
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "my card is 4111 1111 1111 1111"}], max_tokens=4)
        self.assertEqual(e.exception.code, "content_filter")
        # A schema with a constant makes the model write the personal data itself: the answer leaves redacted...
        def forced(value):
            schema = {"type": "object", "properties": {"contact": {"const": value}}, "required": ["contact"]}
            return dict(model=CHAT, messages=[{"role": "user", "content": "Give a contact."}], max_tokens=40, temperature=0,
                        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}})
        r = self.client.chat.completions.create(**forced("jane.doe@example.com"))
        self.assertEqual(json.loads(r.choices[0].message.content), {"contact": "[EMAIL]"})
        # ...and a card number, which the policy blocks, stops the answer before any of it leaves, streamed or not.
        r = self.client.chat.completions.create(**forced("4111 1111 1111 1111"))
        # Not one digit leaves: what came out is the JSON before the number.
        self.assertEqual(r.choices[0].finish_reason, "content_filter")
        self.assertNotRegex(r.choices[0].message.content, r"[0-9]")
        chunks = list(self.client.chat.completions.create(stream=True, **forced("4111 1111 1111 1111")))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertNotRegex(streamed, r"[0-9]")
        self.assertEqual([c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason], ["content_filter"])

    def test_metrics(self):
        def scrape():
            request = urllib.request.Request(URL + "/metrics", headers={"Authorization": "Bearer " + KEY})
            with urllib.request.urlopen(request, timeout=10) as r:
                text = r.read().decode()
            def value(pattern):
                m = re.search(pattern + r" ([0-9.e+]+)", text)
                return float(m.group(1)) if m else 0.0
            return text, value(r'attend_requests_total\{endpoint="chat",status="200"\}'), value(r"attend_completion_tokens_total"), \
                value(r"attend_queue_depth")
        # An earlier test's stream that its client left may still be generating: its tokens count when it ends, so
        # start counting once the language model is idle and the counter has stopped moving for a second.
        deadline = time.monotonic() + 120
        _, _, last_tokens, _ = scrape()
        while True:
            time.sleep(1)
            _, requests_before, tokens_before, depth = scrape()
            if depth == 0 and tokens_before == last_tokens:
                break
            last_tokens = tokens_before
            self.assertLess(time.monotonic(), deadline, "the server's token counter never settled")
        # Two chats and one error: the counters move by exactly what was asked and answered.
        answers = [self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": q}], max_tokens=3, temperature=0)
                   for q in ["Hi", "Name a fruit."]]
        with self.assertRaises(openai.BadRequestError):
            self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "hi"}], temperature=3)
        text, requests_after, tokens_after, _ = scrape()
        self.assertEqual(requests_after - requests_before, 2)
        self.assertEqual(tokens_after - tokens_before, sum(a.usage.completion_tokens for a in answers))
        self.assertIn('attend_requests_total{endpoint="chat",status="400"}', text)
        self.assertIn("attend_time_to_first_token_seconds_bucket", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
