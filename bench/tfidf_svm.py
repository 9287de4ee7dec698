"""The strong bag-of-words baseline of the arxiv5 accuracy bench: a linear SVM (scikit-learn's LinearSVC, C=0.3)
on TF-IDF features of word 1-2-grams and character 2-5-grams (sublinear tf, terms in at least 2 texts).

usage: tfidf_svm.py TRAIN_CSV TEST_CSV LABEL_COLUMN TEXT_FIELD...
prints: {"accuracy": ..., "macro_f1": ..., "predicted": [...]} on the test CSV (predicted: one label per row, in file
order), texts joined as the bench joins them ("title. abstract").
"""

import csv
import json
import sys

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

train_csv, test_csv, label_column, *fields = sys.argv[1:]


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [". ".join(r[k] for k in fields if r[k].strip()) for r in rows]
    return texts, [r[label_column] for r in rows]


train_texts, train_labels = load(train_csv)
test_texts, test_labels = load(test_csv)
vectorizers = [
    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
]
train_x = hstack([v.fit_transform(train_texts) for v in vectorizers]).tocsr()
test_x = hstack([v.transform(test_texts) for v in vectorizers]).tocsr()
predicted = LinearSVC(C=0.3).fit(train_x, train_labels).predict(test_x)
print(json.dumps({
    "accuracy": accuracy_score(test_labels, predicted),
    "macro_f1": f1_score(test_labels, predicted, average="macro"),
    "predicted": predicted.tolist(),
}))
