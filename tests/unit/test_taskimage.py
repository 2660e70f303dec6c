"""scripts/labkit/taskimage.py: the lab's task image as a registry stores it."""
import gzip
import hashlib
import json
import tarfile

from labkit import lab, taskimage


def test_documents_describe_the_layer_and_each_other():
    config, manifest = taskimage.image_documents("sha256:" + "a" * 64, 1234, "sha256:" + "b" * 64)
    doc = json.loads(manifest)
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == taskimage.MEDIA_MANIFEST
    assert doc["config"]["digest"] == "sha256:" + hashlib.sha256(config).hexdigest()
    assert doc["config"]["size"] == len(config)
    assert doc["layers"] == [{"mediaType": taskimage.MEDIA_LAYER, "size": 1234, "digest": "sha256:" + "a" * 64}]
    cfg = json.loads(config)
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "b" * 64]}
    assert cfg["os"] == "linux" and cfg["architecture"] == "amd64"


def test_layer_digests_and_exclusions(tmp_path):
    root = tmp_path / "root"
    for path in ("bin", "dev", "proc", "etc"):
        (root / path).mkdir(parents=True)
    (root / "etc" / "debian_version").write_text("12.0\n")
    (root / "dev" / "null-copy").write_text("not a device, still left out\n")
    (root / "proc" / "junk").write_text("x")
    dest = tmp_path / "layer.tar.gz"
    digest, diff_id, size = taskimage.pack_layer(str(root), str(dest))
    blob = dest.read_bytes()
    assert digest == "sha256:" + hashlib.sha256(blob).hexdigest() and size == len(blob)
    assert diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    with tarfile.open(dest) as tar:
        names = set(tar.getnames())
    assert "./etc/debian_version" in names and "./dev" in names and "./proc" in names
    assert "./dev/null-copy" not in names and "./proc/junk" not in names


def test_recipe_hash_follows_the_recipe():
    base = taskimage.TaskImage()
    assert base.digest("") == taskimage.TaskImage().digest("")
    assert base.digest("") != taskimage.TaskImage(packages=("git",)).digest("")
    assert base.digest("") != base.digest("http://mirror.example/debian")


def test_workers_get_what_a_concourse_worker_needs():
    workers = [h for h in lab.HOSTS if h.name in ("gpu-worker-1", "worker-2")]
    assert len(workers) == 2
    for host in workers:
        args = " ".join(host.docker_args)
        assert "--cap-add SYS_PTRACE" in args
        assert "--security-opt systempaths=unconfined" in args
        assert "--device /dev/fuse" in args
        assert "--privileged" not in args
        assert ("worker-work", "/var/lib/concourse-worker") in host.volumes
    others = [h for h in lab.HOSTS if h not in workers]
    assert all(not h.docker_args for h in others)

