"""The dashboard's web server: the Streamlit app (``app.py``) plus the routes Streamlit cannot serve itself.

``pulsegate dashboard`` runs ``streamlit run`` on this file; Streamlit finds the ``App`` below and serves it with
its own settings (address, port, headless…). The extra route is the Calls page's CSV export
(:mod:`pulsegate.dashboard.export`), streamed from the store instead of held in Streamlit's in-memory download store.
"""

from __future__ import annotations

import streamlit as st

from pulsegate.dashboard import export

app = st.App("app.py", routes=export.routes())
