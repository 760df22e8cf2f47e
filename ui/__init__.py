"""Shared Streamlit page code (sidebar, cached loaders, session-state keys). Pages stay thin; sr_core computes."""
