"""Streamlit entry point: `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="S2 super-resolution inspector", page_icon="🛰️", layout="wide")
st.title("Sentinel-2 super-resolution of farmland")
st.write("Pick a page in the sidebar.")
