"""EFNS/PNS 2010 categories for MMN, row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.criteria import efns_pns_2010

NAN = np.nan


def test_each_category_from_the_guideline():
    t = pd.DataFrame(
        {
            "diagnosis": ["MMN"] * 6 + ["HC"],
            "lmn_signs": [1, 1, 1, 1, 1, NAN, 0],
            "months_since_onset": [40, 40, 40, 40, 40, 40, NAN],
            "ncs_sensory_abnormal": [0, 0, 0, 0, 0, 0, 0],
            "umn_signs": [0, 0, 0, 0, 1, 0, 0],
            "onset_bulbar": [0, 0, 0, 0, 0, 0, NAN],
            "ncs_n_nerves_cb_definite": [1, 0, 0, 0, 1, 1, 0],
            "ncs_n_nerves_cb_probable": [0, 2, 1, 1, 0, 0, 0],
            "anti_gm1_igm": [0, 0, 1, 0, 0, 0, 0],
            "plexus_t2_hyperintensity_n_sides": [NAN, NAN, 1, NAN, NAN, NAN, NAN],
        }
    )
    out = efns_pns_2010(t)
    assert out["category"].tolist() == [
        "definite",  # core criteria, no exclusion, definite block in one nerve
        "probable",  # probable block in two nerves
        "probable",  # probable block in one nerve + two supportive criteria
        "possible",  # probable block in one nerve only
        "not met",  # UMN signs exclude MMN
        "not evaluable",  # lower motor neuron signs not recorded
        "not met",  # no lower motor neuron weakness
    ]
    assert out.loc[2, "supportive"] == "anti-GM1 IgM, plexus T2 signal"
    assert out.loc[4, "exclusions"] == "UMN signs"
    assert "IVIg response" in out.loc[0, "not_judged"]
    assert (
        out["electrodiagnostic"].tolist()[:4]
        == ["definite block"] + ["probable block"] * 3
    )
