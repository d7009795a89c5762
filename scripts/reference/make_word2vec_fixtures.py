"""Expected values for Tests/AttendEmbeddingsTests from gensim 4.4.0 (an independent implementation).

Trains small vectors on gensim's lee_background.cor, saves them in the word2vec binary and text formats,
and records gensim's nearest neighbours, similarities, analogies (3CosAdd and 3CosMul) and its
evaluate_word_pairs Spearman on WordSim-353 for the same vectors. Then writes an analogy question file drawn from
those vectors' vocabulary (the Lee corpus holds only 6 of questions-words.txt's questions) and gensim's
evaluate_word_analogies result on it: per section, how many questions are answered right and how many are asked.

    .cache/venv/bin/python scripts/reference/make_word2vec_fixtures.py .cache/assets/gensim-test-data Tests/AttendEmbeddingsTests/Fixtures

Tolerances used by the Swift tests: similarities 1e-5; neighbour and analogy word lists exact; analogy counts exact
(questions whose best and second-best answers score within 1e-3 of each other are left out, so that float rounding
cannot decide them).
"""
import json
import random
import sys

import numpy as np
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.word2vec import LineSentence


def main(data, out):
    m = Word2Vec(LineSentence(f"{data}/lee_background.cor"), vector_size=16, min_count=20, epochs=20, workers=1, seed=3)
    wv = m.wv
    wv.save_word2vec_format(f"{out}/gensim_vectors.bin", binary=True)
    wv.save_word2vec_format(f"{out}/gensim_vectors.txt", binary=False)
    queries = ["government", "police", "said", "Australia"]
    expected = {
        "count": len(wv),
        "dimension": wv.vector_size,
        "nearest": {q: [[w, float(s)] for w, s in wv.most_similar(q, topn=5)] for q in queries},
        "similarity": [[a, b, float(wv.similarity(a, b))] for a, b in [("government", "police"), ("said", "says"), ("the", "a")]],
        "analogy_add": [[w, float(s)] for w, s in wv.most_similar(positive=["police", "government"], negative=["said"], topn=3)],
        "analogy_mul": [[w, float(s)] for w, s in wv.most_similar_cosmul(positive=["police", "government"], negative=["said"], topn=3)],
        "wordsim353_spearman": float(wv.evaluate_word_pairs(f"{data}/wordsim353.tsv")[1][0]),
    }
    json.dump(expected, open(f"{out}/gensim_expected.json", "w"), indent=1)
    analogies(out)


def analogies(out, restrict=300):
    """Questions in questions-words.txt's format over the saved vectors, and gensim's accuracy on them.

    Section "answered" holds questions whose fourth word is gensim's answer and "random" ones whose fourth word is a
    random word (both kinds right and wrong answers for Attend); "case and vocabulary" mixes upper-case spellings,
    a word that is not in the vocabulary and words past the first `restrict` (skipped by both)."""
    wv = KeyedVectors.load_word2vec_format(f"{out}/gensim_vectors.bin", binary=True)
    rng = random.Random(7)
    words = wv.index_to_key[:restrict]
    unit = wv.get_normed_vectors()[:restrict]

    def ranked(a, b, c):
        """3CosAdd over the first `restrict` words, a, b and c excluded: (best, margin to the second)."""
        scores = unit @ (unit[wv.key_to_index[b]] + unit[wv.key_to_index[c]] - unit[wv.key_to_index[a]])
        order = [i for i in np.argsort(-scores) if words[i] not in (a, b, c)]
        return words[order[0]], float(scores[order[0]] - scores[order[1]])

    def question(answer_kind):
        while True:
            a, b, c = rng.sample(words, 3)
            best, margin = ranked(a, b, c)
            if margin < 1e-3 * 4:   # gensim's scores are cosines of the unnormalized mean: 4x the margin is safe
                continue
            return [a, b, c, best if answer_kind == "answered" else rng.choice(words)]

    lines = []
    for section in ["answered", "random"]:
        lines.append(f": {section}")
        lines += [" ".join(question(section)) for _ in range(60)]
    lines.append(": case and vocabulary")
    for i in range(30):
        q = question("answered" if i % 2 else "random")
        lines.append(" ".join(w.upper() if i % 3 == 0 else w.capitalize() if i % 3 == 1 else w for w in q))
    lines.append("police government said xylophonist")              # not in the vocabulary
    beyond = wv.index_to_key[restrict:]
    lines += [f"{beyond[0]} said police government", f"said police {beyond[1]} government"]   # past the restriction
    with open(f"{out}/gensim_analogies.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    accuracy, sections = wv.evaluate_word_analogies(f"{out}/gensim_analogies.txt", restrict_vocab=restrict, case_insensitive=True)
    result = {"restrict_vocab": restrict, "accuracy": accuracy,
              "sections": [[s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])] for s in sections]}
    json.dump(result, open(f"{out}/gensim_analogies.json", "w"), indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "--analogies-only":   # new questions over the committed vectors
        analogies(sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2])
