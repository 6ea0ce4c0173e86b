"""EFNS/PNS 2010 criteria for multifocal motor neuropathy, per subject.

Joint Task Force of the EFNS and the PNS, J Peripher Nerv Syst 2010;15:295-301
(the MMN review, source study 5). :func:`efns_pns_2010` applies them to a features
table as far as its columns allow and says, per subject, which criteria could not
be judged. The electrodiagnostic grades per nerve come from the nerve-conduction
reader (:func:`features.cohort.nerve_conduction.grade_conduction_block`: area reduction,
CMAP duration increase, distal amplitude, entrapment sites).

What the features table can and cannot tell:

- clinical criterion 1 (slowly progressive focal asymmetric weakness in >= 2 nerves
  for > 1 month): lower motor neuron signs with onset > 1 month before the visit;
  the number of weak nerves and the asymmetry are not recorded (listed in
  ``not_judged``);
- clinical criterion 2 (no objective sensory abnormality): normal sensory
  conduction (``ncs_sensory_abnormal`` = 0) stands in for the examination;
- exclusion criteria: UMN signs (``umn_signs`` or Penn UMN > 0), marked bulbar
  involvement (bulbar onset), sensory impairment (abnormal sensory conduction);
  diffuse symmetric weakness early on is not recorded;
- supportive criteria: anti-GM1 IgM, increased T2 signal of the brachial plexus on
  MRI; CSF protein and the response to IVIg are not in the table;
- categories: *definite* (clinical 1 and 2, no exclusion, definite block in one
  nerve); *probable* (clinical 1 and 2, no exclusion, probable block in two nerves,
  or in one nerve with two supportive criteria); *possible* (clinical 1 and 2, no
  exclusion, probable block in one nerve; the guideline's IVIg-response route is not
  available); otherwise *not met*, or *not evaluable* when the deciding columns
  are missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CATEGORIES = ("definite", "probable", "possible", "not met", "not evaluable")
#: The electrodiagnostic grades, best first.
GRADES = ("definite block", "probable block", "no block", "not evaluable")


def _col(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[name], errors="coerce").to_numpy(float)


def umn_status(table: pd.DataFrame) -> np.ndarray:
    """Upper motor neuron signs per row: 1 when present (``umn_signs`` = 1 or Penn
    UMN > 0), 0 when measured and absent, NaN when neither column is measured.
    The one UMN rule of the criteria analysis and the criteria baseline.

    >>> umn_status(pd.DataFrame({"umn_signs": [0, None, None, 1],
    ...                          "penn_umn": [None, 3, None, 0]})).tolist()
    [0.0, 1.0, nan, 1.0]
    """
    signs, penn = _col(table, "umn_signs"), _col(table, "penn_umn")
    unknown = np.isnan(signs) & np.isnan(penn)
    return np.where((signs == 1) | (penn > 0), 1.0, np.where(unknown, np.nan, 0.0))


def block_counts(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Nerves with a definite and with a probable conduction block per row; when
    only one grade is counted the other counts 0, NaN when neither is."""
    definite = _col(table, "ncs_n_nerves_cb_definite")
    probable = _col(table, "ncs_n_nerves_cb_probable")
    counted = ~(np.isnan(definite) & np.isnan(probable))
    definite = np.where(counted, np.nan_to_num(definite), np.nan)
    probable = np.where(counted, np.nan_to_num(probable), np.nan)
    return definite, probable


def conduction_block(table: pd.DataFrame) -> np.ndarray:
    """Any conduction block per row (1 / 0 / NaN): ``ncs_any_cb`` where measured,
    else a definite or probable block counted in :func:`block_counts`.

    >>> conduction_block(pd.DataFrame({"ncs_any_cb": [1, None, None],
    ...     "ncs_n_nerves_cb_probable": [0, 2, None]})).tolist()
    [1.0, 1.0, nan]
    """
    definite, probable = block_counts(table)
    counted = np.where(np.isnan(definite), np.nan, ((definite + probable) > 0) * 1.0)
    any_cb = _col(table, "ncs_any_cb")
    return np.where(np.isnan(any_cb), counted, (any_cb == 1) * 1.0)


