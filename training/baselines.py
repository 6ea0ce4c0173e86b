"""Reference classifiers reported beside every trained model.

Each baseline is a scikit-learn classifier (``fit(X, y)``, ``predict_proba(X)``,
``classes_``) whose probabilities are learned from the training fold only, so the
same cross-validation and the same metrics apply to baselines and models alike:

- :class:`MajorityBaseline`: the training-fold class frequencies for everyone.
- :class:`NfLCutoffBaseline`: serum NfL above 62 pg/mL calls ALS (Verde, JNNP
  2019;90:157: sensitivity 85.5 %, specificity 81.8 % for ALS vs all others;
  refs#perf), as a calibrated two-bin model.
- :class:`CriteriaBaseline`: the published diagnostic criteria as ordered rules
  (AQP4-IgG for NMO, oligoclonal bands with lesions for MS, EFNS/PNS 2010 for MMN,
  El Escorial / Gold Coast UMN + LMN for ALS), each rule's class distribution
  learned from the training fold.

``X`` is the features table (a DataFrame); the rule-based baselines read their
columns by name and ignore the rest, so they take the same ``X`` as the models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from training.criteria import conduction_block, umn_status


def _labels(y, n: int) -> np.ndarray:
    """Validated label array of length ``n`` (no missing labels)."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(
            f"y has shape {y.shape} but X has {n} rows; pass one label per row."
        )
    missing = pd.isna(y)
    if missing.any():
        raise ValueError(
            f"y has {int(missing.sum())} missing label(s) (first at row "
            f"{int(np.argmax(missing))}); drop unlabelled rows before fitting."
        )
    return y


