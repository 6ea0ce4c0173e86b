"""SHAP explanations of a locked model, per subject and per class.

Values are computed model-agnostically: permutation SHAP (the algorithm of
``shap.explainers.Permutation``, vectorised over subjects, see
:func:`permutation_shap`) on the whole pipeline's ``predict_proba``
(harmonisation, normative z-scores, imputation, classifier, calibration), one
output per class. They are therefore in probability
units and exact in sum (base value + contributions = predicted probability of each
class) for every model family training can produce, where a tree explainer would
explain the uncalibrated booster's log-odds of transformed features. The background
is the bundle's aggregated training rows (cluster medians; see
:func:`training.card.background`), so a single subject is explained against the
training population, not against the cohort it came with.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.dictionary import modality_of
from serve.bundle import SITE, Bundle


@dataclass(frozen=True)
class Explanation:
    """``values[i, j, k]``: feature j's push on the probability of class k for row i.

    ``base_values[i, k]`` is the mean probability of class k over the background;
    ``base_values[i] + values[i].sum(axis=0)`` is row i's predicted probabilities.
    """

    values: np.ndarray
    base_values: np.ndarray
    features: list[str]
    classes: list[str]
    data: pd.DataFrame


def shap_values(
    bundle: Bundle,
    frame: pd.DataFrame,
    seed: int = 0,
    batch: int = 16,
    client=None,
) -> Explanation:
    """Permutation SHAP values of ``bundle`` for every row of ``frame`` (on the
    workers of the Dask ``client`` when given, see :func:`_on_cluster`).

    Parameters
    ----------
    bundle : Bundle
        The locked model.
    frame : DataFrame
        Model inputs that can be scored (see :func:`serve.predict.prepare_input`):
        the bundle's feature columns, numeric, ``site`` as text.
    seed : int
        Seed of the feature permutation.
    batch : int
        Rows explained per call of the pipeline (memory ~ 2.5 MB per row).

    The acquisition ``site`` is not explained: each row is explained at its own
    site (the harmoniser reads it), so its offsets are not credited to biology.
    """
    if client is not None and len(frame) > batch:
        return _on_cluster(client, bundle, frame, seed, batch)
    features = [c for c in bundle.feature_columns if c != SITE]
    X = frame[features].to_numpy(dtype=float, na_value=np.nan)
    has_site = SITE in bundle.feature_columns
    sites = frame[SITE].astype("string").to_numpy() if has_site else None
    background = background_frame(bundle)[features].to_numpy(dtype=float)
    pipe, order = bundle.pipeline, bundle.class_order

    def f(rows: np.ndarray, row_sites: np.ndarray | None) -> np.ndarray:
        data = pd.DataFrame(rows, columns=features)
        if has_site:
            data[SITE] = pd.array(row_sites, dtype="string")
        return pipe.predict_proba(data[bundle.feature_columns])[:, order]

    with warnings.catch_warnings():
        # the pipeline's data notes (e.g. unseen sites) would repeat for every
        # perturbed batch; scoring the same rows reports them once
        warnings.simplefilter("ignore", UserWarning)
        values, base = permutation_shap(f, X, background, sites, seed=seed, batch=batch)
    data = pd.DataFrame(X, columns=features, index=frame.index)
    return Explanation(values, base, features, bundle.classes, data)


def _on_cluster(client, bundle: Bundle, frame: pd.DataFrame, seed: int, batch: int):
    """:func:`shap_values` with the rows split over a Dask cluster's workers.

    Every row is explained along the same feature order (drawn once from
    ``seed``), and a task holds whole batches of ``batch`` rows, so each pipeline
    call sees the same rows as embedded: the values are equal to the embedded
    run's, not merely close. The bundle is sent to each worker once.
    """
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    per_task = batch * max(1, -(-len(frame) // (batch * 2 * workers)))
    remote = client.scatter(bundle, broadcast=True, hash=False)
    futures = [
        client.submit(
            shap_values,
            remote,
            client.scatter(frame.iloc[lo : lo + per_task], hash=False),
            seed,
            batch,
            pure=False,
        )
        for lo in range(0, len(frame), per_task)
    ]
    parts = client.gather(futures)
    return Explanation(
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.base_values for p in parts]),
        parts[0].features,
        parts[0].classes,
        pd.concat([p.data for p in parts]),
    )


def permutation_shap(
    f,
    X: np.ndarray,
    background: np.ndarray,
    context: np.ndarray | None = None,
    *,
    permutations: list[np.ndarray] | None = None,
    seed: int = 0,
    batch: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values by antithetic permutation sampling, vectorised over rows.

    The algorithm of ``shap.explainers.Permutation`` with an independent
    (interventional) masker: along a permutation of the features, switch them one
    at a time from the background's values to the row's and credit each feature
    with the change of the mean output; then the same along the reversed
    permutation, and average. Every pass is exact in sum (base value + values =
    f(row)); averaged over all permutations it is the exact Shapley value.

    Parameters
    ----------
    f : callable
        ``f(rows, context_per_row) -> (n_rows, n_outputs)``.
    X : ndarray of shape (n, d)
        Rows to explain.
    background : ndarray of shape (m, d)
        Values a switched-off feature takes (averaged over the m rows).
    context : ndarray of shape (n,), optional
        Passed to ``f`` with every evaluation of row i (e.g. its site).
    permutations : list of ndarray, optional
        Feature orders to average over, each with its reverse (default: one random
        order drawn with ``seed``).
    batch : int
        Rows evaluated per call of ``f``.

    Returns
    -------
    values : ndarray of shape (n, d, n_outputs)
    base_values : ndarray of shape (n, n_outputs)
    """
    n, d = X.shape
    m = len(background)
    if permutations is None:
        permutations = [np.random.default_rng(seed).permutation(d)]
    orders = [p for perm in permutations for p in (np.asarray(perm), perm[::-1])]
    steps = np.arange(d + 1)
    values, base = None, None
    for order in orders:
        # on[s, j]: feature j takes the row's value at step s (the first s of order)
        rank = np.empty(d, dtype=int)
        rank[order] = np.arange(d)
        on = rank[None, :] < steps[:, None]
        for lo in range(0, n, batch):
            rows = X[lo : lo + batch]
            b = len(rows)
            grid = np.where(
                on[None, :, None, :], rows[:, None, None, :], background[None, None]
            ).reshape(-1, d)
            ctx = (
                None
                if context is None
                else np.repeat(context[lo : lo + b], (d + 1) * m)
            )
            out = np.asarray(f(grid, ctx)).reshape(b, d + 1, m, -1).mean(axis=2)
            if values is None:
                values = np.zeros((n, d, out.shape[-1]))
                base = np.zeros((n, out.shape[-1]))
            values[lo : lo + b, order] += np.diff(out, axis=1) / len(orders)
            base[lo : lo + b] += out[:, 0] / len(orders)
    return values, base


