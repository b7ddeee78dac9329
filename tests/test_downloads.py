"""Tests for siamese_tf.downloads. No network: file:// URLs and monkeypatched openers only."""

import hashlib
import io
import re
import shutil
import urllib.request
import zipfile

import pytest

from siamese_tf import downloads
from siamese_tf.downloads import REGISTRY, DataSource, download, extract_archive, sha256_of, verify_checksum
from siamese_tf.errors import ChecksumError, SiameseDataError

ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 example


def test_sha256_of_known_vector(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert sha256_of(tmp_path / "abc") == ABC_SHA256
    with pytest.raises(FileNotFoundError, match="nothing"):
        sha256_of(tmp_path / "nothing")


def test_verify_checksum_names_file_and_both_hashes(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert verify_checksum(path, ABC_SHA256.upper()) == ABC_SHA256
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as caught:
        verify_checksum(path, wrong)
    message = str(caught.value)
    assert str(path) in message and ABC_SHA256 in message and wrong in message
    with pytest.raises(ValueError, match="64-character"):
        verify_checksum(path, "abc")


def test_registry_checksums_match_the_shared_copies(shared_data_dir):
    for name, filename in (("omniglot_background_small1", "images_background_small1.zip"),
                           ("omniglot_background_small2", "images_background_small2.zip")):
        shared_copy = shared_data_dir / "omniglot" / filename
        assert REGISTRY[name].filename == filename
        assert verify_checksum(shared_copy, REGISTRY[name].sha256) == REGISTRY[name].sha256


def test_registry_entries_are_well_formed():
    expected = {"omniglot_background", "omniglot_evaluation", "omniglot_background_small1",
                "omniglot_background_small2", "omniglot_all_runs", "orl_faces"}
    assert expected <= set(REGISTRY)
    for name, source in REGISTRY.items():
        assert source.url.startswith("https://"), name
        assert source.url.rsplit("/", 1)[-1] == source.filename or name == "orl_faces"
        assert source.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", source.sha256), name
        assert source.description
    assert REGISTRY["omniglot_all_runs"].url.endswith("/python/one-shot-classification/all_runs.zip")
    assert "brendenlake/omniglot" in REGISTRY["omniglot_background"].url


@pytest.fixture()
def served_file(tmp_path, monkeypatch):
    """A registered entry whose URL is a file:// copy of a small archive."""
    payload = b"PK fake archive bytes " * 1000
    origin = tmp_path / "origin" / "sample.zip"
    origin.parent.mkdir()
    origin.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setitem(REGISTRY, "sample", DataSource(origin.as_uri(), digest, "sample.zip", "test archive"))
    return origin, payload, digest


def test_download_fetches_verifies_and_reuses(served_file, tmp_path):
    origin, payload, _ = served_file
    data_dir = tmp_path / "data"
    path = download("sample", data_dir=data_dir, progress=False)
    assert path == data_dir / "sample.zip" and path.read_bytes() == payload
    assert sorted(p.name for p in data_dir.iterdir()) == ["sample.zip"]  # no temporary left

    origin.unlink()  # a second call must not need the source
    assert download("sample", data_dir=data_dir, progress=False) == path
    with pytest.raises(OSError):
        download("sample", data_dir=data_dir, progress=False, force=True)
    assert path.read_bytes() == payload  # a failed forced download keeps the good copy


def test_download_uses_the_data_dir_setting(served_file, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_TF_DATA_DIR", str(tmp_path / "from_env"))
    assert download("sample", progress=False) == tmp_path / "from_env" / "sample.zip"


def test_download_replaces_a_corrupted_copy(served_file, tmp_path):
    _, payload, _ = served_file
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "sample.zip").write_bytes(b"half a download")
    with pytest.warns(UserWarning, match="does not match"):
        path = download("sample", data_dir=data_dir, progress=False)
    assert path.read_bytes() == payload


def test_download_with_wrong_checksum_leaves_nothing(served_file, tmp_path, monkeypatch):
    origin, _, _ = served_file
    monkeypatch.setitem(REGISTRY, "sample", DataSource(origin.as_uri(), "1" * 64, "sample.zip", "wrong hash"))
    data_dir = tmp_path / "data"
    with pytest.raises(ChecksumError, match="1" * 64):
        download("sample", data_dir=data_dir, progress=False)
    assert list(data_dir.iterdir()) == []


def test_interrupted_download_leaves_no_partial_file(served_file, tmp_path, monkeypatch):
    class BrokenResponse(io.BytesIO):
        headers = {"Content-Length": "4000000"}

        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection dropped")
            return super().read(1000)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: BrokenResponse(b"x" * 5000))
    data_dir = tmp_path / "data"
    with pytest.raises(ConnectionResetError):
        download("sample", data_dir=data_dir, progress=False)
    assert list(data_dir.iterdir()) == []


def test_unverified_sources_need_permission(served_file, tmp_path, monkeypatch, capsys):
    origin, payload, digest = served_file
    monkeypatch.setitem(REGISTRY, "unpinned", DataSource(origin.as_uri(), None, "unpinned.zip", "no hash"))
    data_dir = tmp_path / "data"
    with pytest.raises(ValueError, match="allow_unverified=True"):
        download("unpinned", data_dir=data_dir, progress=False)
    assert not (data_dir / "unpinned.zip").exists()

    with pytest.warns(UserWarning, match=digest):
        path = download("unpinned", data_dir=data_dir, progress=False, allow_unverified=True)
    assert path.read_bytes() == payload
    assert digest in capsys.readouterr().out
    with pytest.warns(UserWarning, match="cannot be verified"):
        assert download("unpinned", data_dir=data_dir, progress=False, allow_unverified=True) == path


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="omniglot_background_small1"):
        download("no_such_set")


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_extract_archive_writes_all_members(tmp_path):
    members = {"set/a.txt": b"first", "set/sub/b.bin": bytes(range(256)), "top.txt": b""}
    archive = make_zip(tmp_path / "good.zip", members)
    destination = extract_archive(archive, tmp_path / "out" / "good")
    for name, data in members.items():
        assert (destination / name).read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good"]  # no temporary folder left

    with pytest.raises(FileExistsError, match="overwrite=True"):
        extract_archive(archive, destination)
    newer = make_zip(tmp_path / "newer.zip", {"only.txt": b"new"})
    extract_archive(newer, destination, overwrite=True)
    assert sorted(p.name for p in destination.iterdir()) == ["only.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good"]


