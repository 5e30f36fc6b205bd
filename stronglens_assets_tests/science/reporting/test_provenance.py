"""Tests of stronglens_assets.science.reporting.provenance: checksums, git state, drift."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from stronglens_assets.science.reporting import provenance as P


@pytest.fixture
def config_dir(tmp_path):
    root = tmp_path / "configs"
    (root / "models").mkdir(parents=True)
    (root / "injection_priors.yaml").write_text("theta_e: [0.5, 3.0]\n")
    (root / "models" / "m.yaml").write_text("epochs: 2\n")
    (root / "README.txt").write_text("not a config\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.yaml").write_text("ignored: true\n")
    return root


def test_config_checksums_are_sha256_of_the_bytes(config_dir, tmp_path):
    extra = tmp_path / "footprint.yaml"
    extra.write_text("bricks: []\n")
    sums = P.config_checksums(config_dir, extra_files=[extra])
    assert list(sums) == sorted(sums)
    assert set(sums) == {"injection_priors.yaml", "models/m.yaml", str(extra.resolve())}
    assert sums["models/m.yaml"] == hashlib.sha256(b"epochs: 2\n").hexdigest()
    with pytest.raises(FileNotFoundError):
        P.config_checksums(tmp_path / "nope")


def test_git_state_outside_a_checkout(tmp_path):
    state = P.git_state(tmp_path)
    assert state["commit"] is None and state["dirty"] is None
    assert "not a git checkout" in state["reason"] or "not installed" in state["reason"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_of_a_fresh_repository(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    state = P.git_state(tmp_path)
    assert state == {"commit": git("rev-parse", "HEAD"), "dirty": False, "reason": None}
    (tmp_path / "a.txt").write_text("2")
    assert P.git_state(tmp_path)["dirty"] is True


def test_package_versions():
    versions = P.package_versions(["numpy", "surely-not-installed-xyz"])
    import numpy

    assert versions["numpy"] == numpy.__version__
    assert versions["surely-not-installed-xyz"] is None
    assert versions["python"].count(".") == 2


def _record(config_dir, checkpoint_sha):
    return P.build_provenance(
        git={"commit": None, "dirty": None, "reason": "test"},
        configs=P.config_checksums(config_dir),
        checkpoint={"key": "checkpoints/m/best.pt", "sha256": checkpoint_sha},
        upstream=[{"asset": "grid_completeness", "partition": "poisson", "data_version": "x"}],
        packages={"python": "3"},
        run_id="run-1",
        created_at=P.utc_now(),
    )


def test_drift_on_config_change_and_back(config_dir):
    checkpoint = hashlib.sha256(b"weights").hexdigest()
    record = _record(config_dir, checkpoint)
    assert record["upstream"][0]["partition"] == "poisson"
    clean = P.check_drift(record, P.config_checksums(config_dir), checkpoint)
    assert not clean.drifted and clean.describe() == "no drift"

    priors = config_dir / "injection_priors.yaml"
    original = priors.read_bytes()
    priors.write_text("theta_e: [0.5, 3.5]\n")
    drift = P.check_drift(record, P.config_checksums(config_dir), checkpoint)
    assert drift.drifted and drift.changed == ["injection_priors.yaml"]
    assert "config changed: injection_priors.yaml" in drift.describe()

    priors.write_bytes(original)
    assert not P.check_drift(record, P.config_checksums(config_dir), checkpoint).drifted

    (config_dir / "models" / "m.yaml").unlink()
    (config_dir / "new.yaml").write_text("a: 1\n")
    drift = P.check_drift(record, P.config_checksums(config_dir), checkpoint)
    assert drift.missing == ["models/m.yaml"] and drift.added == ["new.yaml"] and drift.drifted


def test_drift_on_checkpoint_change(config_dir):
    checkpoint = hashlib.sha256(b"weights").hexdigest()
    record = _record(config_dir, checkpoint)
    sums = P.config_checksums(config_dir)
    other = hashlib.sha256(b"retrained").hexdigest()
    assert "checkpoints/m/best.pt changed" in P.check_drift(record, sums, other).checkpoint
    assert "cannot be read" in P.check_drift(record, sums, None).describe()


def test_build_provenance_validates_digests(config_dir):
    with pytest.raises(ValueError, match="hex digest"):
        _record(config_dir, "abc")
    with pytest.raises(ValueError, match="lacks"):
        P.check_drift({"configs": {}}, {}, None)
