"""The dashboard's pages (Streamlit page scripts run by ``st.navigation``)."""
