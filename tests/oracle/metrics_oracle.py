"""Classification metrics reference: scikit-learn, called as the seed's metrics.py calls it.

params: {"cases": [{"name", "labels": [str], "digits": int, and either
  "y_true", "y_pred": [int]  (single-label: label indices; -1 = gold outside the label set, -2 = invalid answer)
  or "Y_true", "Y_pred": [[0/1]]  (multi-label indicator rows)}],
 "floats": [float], "float_digits": [int]}
outputs (params): per case {"accuracy", "f1_micro", "f1_macro", "f1_weighted", "report_text", "report_dict",
  "confusion" (single: confusion_matrix; multi: multilabel_confusion_matrix), "confusion_str" (single: str(cm))},
  and "formatted": [[format(x, f".{d}f") for d in float_digits] for x in floats].
"""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    multilabel_confusion_matrix,
)

from oracle_io import read_inputs, write_outputs

params, _ = read_inputs()
out = {"cases": {}}
for case in params["cases"]:
    labels = list(range(len(case["labels"])))
    if "y_true" in case:
        y_true, y_pred = np.array(case["y_true"]), np.array(case["y_pred"])
    else:
        y_true, y_pred = np.array(case["Y_true"]), np.array(case["Y_pred"])
    kw = dict(labels=labels, zero_division=0)
    res = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_micro": float(f1_score(y_true, y_pred, average="micro", **kw)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", **kw)),
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted", **kw)),
        "report_text": classification_report(y_true, y_pred, target_names=case["labels"], digits=case["digits"], **kw),
        "report_dict": classification_report(y_true, y_pred, target_names=case["labels"], output_dict=True, **kw),
    }
    if "y_true" in case:
        cm = confusion_matrix(y_true, y_pred, labels=labels)
        res["confusion"] = cm.tolist()
        res["confusion_str"] = str(cm)
    else:
        res["confusion"] = multilabel_confusion_matrix(y_true, y_pred, labels=labels).tolist()
    out["cases"][case["name"]] = res
out["formatted"] = [[format(x, f".{d}f") for d in params["float_digits"]] for x in params["floats"]]
write_outputs({}, out)
