"""notebooks/train.ipynb runs through papermill with a real kernel: the data half on a small
espeak-made recording, and a recording where every clip is rejected stops before training.

The data-half test runs a copy of the notebook whose training cell body is cut back to
`st.finish()` (training has its own tests in tests/nemo); every other cell runs as committed."""

from __future__ import annotations

import json

import nbformat
import pytest
from dataprep_texts import LANE

TRAIN_MARK = "# --- training (lane.nemo) ---"


def _params(root, run_id, audio, transcript):
    return {"root": str(root), "run_id": run_id, "run_dir": str(root / "runs" / run_id), "stage": "train",
            "lane": LANE, "profile": "tiny", "audio": str(audio), "transcript": str(transcript) if transcript else "",
            "input_format": "auto", "weights_manifest": "configs/voice/weights-manifest.example.json"}


def test_notebook_structure(repo_root):
    nb = nbformat.read(repo_root / "notebooks" / "train.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("root", "run_id", "run_dir", "stage", "resume", "lane", "profile", "audio", "transcript",
                 "input_format", "weights_manifest", "voice_profile_id", "allow_from_scratch", "expected_head",
                 "require_clean_tree"):
        assert f"\n{name} = " in "\n" + params[0].source, name
    training = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(TRAIN_MARK)]
    assert len(training) == 1
    assert "st.finish()" in nb.cells[training[0]].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"


def _data_half(data_root, tmp_path):
    nb = nbformat.read(data_root / "notebooks" / "train.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(TRAIN_MARK))
    cell.source = TRAIN_MARK + "\nst.finish()\n"
    path = data_root / "notebooks" / "train_data_half.ipynb"
    nbformat.write(nb, path)
    return path


def test_train_notebook_data_half_runs_in_papermill(data_root, longform, tmp_path):
    import papermill as pm

    flac, txt = longform
    out = tmp_path / "train.out.ipynb"
    # no transcript parameter: the long.txt next to long.flac is picked up (auto format detection)
    pm.execute_notebook(str(_data_half(data_root, tmp_path)), str(out), cwd=str(data_root / "notebooks"),
                        parameters=_params(data_root, "nbtest", flac, None), progress_bar=False, kernel_name="python3")
    man = json.loads((data_root / "artifacts" / f"dataset_manifest.{LANE}.json").read_text())
    assert man["input_format"] == "longform_transcript" and man["transcript"] == str(txt)
    res = json.loads((data_root / "runs" / "nbtest" / "train" / "result.json").read_text())
    assert res["status"] == "done" and res["reason"] == "ok"
    assert {c["id"] for c in res["checks"]} == {"dataset_not_empty", "dataset_min_duration"}
    assert {a["kind"] for a in res["artifacts"]} >= {"dataset_manifest", "train_manifest", "val_manifest", "pitch_stats"}
    media = json.loads((data_root / "runs" / "nbtest" / "train" / "media" / "data.json").read_text())
    kinds = [m["kind"] for m in media]
    assert kinds.count("image") >= 3 and "audio" in kinds and "table" in kinds
    for m in media:
        assert (data_root / "runs" / "nbtest" / "train" / m["path"]).stat().st_size > 0
    nb = nbformat.read(out, as_version=4)
    html = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "image/png" in html and "<audio" in html and "| reason | clips |" in html


def test_all_rejected_stops_before_training(data_root, audio_dir, tmp_path):
    import papermill as pm

    from lane.data.espeak import sox

    silence = audio_dir / "nb_silence.flac"
    sox(["-n", "-r", "22050", "-c", "1", "-b", "16", str(silence), "trim", "0", "10"])
    out = tmp_path / "fail.out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as ei:  # the notebook as committed, training cell included
        pm.execute_notebook(str(data_root / "notebooks" / "train.ipynb"), str(out), cwd=str(data_root / "notebooks"),
                            parameters=_params(data_root, "nbfail", silence, None), progress_bar=False,
                            kernel_name="python3")
    assert "dataset_empty" in str(ei.value)
    res = json.loads((data_root / "runs" / "nbfail" / "train" / "result.json").read_text())
    assert res["status"] == "failed" and res["reason"] == "dataset_empty"
    nb = nbformat.read(out, as_version=4)
    train_cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(TRAIN_MARK))
    assert train_cell.get("execution_count") is None and not train_cell.get("outputs")
