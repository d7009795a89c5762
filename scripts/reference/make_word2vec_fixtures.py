"""Expected values for Tests/AttendEmbeddingsTests from gensim 4.4.0 (an independent implementation).

Trains small vectors on gensim's lee_background.cor, saves them in the word2vec binary and text formats,
and records gensim's nearest neighbours, similarities, analogies (3CosAdd and 3CosMul) and its
evaluate_word_pairs Spearman on WordSim-353 for the same vectors.

    .cache/venv/bin/python scripts/reference/make_word2vec_fixtures.py .cache/assets/gensim-test-data Tests/AttendEmbeddingsTests/Fixtures

Tolerances used by the Swift tests: similarities 1e-5; neighbour and analogy word lists exact.
"""
import json
import sys

from gensim.models import Word2Vec
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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
