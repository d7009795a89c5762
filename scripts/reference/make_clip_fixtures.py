"""Expected CLIP token ids from open_clip's SimpleTokenizer (an independent implementation; its tokenizer
module is loaded on its own so torchvision is not needed) on the real merges file fetched by
scripts/fetch-assets.sh clip-bpe. Tests require exact ids, and the padded 77-token model inputs.

    .cache/venv/bin/pip install --no-deps open-clip-torch==3.3.0 ftfy wcwidth
    .cache/venv/bin/python scripts/reference/make_clip_fixtures.py Tests/AttendTokenizersTests/Fixtures
"""
import importlib.util
import json
import site
import sys

TEXTS = [
    "a photo of a cat.", "A Photo of a DOG!", "Hello, World! 123 apples", "  Multiple   spaces\tand\nnewlines  ",
    "Café naïve résumé — déjà vu", "日本語のテキストと中文字符", "Emoji 😀🚀 and symbols ©®™", "don't can't WON'T it's I'm we'll",
    "“Curly quotes” and ‘single’ ones", "ﬁne ﬂowers", "ＦＵＬＬ ｗｉｄｔｈ", "Tom &amp; Jerry &lt;3 &#39;ok&#39;",
    "<start_of_text>inside<end_of_text>", "supercalifragilisticexpialidocious", "3.14159 and 2,000,000",
]
LONG = "a diagram of " + " and ".join(f"part {i}" for i in range(60))


def main(out):
    path = next(p for p in site.getsitepackages() if "site-packages" in p) + "/open_clip/tokenizer.py"
    spec = importlib.util.spec_from_file_location("clip_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["clip_tokenizer"] = module
    spec.loader.exec_module(module)
    tok = module.SimpleTokenizer()
    cases = [{"text": t, "ids": tok.encode(t)} for t in TEXTS]
    inputs = tok([TEXTS[0], LONG]).tolist()
    json.dump({"cases": cases, "long": LONG, "inputs": inputs}, open(f"{out}/clip_expected.json", "w"), ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main(sys.argv[1])
