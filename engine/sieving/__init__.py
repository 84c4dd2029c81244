"""Circular data sieving (SpFDE Sec. 4.3): the sieve component with its queue of removed
samples (``sieve``) and the per-sample forgetting counts that rank them (``forgetting``).
Both use torch; the sieve's sizes are computed by pure functions in ``engine.config``."""
