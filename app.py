"""Streamlit entry point: `streamlit run app.py`. Routes to the pages in `pages/` (thin; sr_core computes)."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="S2 super-resolution inspector", page_icon="🛰️", layout="wide")

PAGES = [
    st.Page("pages/0_Home.py", title="Home", icon="🗺️", url_path="home", default=True),
    st.Page("pages/1_Time_series.py", title="Time series", icon="🕒", url_path="Time_series"),
    st.Page("pages/2_Predict_and_compare.py", title="Predict & compare", icon="🎯", url_path="Predict_and_compare"),
    st.Page("pages/3_Upload.py", title="Upload", icon="📤", url_path="Upload"),
]
OPTIONAL = [
    ("pages/4_Hallucinations.py", "Hallucinations", "🔍", "Hallucinations"),
    ("pages/5_Leaderboard.py", "Leaderboard", "🏆", "Leaderboard"),
]
for path, title, icon, url in OPTIONAL:
    from pathlib import Path

    if (Path(__file__).parent / path).exists():
        PAGES.append(st.Page(path, title=title, icon=icon, url_path=url))

st.navigation(PAGES).run()
