"""Output files are written atomically and never over an input (voxpipe.core.files).

A failed write must leave an existing file byte-identical and name the path; the real failure
(the file size limit of `ulimit -f`) is produced in a subprocess with RLIMIT_FSIZE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from voxpipe.core.audio import Audio
from voxpipe.core.errors import ConfigError
from voxpipe.core.files import (
    TEMPORARY_MARK,
    FileWriteError,
    SameFileError,
    refuse_same_file,
    write_atomically,
    write_bytes_atomically,
)

resource = pytest.importorskip("resource")  # POSIX only


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if TEMPORARY_MARK in p.name]


def tone(seconds: float, rate: int = 24000) -> Audio:
    t = torch.arange(int(seconds * rate), dtype=torch.float32) / rate
    return Audio(0.3 * torch.sin(2 * torch.pi * 220 * t), rate)


def test_write_replaces_the_file_and_keeps_its_permissions(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o600)
    assert write_bytes_atomically(path, b"new content") == path
    assert path.read_bytes() == b"new content"
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.wav"
    path.write_bytes(b"precious recording")

    def half_then_fail(temporary: Path) -> None:
        temporary.write_bytes(b"trunc")
        raise OSError(28, "No space left on device")

    with pytest.raises(FileWriteError, match=r"cannot write .*out\.wav: No space left on device"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"precious recording"
    assert leftovers(tmp_path) == []


def test_an_interrupt_is_not_swallowed_but_still_cleans_up(tmp_path):
    path = tmp_path / "out.voice"

    def interrupted(temporary: Path) -> None:
        temporary.write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, interrupted)
    assert not path.exists() and leftovers(tmp_path) == []


def test_bad_destinations_are_named(tmp_path):
    with pytest.raises(FileWriteError, match="is a directory"):
        write_bytes_atomically(tmp_path, b"x")
    with pytest.raises(FileWriteError, match="does not exist"):
        write_bytes_atomically(tmp_path / "missing" / "out.wav", b"x")


def test_a_symbolic_link_is_written_through(tmp_path):
    target = tmp_path / "real.wav"
    target.write_bytes(b"old")
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    write_bytes_atomically(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"


def test_audio_save_writes_each_format_and_refuses_unknown_extensions(tmp_path):
    audio = tone(0.5)
    for suffix in (".wav", ".flac", ".ogg"):
        path = audio.save(tmp_path / f"a{suffix}")
        samples, rate = soundfile.read(path)
        assert rate == 24000 and abs(len(samples) - audio.num_samples) < 2048
    direct = tmp_path / "direct.wav"  # what libsndfile writes straight to a file (the old way)
    soundfile.write(direct, audio.samples.numpy(), 24000, subtype="PCM_16")
    assert (tmp_path / "a.wav").read_bytes() == direct.read_bytes()
    with pytest.raises(ConfigError, match=r"unsupported extension '\.xyz'"):
        audio.save(tmp_path / "a.xyz")
    assert not (tmp_path / "a.xyz").exists() and leftovers(tmp_path) == []


LIMITED_WRITES = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    from voxpipe.core.audio import Audio
    from voxpipe.core.voice import Voice
    from voxpipe.export.onnx import export_graph

    directory = sys.argv[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # ulimit -f 100 (KiB blocks ~ 100 kB)
    messages = {}
    writes = {
        "wav": lambda: Audio(torch.zeros(24000 * 10), 24000).save(directory + "/take.wav"),
        "voice": lambda: Voice("test-family", {"prompt_features": torch.zeros(2000, 100)}).save(directory + "/alice.voice"),
        "onnx": lambda: export_graph(torch.nn.Linear(256, 256), (torch.zeros(1, 256),), directory + "/net.onnx",
                                     ["x"], ["y"], {"x": {0: "N"}}, {}),
    }
    for name, write in writes.items():
        try:
            write()
            messages[name] = None
        except Exception as error:
            messages[name] = f"{type(error).__name__}: {error}"
    print(json.dumps(messages))
    """
)


def test_a_write_over_the_file_size_limit_keeps_the_old_files_and_names_them(tmp_path):
    originals = {
        "take.wav": tone(3.0).save(tmp_path / "take.wav").read_bytes(),
        "alice.voice": b"an older voice file",
        "net.onnx": b"an older graph",
    }
    for name, content in originals.items():
        (tmp_path / name).write_bytes(content)
    result = subprocess.run([sys.executable, "-c", LIMITED_WRITES, str(tmp_path)], capture_output=True, text=True,
                            check=False, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr[-2000:]
    messages = json.loads(result.stdout.strip().splitlines()[-1])
    for key, name in (("wav", "take.wav"), ("voice", "alice.voice"), ("onnx", "net.onnx")):
        assert messages[key] is not None and messages[key].startswith("FileWriteError: cannot write "), messages
        assert name in messages[key], messages[key]
        assert (tmp_path / name).read_bytes() == originals[name], f"{name} was damaged"
    assert "File too large" in messages["wav"] and "File too large" in messages["voice"]
    assert leftovers(tmp_path) == []


# ---- an output must not be one of the inputs ---------------------------------------------------
def test_refuse_same_file_through_paths_and_links(tmp_path):
    recording = tmp_path / "ref.wav"
    recording.write_bytes(b"the user's recording")
    soft = tmp_path / "soft.wav"
    soft.symlink_to(recording)
    hard = tmp_path / "hard.wav"
    os.link(recording, hard)
    other = tmp_path / "other.wav"
    other.write_bytes(b"x")
    for output in (recording, soft, hard, tmp_path / "." / "ref.wav"):
        with pytest.raises(SameFileError, match="input") as caught:
            refuse_same_file(output, [other, recording], option="-o")
        assert isinstance(caught.value, ConfigError)  # a usage error: exit code 2
        assert str(output) in str(caught.value) and str(recording) in str(caught.value)
    refuse_same_file(other, [recording, None, tmp_path / "missing.wav"])  # different files: fine
    refuse_same_file(tmp_path / "new.wav", [recording])                   # output does not exist yet
    assert recording.read_bytes() == b"the user's recording"


def test_ogg_and_stereo_survive_the_in_memory_encoding(tmp_path):
    stereo = Audio(torch.stack([tone(0.3).samples, -tone(0.3).samples]), 24000)
    samples, rate = soundfile.read(stereo.save(tmp_path / "s.wav"), dtype="float32")
    assert samples.shape == (stereo.num_samples, 2) and rate == 24000
    np.testing.assert_allclose(samples[:, 0], -samples[:, 1], atol=1 / 32768)