def test_extract_real_archive(shared_data_dir, tmp_path):
    archive = shared_data_dir / "omniglot" / "lake_runs_format_example.zip"
    destination = extract_archive(archive, tmp_path / "runs")
    with zipfile.ZipFile(archive) as opened:
        file_names = [info.filename for info in opened.infolist() if not info.is_dir()]
        for name in file_names[:5]:
            assert (destination / name).read_bytes() == opened.read(name)
    assert len([p for p in destination.rglob("*") if p.is_file()]) == len(file_names)


def test_truncated_archive_is_named_and_leaves_nothing(tmp_path):
    archive = make_zip(tmp_path / "whole.zip", {f"f{i}.bin": bytes([i]) * 5000 for i in range(5)})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    (tmp_path / "out").mkdir()
    with pytest.raises(SiameseDataError, match="truncated.zip"):
        extract_archive(truncated, tmp_path / "out" / "data")
    assert list((tmp_path / "out").iterdir()) == []


def test_corrupt_member_fails_its_crc_check(tmp_path):
    data = b"A" * 1000
    archive = tmp_path / "stored.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as opened:
        opened.writestr("data.bin", data)
    raw = bytearray(archive.read_bytes())
    position = raw.index(data)
    raw[position + 500] = ord("B")  # same length, different content: only the CRC can tell
    archive.write_bytes(bytes(raw))
    with pytest.raises(SiameseDataError, match="stored.zip"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["stored.zip"]


@pytest.mark.parametrize("evil_name", ["../escape.txt", "nested/../../escape.txt", "/tmp/absolute.txt"])
def test_zip_slip_members_are_refused(tmp_path, evil_name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("fine.txt", b"ok")
        info = zipfile.ZipInfo(evil_name)  # ZipInfo keeps the name as given
        opened.writestr(info, b"gotcha")
    (tmp_path / "box").mkdir()
    with pytest.raises(SiameseDataError, match="outside the destination"):
        extract_archive(archive, tmp_path / "box" / "out")
    assert list((tmp_path / "box").iterdir()) == []
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "box" / "escape.txt").exists()


def test_extract_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.zip"):
        extract_archive(tmp_path / "absent.zip", tmp_path / "out")


def test_download_then_extract_round_trip(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "pack.zip", {"pack/s1/1.txt": b"one"})
    monkeypatch.setitem(REGISTRY, "pack", DataSource(archive.as_uri(), sha256_of(archive), "pack.zip", "x"))
    local = download("pack", data_dir=tmp_path / "data", progress=False)
    extracted = extract_archive(local, tmp_path / "data" / "pack")
    assert (extracted / "pack" / "s1" / "1.txt").read_bytes() == b"one"
    shutil.rmtree(extracted)
    assert downloads.sha256_of(local) == sha256_of(archive)
