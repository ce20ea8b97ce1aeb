"""What a gateway unpacks when it follows ``raydo deploy`` (gateway/deploy_follow.py): the
deployed folder's zip lands whole in a folder named by a digest of the app and the version,
and an archive that would write outside it, holds a link, or is damaged is refused before
anything of it is used. The swap itself runs on a two-node cluster in
tests/integration/test_deploy_cluster.py."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from raydo.actors.placement import DeployError
from raydo.gateway import deploy_follow
from raydo.gateway.deploy_follow import unpack

VERSION = "0123456789abcdef"


def archive(entries: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_a_deployed_folder_is_unpacked_whole_under_its_version(tmp_path: Path) -> None:
    data = archive({"raydo.toml": b'name = "a"\n', "pkg/app.py": b"app = 1\n"})
    folder = unpack(data, tmp_path, VERSION)
    assert folder == tmp_path / VERSION
    assert (folder / "pkg" / "app.py").read_bytes() == b"app = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [VERSION]  # no staging left over
    # The same version again is the folder already there (a second gateway process).
    (folder / "marker").write_text("kept")
    assert unpack(data, tmp_path, VERSION) == folder
    assert (folder / "marker").read_text() == "kept"


@pytest.mark.parametrize(
    "name", ["/etc/raydo-owned", "../outside.py", "pkg/../../outside.py", "pkg\\..\\x.py"]
)
def test_an_entry_outside_the_folder_is_refused_and_nothing_is_kept(
    tmp_path: Path, name: str
) -> None:
    data = archive({"app.py": b"ok\n", name: b"owned\n"})
    with pytest.raises(DeployError, match="a path outside it"):
        unpack(data, tmp_path / "deploys", VERSION)
    assert list((tmp_path / "deploys").iterdir()) == []
    assert not (tmp_path / "outside.py").exists()


def test_a_link_in_the_archive_is_refused(tmp_path: Path) -> None:
    data = archive({"app.py": b"ok\n"}, links=("secrets.txt",))
    with pytest.raises(DeployError, match=r"a link: secrets\.txt"):
        unpack(data, tmp_path, VERSION)
    assert not (tmp_path / VERSION).exists()


@pytest.mark.parametrize(
    "data",
    [b"", b"not a zip at all", archive({"a.py": b"x"})[:-30]],
    ids=["empty", "not-a-zip", "cut-short"],  # not the bytes: a zip's carry its time
)
def test_a_damaged_archive_is_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DeployError, match="damaged"):
        unpack(data, tmp_path, VERSION)
    assert not (tmp_path / VERSION).exists()


def test_an_archive_of_too_many_files_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy_follow, "ARCHIVE_ENTRIES_MAX", 3)
    data = archive({f"m{i}.py": b"" for i in range(4)})
    with pytest.raises(DeployError, match="over 3 files"):
        unpack(data, tmp_path, VERSION)


def test_the_app_name_never_becomes_a_path() -> None:
    hostile = "../../etc/evil app"
    folder = deploy_follow._deploys_folder(hostile)
    assert "evil" not in str(folder) and ".." not in folder.parts
    assert folder != deploy_follow._deploys_folder("other")
