"""Safe links: ``?patch=`` accepts catalogue ids only. A link naming a server folder (``/etc``, ``../..``, the absolute
path of a real EOPatch, the benchmark's hidden truth) shows neither a listing nor data, says what is wrong and what to
do, and never names a server path; uploads are linked by an opaque id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.helpers_app import TIMEOUT, app_patch

REPO = Path(__file__).resolve().parents[1]
PAGES = ("pages/1_Time_series.py", "pages/2_Predict_and_compare.py", "pages/4_Hallucinations.py")


@pytest.fixture
def truth(served, monkeypatch):
    """A benchmark laid out as sr_core.benchmark writes it ($SR_CORE_HOME/benchmark/definition/{benchmark.json,truth/})
    and, worse, that folder listed as a real-data folder by a careless operator."""
    import os

    import streamlit as st

    from sr_core.io import write_eopatch

    definition = Path(os.environ["SR_CORE_HOME"]) / "benchmark" / "definition"
    definition.mkdir(parents=True)
    (definition / "benchmark.json").write_text(json.dumps({"id": "x"}))
    t = write_eopatch(app_patch("eopatch-07", 7), definition / "truth" / "eopatch-07")
    monkeypatch.setenv("SR_CORE_DATA", os.pathsep.join([str(served[0].parent), str(definition / "truth")]))
    st.cache_data.clear()
    return t


def _texts(at: AppTest) -> str:
    """Every element the page sent (protobuf text, so captions, tables, charts, map specs and widget labels)."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def _open(page: str, link: str, selected: Path | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT)
    if selected is not None:
        at.session_state["selected_patch_path"] = str(selected)
    at.query_params["patch"] = link
    return at.run()


