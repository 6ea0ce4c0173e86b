"""The simulated cohort (always labelled SIMULATED): the published figures each
number cites (:mod:`~features.simulate.spec`), the generative model
(:mod:`~features.simulate.generative`), follow-up visits
(:mod:`~features.simulate.longitudinal`), its exact Bayes posterior
(:mod:`~features.simulate.oracle`), and the writers of the pipelines' real file
formats (:mod:`~features.simulate.writers`, :mod:`~features.simulate.fmri`);
:func:`~features.simulate.cohort.simulate_cohort` writes a whole cohort directory.
"""

__all__ = ["cohort", "fmri", "generative", "longitudinal", "oracle", "spec", "writers"]
