"""Pulsegate's dashboard entry point (``pulsegate dashboard`` / the Procfile's ``web:`` line).

Runs on every rerun: page setup, the password gate, the sidebar filters, then the page chosen in the navigation.
"""

from __future__ import annotations

import streamlit as st

#: The page icon, inline: Streamlit sends an SVG as a ``data:`` URL, where a ``:material/…:`` icon makes every
#: browser fetch it from an internet font host (a failed request on every page load offline).
PAGE_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
    '<rect width="24" height="24" rx="5" fill="#4c78a8"/>'
    '<path d="M3 13h4l2-6 3 11 3-8 2 3h4" fill="none" stroke="#fff" stroke-width="2" '
    'stroke-linecap="round" stroke-linejoin="round"/></svg>'
)

st.set_page_config(page_title="Pulsegate", page_icon=PAGE_ICON, layout="wide")

from pulsegate.dashboard import ui  # noqa: E402 — set_page_config must come first

ui.main()