def efns_pns_2010(table: pd.DataFrame, label: str = "diagnosis") -> pd.DataFrame:
    """Each row's EFNS/PNS 2010 electrodiagnostic and diagnostic category.

    Returns one row per input row: ``participant_id`` and ``session`` (when
    present), the label, ``n_definite_cb``, ``n_probable_cb``, ``electrodiagnostic``
    (definite / probable / no block / not evaluable), ``clinical_1``,
    ``clinical_2``, ``exclusions``, ``supportive``, ``category`` and
    ``not_judged`` (the criteria the table could not inform for that row).

    Examples
    --------
    >>> t = pd.DataFrame({"diagnosis": ["MMN", "ALS"], "lmn_signs": [1, 1],
    ...     "months_since_onset": [40, 10], "ncs_sensory_abnormal": [0, 0],
    ...     "umn_signs": [0, 1], "onset_bulbar": [0, 0],
    ...     "ncs_n_nerves_cb_definite": [1, 0], "ncs_n_nerves_cb_probable": [0, 0],
    ...     "anti_gm1_igm": [1, 0]})
    >>> efns_pns_2010(t)["category"].tolist()
    ['definite', 'not met']
    """
    definite, probable = block_counts(table)
    ncs = ~np.isnan(definite)
    electro = np.where(
        ~ncs,
        "not evaluable",
        np.where(
            definite >= 1,
            "definite block",
            np.where(probable >= 1, "probable block", "no block"),
        ),
    )
    lmn, months = _col(table, "lmn_signs"), _col(table, "months_since_onset")
    sensory = _col(table, "ncs_sensory_abnormal")
    umn = umn_status(table)
    bulbar = _col(table, "onset_bulbar")
    clinical_1 = np.where(
        lmn == 0,
        0.0,  # no lower motor neuron weakness: not met, whatever the history
        np.where(np.isnan(lmn) | np.isnan(months), np.nan, (months > 1) * 1.0),
    )
    clinical_2 = np.where(np.isnan(sensory), np.nan, (sensory == 0).astype(float))
    exclusions, supportive, not_judged, category = [], [], [], []
    gm1 = _col(table, "anti_gm1_igm")
    plexus = _col(table, "plexus_t2_hyperintensity_n_sides")
    plexus = np.where(np.isnan(plexus), np.nan, (plexus > 0) * 1.0)
    for i in range(len(table)):
        ex = [
            name
            for name, v in (
                ("UMN signs", umn[i]),
                ("bulbar onset", bulbar[i]),
                ("sensory abnormality", sensory[i]),
            )
            if v == 1
        ]
        sup = [
            name
            for name, v in (("anti-GM1 IgM", gm1[i]), ("plexus T2 signal", plexus[i]))
            if v == 1
        ]
        unknown = [
            name
            for name, v in (
                ("clinical 1", clinical_1[i]),
                ("clinical 2", clinical_2[i]),
                ("UMN signs", umn[i]),
                ("bulbar involvement", bulbar[i]),
                ("conduction block", definite[i]),
            )
            if np.isnan(v)
        ]
        unknown += ["asymmetry and nerves involved", "CSF protein", "IVIg response"]
        core = clinical_1[i] == 1 and clinical_2[i] == 1 and not ex
        if ex or clinical_1[i] == 0 or clinical_2[i] == 0:
            cat = "not met"
        elif (
            np.isnan(clinical_1[i])
            or np.isnan(clinical_2[i])
            or not ncs[i]
            or np.isnan(umn[i])
        ):
            cat = "not evaluable"
        elif core and definite[i] >= 1:
            cat = "definite"
        elif core and (probable[i] >= 2 or (probable[i] >= 1 and len(sup) >= 2)):
            cat = "probable"
        elif core and probable[i] >= 1:
            cat = "possible"
        else:
            cat = "not met"
        exclusions.append(", ".join(ex))
        supportive.append(", ".join(sup))
        not_judged.append(", ".join(unknown))
        category.append(cat)
    ids = [c for c in ("participant_id", "session") if c in table.columns]
    out = table[[*ids, label]].reset_index(drop=True).copy()
    out[label] = out[label].astype(str)
    out = out.assign(
        n_definite_cb=definite,
        n_probable_cb=probable,
        electrodiagnostic=electro,
        clinical_1=clinical_1,
        clinical_2=clinical_2,
        exclusions=exclusions,
        supportive=supportive,
        category=category,
        not_judged=not_judged,
    )
    return out
