"""`kerastl update`: the base `kerastl new` keeps, the header, conflicts, refusals.

The merges of realistic edits are the cases of tests/test_update_cases.py; the
merge itself is tests/test_merge.py.
"""

from pathlib import Path

import pytest

from kerastl import __version__
from kerastl.cli import main
from kerastl.script_base import base_path
from kerastl.script_header import read_options
from kerastl.update import resolve

SCRIPT = "train.py"
NEW = ["new", "--backbone", "ResNet50V2", "--image-size", "32", "-o", SCRIPT]

# The batch size of a generated script, as a user edits it.
BATCH_32 = '32, "images per step and replica (see --strategy)"'
BATCH_16 = '16, "images per step and replica (see --strategy)"'


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder, with nothing in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kerastl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Runs the command line in this process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exit:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit.value.code or 0), out, err


def generate(capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    code, _, err = kerastl(capsys, *NEW, *args)
    assert code == 0, err
    return Path(SCRIPT)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_new_keeps_the_render_as_the_base(folder: Path, capsys) -> None:
    script = generate(capsys)
    base = folder / ".kerastl" / "train.py.base"
    assert base_path(script) == Path(".kerastl/train.py.base")
    assert base.read_text() == script.read_text()
    replace(script, BATCH_32, BATCH_16)
    generate(capsys, "--force", "--backbone", "MobileNetV2")
    assert base.read_text() == script.read_text()  # --force: a new start


def test_new_stdout_keeps_no_base(folder: Path, capsys) -> None:
    kerastl(capsys, *NEW, "--stdout")
    assert list(folder.iterdir()) == []


def test_an_unedited_script_is_up_to_date(folder: Path, capsys) -> None:
    script = generate(capsys)
    before = script.read_text()
    assert kerastl(capsys, "update", SCRIPT) == (0, "train.py is up to date\n", "")
    assert script.read_text() == before


def test_dry_run_prints_the_diff_and_writes_nothing(folder: Path, capsys) -> None:
    script = generate(capsys)
    replace(script, BATCH_32, BATCH_16)
    before, base = script.read_text(), base_path(script).read_text()
    code, out, err = kerastl(
        capsys, "update", SCRIPT, "--backbone", "MobileNetV2", "--dry-run"
    )
    assert code == 0, err
    assert out.startswith("--- train.py\n+++ train.py (updated)\n")
    assert '-    with runtime.loading_weights("ResNet50V2", settings.weights):' in out
    assert '+    with runtime.loading_weights("MobileNetV2", settings.weights):' in out
    assert "\n-        " + BATCH_16 not in out  # the edit stays: no change
    assert script.read_text() == before and base_path(script).read_text() == base


def test_an_update_merges_and_the_new_render_becomes_the_base(
    folder: Path, capsys
) -> None:
    script = generate(capsys)
    replace(script, BATCH_32, BATCH_16)
    code, out, err = kerastl(capsys, "update", SCRIPT, "--backbone", "MobileNetV2")
    assert (code, err) == (0, "")
    assert out == "updated train.py; run it: python train.py --data-dir DATA_DIR\n"
    text = script.read_text()
    assert BATCH_16 in text and "keras.applications.MobileNetV2(" in text
    assert read_options(text, SCRIPT)["backbone"] == "MobileNetV2"
    base = base_path(script).read_text()
    assert base == text.replace(BATCH_16, BATCH_32)
    # The recorded options are the new ones: a plain update changes nothing.
    assert kerastl(capsys, "update", SCRIPT)[1] == "train.py is up to date\n"


def test_a_merge_that_does_not_compile_writes_nothing(folder: Path, capsys) -> None:
    script = generate(capsys)
    replace(script, BATCH_32, "32 +, " + BATCH_32.split(", ", 1)[1])
    before, base = script.read_text(), base_path(script).read_text()
    code, out, err = kerastl(capsys, "update", SCRIPT, "--backbone", "MobileNetV2")
    assert code == 1 and out == ""
    line = next(
        number
        for number, text in enumerate(before.splitlines(), start=1)
        if "32 +," in text
    )
    assert err == (
        "kerastl: error: the merge of train.py is not valid Python (invalid syntax, "
        f"line {line}); nothing written: fix the script, or regenerate it with "
        "--force\n"
    )
    assert script.read_text() == before and base_path(script).read_text() == base


def test_a_conflict_keeps_both_sides_and_exits_1(folder: Path, capsys) -> None:
    script = generate(capsys)
    line = "    x = keras.applications.resnet_v2.preprocess_input(inputs)\n"
    mine = line.replace("(inputs)", "(inputs * 1.0)")
    replace(script, line, mine)
    replace(script, BATCH_32, BATCH_16)
    for dry_run in (["--dry-run"], []):
        code, _, err = kerastl(
            capsys, "update", SCRIPT, "--backbone", "ConvNeXtTiny", *dry_run
        )
        assert code == 1
        assert len(err.splitlines()) == 1 and "1 conflict (lines " in err, err
    text = script.read_text()
    start = text.index("<<<<<<< yours (train.py)\n")
    end = text.index("\n", text.index(">>>>>>> kerastl ")) + 1
    block = text[start:end]
    assert mine in block and line in block and "    x = inputs\n" in block
    # The labels tell the sides apart: the new render names what changed.
    assert f">>>>>>> kerastl {__version__}, --backbone ConvNeXtTiny" in block
    assert BATCH_16 in text  # the edit that did not conflict merged
    span = err.split("(lines ")[1].split(")")[0]
    first, last = map(int, span.split("-"))
    lines = text.splitlines()
    assert lines[first - 1].startswith("<<<<<<< ")
    assert lines[last - 1].startswith(">>>>>>> ")
    # The new render is the base: once resolved (here: their side), all is merged.
    code, _, err = kerastl(capsys, "update", SCRIPT)
    assert code == 1 and "still has conflict markers (line " in err
    resolved = text[:start] + "    x = inputs\n" + text[end:]
    script.write_text(resolved)
    assert "<<<<<<<" not in resolved
    assert kerastl(capsys, "update", SCRIPT)[:2] == (0, "train.py is up to date\n")


TAMPERED = {
    "code": "{'kerastl': '0.1.0', 'mode': __import__('os').system('touch pwned')}",
    "not a literal": "dict(mode='fine-tune')",
    "not a dict": "['fine-tune']",
    "unknown option": "{'kerastl': '0.1.0', 'mode': 'fine-tune', 'shell': 'rm'}",
    "no version": "{'mode': 'fine-tune'}",
    "wrong type": "{'kerastl': '0.1.0', 'image_size': 32.5}",
    "a switch not a bool": "{'kerastl': '0.1.0', 'standalone': 'yes'}",
    "invalid value": "{'kerastl': '0.1.0', 'image_size': 100000}",
    "unknown backbone": "{'kerastl': '0.1.0', 'backbone': 'ResNet5000'}",
}


@pytest.mark.parametrize("literal", TAMPERED.values(), ids=list(TAMPERED))
def test_a_tampered_header_is_refused_with_one_line(
    literal: str, folder: Path, capsys
) -> None:
    script = generate(capsys)
    lines = script.read_text().split("\n")
    header = next(i for i, line in enumerate(lines) if "kerastl-options" in line)
    lines[header] = "# kerastl-options: " + literal
    script.write_text("\n".join(lines))
    before, base = script.read_text(), base_path(script).read_text()
    code, out, err = kerastl(capsys, "update", SCRIPT)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("kerastl: error: train.py")
    assert script.read_text() == before and base_path(script).read_text() == base
    assert not (folder / "pwned").exists()


def test_a_file_without_a_header_is_refused(folder: Path, capsys) -> None:
    Path("mine.py").write_text("# my own script\nprint('hello')\n")
    code, _, err = kerastl(capsys, "update", "mine.py")
    assert code == 1
    assert err.startswith("kerastl: error: mine.py has no kerastl header")


def test_a_missing_base_is_refused_with_the_way_out(folder: Path, capsys) -> None:
    script = generate(capsys)
    base_path(script).unlink()
    code, _, err = kerastl(capsys, "update", SCRIPT)
    assert code == 1 and len(err.splitlines()) == 1
    assert "has no base (.kerastl/train.py.base" in err and "--force" in err


def test_a_base_of_other_options_is_refused(folder: Path, capsys) -> None:
    script = generate(capsys)
    code, out, _ = kerastl(capsys, *NEW, "--image-size", "64", "--stdout")
    script.write_text(out)  # regenerated by hand: the base is of the old options
    code, _, err = kerastl(capsys, "update", SCRIPT)
    assert code == 1 and len(err.splitlines()) == 1
    assert "record other options (image_size)" in err


def test_bad_options_are_usage_errors_and_write_nothing(folder: Path, capsys) -> None:
    script = generate(capsys)
    before = script.read_text()
    code, _, err = kerastl(capsys, "update", SCRIPT, "--image-size", "5")
    assert code == 2 and "Invalid value for '--image-size': 5: " in err
    # A recorded value that does not fit the new backbone says how to change it.
    code, _, err = kerastl(capsys, "update", SCRIPT, "--backbone", "InceptionV3")
    assert code == 2
    assert "32: InceptionV3 takes 75 to 2048 px (recorded in train.py; give " in err
    code, _, err = kerastl(capsys, "update", "nothing.py")
    assert code == 2
    assert script.read_text() == before


def test_standalone_scripts_update_both_ways(folder: Path, capsys) -> None:
    script = generate(capsys)
    replace(script, BATCH_32, BATCH_16)
    assert kerastl(capsys, "update", SCRIPT, "--standalone")[0] == 0
    text = script.read_text()
    assert "\nfrom kerastl import runtime  #" not in text and BATCH_16 in text
    assert "\nimport kerastl_runtime as runtime  #" in text
    assert (folder / "kerastl_runtime" / "MANIFEST").is_file()
    assert read_options(text, SCRIPT)["standalone"] is True
    assert read_options(base_path(script).read_text(), SCRIPT)["standalone"] is True
    assert kerastl(capsys, "update", SCRIPT, "--no-standalone")[0] == 0
    text = script.read_text()
    assert "\nfrom kerastl import runtime  #" in text and BATCH_16 in text


def test_a_renamed_script_records_its_new_name(folder: Path, capsys) -> None:
    script = generate(capsys)
    Path("tune.py").write_text(script.read_text())
    base_path(Path("tune.py")).write_text(base_path(script).read_text())
    assert kerastl(capsys, "update", "tune.py")[0] == 0
    text = Path("tune.py").read_text()
    assert read_options(text, "tune.py")["output"] == "tune.py"
    assert "# Run:        python tune.py " in text


def test_crlf_line_ends_merge(folder: Path, capsys) -> None:
    script = generate(capsys)
    script.write_bytes(script.read_bytes().replace(b"\n", b"\r\n"))
    replace(script, BATCH_32, BATCH_16)
    assert kerastl(capsys, "update", SCRIPT, "--backbone", "MobileNetV2")[0] == 0
    assert BATCH_16 in script.read_text()


def recorded(**changes: object) -> dict[str, object]:
    options: dict[str, object] = {
        "kerastl": "0.1.0",
        "mode": "fine-tune",
        "task": "single-label",
        "backbone": "ResNet50V2",
        "image_size": 224,
        "num_classes": 10,
        "weights": "imagenet",
        "unfreeze": [4],
        "data_dir": "data",
        "output": SCRIPT,
        "standalone": False,
    }
    return options | changes


def test_a_header_without_a_task_is_single_label_and_the_task_switches() -> None:
    older = recorded()
    del older["task"]  # written before --task existed
    assert resolve(older, {}, Path(SCRIPT)).options() == recorded()
    spec = resolve(older, {"task": "multi-label"}, Path(SCRIPT))
    assert spec.options() == recorded(task="multi-label")
    assert resolve(
        spec.options(), {"task": "single-label"}, Path(SCRIPT)
    ).options() == (recorded())


def test_defaults_follow_a_new_backbone_and_explicit_values_stay() -> None:
    spec = resolve(recorded(), {"backbone": "EfficientNetB3"}, Path(SCRIPT))
    assert spec.image_size == 300 and spec.unfreeze == (round(26 / 4),)
    assert (spec.num_classes, spec.data_dir) == (10, "data")
    spec = resolve(
        recorded(image_size=160), {"backbone": "EfficientNetB3"}, Path(SCRIPT)
    )
    assert spec.image_size == 160


def test_a_new_mode_drops_the_options_it_does_not_take() -> None:
    spec = resolve(
        recorded(unfreeze=[2, 6]), {"mode": "feature-extraction"}, Path(SCRIPT)
    )
    assert (spec.mode, spec.unfreeze, spec.num_classes) == (
        "feature-extraction",
        (),
        10,
    )
    spec = resolve(recorded(image_size=160), {"mode": "as-is"}, Path(SCRIPT))
    assert (spec.image_size, spec.num_classes) == (224, None)


def test_a_new_backbone_keeps_the_mode_and_a_new_mode_the_backbone() -> None:
    extraction = recorded(mode="feature-extraction", backbone="MobileNetV3Small")
    extraction["unfreeze"] = []
    spec = resolve(extraction, {"backbone": "MobileNetV2"}, Path(SCRIPT))
    assert (spec.mode, spec.backbone.name) == ("feature-extraction", "MobileNetV2")
    spec = resolve(recorded(), {"mode": "feature-extraction"}, Path(SCRIPT))
    assert spec.backbone.name == recorded()["backbone"]


def test_a_plain_update_keeps_every_recorded_value() -> None:
    spec = resolve(recorded(unfreeze=[2, 6]), {}, Path(SCRIPT))
    assert spec.options() == recorded(unfreeze=[2, 6])


def test_a_header_of_an_older_release_may_lack_newer_options() -> None:
    options = recorded()
    del options["standalone"]
    text = f"# kerastl-options: {options!r}\nprint()\n"
    assert read_options(text, SCRIPT) == options
    assert resolve(options, {}, Path(SCRIPT)).standalone is False
