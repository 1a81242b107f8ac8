"""Real-world disk layouts: homes on their own filesystems, LVM, dirty XFS logs, stale
signatures, split /usr. Each writes where sshd reads after boot, or refuses by name."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.rescue_disks import Disks, sh
from tests.support.rescue_helpers import AgentRun, linux_args, require_tools
from tests.support.rescue_trees import new_key, write_linux_tree

pytestmark = [pytest.mark.root]

LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LVM_TYPE = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
KEYS = "ec2-user/.ssh/authorized_keys"
EXTENT = 4 * 1024 * 1024
PE_START = 1024 * 1024
NO_COPIES = "backup { backup = 0 archive = 0 }"


@pytest.fixture
def key(tmp_path: Path) -> str:
    return new_key(tmp_path)[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def agent(run_agent: AgentRun, key: str, device: str) -> tuple[int, dict[str, object]]:
    started = time.monotonic()
    result = run_agent(*linux_args(key), device=device)
    print(f"agent on {device}: start to unmounted {time.monotonic() - started:.2f} s")
    return result


def home_tree(path: Path, *users: tuple[str, int]) -> Path:
    """A /home filesystem's top: one directory per user, as useradd makes them."""
    path.mkdir()
    for name, uid in users:
        (path / name).mkdir(mode=0o700)
        os.chown(path / name, uid, uid)
    return path


def blkid_value(device: str, tag: str) -> str:
    return sh("blkid", "-p", "-s", tag, "-o", "value", device).strip()


@pytest.mark.parametrize("named_by", ["uuid", "label", "partuuid", "device"])
def test_separate_home_partition_gets_the_key(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun, named_by: str
) -> None:
    """fstab mounts /home from partition 2; a stale /home/ec2-user on the root's own
    filesystem (under the mount point) must not receive the key: sshd never sees it."""
    require_tools("sfdisk", "mkfs.ext4")
    home_uuid = str(uuid.uuid4())
    table = f"label: gpt\nsize=24MiB, type={LINUX}\ntype={LINUX}, uuid={home_uuid.upper()}\n"
    device = disks.attach(disks.image("disk", "40M", table))
    root, home = disks.partition(device, 1), disks.partition(device, 2)
    disks.mkfs("ext4", home, "-L", "home", "-d", str(home_tree(tmp_path / "h", ("ec2-user", 1000))))
    spec = {
        "uuid": f"UUID={blkid_value(home, 'UUID')}",
        "label": "LABEL=home",
        "partuuid": f"PARTUUID={home_uuid}",
        "device": "/dev/xvda2",
    }[named_by]
    root_spec = "/dev/xvda1" if named_by == "device" else "LABEL=/"
    fstab = f"{root_spec} / ext4 defaults 0 1\n{spec} /home ext4 defaults,nofail 0 2\n"
    tree = write_linux_tree(tmp_path / "tree", files={"/etc/fstab": fstab})
    disks.mkfs("ext4", root, "-L", "/", "-d", str(tree))

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    assert out["homes"] == [{"mountpoint": "/home", "partition": home}], out
    with disks.mounted(home, "ext4", "ro") as target:
        written = target / KEYS
        assert written.read_text() == key + "\n"
        assert written.stat().st_uid == 1000 and (written.stat().st_mode & 0o777) == 0o600
    with disks.mounted(root, "ext4", "ro") as target:
        assert not (target / "home" / "ec2-user" / ".ssh").exists()  # the hidden stale dir


