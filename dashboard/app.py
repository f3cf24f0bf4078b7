"""Pulsegate's dashboard entry point (``pulsegate dashboard`` / the Procfile's ``web:`` line).

Runs on every rerun: page setup, the password gate, the sidebar filters, then the page chosen in the navigation.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Pulsegate", page_icon=":material/monitoring:", layout="wide")

from dashboard import ui  # noqa: E402 — set_page_config must come first

ui.main()
