"""The baseline for `attend bert finetune`: bag-of-words logistic regression (scikit-learn) on the same
train/test TSV files. Single passages: word counts (tf-idf weighted). Pairs: [bow(a), bow(b), bow(a) * bow(b)]
with binary bag-of-words, so the model can see which words the two passages share.

    .cache/venv/bin/python Benchmarks/books_bow_logreg.py .cache/corpus/books/book-train.tsv .cache/corpus/books/book-test.tsv
"""
import sys

import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def read(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8") if line.strip()]
    return [r[0] for r in rows], [r[1:] for r in rows]


def main(train_path, test_path):
    y_train, x_train = read(train_path)
    y_test, x_test = read(test_path)
    if len(x_train[0]) == 1:
        vec = TfidfVectorizer(sublinear_tf=True)
        a = vec.fit_transform([x[0] for x in x_train])
        b = vec.transform([x[0] for x in x_test])
    else:
        vec = CountVectorizer(binary=True)
        vec.fit([x[0] for x in x_train] + [x[1] for x in x_train])

        def features(rows):
            left, right = vec.transform([r[0] for r in rows]), vec.transform([r[1] for r in rows])
            return sp.hstack([left, right, left.multiply(right)]).tocsr()

        a, b = features(x_train), features(x_test)
    model = LogisticRegression(max_iter=3000, C=10.0)
    model.fit(a, y_train)
    accuracy = (model.predict(b) == y_test).mean()
    print(f"bag-of-words logistic regression: accuracy {accuracy:.4f} on {len(y_test)} test rows ({len(y_train)} training)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
