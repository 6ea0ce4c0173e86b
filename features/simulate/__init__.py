"""features/simulate."""
