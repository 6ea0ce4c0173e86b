"""Write the lab-export-shaped tables of this folder (run once; files committed).

They imitate tables other people produce, not this project's extractor: an ID column
with another name, numeric group codes, sex coded 1/2, mixed-case headers with units
in them, empty cells, a column of text notes, no NfL or no has_* flags. The values
are uncited estimates drawn from made-up class means (ALS: lower precentral grey
matter and corticospinal FA, higher NfL); they carry no published figure.

    python tests/data/tables/make_tables.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def seven_tesla(rng: np.random.Generator) -> pd.DataFrame:
    """24 rows like a 7 T ALS-vs-control study export (Excel)."""
    n_als, n_hc = 12, 12
    group = np.r_[np.ones(n_als, int), np.zeros(n_hc, int)]
    als = group == 1
    out = pd.DataFrame(
        {
            "Subject_ID": [f"7T-{i:03d}" for i in range(1, n_als + n_hc + 1)],
            "Group": group,
            "Age": np.round(rng.normal(60, 9, group.size)).astype(int),
            "Gender": rng.choice([1, 2], group.size),
        }
    )
    regions = ["Precentral", "Postcentral", "SMA", "Precuneus", "Thalamus"]
    for side in ("L", "R"):
        for r in regions:
            loss = 0.9 if (als.any() and r in ("Precentral", "SMA")) else 1.0
            base = rng.normal(9000, 900, group.size)
            out[f"{r}_{side}_GMV (mm3)"] = np.round(np.where(als, base * loss, base), 1)
            thick = rng.normal(2.5, 0.15, group.size)
            out[f"{r}_{side}_Thickness_mm"] = np.round(
                np.where(als & (r == "Precentral"), thick - 0.15, thick), 3
            )
        fa = rng.normal(0.55, 0.03, group.size)
        out[f"CST_FA_{side}"] = np.round(np.where(als, fa - 0.04, fa), 4)
        md = rng.normal(0.75, 0.04, group.size)
        out[f"CST_MD_{side} (x10-3 mm2/s)"] = np.round(np.where(als, md + 0.03, md), 4)
    out["Motor_Cortex_QSM_ppb"] = np.round(
        np.where(als, rng.normal(25, 8, group.size), rng.normal(15, 8, group.size)), 2
    )
    out["ALSFRS-R"] = np.where(als, rng.integers(28, 46, group.size), np.nan)
    values = out.columns[4:]
    holes = rng.random((len(out), len(values))) < 0.15
    for j, c in enumerate(values):
        out.loc[holes[:, j], c] = np.nan
    notes = np.full(len(out), "", dtype=object)
    notes[[2, 7, 15]] = ["motion in run 2", "QSM repeated", "left-handed"]
    out["Notes"] = notes
    return out


def clinic_serum(rng: np.random.Generator) -> pd.DataFrame:
    """60 rows like a neuromuscular clinic's serum/clinical sheet (CSV)."""
    dx = np.repeat(["als", "MMN", "Control"], [24, 12, 24])
    als, mmn = dx == "als", dx == "MMN"
    nfl = np.exp(
        np.where(als, rng.normal(4.3, 0.5, dx.size), rng.normal(2.6, 0.5, dx.size))
    )
    out = pd.DataFrame(
        {
            "ID": [f"{i:03d}" for i in range(1, dx.size + 1)],
            "Diagnosis": dx,
            "Sex": rng.choice(["M", "F", "male", "female"], dx.size),
            "age_years": np.round(rng.normal(58, 11, dx.size), 1),
            "Site": rng.choice(["01", "02"], dx.size),
            "NfL_pg_ml": np.round(nfl, 1),
            "CHI3L1_ng_ml": np.round(np.exp(rng.normal(3.8, 0.6, dx.size)), 1),
            "ALSFRS_R": np.where(
                als, rng.integers(25, 47, dx.size), rng.integers(44, 49, dx.size)
            ),
            "Penn_UMN": np.where(als, rng.integers(1, 12, dx.size), 0),
            "Grip strength (kg)": np.round(
                np.where(
                    als | mmn, rng.normal(22, 7, dx.size), rng.normal(35, 8, dx.size)
                ),
                1,
            ),
            "anti_GM1": np.where(mmn, rng.random(dx.size) < 0.5, False).astype(int),
        }
    )
    holes = rng.random((len(out), 4)) < 0.1
    for j, c in enumerate(
        ["NfL_pg_ml", "CHI3L1_ng_ml", "Grip strength (kg)", "age_years"]
    ):
        out.loc[holes[:, j], c] = np.nan
    out["Comment"] = np.where(rng.random(dx.size) < 0.2, "sample haemolysed", "")
    return out


if __name__ == "__main__":
    seven_tesla(np.random.default_rng(7)).to_excel(
        HERE / "lab_7t_export.xlsx", index=False
    )
    clinic_serum(np.random.default_rng(11)).to_csv(
        HERE / "clinic_serum.csv", index=False
    )