def background_frame(bundle: Bundle) -> pd.DataFrame:
    """The bundle's SHAP background: aggregated training rows, one per cluster."""
    bg = bundle.metadata["background"]
    rows = [[np.nan if v is None else v for v in r["values"]] for r in bg["rows"]]
    return pd.DataFrame(rows, columns=bg["columns"], dtype=float)


def top_contributions(
    exp: Explanation, row: int, cls: str, top: int = 10
) -> list[dict]:
    """The ``top`` largest pushes on ``cls`` for one row: feature, value, SHAP."""
    k = exp.classes.index(cls)
    contrib = exp.values[row, :, k]
    idx = np.argsort(-np.abs(contrib))[:top]
    values = exp.data.iloc[row]
    return [
        {
            "feature": exp.features[j],
            "value": None if np.isnan(values.iloc[j]) else float(values.iloc[j]),
            "shap": float(contrib[j]),
        }
        for j in idx
    ]


def importance(exp: Explanation) -> tuple[pd.Series, pd.Series]:
    """Mean |SHAP| over rows and classes, per feature and summed per modality."""
    per_feature = pd.Series(
        np.abs(exp.values).mean(axis=(0, 2)), index=exp.features
    ).sort_values(ascending=False)
    per_modality = per_feature.groupby(modality_of).sum().sort_values(ascending=False)
    return per_feature, per_modality