def _assert_refused(at: AppTest, *secrets: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("catalogue" in e and "Home" in e for e in errors), errors  # names the problem and the fix
    text = _texts(at)
    for s in secrets:
        assert s not in text, f"{s!r} appears in the page"
    assert "/etc" not in text and "passwd" not in text
    assert "selected_patch_path" not in at.session_state or not at.session_state["selected_patch_path"]
    assert not at.get("select_slider") and not at.metric and not at.dataframe  # no date slider, no data
    assert dict(at.query_params).get("patch", "") in ("", [])  # the bad link is dropped from the URL


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("link", ["/etc", "../..", "..", "/etc/passwd", "~", "C:\\Windows"])
def test_links_to_server_folders_are_refused(served, page, link):
    _assert_refused(_open(page, link), link)


@pytest.mark.parametrize("page", PAGES)
def test_absolute_path_of_a_real_eopatch_is_refused(served, page):
    """Even a genuine EOPatch of the catalogue is not opened by its folder, and a shown patch is not kept either."""
    at = _open(page, str(served[0]), selected=served[1])
    _assert_refused(at, str(served[0]), str(served[1]), str(served[0].parent))


@pytest.mark.parametrize("page", PAGES)
def test_benchmark_truth_is_never_reachable(truth, page):
    for link in (str(truth), str(truth.parent), "eopatch-07"):
        _assert_refused(_open(page, link), str(truth), str(truth.parent.parent))


def test_benchmark_truth_is_not_listed_or_read(truth):
    """The catalogue leaves the truth out even when its folder is configured, and the loaders refuse it."""
    import streamlit as st

    from sr_core.errors import SRCoreError
    from ui.common import catalog, load_patch, off_limits

    assert off_limits(truth) and off_limits(truth.parent.parent) and not off_limits(truth.parents[3] / "elsewhere")
    assert [r["name"] for r in catalog()] == ["eopatch-01", "eopatch-02"]
    with pytest.raises(SRCoreError, match="not available"):
        load_patch(truth)
    st.cache_data.clear()
    at = AppTest.from_file(str(REPO / "pages/0_Home.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert sorted(at.dataframe[0].value["name"]) == ["eopatch-01", "eopatch-02"]
    assert str(truth) not in _texts(at)
    # a session that somehow holds the truth folder is refused by the loader, without naming it
    at = AppTest.from_file(str(REPO / "pages/2_Predict_and_compare.py"), default_timeout=TIMEOUT)
    at.session_state["selected_patch_path"] = str(truth)
    at.run()
    assert not at.exception and not at.metric
    assert any("not available in the app" in e.value and "Home" in e.value for e in at.error)
    assert str(truth) not in _texts(at) and "benchmark" not in _texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_unknown_name_says_so(served, page):
    at = _open(page, "eopatch-99")
    _assert_refused(at)
    assert any("eopatch-99" in e.value and "not in the catalogue" in e.value for e in at.error)


def test_home_page_sends_no_server_path(served):
    at = AppTest.from_file(str(REPO / "pages/0_Home.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    text = _texts(at)
    assert str(served[0].parent) not in text and str(Path.home()) not in text


def test_home_link_to_a_folder_is_refused(served):
    at = _open("pages/0_Home.py", "/etc")
    assert not at.exception
    assert any("catalogue" in e.value for e in at.error)
    assert "/etc" not in _texts(at)


def test_catalogue_names_still_open(served):
    at = _open("pages/1_Time_series.py", "eopatch-02")
    assert not at.exception and not at.error
    assert Path(at.session_state["selected_patch_path"]).name == "eopatch-02"
    assert at.query_params["patch"] == ["eopatch-02"] or at.query_params["patch"] == "eopatch-02"


def test_uploads_are_linked_by_an_opaque_id(served, tmp_path):
    """Opening an upload writes ``up-<random>`` into the URL; that link opens it in a new session; the folder never
    appears."""
    from sr_core.io import write_eopatch

    upload = write_eopatch(app_patch("eopatch-05", 5), tmp_path / "uploads" / "0123abcd" / "eopatch-05")
    at = AppTest.from_file(str(REPO / "pages/3_Upload.py"), default_timeout=TIMEOUT)
    at.session_state["upload_dir"] = str(upload.parent)
    at.run()
    at.button(key="upload_open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    link = at.query_params["patch"]
    link = link[0] if isinstance(link, list) else link
    assert link.startswith("up-") and "/" not in link and len(link) >= 12
    assert str(upload.parent) not in _texts(at)
    fresh = _open("pages/1_Time_series.py", link)
    assert not fresh.exception and not fresh.error
    assert fresh.session_state["selected_patch_path"] == str(upload)
    assert str(upload.parent) not in _texts(fresh)
    guessed = _open("pages/1_Time_series.py", "up-" + "A" * 12)
    _assert_refused(guessed)


def test_redact_removes_paths():
    from ui.common import redact

    assert redact("cannot read /srv/data/eopatch-01/data/BANDS.npy: bad") == "cannot read …/BANDS.npy: bad"
    assert redact("folder 'C:\\Users\\me\\x' missing") == "folder '…/x' missing"
    assert redact("3/4 of the dates") == "3/4 of the dates"
    # a quoted path may hold spaces (macOS's data home, a Windows user name): all of it goes, not only its head
    assert (redact("'/Users/a b/Library/Application Support/sr-core/uploads/x/BANDS.npy' not recognized")
            == "'…/BANDS.npy' not recognized")
    assert redact('open "C:\\Users\\A B\\sr core\\up.tif" failed') == 'open "…/up.tif" failed'
    assert redact('"/Users/O\'Brien/x.tif" missing') == '"…/x.tif" missing'  # the other quote inside the path
    assert redact("share \\\\srv\\data\\up.tif and //srv/data/up.tif") == "share …/up.tif and …/up.tif"  # UNC
    # a slash between words is not a path
    assert redact("check the file / --db / SR_CORE_DB_URL") == "check the file / --db / SR_CORE_DB_URL"
    assert redact("dates 2019-03-01 / 2019-09-01, 3/4 of them") == "dates 2019-03-01 / 2019-09-01, 3/4 of them"


def test_redact_cuts_unquoted_paths_below_a_data_home_with_spaces(tmp_path, monkeypatch):
    """macOS's data home is '~/Library/Application Support/sr-core': a reader's unquoted message about a file in an
    upload kept '…/Application Support/sr-core/uploads/<digest>/…' (the path pattern stops at the space)."""
    from sr_core.paths import uploads_dir
    from ui.common import redact

    home = tmp_path / "Library" / "Application Support" / "sr-core"
    monkeypatch.setenv("SR_CORE_HOME", str(home))
    bad = uploads_dir() / "0123456789abcdef" / "eopatch-01" / "data" / "BANDS.npy.gz"
    assert redact(f"{bad}: not a gzip file") == "…/BANDS.npy.gz: not a gzip file"
    assert redact(f"cannot create {home}, check its permissions") == "cannot create …, check its permissions"
    assert "Support" not in redact(f"x {bad.parent}/ y")


def test_shown_messages_keep_code_and_make_quoted_names_inert():
    """A library message can quote a name from an upload (a member, a folder, a team): in a Markdown element that name
    renders as text, the message's own `code` stays code, and server paths are cut as redact() cuts them."""
    from ui.common import shown

    msg = shown("up.zip: member 'p/![t](https:x.org/t.png)<img src=x>' is a link; run `sr_core clouds PATH` first")
    assert "![t](" not in msg and "<img" not in msg and "&lt;img" in msg
    assert "`sr_core clouds PATH`" in msg  # code span untouched
    assert shown("cannot read '/srv/data/up/BANDS.npy'") == "cannot read &#x27;…/BANDS.npy&#x27;"
    assert "\\[" in shown("unpaired ` and [x](y)")  # no code span to keep: all of it inert


def test_an_unexpected_error_shows_no_traceback_in_the_browser():
    """Streamlit's default shows an uncaught exception's message and traceback (server paths) to every visitor; the
    app's config keeps them on the server's console."""
    import tomllib

    from streamlit import config
    from streamlit.config import ShowErrorDetailsConfigOptions as Show

    value = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["client"]["showErrorDetails"]
    assert value in (Show.TYPE.value, Show.NONE.value)
    assert config.get_config_options()["client.showErrorDetails"].default_val == Show.FULL.value  # why it is set


def test_a_bad_date_link_is_not_echoed(served):
    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.query_params["patch"] = "eopatch-01"
    at.query_params["date"] = "[click](http://example.org) /etc"
    at.run()
    assert not at.exception
    assert any("not a date" in w.value for w in at.warning)
    assert "example.org" not in _texts(at) and "/etc" not in _texts(at)


@pytest.mark.parametrize("value", ["2019-06-14T00:00+02:00", "NaT", "now", "2019-13-40"])
def test_a_date_link_with_a_time_zone_or_no_date_is_a_message_not_a_crash(served, value):
    """pandas reads '…+02:00' as a zone-aware instant and 'NaT' / 'now' as dates: a link takes a calendar date only."""
    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=TIMEOUT)
    at.query_params["patch"] = "eopatch-01"
    at.query_params["date"] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("not a date" in w.value for w in at.warning)


def test_folder_settings_follow_the_browser_not_a_proxy_on_the_server(monkeypatch):
    """The editor is for a browser on the server itself; behind a reverse proxy on the same machine every visitor's
    connection comes from 127.0.0.1, and the proxy's forwarding headers are what tell them apart."""
    import types

    import streamlit

    from ui.common import folder_settings_allowed

    monkeypatch.delenv("SR_CORE_FOLDER_SETTINGS", raising=False)

    def visit(ip: str, headers: dict[str, str]) -> bool:
        monkeypatch.setattr(streamlit, "context", types.SimpleNamespace(ip_address=ip, headers=headers))
        return folder_settings_allowed()

    assert visit("127.0.0.1", {"Host": "localhost:8501"}) and visit("::1", {})
    assert visit("127.0.0.1", {"Origin": "http://localhost:8501"}) and visit("::1", {"Origin": "http://[::1]:8501"})
    assert not visit("192.0.2.7", {"Host": "sr.example.org"})
    # a browser at http://127.0.0.1 on a server listening on "::" arrives as an IPv4-mapped IPv6 address (it was
    # taken as remote: no folder editor, no demo benchmark button)
    assert visit("::ffff:127.0.0.1", {"Origin": "http://127.0.0.1:8599"})
    assert not visit("::ffff:192.0.2.7", {"Origin": "http://192.0.2.2:8599"}) and not visit("::ffff:192.0.2.7", {})
    # a proxy that adds no forwarding header (nginx's plain proxy_pass): the browser's Origin still tells
    assert not visit("127.0.0.1", {"Host": "127.0.0.1:8501", "Origin": "https://sr.example.org"})
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        assert not visit("127.0.0.1", {"Host": "sr.example.org", header: "198.51.100.4"}), header
    monkeypatch.setenv("SR_CORE_FOLDER_SETTINGS", "on")  # the operator's word decides either way
    assert visit("127.0.0.1", {"X-Forwarded-For": "198.51.100.4"})


def test_folder_editor_is_for_the_server_only(served, monkeypatch):
    """The list of real folders (server paths) is editable on Home only from the server itself or when the operator
    says so; a remote browser sees a count, no paths."""
    monkeypatch.setenv("SR_CORE_FOLDER_SETTINGS", "off")
    at = AppTest.from_file(str(REPO / "pages/0_Home.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert not at.text_area and any("configured by the server's operator" in c.value for c in at.caption)
    assert str(served[0].parent) not in _texts(at)
    monkeypatch.setenv("SR_CORE_FOLDER_SETTINGS", "on")
    at = AppTest.from_file(str(REPO / "pages/0_Home.py"), default_timeout=TIMEOUT).run()
    assert at.text_area(key="real_folders_text") is not None


def test_saved_folders_that_do_not_exist_are_flagged_after_the_save(served, monkeypatch, tmp_path):
    """The warning about a folder that does not exist used to be drawn just before the rerun that follows the save,
    which wiped it; the missing folder then stood among the active ones unflagged."""
    monkeypatch.setenv("SR_CORE_FOLDER_SETTINGS", "on")
    at = AppTest.from_file(str(REPO / "pages/0_Home.py"), default_timeout=TIMEOUT).run()
    gone = tmp_path / "not-there"
    at.text_area(key="real_folders_text").input(str(gone))
    next(b for b in at.button if b.label == "Save folders").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("do not exist" in w.value and "not-there" in w.value for w in at.warning), [w.value for w in at.warning]
