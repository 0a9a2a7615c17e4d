"""`voxpipe data prepare`: lhotse manifests with the pipeline's features and tokens; bad rows are
reported by id and reason, never silently dropped."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
import yaml
from training_fixtures import RATE, tiny_pipeline, tiny_recipe, write_clips, write_tsv

from voxpipe.cli import main
from voxpipe.core.config import build_config
from voxpipe.core.errors import ConfigError
from voxpipe.training.data import (
    CUTS_FILE,
    REJECTED_FILE,
    SpeechSynthesisBatches,
    load_cuts,
    make_loader,
    make_sampler,
    prepare_from_pipeline,
    read_directory,
    read_tsv,
)
from voxpipe.training.recipe import load_recipe


@pytest.fixture
def pipeline(tmp_path):
    config = tiny_pipeline()
    config["synthesizer"]["acoustic_model"]["weights"] = str(tmp_path)
    return build_config(config)


def bad_rows(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    soundfile.write(tmp_path / "blip.wav", np.full(1200, 0.1, np.float32), RATE)
    soundfile.write(tmp_path / "long.wav", np.full(RATE * 3, 0.1, np.float32), RATE)
    good = write_clips(tmp_path / "wavs", 3)
    return good + [
        ("gone", "hello", tmp_path / "missing.wav"),
        ("junk", "hello", tmp_path / "junk.wav"),
        ("blank", "   ", good[0][2]),
        ("oov", "hello \u00ff\u00fe", good[0][2]),
        ("blip", "hello", tmp_path / "blip.wav"),
        ("long", "hello", tmp_path / "long.wav"),
        ("clip0", "duplicate id", good[1][2]),
    ]


def test_prepare_reports_every_bad_row_and_keeps_the_good_ones(tmp_path, pipeline):
    rows = read_tsv(write_tsv(tmp_path / "data.tsv", bad_rows(tmp_path)))
    report = prepare_from_pipeline(pipeline, rows, tmp_path / "out", max_seconds=2.0, storage="numpy")
    rejected = {line.split("\t")[0]: line.split("\t")[2] for line in
                (tmp_path / "out" / REJECTED_FILE).read_text().splitlines()[1:]}
    assert rejected.keys() == {"gone", "junk", "blank", "oov", "blip", "long", "clip0"}
    assert rejected["gone"].startswith("missing file")
    assert rejected["junk"].startswith("unreadable audio")
    assert rejected["blank"] == "empty text"
    assert rejected["oov"].startswith("out-of-vocabulary text") and "'\u00ff'" in rejected["oov"]
    assert rejected["blip"].startswith("too short") and rejected["long"].startswith("too long")
    assert rejected["clip0"] == "duplicate id"
    assert report.kept == 3 and report.total == 10
    summary = report.summary(tmp_path / "out")
    assert "prepared 3 of 10 rows" in summary and "skipped 7" in summary and REJECTED_FILE in summary

    cuts = load_cuts(tmp_path / "out" / CUTS_FILE)
    assert sorted(cuts.ids) == ["clip0", "clip1", "clip2"]
    tokenizer = pipeline.components["tokenizer"].build("tokenizer")
    features = pipeline.components["synthesizer"].children["features"].build("features")
    for cut in cuts:
        wave, _ = soundfile.read(tmp_path / "wavs" / f"{cut.id}.wav", dtype="float32")
        expected = features(torch.from_numpy(wave)).numpy()
        np.testing.assert_array_equal(cut.load_features(), expected)  # the pipeline's own front-end, stored exactly
        assert cut.supervisions[0].custom["tokens"] == tokenizer.encode(cut.supervisions[0].text)


def test_directory_input_and_lilcom_storage(tmp_path, pipeline):
    rows = write_clips(tmp_path / "corpus", 3)
    for row_id, text, path in rows[:2]:
        path.with_suffix(".txt").write_text(text + "\n")
    report = prepare_from_pipeline(pipeline, read_directory(tmp_path / "corpus"), tmp_path / "out")
    assert report.kept == 2 and [r[0] for r in report.rejected] == ["clip2"]
    assert "no clip2.txt" in report.rejected[0][1]
    cut = load_cuts(tmp_path / "out" / CUTS_FILE)[0]
    assert (tmp_path / "out" / "features.lca").is_file()
    assert cut.load_features().shape == (cut.features.num_frames, 20)


def test_malformed_tsv_line_names_the_line(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("id\ttext\twav\na\thello\ta.wav\nb\tno wav column\n")
    with pytest.raises(ConfigError, match=r"data.tsv:3: expected 3 tab-separated fields"):
        read_tsv(path)


def test_batches_pad_and_bucket_by_duration(tmp_path, pipeline):
    rows = write_clips(tmp_path / "wavs", 8)
    prepare_from_pipeline(pipeline, read_tsv(write_tsv(tmp_path / "d.tsv", rows)), tmp_path / "out", storage="numpy")
    cuts = load_cuts(tmp_path / "out" / CUTS_FILE)
    recipe = load_recipe(tiny_recipe(tmp_path / "ckpt", tmp_path / "out" / CUTS_FILE))
    batches = list(make_sampler(cuts, recipe.data, seed=1))
    assert sorted(cid for batch in batches for cid in batch.ids) == sorted(cuts.ids)  # every cut once per epoch
    assert all(sum(c.duration for c in batch) <= recipe.data.max_duration for batch in batches)
    # A resumed run's loader skips exactly the batches already taken in that epoch.
    epoch = [list(b["ids"]) for b in make_loader(cuts, recipe.data, seed=1, epoch=3, skip=0)]
    assert [list(b["ids"]) for b in make_loader(cuts, recipe.data, seed=1, epoch=3, skip=2)] == epoch[2:]
    batch = SpeechSynthesisBatches()[batches[0]]
    lens = batch["features_lens"]
    assert batch["features"].shape == (len(batches[0]), int(lens.max()), 20)
    for index, length in enumerate(lens.tolist()):
        assert torch.all(batch["features"][index, length:] == 0)  # zero padding past each length


def test_cli_prepare_prints_summary_and_fails_without_usable_rows(tmp_path, capsys):
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(tiny_recipe(tmp_path / "ckpt", tmp_path / "out" / CUTS_FILE)))
    rows = write_clips(tmp_path / "wavs", 2) + [("gone", "hello", tmp_path / "nothing.wav")]
    tsv = write_tsv(tmp_path / "d.tsv", rows)
    assert main(["data", "prepare", str(recipe_path), "--tsv", str(tsv), "-o", str(tmp_path / "out")]) == 0
    assert "prepared 2 of 3 rows" in capsys.readouterr().out
    write_tsv(tsv, [("gone", "hello", tmp_path / "nothing.wav")])
    assert main(["data", "prepare", str(recipe_path), "--tsv", str(tsv), "-o", str(tmp_path / "none")]) == 2
    assert "no usable rows" in capsys.readouterr().err
