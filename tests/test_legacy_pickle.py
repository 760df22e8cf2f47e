"""Legacy eo-learn 0.9 pickles: decoded without running code; anything outside the allow-list refused."""

from __future__ import annotations

import copyreg
import gzip
import os
import pickle
import subprocess
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import REAL_CHALLENGE, need
from fixtures_io import make_challenge_patch, save_pickle_gz, tzlocal_stamped

from sr_core.errors import PatchFormatError, UnsafePickleError
from sr_core.geo import BBox
from sr_core.io import load_eopatch, read_legacy_pickle
from sr_core.io.legacy_pickle import read_bbox_pickle, read_meta_pickle, read_timestamps_pickle


@pytest.mark.real_data
def test_real_challenge_pickles():
    d = need(REAL_CHALLENGE)
    bbox = read_bbox_pickle(d / "bbox.pkl.gz")
    assert bbox == BBox(465181.0522318204, 5079244.8912012065, 466180.53145382757, 5080254.63349641, 32633)
    ts, notes = read_timestamps_pickle(d / "timestamp.pkl.gz")
    assert ts[0] == datetime(2015, 7, 11, 10, 0, 8) and ts[-1] == datetime(2015, 9, 9, 10, 0, 17) and len(ts) == 5
    assert all(t.tzinfo is None for t in ts) and any("tzlocal" in n for n in notes)
    meta, _ = read_meta_pickle(d / "meta_info.pkl.gz")
    assert meta == {"maxcc": 0.8, "size_x": 100, "size_y": 101, "time_difference": 7200.0,
                    "time_interval": ["2015-07-01T00:00:00", "2015-09-30T23:59:59"]}


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_protocol_decodes_the_same(tmp_path, protocol):
    pytest.importorskip("dateutil")
    bbox = BBox(535000.0, 5120000.0, 540000.0, 5125000.0)
    times = [datetime(2019, 3, 5, 10, 0, 31, 250), datetime(2019, 8, 30, 9, 59, 1)]
    save_pickle_gz(tmp_path / "bbox.pkl.gz", bbox, protocol)
    save_pickle_gz(tmp_path / "timestamp.pkl.gz", tzlocal_stamped(times), protocol)
    save_pickle_gz(tmp_path / "meta.pkl.gz", {"maxcc": 0.5, "dt": timedelta(hours=2), "s": {1, 2}, "b": b"\x00\xff"},
                   protocol)
    assert read_bbox_pickle(tmp_path / "bbox.pkl.gz") == bbox
    assert read_timestamps_pickle(tmp_path / "timestamp.pkl.gz")[0] == times
    meta, _ = read_meta_pickle(tmp_path / "meta.pkl.gz")
    assert meta == {"maxcc": 0.5, "dt": 7200.0, "s": [1, 2], "b": "\x00\xff"}


def test_dateutil_zones_give_the_right_instant(tmp_path):
    tz = pytest.importorskip("dateutil.tz")
    t = datetime(2019, 6, 1, 12, 0)
    stamped = [t.replace(tzinfo=tz.tzutc()), t.replace(tzinfo=tz.tzoffset("CEST", 7200)),
               t.replace(tzinfo=timezone(timedelta(hours=-3))), t.replace(tzinfo=UTC), t]
    save_pickle_gz(tmp_path / "ts.pkl.gz", stamped)
    got, _ = read_timestamps_pickle(tmp_path / "ts.pkl.gz")
    assert got == [t, t - timedelta(hours=2), t + timedelta(hours=3), t, t]


def test_tzlocal_from_a_non_utc_writer_is_read_as_utc_with_a_note(tmp_path):
    tz = pytest.importorskip("dateutil.tz")
    local = tz.tzlocal()
    local._std_offset = local._dst_offset = timedelta(hours=1)  # as if written on a CET machine
    t = datetime(2019, 6, 1, 10, 5)
    save_pickle_gz(tmp_path / "ts.pkl.gz", [t.replace(tzinfo=local)])
    got, notes = read_timestamps_pickle(tmp_path / "ts.pkl.gz")
    assert got == [t] and "1:00:00" in notes[0] and "read as UTC" in notes[0]


class _Pwn:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_bbox_pickle_calling_os_system_is_refused_and_never_runs(tmp_path):
    folder = tmp_path / "eopatch-evil"
    make_challenge_patch(folder)
    target = tmp_path / "pwned"
    (folder / "bbox.pkl.gz").write_bytes(gzip.compress(pickle.dumps(_Pwn(target))))
    with pytest.raises(UnsafePickleError, match=r"bbox\.pkl\.gz: refused to unpickle: it references (posix|os|nt)\.system"):
        load_eopatch(folder)
    assert not target.exists()
    # control: the same pickle does run code under plain pickle.loads (so the test above can fail)
    pickle.loads(pickle.dumps(_Pwn(target)))
    assert target.exists()


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (_Reduce(eval, ("1+1",)), "builtins.eval"),
        (_Reduce(getattr, (BBox, "__init__")), "builtins.getattr"),
        (_Reduce(subprocess.call, (["true"],)), "subprocess.call"),
        (_Reduce(copyreg._reconstructor, (BBox, object, None)), "sr_core.geo.BBox"),
        (_Reduce(__import__, ("os",)), "builtins.__import__"),
    ],
)
def test_other_payloads_are_refused(tmp_path, payload, refused):
    for protocol in (0, 2, 5):
        f = tmp_path / f"meta_info-{protocol}.pkl.gz"
        f.write_bytes(gzip.compress(pickle.dumps(payload, protocol=protocol)))
        with pytest.raises(UnsafePickleError, match=refused.replace(".", r"\.")) as e:
            read_legacy_pickle(f)
        assert f.name in str(e.value)


