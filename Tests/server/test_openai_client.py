"""The official `openai` Python client against `attend serve`: chat (whole and streamed, with usage), JSON-schema
output, completions, embeddings in both encodings, models, and errors. Run by scripts/test-server.sh, which starts
the server and passes its URL in ATTEND_SERVER_URL."""
import json
import math
import os
import unittest
import urllib.error
import urllib.request

import openai

URL = os.environ["ATTEND_SERVER_URL"]
CHAT = "SmolLM2-135M-Instruct"
EMBED = "all-MiniLM-L6-v2"


class OpenAIClientTests(unittest.TestCase):
    client = openai.OpenAI(base_url=URL + "/v1", api_key="unused", max_retries=0, timeout=300)

    def test_models(self):
        ids = [m.id for m in self.client.models.list().data]
        self.assertEqual(ids, [CHAT, EMBED])

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
        streamed = "".join(c.choices[0].text for c in self.client.completions.create(model=CHAT, prompt="The capital of France is",
                                                                                      max_tokens=4, temperature=0, stream=True))
        self.assertEqual(streamed, r.choices[0].text)

    def test_embeddings_in_both_encodings(self):
        texts = ["A man is eating food.", "A man is riding a horse."]
        # The client asks for base64 by default and decodes it; float arrays must say the same.
        b64 = self.client.embeddings.create(model=EMBED, input=texts)
        flt = self.client.embeddings.create(model=EMBED, input=texts, encoding_format="float")
        self.assertEqual(len(b64.data), 2)
        for a, b in zip(b64.data, flt.data):
            self.assertEqual(len(a.embedding), 384)
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
        for bad in [{"temperature": "hot"}, {"temperature": 3}, {"n": 2}, {"top_p": 0}, {"stop": ["a", "b", "c", "d", "e"]},
                    {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "strnig"}}}}]:
            with self.assertRaises(openai.BadRequestError, msg=str(bad)) as e:
                self.client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "hi"}], **bad)
            self.assertIsNotNone(e.exception.body)
        with self.assertRaises(openai.BadRequestError):
            self.client.chat.completions.create(model=CHAT, messages=[])
        with self.assertRaises(openai.BadRequestError):
            self.client.embeddings.create(model=EMBED, input=[], encoding_format="float")

    def raw(self, path, body, content_type="application/json"):
        request = urllib.request.Request(URL + path, data=body, headers={"Content-Type": content_type}, method="POST")
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
