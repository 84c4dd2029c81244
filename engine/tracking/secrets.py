"""Credentials never leave the process: URIs lose their password, and the values of the
secret environment variables are cut out of any text a tracker failure produces."""
from __future__ import annotations

import copy
import os

from engine.config.schema import mask_uri

# Environment variables whose values are secrets (the libraries read them themselves).
SECRET_ENV = ("WANDB_API_KEY", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_CLIENT_CERT_PATH")


def scrub(text: str, environ=None) -> str:
    """``text`` with URI passwords and secret environment values masked."""
    env = os.environ if environ is None else environ
    out = mask_uri(str(text))
    for name in SECRET_ENV:
        value = env.get(name)
        if value and len(value) >= 4:
            out = out.replace(value, "***")
    return out


def masked_config(cfg: dict) -> dict:
    """A configuration dict as events, params and reports may show it."""
    d = copy.deepcopy(cfg)
    ml = (d.get("trackers") or {}).get("mlflow")
    if isinstance(ml, dict) and isinstance(ml.get("tracking_uri"), str):
        ml["tracking_uri"] = mask_uri(ml["tracking_uri"])
    return d