def _column(X: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` of ``X`` as floats (NaN = missing; all NaN when absent)."""
    if name not in X.columns:
        return np.full(len(X), np.nan)
    s = X[name]
    if not (pd.api.types.is_numeric_dtype(s) or s.isna().all()):
        raise ValueError(
            f"column {name!r} must be numeric (1 = positive / present, 0 = "
            f"negative / absent); it holds {s.dropna().iloc[0]!r}. Use the table "
            "from features.extract or convert the values."
        )
    return pd.to_numeric(s).to_numpy(dtype=float, na_value=np.nan)


def _frame(X, needs: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"expected the features table as a pandas DataFrame with {needs}, got "
            f"{type(X).__name__}; pass the frame from features.extract."
        )
    return X


class _Baseline(ClassifierMixin, BaseEstimator):
    """Shared ``predict`` and label handling (three concrete baselines)."""

    def _fit_labels(self, y, n: int) -> np.ndarray:
        y = _labels(y, n)
        check_classification_targets(y)
        self.classes_, counts = np.unique(y, return_counts=True)
        self.class_prior_ = counts / counts.sum()
        return y

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class MajorityBaseline(_Baseline):
    """Predict the training-fold class frequencies for every subject.

    Its balanced accuracy is chance and its AUCs are 0.5: the floor every model
    must clear.

    Examples
    --------
    >>> import numpy as np
    >>> b = MajorityBaseline().fit(np.zeros((4, 1)), ["ALS", "ALS", "ALS", "HC"])
    >>> b.predict_proba(np.zeros((1, 1))).tolist()
    [[0.75, 0.25]]
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=None)
        self._fit_labels(y, len(X))
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=None)
        return np.tile(self.class_prior_, (len(X), 1))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True  # X is never read
        return tags


class NfLCutoffBaseline(_Baseline):
    """Serum NfL above a cutoff calls ALS: a calibrated two-bin model.

    The published rule (Verde, JNNP 2019;90:157): NfL > 62 pg/mL separates ALS from
    all others with sensitivity 85.5 % and specificity 81.8 %. Here the ALS
    probability above (below) the cutoff is the training-fold fraction of ALS among
    subjects above (below) it, Laplace-smoothed by ``alpha``; the remaining mass is
    shared among the other classes by their training frequencies. A subject without
    NfL gets the training prior.

    Parameters
    ----------
    cutoff : float
        NfL threshold in pg/mL; ``> cutoff`` is the ALS bin.
    column : str
        The NfL column of ``X``.
    positive : str
        The label the rule calls (must occur in ``y``).
    alpha : float
        Additive smoothing of each bin's ALS fraction, ``(k + alpha) / (n + 2
        alpha)``, so no bin says exactly 0 or 1; ``0`` gives the raw fraction.

    Attributes
    ----------
    p_above_, p_below_ : float
        ALS probability above and at-or-below the cutoff.

    Notes
    -----
    ``sklearn.model_selection.cross_val_predict(method="predict_proba")`` hands
    classifiers integer-encoded labels, so ``positive="ALS"`` is not found there;
    use a fold loop with the string labels (as ``training.nested_cv`` does).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"nfl_pg_ml": [120.0, 90.0, 10.0, 12.0]})
    >>> b = NfLCutoffBaseline(alpha=0).fit(X, ["ALS", "ALS", "HC", "MS"])
    >>> b.predict_proba(pd.DataFrame({"nfl_pg_ml": [100.0, 5.0]})).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]
    """

    def __init__(
        self,
        cutoff: float = 62.0,
        column: str = "nfl_pg_ml",
        positive: str = "ALS",
        alpha: float = 1.0,
    ):
        self.cutoff = cutoff
        self.column = column
        self.positive = positive
        self.alpha = alpha

    def _nfl(self, X) -> np.ndarray:
        X = _frame(X, f"a {self.column!r} column")
        if self.column not in X.columns:
            raise ValueError(
                f"X has no {self.column!r} column (NfL in pg/mL); add it (empty "
                "cells are fine) or set column= to the NfL column's name."
            )
        return _column(X, self.column)

    def fit(self, X, y):
        nfl = self._nfl(X)
        y = self._fit_labels(y, len(nfl))
        if self.positive not in self.classes_:
            raise ValueError(
                f"positive class {self.positive!r} is not among the training labels "
                f"{list(self.classes_)}; set positive= to the ALS label."
            )
        is_pos = y == self.positive
        prior_pos = float(is_pos.mean())
        a = float(self.alpha)
        rates = []
        for in_bin in (nfl > self.cutoff, nfl <= self.cutoff):
            n = int(in_bin.sum())
            k = int((is_pos & in_bin).sum())
            rates.append((k + a) / (n + 2 * a) if n + 2 * a > 0 else prior_pos)
        if len(self.classes_) == 1:  # nothing else to call: certainty
            rates = [1.0, 1.0]
        self.p_above_, self.p_below_ = rates
        others = np.where(self.classes_ == self.positive, 0.0, self.class_prior_)
        self.other_share_ = others / others.sum() if others.sum() > 0 else others
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        nfl = self._nfl(X)
        p = np.where(nfl > self.cutoff, self.p_above_, self.p_below_)
        pos = self.classes_ == self.positive
        out = (1.0 - p)[:, None] * self.other_share_[None, :]
        out[:, pos] = p[:, None]
        out[np.isnan(nfl)] = self.class_prior_
        return out


#: The ordered rules of :class:`CriteriaBaseline`: (name, the class it stands for,
#: the rule and its source). The first rule that fires assigns the subject.
RULES: tuple[tuple[str, str, str], ...] = (
    (
        "aqp4",
        "NMO",
        "AQP4-IgG positive (IPND 2015 criteria; AQP4-IgG sensitivity 68-77 %, "
        "specificity ~100 %: Jarius 2012, Waters, Neurology 2012)",
    ),
    (
        "ocb_lesions",
        "MS",
        "oligoclonal bands positive and T2 lesion volume > 0 or EDSS > 0 (McDonald "
        "2017: CSF-specific OCB with lesions; OCB in MS 88-94 %: Dobson, JNNP 2013)",
    ),
    (
        "efns_pns_mmn",
        "MMN",
        "definite or probable motor conduction block, no UMN signs (Penn 0 / no "
        "UMN signs on examination: an exclusion criterion) and normal sensory "
        "conduction (EFNS/PNS 2010; sensitivity 47-57 %: Doneddu, Eur J Neurol 2024)",
    ),
    (
        "umn_lmn",
        "ALS",
        "UMN signs (Penn > 0 or UMN signs on examination) and LMN signs (revised "
        "El Escorial / Gold Coast 2020, simplified to one region)",
    ),
    (
        "all_normal",
        "HC",
        "every measured sign and test normal: no UMN or LMN signs, no conduction "
        "block, normal sensory conduction, AQP4-IgG and OCB negative, EDSS 0",
    ),
    ("unclassified", "", "abnormal without meeting any criterion, or nothing measured"),
)

#: Columns the criteria read (absent columns count as not measured).
CRITERIA_COLUMNS = (
    "aqp4_igg",
    "oligoclonal_bands",
    "t2_lesion_volume_ml",
    "edss",
    "ncs_any_cb",
    "ncs_n_nerves_cb_definite",
    "ncs_n_nerves_cb_probable",
    "ncs_sensory_abnormal",
    "penn_umn",
    "umn_signs",
    "lmn_signs",
)


def assign_rules(X: pd.DataFrame) -> np.ndarray:
    """Name of the first rule of :data:`RULES` that fires for each row of ``X``.

    A rule fires only on measured evidence: a missing value neither meets nor
    excludes a criterion, so e.g. MMN needs UMN signs known to be absent.
    """
    X = _frame(X, f"criteria columns such as {list(CRITERIA_COLUMNS[:4])}")
    if not any(c in X.columns for c in CRITERIA_COLUMNS):
        raise ValueError(
            "X has none of the criteria columns "
            f"{list(CRITERIA_COLUMNS)}; pass the features table from "
            "features.extract (clinical, serum and ncs columns)."
        )
    c = {name: _column(X, name) for name in CRITERIA_COLUMNS}
    cb = conduction_block(X) == 1
    umn = umn_status(X)
    umn_pos, umn_neg = umn == 1, umn == 0
    normal_when_zero = ("penn_umn", "umn_signs", "lmn_signs", "ncs_any_cb")
    normal_when_zero += ("ncs_sensory_abnormal", "aqp4_igg", "oligoclonal_bands")
    normal_when_zero += ("edss",)
    measured = np.column_stack([~np.isnan(c[k]) for k in normal_when_zero])
    abnormal = np.column_stack([c[k] != 0 for k in normal_when_zero]) & measured
    fired = {
        "aqp4": c["aqp4_igg"] == 1,
        "ocb_lesions": (c["oligoclonal_bands"] == 1)
        & ((c["t2_lesion_volume_ml"] > 0) | (c["edss"] > 0)),
        "efns_pns_mmn": cb & umn_neg & (c["ncs_sensory_abnormal"] == 0),
        "umn_lmn": umn_pos & (c["lmn_signs"] == 1),
        "all_normal": measured.any(axis=1) & ~abnormal.any(axis=1),
    }
    out = np.full(len(X), "unclassified", dtype=object)
    for name in reversed(list(fired)):  # earlier rules overwrite later ones
        out[fired[name]] = name
    return out


class CriteriaBaseline(_Baseline):
    """The published diagnostic criteria as ordered rules (see :data:`RULES`).

    Each subject is assigned the first rule that fires: AQP4-IgG -> NMO; oligoclonal
    bands with lesions -> MS; EFNS/PNS 2010 conduction block without UMN signs or
    sensory loss -> MMN; UMN + LMN signs -> ALS; everything measured normal -> HC;
    otherwise unclassified. A rule's probabilities are the training-fold class
    distribution of the training subjects it assigned, Laplace-smoothed, so the
    baseline is calibrated and honest within cross-validation (and works for any
    labelling, e.g. ALS vs mimics).

    Parameters
    ----------
    alpha : float
        Laplace smoothing: ``(count + alpha) / (n_rule + alpha * n_classes)``.

    Attributes
    ----------
    rule_counts_ : DataFrame
        Training subjects per rule (rows, :data:`RULES` order) and class (columns).
    rule_proba_ : DataFrame
        The smoothed probabilities each rule predicts.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"aqp4_igg": [1.0, 0.0], "penn_umn": [4.0, 6.0],
    ...                   "lmn_signs": [0.0, 1.0]})
    >>> assign_rules(X).tolist()
    ['aqp4', 'umn_lmn']
    >>> CriteriaBaseline().fit(X, ["NMO", "ALS"]).predict(X).tolist()
    ['NMO', 'ALS']
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X, y):
        rules = assign_rules(X)
        y = self._fit_labels(y, len(rules))
        names = [r[0] for r in RULES]
        counts = pd.crosstab(
            pd.Categorical(rules, categories=names),
            pd.Categorical(y, categories=self.classes_),
            dropna=False,
        )
        counts.index, counts.columns = names, list(self.classes_)
        self.rule_counts_ = counts
        smoothed = counts.to_numpy(dtype=float) + float(self.alpha)
        total = smoothed.sum(axis=1, keepdims=True)
        # an empty rule with alpha = 0 falls back to the training prior
        proba = np.where(total > 0, smoothed / np.where(total > 0, total, 1), 0.0)
        proba[total[:, 0] == 0] = self.class_prior_
        self.rule_proba_ = pd.DataFrame(proba, index=names, columns=counts.columns)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.rule_proba_.loc[assign_rules(X)].to_numpy()


BASELINES = {
    "majority": MajorityBaseline,
    "nfl_62": NfLCutoffBaseline,
    "criteria": CriteriaBaseline,
}

__all__ = [
    "BASELINES",
    "CRITERIA_COLUMNS",
    "RULES",
    "CriteriaBaseline",
    "MajorityBaseline",
    "NfLCutoffBaseline",
    "assign_rules",
]
