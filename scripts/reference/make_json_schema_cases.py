"""JSON schemas with instances labelled valid or invalid by the `jsonschema` package (Draft 2020-12), for
Tests/AttendModelsTests/GrammarTests.swift: the grammar compiled from each schema must accept exactly the valid ones.

Instances are written as the grammar writes JSON (properties in the schema's order, compact or with one space after
':' and ','), and every object schema says additionalProperties: false (the grammar writes only listed properties),
so the two sides judge the same text. Mutations: a missing required property, an extra one, a wrong type, a value
outside an enum, too many or too few items, a string too long, a bad date.

    .cache/venv/bin/pip install jsonschema==4.23.0
    .cache/venv/bin/python scripts/reference/make_json_schema_cases.py > Tests/AttendModelsTests/Fixtures/json_schema_cases.json
"""
import json
import random

import jsonschema

random.seed(7)

SCHEMAS = [
    {"type": "object", "additionalProperties": False, "required": ["model", "release_year", "features"],
     "properties": {"model": {"type": "string", "maxLength": 12}, "release_year": {"type": "integer"},
                    "features": {"type": "array", "items": {"type": "string", "enum": ["multimodal", "reasoning", "code"]}, "maxItems": 3}}},
    {"type": "object", "additionalProperties": False, "required": ["name"],
     "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": ["string", "null"]}, "score": {"type": "number"}}},
    {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4},
    {"type": "object", "additionalProperties": False, "required": ["released", "tags"],
     "properties": {"released": {"type": "string", "format": "date"}, "tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 5}, "minItems": 1}}},
    {"anyOf": [{"type": "boolean"}, {"const": "none"}, {"type": "object", "additionalProperties": False, "required": ["k"], "properties": {"k": {"type": "null"}}}]},
    {"$defs": {"node": {"type": "object", "additionalProperties": False, "required": ["v"],
                        "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}}},
     "$ref": "#/$defs/node"},
    {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "boolean"}, "b": {"type": "boolean"}, "c": {"type": "boolean"}}},
]

WORDS = ["GPT-4", "Llama", "x", "", "naïve", "tab\there", "quote\"d", "back\\slash", "a longer name here", "日本"]


def sample(schema, root, depth=0):
    if "$ref" in schema:
        return sample(root["$defs"][schema["$ref"].split("/")[-1]], root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return random.choice(schema["enum"])
    if "anyOf" in schema:
        return sample(random.choice(schema["anyOf"]), root, depth)
    t = schema.get("type")
    if isinstance(t, list):
        t = random.choice(t)
    if t == "object":
        out = {}
        for k, sub in schema["properties"].items():
            if k in schema.get("required", []) or (random.random() < 0.5 and depth < 3):
                out[k] = sample(sub, root, depth + 1)
        return out
    if t == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", 4)
        return [sample(schema["items"], root, depth + 1) for _ in range(random.randint(lo, hi))]
    if t == "string":
        if schema.get("format") == "date":
            return "%04d-%02d-%02d" % (random.randint(1990, 2030), random.randint(1, 12), random.randint(1, 28))
        lo, hi = schema.get("minLength", 0), schema.get("maxLength", 40)
        choices = [w for w in WORDS if lo <= len(w) <= hi]
        return random.choice(choices)
    if t == "integer":
        return random.choice([0, 7, -3, 2023, 123456])
    if t == "number":
        return random.choice([0, 1.5, -2.25, 1e-05, 3])
    if t == "boolean":
        return random.choice([True, False])
    if t == "null":
        return None
    raise ValueError(schema)


def mutate(value):
    """A nearby value, often invalid."""
    if isinstance(value, dict):
        keys = list(value)
        r = random.random()
        if keys and r < 0.3:
            del value[random.choice(keys)]
        elif r < 0.5:
            value["extra"] = 1
        elif keys:
            value[random.choice(keys)] = random.choice(["str", 12, 2.5, None, True, [], {}])
        return value
    if isinstance(value, list):
        r = random.random()
        if value and r < 0.3:
            value.pop()
        elif r < 0.6:
            value.append(value[0] if value else 1)
            value.append(value[0] if value else 1)
        elif value:
            value[0] = random.choice(["str", 2.5, None, "toolongstring", "1999-13-45x"])
        return value
    return random.choice(["str", 12, 2.5, None, True, "none", "toolong-toolong"])


def dump(value):
    return json.dumps(value, ensure_ascii=False, separators=random.choice([(",", ":"), (", ", ": ")]))


cases = []
for schema in SCHEMAS:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    instances = []
    for _ in range(25):
        v = sample(schema, schema)
        instances.append(v)
        instances.append(mutate(json.loads(json.dumps(v))))
    seen = set()
    for v in instances:
        text = dump(v)
        if text in seen:
            continue
        seen.add(text)
        cases.append({"schema": json.dumps(schema), "text": text, "valid": validator.is_valid(v)})
print(json.dumps(cases, ensure_ascii=False, indent=0))