def test_dotted_names_are_refused(tmp_path):
    # protocol 4 STACK_GLOBAL with a dotted name: ("builtins", "object.__subclasses__")
    name = b"object.__subclasses__"
    data = b"\x80\x04\x8c\x08builtins\x8c" + bytes([len(name)]) + name + b"\x93)R."
    f = tmp_path / "x.pkl"
    f.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=r"builtins\.object\.__subclasses__"):
        read_legacy_pickle(f)


def test_allowed_names_with_forged_arguments_are_format_errors(tmp_path):
    # datetime state of the wrong length: an allowed name, arguments no real file has
    data = b"\x80\x04\x8c\x08datetime\x8c\x08datetime\x93C\x03abc\x85R."
    f = tmp_path / "t.pkl"
    f.write_bytes(data)
    with pytest.raises(PatchFormatError, match="datetime state has 3 bytes") as e:
        read_legacy_pickle(f)
    assert not isinstance(e.value, UnsafePickleError)


def test_truncated_and_garbage_pickles(tmp_path):
    good = gzip.compress(pickle.dumps({"a": 1}))
    (tmp_path / "cut.pkl.gz").write_bytes(good[:-6])
    with pytest.raises(PatchFormatError, match="truncated"):
        read_legacy_pickle(tmp_path / "cut.pkl.gz")
    (tmp_path / "junk.pkl.gz").write_bytes(gzip.compress(b"not a pickle at all"))
    with pytest.raises(PatchFormatError, match="not a readable pickle"):
        read_legacy_pickle(tmp_path / "junk.pkl.gz")
    # the pickle itself cut mid-value, or a string that is not UTF-8
    for cut in (b"\x80\x02J\x00", b"\x80\x02X\x05\x00\x00\x00ab", b"\x80\x02X\x02\x00\x00\x00\xff\xfe."):
        (tmp_path / "cut2.pkl").write_bytes(cut)
        with pytest.raises(PatchFormatError, match="not a readable pickle"):
            read_legacy_pickle(tmp_path / "cut2.pkl")
    (tmp_path / "big.pkl.gz").write_bytes(gzip.compress(pickle.dumps(b"\0" * 5000)))
    with pytest.raises(PatchFormatError, match="larger than 1000 bytes"):
        read_legacy_pickle(tmp_path / "big.pkl.gz", max_bytes=1000)


def test_shared_references_cannot_expand_without_bound(tmp_path):
    """A few hundred bytes: 40 levels of a list holding the level below twice (pickle memo references). Decoded as a
    tree that is 2^40 values; the reader stops at its value budget with a clear error, at once."""
    level: list = [0]
    for _ in range(40):  # within the 50-level nesting limit
        level = [level, level]
    data = gzip.compress(pickle.dumps({"meta": level}, protocol=4))
    assert len(data) < 1000
    (tmp_path / "meta_info.pkl.gz").write_bytes(data)
    with pytest.raises(PatchFormatError, match="more than 100000 values"):  # (without the budget: 2^40 steps)
        read_legacy_pickle(tmp_path / "meta_info.pkl.gz")
    ok = [list(range(20))] * 50  # shared, but small once expanded: still read
    (tmp_path / "ok.pkl.gz").write_bytes(gzip.compress(pickle.dumps(ok)))
    assert read_legacy_pickle(tmp_path / "ok.pkl.gz").value == ok


def test_state_set_on_an_allowed_function_is_refused_and_changes_nothing(tmp_path):
    """BUILD with slot state on an allow-listed callable would setattr on the reader's own function
    (``_codecs.encode``'s stand-in: its default encoding) and change how every later upload is read."""
    from sr_core.io import legacy_pickle as lp

    before = lp._codecs_encode.__defaults__
    payload = (b"\x80\x02c_codecs\nencode\n"          # the allow-listed stand-in, on the stack
               b"N}X\x0c\x00\x00\x00__defaults__(X\x05\x00\x00\x00rot13tq\x00s\x86"  # (None, {'__defaults__': ('rot13',)})
               b"b.")                                      # BUILD on it
    (tmp_path / "meta_info.pkl.gz").write_bytes(gzip.compress(payload))
    with pytest.raises(PatchFormatError, match="BUILD"):
        read_legacy_pickle(tmp_path / "meta_info.pkl.gz")
    assert lp._codecs_encode.__defaults__ == before
    tz = datetime(2019, 5, 1, 10, tzinfo=timezone(timedelta(hours=2)))  # stand-ins still take their state
    (tmp_path / "ts.pkl.gz").write_bytes(gzip.compress(pickle.dumps([tz], protocol=2)))
    assert read_legacy_pickle(tmp_path / "ts.pkl.gz").value == [tz]


def test_wrong_content_type(tmp_path):
    save_pickle_gz(tmp_path / "bbox.pkl.gz", [1, 2, 3])
    with pytest.raises(PatchFormatError, match="expected a sentinelhub BBox"):
        read_bbox_pickle(tmp_path / "bbox.pkl.gz")
