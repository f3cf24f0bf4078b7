"""The Streamlit observatory; reads everything through ``core``, holds no SQL."""