def test_btrfs_fedora_root_and_home_subvolumes(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """Fedora Cloud: one btrfs, subvolumes root (/) and home (/home) from fstab."""
    require_tools("mkfs.btrfs", "btrfs")
    device = disks.attach(disks.image("disk", "200M"))
    disks.mkfs("btrfs", device)
    fs_uuid = blkid_value(device, "UUID")
    fstab = (
        f"UUID={fs_uuid} / btrfs subvol=root,compress=zstd:1 0 0\n"
        f"UUID={fs_uuid} /home btrfs subvol=home,compress=zstd:1 0 0\n"
    )
    tree = write_linux_tree(
        tmp_path / "tree", users=(("fedora", 1000),), files={"/etc/fstab": fstab}
    )
    disks.fill(device, "btrfs", tree, subvolume="root")
    disks.fill(device, "btrfs", home_tree(tmp_path / "h", ("fedora", 1000)), subvolume="home")

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    assert out["subvolume"] == "root"
    assert out["homes"] == [{"mountpoint": "/home", "partition": device, "subvolume": "home"}]
    with disks.mounted(device, "btrfs", "ro") as target:
        assert (target / "home" / "fedora/.ssh/authorized_keys").read_text() == key + "\n"
        assert not (target / "root" / "home" / "fedora" / ".ssh").exists()


def test_home_on_another_volume_refuses_that_user_by_name(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """/home lives on a second EBS volume that is not attached: writing into the stale
    /home/ec2-user under the mount point would "succeed" and give no access."""
    require_tools("mkfs.ext4")
    elsewhere = str(uuid.uuid4())
    fstab = f"LABEL=/ / ext4 defaults 0 1\nUUID={elsewhere} /home xfs defaults 0 2\n"
    tree = write_linux_tree(tmp_path / "tree", files={"/etc/fstab": fstab})
    device = disks.attach(disks.image("disk", "32M"))
    disks.mkfs("ext4", device, "-d", str(tree))

    code, out = agent(run_agent, key, device)

    assert code == 1, out
    error = str(out["error"])
    assert "ec2-user" in error and f"UUID={elsewhere}" in error, error
    assert "/home" in error and "not on this volume" in error, error
    with disks.mounted(device, "ext4", "ro") as target:
        assert not (target / "home" / "ec2-user" / ".ssh").exists()


def test_mount_points_made_on_the_root_are_reported(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """ec2-user's home is on partition 2, which fstab mounts at /srv/users, a directory the
    root lacks: the agent makes it (as systemd would at boot) and says so in its report."""
    require_tools("sfdisk", "mkfs.ext4")
    table = f"label: gpt\nsize=24MiB, type={LINUX}\ntype={LINUX}\n"
    device = disks.attach(disks.image("disk", "40M", table))
    root, home = disks.partition(device, 1), disks.partition(device, 2)
    users = home_tree(tmp_path / "h", ("ec2-user", 1000))
    disks.mkfs("ext4", home, "-L", "users", "-d", str(users))
    fstab = "LABEL=/ / ext4 defaults 0 1\nLABEL=users /srv/users ext4 defaults 0 2\n"
    tree = write_linux_tree(tmp_path / "tree", users=(), files={"/etc/fstab": fstab})
    with (tree / "etc" / "passwd").open("a") as passwd:
        passwd.write("ec2-user:x:1000:1000::/srv/users/ec2-user:/bin/bash\n")
    disks.mkfs("ext4", root, "-L", "/", "-d", str(tree))

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    assert out["created_mountpoints"] == ["/srv", "/srv/users"], out
    with disks.mounted(home, "ext4", "ro") as target:
        assert (target / KEYS).read_text() == key + "\n"
    with disks.mounted(root, "ext4", "ro") as target:
        assert (target / "srv" / "users").is_dir()


@pytest.mark.parametrize("data_on", ["other-disk", "same-disk"])
def test_a_bind_mounted_home_refuses_its_users_by_name(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun, data_on: str
) -> None:
    """fstab bind-mounts /data/home (an XFS labelled data) at /home: a key written into the
    root's /home would be hidden at boot. The user is refused by name, nothing is written."""
    require_tools("mkfs.ext4", "mkfs.xfs", "sfdisk")
    fstab = "LABEL=/ / ext4 defaults 0 1\nLABEL=data /data xfs defaults 0 0\n"
    fstab += "/data/home /home none bind 0 0\n"
    tree = write_linux_tree(tmp_path / "tree", files={"/etc/fstab": fstab})
    (tree / "data").mkdir()
    if data_on == "same-disk":
        table = f"label: gpt\nsize=32MiB, type={LINUX}\ntype={LINUX}\n"
        device = disks.attach(disks.image("disk", "400M", table))
        root, data = disks.partition(device, 1), disks.partition(device, 2)
    else:
        device = root = disks.attach(disks.image("disk", "32M"))
        data = disks.attach(disks.image("data", "320M"))
    disks.mkfs("ext4", root, "-L", "/", "-d", str(tree))
    disks.mkfs("xfs", data, "-L", "data")
    with disks.mounted(data, "xfs") as target:
        home_tree(target / "home", ("ec2-user", 1000))

    code, out = agent(run_agent, key, device)

    assert code == 1, out
    error = str(out["error"])
    assert "ec2-user" in error and "bind-mounts /data/home at /home" in error, error
    with disks.mounted(root, "ext4", "ro") as target:
        assert not (target / "home" / "ec2-user" / ".ssh").exists()
    with disks.mounted(data, "xfs", "ro") as target:
        assert not (target / "home" / "ec2-user" / ".ssh").exists()


def test_only_the_user_whose_home_is_elsewhere_is_refused(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """alice's home is on an EFS share (fstab /data); the stale copy under the mount point
    keeps its old key and she is named as refused; ec2-user, on the root, gets the key."""
    require_tools("mkfs.ext4")
    old_key = new_key(tmp_path, "old")[1]
    fstab = "LABEL=/ / ext4 defaults 0 1\nfs-0123.efs.amazonaws.com:/ /data nfs4 _netdev 0 0\n"
    stale = "/data/alice/.ssh/authorized_keys"
    tree = write_linux_tree(tmp_path / "tree", files={"/etc/fstab": fstab, stale: old_key + "\n"})
    with (tree / "etc" / "passwd").open("a") as passwd:
        passwd.write("alice:x:1001:1001::/data/alice:/bin/bash\n")
    device = disks.attach(disks.image("disk", "32M"))
    disks.mkfs("ext4", device, "-d", str(tree))

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    users = {u["name"]: u for u in out["users"]}  # type: ignore[attr-defined]
    assert users["ec2-user"]["added"] is True
    assert users["alice"]["added"] is False
    assert "/data" in users["alice"]["refused"] and "nfs4" in users["alice"]["refused"]
    assert list(out["unavailable_homes"]) == ["/data"]  # type: ignore[call-overload]
    with disks.mounted(device, "ext4", "ro") as target:
        assert (target / stale.lstrip("/")).read_text() == old_key + "\n"
        assert (target / "home" / KEYS).read_text() == key + "\n"


def make_vg(disks: Disks, device: str, vg: str, lvs: dict[str, int], extra: str = "") -> str:
    """A real VG on partition 1 with linear LVs of `lvs` extents each (and `extra` LV
    sections), written with vgcfgrestore (lvcreate needs device-mapper, which this machine
    lacks). The PV node."""
    pv = disks.partition(device, 1)
    scoped = ["--config", NO_COPIES, "--devices", pv]
    sh("lvm", "pvcreate", "-q", *scoped, pv)
    sh("lvm", "vgcreate", "-q", *scoped, vg, pv)
    backup = Path(disks.workdir) / f"{vg}.vg"
    sh("lvm", "vgcfgbackup", *scoped, "-f", str(backup), vg)
    first = 0
    sections = []
    for name, extents in lvs.items():
        lv_id = f"{uuid.uuid4().hex[:6]}-0000-0000-0000-0000-0000-{uuid.uuid4().hex[:6]}"
        sections.append(
            f'{name} {{\nid = "{lv_id}"\n'
            'status = ["READ", "WRITE", "VISIBLE"]\nflags = []\nsegment_count = 1\n'
            f"segment1 {{\nstart_extent = 0\nextent_count = {extents}\n"
            f'type = "striped"\nstripe_count = 1\nstripes = ["pv0", {first}]\n}}\n}}\n'
        )
        first += extents
    text = backup.read_text()
    end = text.rindex("}")
    sections.append(extra)
    backup.write_text(text[:end] + "logical_volumes {\n" + "".join(sections) + "}\n" + text[end:])
    subprocess.run(
        ["lvm", "vgcfgrestore", *scoped, "-f", str(backup), vg], check=True, capture_output=True
    )
    return pv


def lv_loop(disks: Disks, pv: str, first_extent: int, extents: int) -> str:
    """The LV's bytes on the PV, as a loop device (to put a filesystem in it)."""
    loop = sh(
        "losetup", "--find", "--show", "--offset", str(PE_START + first_extent * EXTENT),
        "--sizelimit", str(extents * EXTENT), pv,
    ).strip()  # fmt: skip
    disks.loops.append(loop)
    return loop


def pv_identity(pv: str) -> list[str]:
    return sh(
        "lvm", "pvs", "--noheadings", "-o", "pv_uuid,vg_name,vg_uuid,vg_seqno", "--devices", pv
    ).split()


def vg_uuid(pv: str) -> str:
    return sh("lvm", "pvs", "--noheadings", "-o", "vg_uuid", "--devices", pv).strip()


def lvm_leftovers(pv: str, vg_uuid: str) -> list[str]:
    """Loop devices still over the PV, and the helper's copies of this VG's metadata (found
    by the VG's UUID as it was: other tests on this host may keep copies of their own VGs)."""
    loops = sh("losetup", "--associated", pv).splitlines()
    copies = [
        str(path)
        for folder in ("/etc/lvm/archive", "/etc/lvm/backup")
        if Path(folder).is_dir()
        for path in Path(folder).iterdir()
        if vg_uuid in path.read_text(errors="replace")
    ]
    return loops + copies


def test_lvm_root_and_home_logical_volumes(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """RHEL-style LVM: root and home LVs, fstab names /home by /dev/mapper. The key lands on
    the home LV; the VG's identity (PV and VG UUIDs, name, seqno) is untouched."""
    require_tools("lvm", "sfdisk", "mkfs.ext4")
    device = disks.attach(disks.image("disk", "64M", f"label: gpt\ntype={LVM_TYPE}\n"))
    vg = f"rhel{os.getpid()}"
    pv = make_vg(disks, device, vg, {"root": 6, "home": 3})
    fstab = (
        f"/dev/mapper/{vg}-root / ext4 defaults 0 0\n"
        f"/dev/mapper/{vg}-home /home ext4 defaults 0 0\n"
    )
    tree = write_linux_tree(tmp_path / "tree", files={"/etc/fstab": fstab})
    disks.mkfs("ext4", lv_loop(disks, pv, 0, 6), "-d", str(tree))
    home = lv_loop(disks, pv, 6, 3)
    disks.mkfs("ext4", home, "-d", str(home_tree(tmp_path / "h", ("ec2-user", 1000))))
    identity, uuid_before = pv_identity(pv), vg_uuid(pv)
    test_loops = lvm_leftovers(pv, uuid_before)  # this test's own, to write the LVs

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    assert out["partition"] == f"/dev/{vg}/root" and out["lvm"] == [vg]
    assert out["homes"] == [{"mountpoint": "/home", "partition": f"/dev/{vg}/home"}]
    with disks.mounted(home, "ext4", "ro") as target:
        assert (target / KEYS).read_text() == key + "\n"
    assert pv_identity(pv) == identity
    assert lvm_leftovers(pv, uuid_before) == test_loops


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("no-os", ["no linux root", "LVM VG {vg} with 1 LVs"]),
        ("needs-check", ["/dev/{vg}/data", "needs a check", "e2fsck"]),
    ],
)
def test_refused_lvm_run_leaves_the_image_byte_identical(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun, content: str, words: list[str]
) -> None:
    """A VG whose name the helper also uses, refused (no OS on it, or a root that needs
    e2fsck): the volume is byte for byte what it was (no vgimportclone, no rename, no
    metadata write), and the helper keeps no copy of the customer's VG metadata in /etc/lvm."""
    require_tools("lvm", "sfdisk", "mkfs.ext4", "tune2fs")
    vg = f"clash{os.getpid()}"
    twin = disks.attach(disks.image("helper", "64M", f"label: gpt\ntype={LVM_TYPE}\n"))
    make_vg(disks, twin, vg, {"root": 2})
    image = disks.image("disk", "64M", f"label: gpt\ntype={LVM_TYPE}\n")
    device = disks.attach(image)
    pv = make_vg(disks, device, vg, {"data": 4})
    if content == "no-os":
        tree = tmp_path / "data"
        tree.mkdir()
        (tree / "notes").write_text("not an OS\n")
    else:
        tree = write_linux_tree(tmp_path / "tree")
    data = lv_loop(disks, pv, 0, 4)
    disks.mkfs("ext4", data, "-d", str(tree))
    if content == "needs-check":
        sh("tune2fs", "-E", "force_fsck", data)
    disks.detach(data)
    os.sync()
    before, uuid_before = digest(image), vg_uuid(pv)

    code, out = agent(run_agent, key, device)

    assert code == 1, out
    for word in words:
        assert word.format(vg=vg) in str(out["error"]), out["error"]
    os.sync()
    assert digest(image) == before
    assert lvm_leftovers(pv, uuid_before) == []


def dirty_xfs(disks: Disks, tmp_path: Path) -> tuple[Path, str]:
    """An XFS root whose last changes are only in its log: the instance lost power."""
    require_tools("mkfs.xfs", "xfs_io", "xfs_logprint")
    image = disks.image("disk", "320M")
    device = disks.attach(image)
    disks.mkfs("xfs", device)
    tree = write_linux_tree(tmp_path / "tree")
    with disks.mounted(device, "xfs") as target:
        sh("cp", "-a", f"{tree}/.", str(target))
        sh("sync")
        sh("xfs_io", "-x", "-c", "shutdown", str(target))  # no log flush to place: dirty
    assert "<DIRTY>" in sh("xfs_logprint", "-t", device).split("\n\n")[1]
    return image, device


def test_xfs_with_a_log_to_replay(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """Mounted without recovery the root looks empty ("right volume?"); replaying its log,
    as the next boot would, shows it."""
    image, device = dirty_xfs(disks, tmp_path)
    read_only = disks.attach(image, read_only=True)
    code, out = agent(run_agent, key, read_only)
    assert code == 1 and "dirty log" in str(out["error"]), out
    assert "attach the volume read-write" in str(out["error"])
    disks.detach(read_only)

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    assert out["xfs_log"] == "replayed"
    with disks.mounted(device, "xfs", "ro,nouuid") as target:
        assert (target / "home" / KEYS).read_text() == key + "\n"


def stale_xfs_signature_disk(disks: Disks, tmp_path: Path, with_os: bool) -> tuple[Path, str]:
    """A disk that once held a whole-disk XFS and was partitioned later without wiping."""
    require_tools("mkfs.xfs", "sfdisk", "mkfs.ext4")
    image = disks.image("disk", "320M")
    sh("mkfs.xfs", "-q", "-f", str(image))
    subprocess.run(
        ["sfdisk", "-q", "--wipe", "never", str(image)],
        input=f"label: gpt\nsize=32MiB, type={LINUX}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    device = disks.attach(image)
    tree = write_linux_tree(tmp_path / "tree") if with_os else home_tree(tmp_path / "t")
    disks.mkfs("ext4", disks.partition(device, 1), "-d", str(tree))
    assert blkid_value(device, "TYPE") == "xfs" and blkid_value(device, "PTTYPE") == "gpt"
    return image, device


def test_stale_whole_disk_signature_beside_a_partition_table(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    _, device = stale_xfs_signature_disk(disks, tmp_path, with_os=True)

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    assert out["partition"] == disks.partition(device, 1) and out["filesystem"] == "ext4"
    assert "stale xfs signature" in " ".join(out["notes"])  # type: ignore[arg-type]
    with disks.mounted(disks.partition(device, 1), "ext4", "ro") as target:
        assert (target / "home" / KEYS).read_text() == key + "\n"


def test_stale_signature_refusal_advises_no_repair_of_the_disk(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """xfs_repair on the whole device would overwrite its partition table."""
    image, device = stale_xfs_signature_disk(disks, tmp_path, with_os=False)
    before = digest(image)

    code, out = agent(run_agent, key, device)

    assert code == 1 and "no linux root" in str(out["error"]), out
    assert "xfs_repair" not in str(out["error"]) and "stale xfs" in str(out["error"])
    assert digest(image) == before


def flatcar_disk(disks: Disks, tmp_path: Path) -> tuple[Path, str]:
    """Flatcar's layout: USR-A holds /usr (os-release in lib/), ROOT holds /etc with
    os-release -> ../usr/lib/os-release and an empty /usr mount point."""
    require_tools("sfdisk", "mkfs.ext4")
    table = f"label: gpt\nsize=12MiB, type={LINUX}, name=USR-A\ntype={LINUX}, name=ROOT\n"
    image = disks.image("disk", "40M", table)
    device = disks.attach(image)
    usr = tmp_path / "usr"
    (usr / "lib").mkdir(parents=True)
    (usr / "bin").mkdir()
    (usr / "lib" / "os-release").write_text(
        'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\n'
    )
    disks.mkfs("ext4", disks.partition(device, 1), "-d", str(usr))
    tree = write_linux_tree(tmp_path / "tree", users=(("core", 500),))
    (tree / "etc" / "os-release").unlink()
    (tree / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    (tree / "usr").mkdir()
    disks.mkfs("ext4", disks.partition(device, 2), "-d", str(tree))
    return image, device


def ostree_disk(disks: Disks, tmp_path: Path) -> tuple[Path, str]:
    """Fedora CoreOS's root: no /etc at the top, the OS under /ostree/deploy."""
    require_tools("mkfs.ext4")
    tree = tmp_path / "tree"
    deploy = tree / "ostree" / "deploy" / "fedora-coreos" / "deploy" / "0123abcd.0"
    (deploy / "usr" / "lib").mkdir(parents=True)
    (deploy / "etc").mkdir()
    (deploy / "usr" / "lib" / "os-release").write_text('NAME="Fedora Linux"\nVARIANT_ID=coreos\n')
    (deploy / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    (tree / "boot").mkdir()
    image = disks.image("disk", "32M")
    device = disks.attach(image)
    disks.mkfs("ext4", device, "-d", str(tree))
    return image, device


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        ("flatcar", ["Flatcar Container Linux by Kinvolk", "../usr/lib/os-release", "/usr"]),
        ("ostree", ["OSTree deployment of Fedora Linux", "Fedora CoreOS", "/ostree/deploy"]),
    ],
)
def test_split_usr_roots_are_refused_by_name(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun, layout: str, words: list[str]
) -> None:
    image, device = (flatcar_disk if layout == "flatcar" else ostree_disk)(disks, tmp_path)
    before = digest(image)

    code, out = agent(run_agent, key, device)

    assert code == 1, out
    for word in [*words, "does not repair", "nothing was changed"]:
        assert word in str(out["error"]), out["error"]
    assert "right volume" not in str(out["error"])
    assert digest(image) == before


def test_an_xfs_log_whose_state_cannot_be_read_is_not_taken_as_clean(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """xfs_logprint failing (a busy or vanishing device) once made a dirty root look absent
    ("right volume?"): the log is now recovered as if dirty, and the report says why."""
    _, device = dirty_xfs(disks, tmp_path)
    failing = tmp_path / "bin" / "xfs_logprint"
    failing.parent.mkdir()
    failing.write_text("#!/bin/sh\necho 'xfs_logprint: read failed: Device busy' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("PATH", f"{failing.parent}:{os.environ['PATH']}")

    code, out = agent(run_agent, key, device)

    assert code == 0, out
    assert str(out["xfs_log"]).startswith(
        f"recovered, its state unread: xfs_logprint -t {device} failed (exit status 1): "
        "xfs_logprint: read failed: Device busy"
    ), out
    with disks.mounted(device, "xfs", "ro,nouuid") as target:
        assert (target / "home" / KEYS).read_text() == key + "\n"


def test_a_mount_kept_alive_by_another_namespace_is_waited_for(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun
) -> None:
    """A mount namespace made while the device was mounted (here: unshare; in the suite:
    another worker's sshd corpus test) keeps its filesystem alive after the unmount; a new
    mount would silently reuse it (a norecovery view for the replay, EBUSY for read-write)."""
    require_tools("unshare")
    _, device = dirty_xfs(disks, tmp_path)
    holder = tmp_path / "holder"
    holder.mkdir()
    sh("mount", "-t", "xfs", "-o", "ro,norecovery,nouuid", device, str(holder))
    copy = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "3"])
    try:
        time.sleep(0.5)
        sh("umount", str(holder))

        code, out = agent(run_agent, key, device)

        assert code == 0, out
        assert out["xfs_log"] == "replayed"
    finally:
        copy.wait()
    with disks.mounted(device, "xfs", "ro,nouuid") as target:
        assert (target / "home" / KEYS).read_text() == key + "\n"


def snapshot_metadata(vg: str, origin: str, cow: str, extents: int, merging: bool) -> str:
    """A thick snapshot (`lvcreate -s`) of `origin` with COW store `cow`, as lvm writes it."""
    store = "merging_store" if merging else "cow_store"
    return (
        f'snapshot0 {{\nid = "{uuid.uuid4().hex[:6]}-0000-0000-0000-0000-0000-aaaaaa"\n'
        'status = ["READ"]\nflags = []\nsegment_count = 1\n'
        f"segment1 {{\nstart_extent = 0\nextent_count = {extents}\n"
        f'type = "snapshot"\nchunk_size = 8\norigin = "{origin}"\n{store} = "{cow}"\n}}\n}}\n'
    )


@pytest.mark.parametrize("merging", [False, True], ids=["snapshot", "merging-snapshot"])
def test_origin_of_a_thick_snapshot_is_not_written_past_copy_on_write(
    disks: Disks, tmp_path: Path, key: str, run_agent: AgentRun, merging: bool
) -> None:
    """`lvs --segments` shows an origin and its COW store as linear; written through a loop
    over its extents, the origin changes under its snapshot, which then reads garbage. The
    agent activates such a VG (device-mapper keeps copy-on-write) or refuses naming the
    snapshot; here, without device-mapper, it refuses and the image is byte-identical."""
    require_tools("lvm", "sfdisk", "mkfs.ext4")
    image = disks.image("disk", "200M", f"label: gpt\ntype={LVM_TYPE}\n")
    device = disks.attach(image)
    vg = f"snap{os.getpid()}"
    extra = snapshot_metadata(vg, "root", "snap", 20, merging)
    pv = make_vg(disks, device, vg, {"root": 20, "snap": 3}, extra)
    fstab = f"/dev/mapper/{vg}-root / ext4 defaults 0 0\n"
    tree = write_linux_tree(tmp_path / "tree", files={"/etc/fstab": fstab})
    root = lv_loop(disks, pv, 0, 20)
    disks.mkfs("ext4", root, "-d", str(tree))
    disks.detach(root)
    attr = sh("lvm", "lvs", "--noheadings", "-o", "lv_attr", "--devices", pv, f"{vg}/root")
    assert attr.strip()[0] == ("O" if merging else "o"), attr
    os.sync()
    before = digest(image)

    code, out = agent(run_agent, key, device)

    os.sync()
    assert digest(image) == before, out
    assert code == 1, out
    assert "snapshot" in str(out["error"]) and f"{vg}/root" in str(out["error"]), out["error"]
