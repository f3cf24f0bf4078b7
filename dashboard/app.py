"""Pulsegate's dashboard entry point (``pulsegate dashboard`` / the Procfile's ``web:`` line)."""

from __future__ import annotations

import sqlalchemy as sa
import streamlit as st

from core.errors import PulsegateError
from core.settings import load_settings
from core.store import create_store_engine, store_status

st.set_page_config(page_title="Pulsegate", layout="wide")
st.title("Pulsegate")

try:
    settings = load_settings()
except PulsegateError as exc:
    st.error(f"Pulsegate cannot start: {exc}")
    st.stop()


@st.cache_resource
def _engine(url: str) -> sa.Engine:
    return create_store_engine(url)


status = store_status(_engine(settings.database_url))
if not status.reachable:
    st.error(f"The store is unreachable: {status.problem}")
elif status.revision is None:
    st.warning(f"The store ({status.description}) has no tables yet: run `pulsegate migrate`.")
else:
    st.success(f"Store: {status.description}, schema revision {status.revision}.")
st.info("Charts, key health, probes and alerts are being built; this page shows the store's state meanwhile.")
