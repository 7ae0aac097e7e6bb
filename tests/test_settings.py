"""A script's settings, declared once: the command line, checks and record they give."""

import dataclasses
import os
from pathlib import Path

import pytest

from kerastl.runtime import (
    CACHE_CHOICES,
    RunSettings,
    parse_settings,
    run_setting,
    setting,
    settings_record,
    training_settings,
    weights_option,
)


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: str | None = setting(None, "images", folder=True, required=True)
    val_dir: str | None = setting(None, "validation images", folder=True)
    batch_size: int = setting(32, "images per step", minimum=1)
    learning_rate: float = setting(0.001, "of the head", above=0)
    dropout: float = setting(0.2, "before the output", minimum=0, below=1)
    num_classes: int | None = setting(None, "classes", minimum=2)
    augment: bool = setting(True, "random flips")
    cache: str = setting("auto", "where images are kept", choices=CACHE_CHOICES)
    weights: str | None = setting("imagenet", "weights", parse=weights_option)
    unfreeze: tuple[int | str, ...] = setting((5,), "stages")
    export: tuple[str, ...] = setting((), "formats", trains=False)
    output_dir: str = setting("runs/x", "output", output=True, trains=False)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "val").mkdir()
    return "data"


def usage_error(capsys: pytest.CaptureFixture, cls: type, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit:
        parse_settings(cls, argv)
    assert exit.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_defaults_come_from_the_declaration(data: str) -> None:
    settings = parse_settings(Settings, ["--data-dir", data])
    assert settings == Settings(data_dir=data)


def test_each_field_is_an_option_of_its_type(data: str) -> None:
    settings = parse_settings(
        Settings,
        [
            *("--data-dir", data, "--val-dir", "val", "--batch-size", "8"),
            *("--learning-rate", "1e-4", "--num-classes", "3", "--no-augment"),
            *("--cache", "disk", "--weights", "none", "--unfreeze", "2", "all"),
        ],
    )
    assert (settings.batch_size, settings.learning_rate) == (8, 1e-4)
    assert (settings.num_classes, settings.augment, settings.cache) == (
        3,
        False,
        "disk",
    )
    assert settings.weights is None  # "none" reads as no weights
    assert settings.unfreeze == (2, "all")  # numbers are numbers, names names


def test_repeated_options_add_up_and_replace_the_default(data: str) -> None:
    both = ["--export", "saved-model", "--export", "tflite", "onnx"]
    settings = parse_settings(Settings, ["--data-dir", data, *both])
    assert settings.export == ("saved-model", "tflite", "onnx")
    stages = parse_settings(Settings, ["--data-dir", data, "--unfreeze", "3"])
    assert stages.unfreeze == (3,)  # not (5, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, not 0"),
        (["--learning-rate", "0"], "argument --learning-rate: must be above 0, not 0"),
        (["--learning-rate", "nan"], "must be a finite number, not nan"),
        (["--dropout", "1"], "must be at least 0 and below 1, not 1"),
        (["--num-classes", "1"], "argument --num-classes: must be at least 2, not 1"),
        (["--batch-size", "2.5"], "not a whole number: '2.5'"),
        (["--cache", "ram"], "'ram' is not one of auto, memory, disk, none"),
        (["--val-dir", "data"], "argument --val-dir: data is also --data-dir"),
        (["--val-dir", "nowhere"], "argument --val-dir: nowhere is not a folder"),
        (["--weights", "gone.h5"], "weights file gone.h5 does not exist"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_option(
    data: str, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    assert message in usage_error(capsys, Settings, ["--data-dir", data, *argv])


def test_a_required_setting_without_a_default(capsys: pytest.CaptureFixture) -> None:
    assert "required: --data-dir" in usage_error(capsys, Settings, [])


def test_a_default_edited_in_the_script_is_checked_too(
    data: str, capsys: pytest.CaptureFixture
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Edited(Settings):
        batch_size: int = setting(0, "images per step", minimum=1)

    message = usage_error(capsys, Edited, ["--data-dir", data])
    assert message.endswith(
        "argument --batch-size: must be at least 1, not 0 (the script's default)"
    )


def test_an_edited_default_is_what_runs(data: str) -> None:
    @dataclasses.dataclass(frozen=True)
    class Edited(Settings):
        weights: str | None = setting("none", "weights", parse=weights_option)
        data_dir: str | None = setting(data, "images", folder=True, required=True)

    settings = parse_settings(Edited, [])
    assert settings.data_dir == data and settings.weights is None


def test_help_shows_each_setting_with_its_default(
    capsys: pytest.CaptureFixture,
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(Settings, ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--batch-size SIZE images per step (default: 32)" in text
    assert "--augment, --no-augment random flips (default: yes)" in text
    assert "--cache {auto,memory,disk,none}" in text
    # A value that must be given says so; an optional one that is off by
    # default says nothing of Python's None.
    assert "--data-dir DIR images (required)" in text
    assert "--val-dir DIR validation images --" in text
    assert "None" not in text


def test_the_record_holds_every_setting_and_the_training_ones(data: str) -> None:
    settings = parse_settings(Settings, ["--data-dir", data, "--export", "tflite"])
    record = settings_record(settings)
    assert record["unfreeze"] == [5] and record["export"] == ["tflite"]
    assert set(record) == {field.name for field in dataclasses.fields(Settings)}
    assert set(record) - set(training_settings(settings)) == {"export", "output_dir"}


def test_the_record_names_a_folder_of_images_the_same_however_typed(
    data: str, tmp_path: Path
) -> None:
    records = [
        settings_record(parse_settings(Settings, ["--data-dir", typed]))
        for typed in (data, f"./{data}/", str(tmp_path / data))
    ]
    assert {record["data_dir"] for record in records} == {str(tmp_path / data)}
    assert records[0]["output_dir"] == "runs/x"  # as typed: not a folder of images


def test_none_sets_an_optional_setting_back_to_its_automatic_value(data: str) -> None:
    @dataclasses.dataclass(frozen=True)
    class Fixed(Settings):
        num_classes: int | None = setting(10, "classes", minimum=2)

    assert parse_settings(Fixed, ["--data-dir", data]).num_classes == 10
    settings = parse_settings(Fixed, ["--data-dir", data, "--num-classes", "none"])
    assert settings.num_classes is None


def test_bounds_apply_to_the_numbers_of_a_mixed_setting(
    data: str, capsys: pytest.CaptureFixture
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Stages(Settings):
        unfreeze: tuple[int | str, ...] = setting((5,), "stages", minimum=1, maximum=21)

    argv = ["--data-dir", data, "--unfreeze", "3", "all", "block6a_expand_conv"]
    assert parse_settings(Stages, argv).unfreeze == (3, "all", "block6a_expand_conv")
    message = usage_error(capsys, Stages, ["--data-dir", data, "--unfreeze", "0"])
    assert "argument --unfreeze: must be at least 1 and at most 21, not 0" in message


def test_a_default_of_the_wrong_type_is_a_usage_error(
    data: str, capsys: pytest.CaptureFixture
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Edited(Settings):
        batch_size: int = setting("32", "images per step", minimum=1)

    message = usage_error(capsys, Edited, ["--data-dir", data])
    assert message.endswith(
        "argument --batch-size: '32' is not of type int (the script's default)"
    )


def test_a_list_default_is_kept_as_a_tuple(data: str) -> None:
    @dataclasses.dataclass(frozen=True)
    class Edited(Settings):
        unfreeze: tuple[int | str, ...] = setting([2, "all"], "stages")

    assert parse_settings(Edited, ["--data-dir", data]).unfreeze == (2, "all")


def test_the_output_folder_is_checked_before_anything_loads(
    data: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("notes.txt").write_text("a file")
    for output, message in {
        "notes.txt": "notes.txt is a file, not a folder",
        "notes.txt/run": "notes.txt/run cannot be made: ",
        "data": "data is inside --data-dir; its files would be read as images",
        "data/run": "data/run is inside --data-dir",
    }.items():
        line = usage_error(
            capsys, Settings, ["--data-dir", data, "--output-dir", output]
        )
        assert f"argument --output-dir: {message}" in line, line
    # A folder to be made, or a URL (its file system checks it at the first write).
    for output in ("runs/new/deep", "gs://bucket/runs/x"):
        settings = parse_settings(
            Settings, ["--data-dir", data, "--output-dir", output]
        )
        assert settings.output_dir == output
    # Without permission to write: os.access says so (root may write anywhere here).
    real_access = os.access
    monkeypatch.setattr(
        "os.access",
        lambda path, mode: (
            False if path.endswith("locked") else real_access(path, mode)
        ),
    )
    Path("locked").mkdir()
    line = usage_error(
        capsys, Settings, ["--data-dir", data, "--output-dir", "locked/run"]
    )
    assert line.endswith("locked (permission denied)") and "cannot write in " in line


@dataclasses.dataclass(frozen=True)
class PlatformSettings:
    data_dir: str = setting("data", "images", folder=True)
    output_dir: str = setting(
        "runs/x", "output", output=True, environment="AIP_CHECKPOINT_DIR"
    )


def test_a_platform_variable_replaces_the_default_not_the_command_line(
    data: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert parse_settings(PlatformSettings, []).output_dir == "runs/x"
    monkeypatch.setenv("AIP_CHECKPOINT_DIR", "gs://bucket/job/checkpoints")
    assert parse_settings(PlatformSettings, []).output_dir == (
        "gs://bucket/job/checkpoints"
    )
    given = parse_settings(PlatformSettings, ["--output-dir", "mine"])
    assert given.output_dir == "mine"
    with pytest.raises(SystemExit):
        parse_settings(PlatformSettings, ["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: runs/x, or $AIP_CHECKPOINT_DIR when it is set)" in shown
    monkeypatch.setenv("AIP_CHECKPOINT_DIR", "data")  # checked as if given
    assert usage_error(capsys, PlatformSettings, []).endswith(
        "error: argument --output-dir: data is inside --data-dir; "
        "its files would be read as images: give another folder"
    )


def test_an_option_with_a_bare_value_takes_it_when_given_alone(
    data: str, capsys: pytest.CaptureFixture
) -> None:
    @dataclasses.dataclass(frozen=True)
    class WithFinder:
        data_dir: str | None = setting(None, "images", folder=True, required=True)
        find_lr: str | None = setting(
            None, "a phase to test", bare="head", metavar="PHASE", trains=False
        )

    assert parse_settings(WithFinder, ["--data-dir", data]).find_lr is None
    assert parse_settings(WithFinder, ["--find-lr", "--data-dir", data]).find_lr == (
        "head"
    )
    given = parse_settings(WithFinder, ["--data-dir", data, "--find-lr", "unfreeze-3"])
    assert given.find_lr == "unfreeze-3"
    with pytest.raises(SystemExit):
        parse_settings(WithFinder, ["--help"])
    assert "--find-lr [PHASE]" in capsys.readouterr().out


@dataclasses.dataclass(frozen=True)
class Recipe(RunSettings):
    """A script's settings: its recipe, on the run's settings."""

    output_dir: str = run_setting("output_dir", "runs/recipe")
    data_dir: str | None = setting(None, "images", folder=True, required=True)
    epochs: int = setting(10, "epochs of the head", minimum=0)
    lr_schedule: str = setting("cosine", "schedule", choices=("cosine", "plateau"))
    layer_decay: float = setting(
        1.0, "rate per block", above=0, needs={"lr_schedule": "cosine"}, off=1.0
    )


def help_text(capsys: pytest.CaptureFixture, cls: type) -> str:
    with pytest.raises(SystemExit):
        parse_settings(cls, ["--help"])
    return capsys.readouterr().out


def test_the_run_settings_are_options_of_the_script_listed_apart(
    data: str, capsys: pytest.CaptureFixture
) -> None:
    settings = parse_settings(
        Recipe, ["--data-dir", data, "--restart", "--seed", "7", "--epochs", "2"]
    )
    assert (settings.restart, settings.seed, settings.epochs) == (True, 7, 2)
    assert settings.output_dir == "runs/recipe"  # the script's default
    assert (settings.tta, settings.export, settings.cache) == ("auto", (), "auto")
    text = help_text(capsys, Recipe)
    recipe, run = text.index("\nthe recipe:\n"), text.index("\nthe run:\n")

    def option(name: str) -> int:  # where --help describes it, past the usage
        return text.index(f"\n  {name}")

    assert recipe < option("--epochs") < run < option("--restart")
    # A field redeclared to change its default keeps its help, among the run's.
    assert run < option("--output-dir")
    shown = " ".join(text[run:].split())
    assert "the run: Declared in runtime.RunSettings: to change a default, " in shown
    assert (
        "the run's folder (a local path or a URL: gs://...) (default: runs/recipe"
        in (shown)
    )


def test_the_record_lists_the_recipe_first_then_the_run(data: str) -> None:
    record = settings_record(parse_settings(Recipe, ["--data-dir", data]))
    assert list(record)[:4] == ["data_dir", "epochs", "lr_schedule", "layer_decay"]
    assert set(record) == {field.name for field in dataclasses.fields(Recipe)}
    assert record["output_dir"] == "runs/recipe" and record["export"] == []


def test_a_run_setting_redeclared_with_a_new_default_is_checked_as_declared(
    data: str, capsys: pytest.CaptureFixture
) -> None:
    @dataclasses.dataclass(frozen=True)
    class Edited(Recipe):
        seed: int = run_setting("seed", 42)
        quantize: str = run_setting("quantize", "int8")

    message = usage_error(capsys, Edited, ["--data-dir", data])
    assert message.endswith("argument --quantize: needs --export tflite, not none")
    settings = parse_settings(Edited, ["--data-dir", data, "--export", "tflite"])
    assert (settings.seed, settings.quantize) == (42, "int8")
    with pytest.raises(KeyError, match="RunSettings has no setting 'epochs'"):
        run_setting("epochs", 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--layer-decay", "0.8", "--lr-schedule", "plateau"],
            "argument --layer-decay: needs --lr-schedule cosine, not plateau",
        ),
        (["--tpu", "my-tpu"], "argument --tpu: needs --strategy tpu, not auto"),
        (
            ["--quantize", "int8", "--export", "onnx"],
            "argument --quantize: needs --export tflite, not onnx",
        ),
    ],
)
def test_a_combination_a_setting_needs_otherwise_is_a_usage_error(
    data: str, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    line = usage_error(capsys, Recipe, ["--data-dir", data, *argv])
    assert line.endswith(f"error: {message}")


@pytest.mark.parametrize(
    "argv",
    [
        ["--lr-schedule", "plateau"],  # --layer-decay at its off value, 1
        ["--layer-decay", "0.8"],
        ["--quantize", "float16", "--export", "onnx", "tflite"],
        ["--tpu", "my-tpu", "--strategy", "tpu"],
    ],
)
def test_a_setting_that_is_off_or_whose_needs_are_met_passes(
    data: str, argv: list[str]
) -> None:
    parse_settings(Recipe, ["--data-dir", data, *argv])


def test_help_says_what_a_setting_needs(capsys: pytest.CaptureFixture) -> None:
    shown = " ".join(help_text(capsys, Recipe).split())
    assert "rate per block (needs --lr-schedule cosine) (default: 1.0)" in shown
    assert "--tta [{auto,on,off}]" in shown


def test_a_setting_that_needs_no_setting_is_a_mistake_of_the_script(data: str) -> None:
    @dataclasses.dataclass(frozen=True)
    class Wrong:
        data_dir: str | None = setting(None, "images", folder=True, required=True)
        decay: float = setting(0.5, "decay", needs={"schedule": "cosine"}, off=1.0)

    with pytest.raises(TypeError, match="decay needs schedule, which is no setting"):
        parse_settings(Wrong, ["--data-dir", data])
